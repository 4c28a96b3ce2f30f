"""The control socket: HAProxy-style text commands for people and tools, msgpack requests for the CLI.

A request that starts with a msgpack map is answered in msgpack, one per
connection. Anything else is HAProxy's text protocol: a line of commands
(several separated by ';'), each reply ended by an empty line, then the
connection closes; or, after `prompt`, the interactive mode hatop and socat
sessions use: each line answered and followed by the `> ` prompt, until
`quit` (`set timeout cli N` sets how long it may stay silent).
"""

import os
import socket
import stat
import time
from contextlib import contextmanager

from proxy.control_commands import answer, answer_text, split_commands
from workers.channel import Channel, ChannelError

DEFAULT_SOCKET_ENV = "KEEPWARM_SOCKET"
MAX_REQUEST = 65536
PENDING = object()           # run_line(): answered later, when the workers have replied
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


@contextmanager
def _connection(path, timeout):
    """A connected control socket, closed after the block; any socket error in the
    block is a ControlError in one line."""
    sock = _connect(path, timeout)
    try:
        yield sock
    except OSError as exc:       # _recv's timeout is already a ControlError
        raise ControlError("lost the connection to keepwarm at %s: %s"
                           % (path, exc.strerror or exc)) from None
    finally:
        sock.close()


def _replies(sock, path):
    """What the master sends until it closes, chunk by chunk."""
    while True:
        chunk = _recv(sock, path)
        if not chunk:
            return
        yield chunk


def request(path, message, timeout=CLIENT_TIMEOUT):
    """Send a msgpack request to the master at `path`; return its decoded answer."""
    with _connection(path, timeout) as sock:
        channel = Channel(sock)
        channel.send_blocking(message, timeout)
        sock.shutdown(socket.SHUT_WR)
        for chunk in _replies(sock, path):
            try:
                answers = channel.feed(chunk)
            except ChannelError:
                raise ControlError("unexpected answer from %s: not msgpack (another "
                                   "program's socket?)" % path) from None
            if answers:
                return answers[0]
    raise ControlError("keepwarm at %s closed the connection without answering" % path)


def request_text(path, line, timeout=CLIENT_TIMEOUT):
    """Send a text command (as `socat` would) and return the text answer."""
    with _connection(path, timeout) as sock:
        sock.sendall(line.encode() + b"\n")
        return b"".join(_replies(sock, path)).decode(errors="replace")


class ControlConn:
    """One connection to the master's control socket, read without blocking the master.

    `owner` (proxy/control_server.py) is told close_control_conn(conn) once the answer
    is sent or the client gave up; `actions` (the master) does what the commands of
    proxy/control_commands.py ask, within the socket's `level`."""

    __slots__ = ("sock", "buf", "channel", "master", "deadline", "level", "actions",
                 "interactive", "timeout", "pending", "eof")

    def __init__(self, owner, sock, now, timeout=CLIENT_TIMEOUT, level="admin", actions=None):
        self.master = owner
        self.actions = owner if actions is None else actions
        self.level = level       # the stats socket's: user, operator or admin
        self.sock = sock
        self.buf = b""           # what the client sent: a text line, or a msgpack request
        self.channel = None      # once the first byte says msgpack
        # `stats timeout`: a client that stays silent is dropped (it would hold a master fd).
        self.timeout = timeout
        self.deadline = now + timeout
        self.interactive = False     # after `prompt`: one line after another, until `quit`
        self.pending = False         # a reply comes later (show sess): later lines wait
        self.eof = False             # the client has sent all it will (socat's EOF)

    def on_event(self, mask):
        try:
            data = self.sock.recv(65536)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if self.pending:
            if data:
                self.buf += data         # answered after the pending reply
            else:
                self.eof = True          # closed once the pending reply is sent
                self.master.sel.unregister(self.sock)
            return
        self.buf += data
        if self.channel is None and self.buf and not is_msgpack_map(self.buf[0]):
            self.text_lines(data)
            return
        request = self.complete_request(data)
        if request is None:
            if not data or len(self.buf) > MAX_REQUEST:
                self.master.close_control_conn(self)
            return
        kind, body = request
        # Answers are small; a blocking write with a timeout keeps the master simple.
        try:
            if kind == "msgpack":
                self.channel.send_blocking(answer(self.actions, body), 1.0)
            else:
                self.reply(answer_text(self.actions, body, self.level))
        except OSError:
            pass
        self.master.close_control_conn(self)

    def sessions_answer(self, lines):
        """`show sess`: what the workers answered, then the end (and the prompt);
        then the lines that came meanwhile."""
        self.pending = False
        self.reply("".join(line + "\n" for line in lines) + "\n"
                   + ("> " if self.interactive else ""))
        if self.eof and not self.buf.strip() or not self.interactive:
            self.master.close_control_conn(self)
        else:
            self.text_lines(b"" if self.eof else b"(more may come)")

    def reply(self, text):
        self.sock.settimeout(1.0)
        self.sock.sendall(text.encode())
        self.sock.setblocking(False)

    def text_lines(self, data):
        """HAProxy's text protocol: every whole line in `buf` answered in turn."""
        try:
            while True:
                end = self.buf.find(b"\n")
                if end < 0:
                    if not data or len(self.buf) > MAX_REQUEST:
                        if self.buf.strip() and not self.interactive:
                            line, self.buf = self.buf.decode(errors="replace"), b""
                            if self.run_line(line) is PENDING:
                                self.pending = self.eof = True
                                return           # closed once answered
                        self.master.close_control_conn(self)
                    return
                line, self.buf = self.buf[:end].decode(errors="replace"), self.buf[end + 1:]
                done = self.run_line(line)
                if not done:
                    self.master.close_control_conn(self)
                    return
                if done is PENDING:
                    self.pending = True
                    return               # the answer comes later (sessions_answer)
                if not self.interactive:
                    self.master.close_control_conn(self)
                    return
        except OSError:
            self.master.close_control_conn(self)

    def run_line(self, line):
        """Answer one line of commands; False when the connection ends here."""
        if line.strip() == "show sess" and hasattr(self.actions, "collect_sessions"):
            self.actions.collect_sessions(self.sessions_answer)   # answered when they come
            return PENDING
        out = []
        for cmd in split_commands(line.strip()):
            words = cmd.split()
            if words == ["quit"]:
                if out:
                    self.reply("".join(out))
                return False
            if words == ["prompt"]:
                self.interactive = not self.interactive
                out.append("\n")
            elif words[:3] == ["set", "timeout", "cli"] and len(words) == 4:
                try:
                    self.timeout = max(1.0, float(int(words[3])))
                    out.append("\n")
                except ValueError:
                    out.append("'set timeout cli' expects a delay in seconds.\n\n")
            else:
                out.append(answer_text(self.actions, cmd, self.level))
        self.deadline = time.monotonic() + self.timeout
        if self.interactive:
            out.append("> ")
        self.reply("".join(out))
        return True

    def complete_request(self, data):
        """("msgpack", request) or ("text", line) once the request is whole, else None.
        `data` is what this read added to `buf` (b"": the client closed)."""
        buf = self.buf
        if not buf:
            return None
        if self.channel is None and is_msgpack_map(buf[0]):
            self.channel = Channel(self.sock)
            data = buf
        if self.channel is not None:
            try:
                requests = self.channel.feed(data)
            except ChannelError:     # malformed request: answer with an error
                return "msgpack", {"cmd": "?"}
            return ("msgpack", requests[0]) if requests else None
        if b"\n" in buf or not data:
            return "text", buf.split(b"\n", 1)[0].decode(errors="replace").strip()
        return None


def is_msgpack_map(first):
    """A msgpack request is a map (fixmap, map 16, map 32); anything else is a text line."""
    return 0x80 <= first <= 0x8f or first in (0xde, 0xdf)
