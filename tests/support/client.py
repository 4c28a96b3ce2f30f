"""A raw-socket HTTP/1.1 client for end-to-end tests: the test controls every byte sent.

Responses are framed as RFC 9112 §6.3 says: no body after HEAD or for
1xx/204/304; chunked when Transfer-Encoding ends in chunked; Content-Length;
otherwise the body runs until the server closes. Every socket has a timeout.
"""

import hashlib
import socket
import time
from dataclasses import dataclass, field
from typing import Callable, List, Optional, Tuple

HEAD_LIMIT = 64 * 1024


class ProtocolError(AssertionError):
    """The proxy sent something that is not well-formed HTTP/1.1."""


class ClosedError(ConnectionError):
    """The server closed the connection before a complete response."""


@dataclass
class Response:
    version: str
    status: int
    reason: str
    headers: List[Tuple[str, str]]
    body: Optional[bytes] = None       # None when a sink consumed it
    body_len: int = 0
    sha256: str = ""
    framing: str = "none"              # "none", "length", "chunked", "close"
    trailers: List[Tuple[str, str]] = field(default_factory=list)
    interim: List["Response"] = field(default_factory=list)   # 1xx seen before this one
    raw_head: bytes = b""

    def header(self, name, default=None):
        name = name.lower()
        for k, v in self.headers:
            if k.lower() == name:
                return v
        return default

    def header_values(self, name):
        name = name.lower()
        return [v for k, v in self.headers if k.lower() == name]

    def header_names(self):
        return [k.lower() for k, _ in self.headers]

    @property
    def conn_id(self):
        """The backend connection that served this response (ScriptedBackend's stamp)."""
        return self.header("X-Conn-Id")

    @property
    def connection_tokens(self):
        return set(t.strip().lower() for t in ",".join(self.header_values("Connection")).split(",")
                   if t.strip())


def build_request(method="GET", target="/", headers=None, body=None, version="HTTP/1.1",
                  host="test.local", chunked=False):
    """Bytes of a request head (and body when ``body`` is bytes and not chunked).

    ``headers`` is a list of (name, value) sent in that order after Host.
    Content-Length is added for a bytes body unless already given or chunked.
    """
    hdrs = []
    if host is not None:
        hdrs.append(("Host", host))
    hdrs.extend(headers or [])
    names = set(k.lower() for k, _ in hdrs)
    if chunked and "transfer-encoding" not in names:
        hdrs.append(("Transfer-Encoding", "chunked"))
    elif isinstance(body, (bytes, bytearray)) and "content-length" not in names and not chunked:
        if body or method in ("POST", "PUT", "PATCH"):
            hdrs.append(("Content-Length", str(len(body))))
    head = "%s %s %s\r\n" % (method, target, version)
    head += "".join("%s: %s\r\n" % hv for hv in hdrs) + "\r\n"
    out = head.encode("latin-1")
    if isinstance(body, (bytes, bytearray)):
        out += encode_chunked([body]) if chunked else bytes(body)
    return out


def encode_chunked(pieces, trailers=()):
    out = bytearray()
    for p in pieces:
        if p:
            out += b"%x\r\n" % len(p) + p + b"\r\n"
    out += b"0\r\n" + "".join("%s: %s\r\n" % t for t in trailers).encode("latin-1") + b"\r\n"
    return bytes(out)


class HttpClient:
    """One client connection to ``host:port``."""

    def __init__(self, port, host="127.0.0.1", timeout=5.0, connect=True):
        self.host, self.port, self.timeout = host, port, timeout
        self.sock = None
        self.buf = bytearray()
        self.reset_seen = False
        if connect:
            self.connect()

    def connect(self):
        self.sock = socket.create_connection((self.host, self.port), timeout=self.timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = bytearray()
        return self

    def close(self):
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- sending -----------------------------------------------------------
    def send(self, data):
        self.sock.sendall(data)

    def send_request(self, method="GET", target="/", headers=None, body=None, version="HTTP/1.1",
                     host="test.local", chunked=False, trailers=()):
        """Send one request. ``body`` may be bytes or an iterable of bytes (streamed:
        give Content-Length in ``headers`` or set ``chunked``)."""
        if body is None or isinstance(body, (bytes, bytearray)):
            data = build_request(method, target, headers, body, version, host, chunked)
            if chunked and body is None:
                data += encode_chunked([], trailers)
            elif chunked and trailers:
                raise ValueError("give trailers with a streamed body")
            self.sock.sendall(data)
            return
        self.sock.sendall(build_request(method, target, headers, None, version, host, chunked))
        for piece in body:
            if not piece:
                continue
            if chunked:
                self.sock.sendall(b"%x\r\n" % len(piece))
                self.sock.sendall(piece)
                self.sock.sendall(b"\r\n")
            else:
                self.sock.sendall(piece)
        if chunked:
            self.sock.sendall(b"0\r\n" + "".join("%s: %s\r\n" % t for t in trailers).encode() + b"\r\n")

    def request(self, method="GET", target="/", headers=None, body=None, version="HTTP/1.1",
                sink=None, **kw):
        self.send_request(method, target, headers, body, version, **kw)
        return self.read_response(method, sink=sink)

    # -- receiving ---------------------------------------------------------
    def _fill(self, allow_eof=False):
        try:
            data = self.sock.recv(256 * 1024)
        except ConnectionResetError:
            self.reset_seen = True
            raise
        if not data:
            if allow_eof:
                return False
            raise ClosedError("server closed the connection (%d bytes pending)" % len(self.buf))
        self.buf += data
        return True

    def _read_line(self):
        while True:
            i = self.buf.find(b"\r\n")
            if i >= 0:
                line = bytes(self.buf[:i])
                del self.buf[:i + 2]
                return line
            if len(self.buf) > HEAD_LIMIT:
                raise ProtocolError("line too long")
            self._fill()

    def _read_head(self):
        while True:
            i = self.buf.find(b"\r\n\r\n")
            if i >= 0:
                head = bytes(self.buf[:i])
                del self.buf[:i + 4]
                return head
            if len(self.buf) > HEAD_LIMIT:
                raise ProtocolError("response head too long")
            self._fill()

    def read_head(self):
        """Read and parse one response head (interim or final), no body."""
        head = self._read_head()
        lines = head.split(b"\r\n")
        parts = lines[0].decode("latin-1").split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit() \
                or len(parts[1]) != 3:
            raise ProtocolError("bad status line %r" % lines[0][:100])
        headers = []
        for line in lines[1:]:
            name, sep, value = line.partition(b":")
            if not sep or not name or name != name.strip():
                raise ProtocolError("bad header line %r" % line[:100])
            headers.append((name.decode("latin-1"), value.strip().decode("latin-1")))
        return Response(parts[0], int(parts[1]), parts[2] if len(parts) > 2 else "", headers,
                        raw_head=head)

    def read_response(self, method="GET", sink: Optional[Callable[[bytes], None]] = None):
        """Read one final response (1xx before it go to ``.interim``).

        With ``sink`` the body is passed piecewise to it and not kept
        (``.body`` is None); ``.body_len`` and ``.sha256`` are always set.
        """
        interim = []
        while True:
            resp = self.read_head()
            if 100 <= resp.status < 200 and resp.status != 101:
                interim.append(resp)
                continue
            break
        resp.interim = interim
        h = hashlib.sha256()
        kept = bytearray() if sink is None else None

        def take(piece):
            h.update(piece)
            resp.body_len += len(piece)
            if kept is not None:
                kept.extend(piece)
            else:
                sink(piece)

        te = ",".join(resp.header_values("Transfer-Encoding")).lower()
        cls = resp.header_values("Content-Length")
        if method == "HEAD" or resp.status in (204, 304) or resp.status < 200:
            resp.framing = "none"
        elif te:
            if cls:
                raise ProtocolError("response has both Transfer-Encoding and Content-Length")
            if te.split(",")[-1].strip() != "chunked":
                resp.framing = "close"
                self._read_until_close(take)
            else:
                resp.framing = "chunked"
                self._read_chunked(take, resp)
        elif cls:
            values = set(v.strip() for v in ",".join(cls).split(","))
            if len(values) != 1 or not next(iter(values)).isdigit():
                raise ProtocolError("bad Content-Length %r" % cls)
            resp.framing = "length"
            self._read_exact(int(values.pop()), take)
        else:
            resp.framing = "close"
            self._read_until_close(take)
        resp.body = bytes(kept) if kept is not None else None
        resp.sha256 = h.hexdigest()
        return resp

    def _read_exact(self, n, take):
        while n > 0:
            if not self.buf:
                self._fill()
            k = min(n, len(self.buf))
            take(bytes(self.buf[:k]))
            del self.buf[:k]
            n -= k

    def _read_chunked(self, take, resp):
        while True:
            line = self._read_line()
            try:
                size = int(line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                raise ProtocolError("bad chunk size line %r" % line[:50])
            if size == 0:
                while True:
                    t = self._read_line()
                    if not t:
                        return
                    name, _, value = t.partition(b":")
                    resp.trailers.append((name.decode("latin-1"), value.strip().decode("latin-1")))
            self._read_exact(size, take)
            if self._read_line() != b"":
                raise ProtocolError("chunk data not followed by CRLF")

    def _read_until_close(self, take):
        while True:
            if self.buf:
                take(bytes(self.buf))
                self.buf.clear()
            if not self._fill(allow_eof=True):
                return

    def wait_closed(self, timeout=None):
        """True when the server closes (FIN or reset) within ``timeout``; False if still open.

        Bytes arriving instead are a protocol error: nothing was asked for.
        """
        if self.buf:
            raise ProtocolError("unexpected bytes from server: %r" % bytes(self.buf[:100]))
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(4096)
            except socket.timeout:
                return False
            except ConnectionResetError:
                self.reset_seen = True
                return True
            finally:
                if self.sock is not None:
                    self.sock.settimeout(self.timeout)
            if not data:
                return True
            raise ProtocolError("unexpected bytes from server: %r" % data[:100])


def get(port, target="/", headers=None, timeout=5.0, **kw):
    """One request on a fresh connection that asks to close; returns the response."""
    with HttpClient(port, timeout=timeout) as c:
        return c.request("GET", target, [("Connection", "close")] + list(headers or []), **kw)
