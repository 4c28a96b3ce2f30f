"""A scripted HTTP/1.1 origin server for end-to-end tests: records what it got, answers as told.

Every final response carries ``X-Conn-Id: <name>-<n>`` (n counts the TCP
connections this backend accepted, from 1), so a test proves server-side
connection reuse on the wire, the way HAProxy's own reuse regression tests do.

One thread per connection, bounded by ``max_connections``; every socket has a
timeout; ``stop()`` closes everything and joins the threads.
"""

import hashlib
import itertools
import selectors
import socket
import ssl
import threading
import time
from dataclasses import dataclass, field
from typing import List, Optional, Tuple

HEAD_LIMIT = 64 * 1024
STORE_BODY_LIMIT = 1 << 20      # larger request bodies are counted and hashed, not kept
_PATTERN = bytes(range(256)) * 256  # 64 KiB block used for generated bodies


def pattern_chunks(total, chunk=len(_PATTERN)):
    """Yield ``total`` bytes of the repeating test pattern, in pieces of at most ``chunk``."""
    left = total
    chunk = min(chunk, len(_PATTERN))
    while left > 0:
        n = min(left, chunk)
        yield _PATTERN[:n] if n < len(_PATTERN) else _PATTERN
        left -= n


def pattern_sha256(total):
    """sha256 hex digest of ``pattern_chunks(total)``, without holding the body."""
    h = hashlib.sha256()
    for piece in pattern_chunks(total):
        h.update(piece)
    return h.hexdigest()


@dataclass
class Request:
    """One request as the backend received it."""
    conn_id: int
    seq: int                        # 1 for the first request on its connection
    method: str
    target: str
    version: str
    headers: List[Tuple[str, str]]  # in wire order, names as sent
    body: Optional[bytes]           # None when longer than STORE_BODY_LIMIT
    body_len: int
    body_sha256: str
    chunked: bool
    raw_head: bytes

    def header(self, name, default=None):
        name = name.lower()
        for k, v in self.headers:
            if k.lower() == name:
                return v
        return default

    def header_names(self):
        return [k.lower() for k, _ in self.headers]


@dataclass
class Reply:
    """What the backend does for one request (the handler returns one).

    By default: ``status`` with ``body`` framed by Content-Length. Options:
    ``chunked`` (Transfer-Encoding: chunked, in ``chunk_size`` pieces),
    ``close_delimited`` (no framing header, connection closed after the body),
    ``stream_len`` (send that many pattern bytes instead of ``body``),
    ``close`` (send ``Connection: close`` and close after), ``delay`` (seconds
    before answering), ``interim`` (list of (1xx status, headers) sent first),
    ``raw`` (send these bytes verbatim instead of a response, then close;
    a list of byte strings is sent piece by piece, ``gap`` seconds apart;
    with ``keep_open`` the connection then stays open for the next request),
    ``idle_after`` (after this reply, wait at most that many seconds for the
    next request on the connection, then close it silently),
    ``drop`` (close at once without answering), ``trailers`` (for chunked).
    """
    status: int = 200
    reason: str = ""
    headers: List[Tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    chunked: bool = False
    chunk_size: int = 16 * 1024
    close_delimited: bool = False
    stream_len: Optional[int] = None
    close: bool = False
    delay: float = 0.0
    interim: List[Tuple[int, List[Tuple[str, str]]]] = field(default_factory=list)
    raw: Optional[bytes] = None
    gap: float = 0.0
    keep_open: bool = False
    drop: bool = False
    idle_after: Optional[float] = None
    trailers: List[Tuple[str, str]] = field(default_factory=list)


REASONS = {100: "Continue", 101: "Switching Protocols", 103: "Early Hints", 200: "OK",
           201: "Created", 204: "No Content", 301: "Moved Permanently", 302: "Found",
           304: "Not Modified", 400: "Bad Request", 404: "Not Found",
           500: "Internal Server Error", 503: "Service Unavailable"}


def default_handler(backend, req):
    body = ("hello from %s conn %d request %d\n" % (backend.name, req.conn_id, req.seq)).encode()
    return Reply(200, headers=[("Content-Type", "text/plain")], body=body)


@dataclass
class ConnRecord:
    conn_id: int
    peer: Tuple[str, int]
    opened_at: float
    requests: int = 0
    closed_at: Optional[float] = None
    closed_by: Optional[str] = None   # "peer", "backend", "timeout", "error", "stop"


class BadRequest(Exception):
    pass


class _Closed(Exception):
    pass


class ScriptedBackend:
    """HTTP/1.1 server on 127.0.0.1:<ephemeral> in background threads.

    ``handler(backend, request) -> Reply``; ``None`` uses ``default_handler``.
    """

    def __init__(self, name="b1", handler=None, *, max_connections=256, idle_timeout=30.0,
                 host="127.0.0.1", port=0, ssl_context=None):
        self.name = name
        # A server-side ssl.SSLContext: each connection speaks TLS (handshake in its
        # thread); tls_failures holds failed handshakes, tls_resumed one bool per
        # TLS connection (was its session resumed?).
        self.ssl_context = ssl_context
        self.tls_failures: List[str] = []
        self.tls_resumed: List[bool] = []
        self.handler = handler or default_handler
        self.max_connections = max_connections
        self.idle_timeout = idle_timeout
        self.host = host
        self._port = port
        self.connections: List[ConnRecord] = []
        self.requests: List[Request] = []
        self.errors: List[str] = []          # protocol errors seen (bad requests from the proxy)
        self._cond = threading.Condition()
        self._conn_ids = itertools.count(1)
        self._socks = {}
        self._threads = []
        self._stopping = threading.Event()
        self._listener = None
        self._accept_thread = None
        self._wake_r = self._wake_w = None

    # -- lifecycle ---------------------------------------------------------
    def start(self):
        ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        ls.bind((self.host, self._port))
        ls.listen(512)
        ls.setblocking(False)
        self._listener = ls
        self.port = ls.getsockname()[1]
        self._wake_r, self._wake_w = socket.socketpair()
        self._accept_thread = threading.Thread(target=self._accept_loop, name="backend-%s" % self.name,
                                               daemon=True)
        self._accept_thread.start()
        return self

    @property
    def address(self):
        return "%s:%d" % (self.host, self.port)

    def stop(self):
        if self._stopping.is_set():
            return
        self._stopping.set()
        try:
            self._wake_w.send(b"x")
        except OSError:
            pass
        self._accept_thread.join(5)
        with self._cond:
            socks = list(self._socks.values())
        for s in socks:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        for t in list(self._threads):
            t.join(5)
        for s in (self._listener, self._wake_r, self._wake_w):
            s.close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # -- observation -------------------------------------------------------
    @property
    def conn_count(self):
        with self._cond:
            return len(self.connections)

    @property
    def request_count(self):
        with self._cond:
            return len(self.requests)

    def open_connections(self):
        with self._cond:
            return [c for c in self.connections if c.closed_at is None]

    def wait_for(self, predicate, timeout=5.0, what="condition"):
        """Wait until ``predicate(self)`` is true (re-checked on every recorded event)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while not predicate(self):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError("backend %s: timed out waiting for %s (conns=%d, requests=%d)"
                                         % (self.name, what, len(self.connections), len(self.requests)))
                self._cond.wait(left)

    def wait_requests(self, n, timeout=5.0):
        self.wait_for(lambda b: len(b.requests) >= n, timeout, "%d requests" % n)

    # -- server ------------------------------------------------------------
    def _accept_loop(self):
        sel = selectors.DefaultSelector()
        sel.register(self._listener, selectors.EVENT_READ)
        sel.register(self._wake_r, selectors.EVENT_READ)
        try:
            while not self._stopping.is_set():
                for key, _ in sel.select(1.0):
                    if key.fileobj is self._wake_r:
                        return
                    try:
                        sock, peer = self._listener.accept()
                    except (BlockingIOError, InterruptedError):
                        continue
                    with self._cond:
                        live = len(self._socks)
                    if live >= self.max_connections:
                        sock.close()
                        self.errors.append("connection refused: max_connections reached")
                        continue
                    sock.setblocking(True)
                    sock.settimeout(self.idle_timeout)
                    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                    with self._cond:
                        cid = next(self._conn_ids)
                        rec = ConnRecord(cid, peer, time.monotonic())
                        self.connections.append(rec)
                        self._socks[cid] = sock
                        self._cond.notify_all()
                    t = threading.Thread(target=self._serve_conn, args=(sock, rec),
                                         name="backend-%s-%d" % (self.name, cid), daemon=True)
                    self._threads.append(t)
                    t.start()
        finally:
            sel.close()

    def _serve_conn(self, sock, rec):
        if self.ssl_context is not None:
            try:
                tls = self.ssl_context.wrap_socket(sock, server_side=True)
            except (ssl.SSLError, OSError) as exc:
                self.tls_failures.append(str(exc))
                sock.close()
                return
            with self._cond:
                self._socks[rec.conn_id] = sock = tls     # (the plain one is detached)
            self.tls_resumed.append(sock.session_reused)
        reader = _Reader(sock)
        closed_by = "backend"
        try:
            seq = 0
            while not self._stopping.is_set():
                try:
                    head = reader.read_head()
                except _Closed:
                    closed_by = "peer"
                    return
                seq += 1
                req, keep = self._read_request(reader, head, rec.conn_id, seq)
                with self._cond:
                    self.requests.append(req)
                    rec.requests = seq
                    self._cond.notify_all()
                reply = self.handler(self, req)
                if reply is None:
                    reply = default_handler(self, req)
                if not self._answer(sock, req, reply, rec.conn_id) or not keep:
                    return
                if reply.idle_after is not None:
                    sock.settimeout(reply.idle_after)
        except socket.timeout:
            closed_by = "timeout"
        except BadRequest as exc:
            self.errors.append("conn %d: %s" % (rec.conn_id, exc))
            closed_by = "error"
            try:
                sock.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            except OSError:
                pass
        except _Closed:
            closed_by = "peer"
        except OSError:
            closed_by = "stop" if self._stopping.is_set() else "peer"
        except Exception as exc:   # a bug in a test's handler: keep it visible
            self.errors.append("conn %d: handler raised %r" % (rec.conn_id, exc))
            closed_by = "error"
        finally:
            with self._cond:
                self._socks.pop(rec.conn_id, None)
                rec.closed_at = time.monotonic()
                rec.closed_by = closed_by
                self._cond.notify_all()
            try:
                sock.close()
            except OSError:
                pass

    def _read_request(self, reader, head, conn_id, seq):
        lines = head.split(b"\r\n")
        try:
            method, target, version = lines[0].decode("latin-1").split(" ")
        except ValueError:
            raise BadRequest("bad request line %r" % lines[0][:100])
        if not version.startswith("HTTP/1."):
            raise BadRequest("bad version %r" % version)
        headers = []
        for line in lines[1:]:
            if not line:
                continue
            name, sep, value = line.partition(b":")
            if not sep or not name or name != name.strip():
                raise BadRequest("bad header line %r" % line[:100])
            headers.append((name.decode("latin-1"), value.strip().decode("latin-1")))
        lower = {}
        for k, v in headers:
            lower.setdefault(k.lower(), []).append(v)
        te = ",".join(lower.get("transfer-encoding", [])).lower()
        chunked = "chunked" in te
        h = hashlib.sha256()
        stored = bytearray()
        total = 0

        def sink(piece):
            nonlocal total
            total += len(piece)
            h.update(piece)
            if total <= STORE_BODY_LIMIT:
                stored.extend(piece)

        if chunked:
            if "content-length" in lower:
                raise BadRequest("both Transfer-Encoding and Content-Length")
            reader.read_chunked(sink)
        elif "content-length" in lower:
            values = set(v.strip() for v in ",".join(lower["content-length"]).split(","))
            if len(values) != 1 or not values.copy().pop().isdigit():
                raise BadRequest("bad Content-Length %r" % lower["content-length"])
            reader.read_exact(int(values.pop()), sink)
        conn_tokens = set(t.strip().lower() for t in ",".join(lower.get("connection", [])).split(","))
        if version == "HTTP/1.1":
            keep = "close" not in conn_tokens
        else:
            keep = "keep-alive" in conn_tokens
        req = Request(conn_id, seq, method, target, version, headers,
                      bytes(stored) if total <= STORE_BODY_LIMIT else None, total, h.hexdigest(),
                      chunked, head)
        return req, keep

    def _answer(self, sock, req, reply, conn_id):
        """Send ``reply``; return False when the connection must close afterwards."""
        if reply.delay:
            if self._stopping.wait(reply.delay):
                return False
        if reply.drop:
            return False
        if reply.raw is not None:
            pieces = [reply.raw] if isinstance(reply.raw, (bytes, bytearray)) else reply.raw
            for i, piece in enumerate(pieces):
                if i and reply.gap and self._stopping.wait(reply.gap):
                    return False
                sock.sendall(piece)
            return reply.keep_open
        for status, headers in reply.interim:
            head = "HTTP/1.1 %d %s\r\n" % (status, REASONS.get(status, "Info"))
            head += "".join("%s: %s\r\n" % hv for hv in headers) + "\r\n"
            sock.sendall(head.encode("latin-1"))
        status = reply.status
        headers = list(reply.headers)
        headers.append(("X-Conn-Id", "%s-%d" % (self.name, conn_id)))
        bodyless = req.method == "HEAD" or status in (204, 304) or 100 <= status < 200
        length = reply.stream_len if reply.stream_len is not None else len(reply.body)
        if reply.close_delimited:
            pass
        elif reply.chunked:
            headers.append(("Transfer-Encoding", "chunked"))
        elif status not in (204, 304) and not 100 <= status < 200:
            headers.append(("Content-Length", str(length)))
        close = reply.close or reply.close_delimited
        if reply.close:
            headers.append(("Connection", "close"))
        head = "HTTP/1.1 %d %s\r\n" % (status, reply.reason or REASONS.get(status, "Status"))
        head += "".join("%s: %s\r\n" % hv for hv in headers) + "\r\n"
        if bodyless:
            sock.sendall(head.encode("latin-1"))
            return not close
        if reply.stream_len is not None:
            pieces = pattern_chunks(reply.stream_len, reply.chunk_size if reply.chunked else 256 * 1024)
        elif reply.chunked:
            b, n = reply.body, reply.chunk_size
            pieces = (b[i:i + n] for i in range(0, len(b), n))
        else:
            pieces = iter([reply.body])
        sock.sendall(head.encode("latin-1"))
        for piece in pieces:
            if not piece:
                continue
            if reply.chunked:
                sock.sendall(b"%x\r\n" % len(piece) + piece + b"\r\n")
            else:
                sock.sendall(piece)
        if reply.chunked:
            trailer = "".join("%s: %s\r\n" % hv for hv in reply.trailers)
            sock.sendall(b"0\r\n" + trailer.encode("latin-1") + b"\r\n")
        return not close


class _Reader:
    """Buffered reads from a blocking socket with a timeout."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = bytearray()

    def _fill(self):
        data = self.sock.recv(256 * 1024)
        if not data:
            raise _Closed()
        self.buf += data

    def read_head(self):
        while True:
            i = self.buf.find(b"\r\n\r\n")
            if i >= 0:
                head = bytes(self.buf[:i])
                del self.buf[:i + 4]
                return head
            if len(self.buf) > HEAD_LIMIT:
                raise BadRequest("head too long")
            self._fill()

    def read_line(self):
        while True:
            i = self.buf.find(b"\r\n")
            if i >= 0:
                line = bytes(self.buf[:i])
                del self.buf[:i + 2]
                return line
            if len(self.buf) > HEAD_LIMIT:
                raise BadRequest("line too long")
            self._fill()

    def read_exact(self, n, sink):
        while n > 0:
            if not self.buf:
                self._fill()
            take = min(n, len(self.buf))
            sink(bytes(self.buf[:take]))
            del self.buf[:take]
            n -= take

    def read_chunked(self, sink):
        while True:
            line = self.read_line()
            size_text = line.split(b";", 1)[0].strip()
            try:
                size = int(size_text, 16)
            except ValueError:
                raise BadRequest("bad chunk size %r" % line[:50])
            if size == 0:
                while self.read_line():   # trailers, up to the empty line
                    pass
                return
            self.read_exact(size, sink)
            if self.read_line() != b"":
                raise BadRequest("chunk not followed by CRLF")
