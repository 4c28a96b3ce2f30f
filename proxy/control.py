"""The control socket: HAProxy-style text commands for people and tools, msgpack requests for the CLI.

One request per connection. A request that starts with a msgpack map is
answered in msgpack; anything else is a text command line (`show stat`,
`show info`, `help`), answered in text, as HAProxy's stats socket does.
"""

import os
import socket
import stat
from contextlib import closing

import msgpack

DEFAULT_SOCKET_ENV = "KEEPWARM_SOCKET"
MAX_REQUEST = 65536
CLIENT_TIMEOUT = 5.0


def default_socket_path():
    """Where a config without `stats socket` puts the control socket (and where the CLI looks)."""
    return os.environ.get(DEFAULT_SOCKET_ENV) or "/tmp/keepwarm-%d.sock" % os.getuid()


class ControlError(Exception):
    """The control socket could not be reached or answered badly (shown to the user in one line)."""


def _connect(path, timeout):
    """A connected control socket, or a ControlError that says what is wrong in one line."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        sock.connect(path)
    except FileNotFoundError:
        sock.close()
        raise ControlError("no keepwarm instance at %s (no such socket; is it running? "
                           "use -s PATH or -f CONFIG)" % path) from None
    except ConnectionRefusedError:
        sock.close()
        if not stat.S_ISSOCK(_mode(path)):
            raise ControlError("%s is not a socket (use -s with keepwarm's control socket)"
                               % path) from None
        raise ControlError("no keepwarm instance answers at %s (stale socket)" % path) from None
    except OSError as exc:
        sock.close()
        raise ControlError("cannot connect to %s: %s" % (path, exc.strerror or exc)) from None
    return sock


def _mode(path):
    try:
        return os.stat(path).st_mode
    except OSError:
        return 0


def _recv(sock, path):
    try:
        return sock.recv(65536)
    except socket.timeout:
        raise ControlError("timed out waiting for keepwarm at %s" % path) from None


def _exchange(path, data, timeout, shut):
    """Connect, send `data` (then half-close when `shut`), and yield what comes back
    until the master closes. Any socket error is a ControlError in one line."""
    sock = _connect(path, timeout)
    try:
        sock.sendall(data)
        if shut:
            sock.shutdown(socket.SHUT_WR)
        while True:
            chunk = _recv(sock, path)
            if not chunk:
                return
            yield chunk
    except OSError as exc:       # _recv's timeout is already a ControlError
        raise ControlError("lost the connection to keepwarm at %s: %s"
                           % (path, exc.strerror or exc)) from None
    finally:
        sock.close()


def request(path, message, timeout=CLIENT_TIMEOUT):
    """Send a msgpack request to the master at `path`; return its decoded answer."""
    unpacker = msgpack.Unpacker(raw=False)
    with closing(_exchange(path, msgpack.packb(message, use_bin_type=True), timeout,
                           True)) as chunks:
        for chunk in chunks:
            try:
                unpacker.feed(chunk)
                for answer in unpacker:
                    return answer
            except (ValueError, msgpack.exceptions.UnpackException):
                raise ControlError("unexpected answer from %s: not msgpack (another "
                                   "program's socket?)" % path) from None
    raise ControlError("keepwarm at %s closed the connection without answering" % path)


def request_text(path, line, timeout=CLIENT_TIMEOUT):
    """Send a text command (as `socat` would) and return the text answer."""
    return b"".join(_exchange(path, line.encode() + b"\n", timeout, False)).decode(
        errors="replace")


class ControlConn:
    """One connection to the master's control socket, read without blocking the master."""

    __slots__ = ("sock", "buf", "master", "deadline")

    def __init__(self, master, sock, now):
        self.master = master
        self.sock = sock
        self.buf = b""
        # A client that connects and sends nothing is dropped (it would hold a master fd).
        self.deadline = now + CLIENT_TIMEOUT

    def on_event(self, mask):
        try:
            data = self.sock.recv(65536)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        self.buf += data
        request = self.complete_request(eof=not data)
        if request is None:
            if not data or len(self.buf) > MAX_REQUEST:
                self.master.close_control_conn(self)
            return
        kind, body = request
        if kind == "msgpack":
            answer = msgpack.packb(self.master.answer(body), use_bin_type=True)
        else:
            answer = self.master.answer_text(body).encode()
        # Answers are small; a blocking write with a timeout keeps the master simple.
        try:
            self.sock.setblocking(True)
            self.sock.settimeout(1.0)
            self.sock.sendall(answer)
        except OSError:
            pass
        self.master.close_control_conn(self)

    def complete_request(self, eof):
        buf = self.buf
        if not buf:
            return None
        first = buf[0]
        if 0x80 <= first <= 0x8f or first in (0xde, 0xdf):
            unpacker = msgpack.Unpacker(raw=False)
            unpacker.feed(buf)
            try:
                return "msgpack", unpacker.unpack()
            except msgpack.OutOfData:
                return None
            except Exception:        # noqa: BLE001 - malformed request: answer with an error
                return "msgpack", {"cmd": "?"}
        if b"\n" in buf or eof:
            return "text", buf.split(b"\n", 1)[0].decode(errors="replace").strip()
        return None
