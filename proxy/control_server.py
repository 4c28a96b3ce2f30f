"""The runtime API's listening side in the master: its sockets and connections.

Every `stats socket` of the global section is opened here: the main UNIX one
(the path `keepwarm stats` finds), further UNIX paths, and TCP addresses. Each
socket applies its `mode`, `uid`/`gid` (a UNIX socket's file) and `level`
(what its clients may do: `user` and `operator` read, `admin` also changes
servers, as HAProxy's levels). `stats timeout` drops a client that stays
silent, `stats maxconn` bounds the connections at once (beyond it the sockets
are not accepted on until one closes, as a listener's maxconn in HAProxy).

The master is handed down as `master`: what a `_getsocks` request (a new
instance started with -x) needs (`stopping`, `listening_sockets()`), the
actions of proxy/control_commands.py, and `log()`.
"""

import errno
import os
import selectors
import socket
import time

from proxy.control import ControlConn
from proxy.service import GETSOCKS, peer_may_take, send_listeners


class ControlError(Exception):
    """A control socket cannot be opened (said once, the master does not start)."""


class Listening:
    """One open `stats socket`."""

    __slots__ = ("sock", "level", "path", "ino", "label", "watched")

    def __init__(self, sock, level, path, label):
        self.sock = sock
        self.level = level
        self.path = path            # a UNIX socket's path (None: TCP)
        self.ino = os.stat(path).st_ino if path else None    # unlink only our own
        self.label = label
        self.watched = False


class ControlServer:
    def __init__(self, sel, master, main_path, sockets=(), timeout=10.0, maxconn=10,
                 takeover=False):
        self.sel = sel
        self.master = master
        self.main_path = main_path
        self.sockets = sockets           # Global.stats_sockets (StatsSocket)
        self.timeout = timeout
        self.maxconn = maxconn
        self.takeover = takeover         # -sf/-st: the old instance still answers at main_path
        self.listening = []
        self.conns = set()
        self.paused = False

    # ------------------------------------------------------------------ opening

    def open(self):
        """Open every socket; raise ControlError naming the one that failed."""
        main = next((s for s in self.sockets if s.path and
                     os.path.abspath(s.path) == self.main_path), None)
        try:
            self.listening.append(self.open_unix(self.main_path, main, self.takeover))
            for spec in self.sockets:
                if spec is main:
                    continue
                if spec.path:
                    self.listening.append(self.open_unix(os.path.abspath(spec.path), spec,
                                                         False))
                else:
                    self.listening.append(self.open_tcp(spec))
        except ControlError:
            self.close()
            raise
        for lst in self.listening:
            self.watch(lst)

    def open_unix(self, path, spec, takeover):
        if takeover:
            # -sf/-st: the old instance answers there until it goes; bind beside it and
            # rename over it, as HAProxy does with its UNIX sockets.
            bind_path = "%s.%d.tmp" % (path, os.getpid())
            try:
                os.unlink(bind_path)
            except OSError:
                pass
        else:
            bind_path = path
            if os.path.exists(path):
                probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                probe.settimeout(0.5)
                try:
                    probe.connect(path)
                except OSError:
                    os.unlink(path)          # stale socket left by a dead instance
                else:
                    raise ControlError("another keepwarm instance answers on %s (set 'stats "
                                       "socket' or KEEPWARM_SOCKET to run a second one)" % path)
                finally:
                    probe.close()
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.bind(bind_path)
            if spec is not None and spec.mode is not None:
                os.chmod(bind_path, spec.mode)
            if spec is not None and (spec.uid is not None or spec.gid is not None):
                os.chown(bind_path, -1 if spec.uid is None else spec.uid,
                         -1 if spec.gid is None else spec.gid)
            sock.listen(16)
            if bind_path != path:
                os.rename(bind_path, path)
            lst = Listening(sock, spec.level if spec else "admin", path, path)
        except OSError as exc:
            sock.close()
            if bind_path != path:
                try:
                    os.unlink(bind_path)
                except OSError:
                    pass
            raise ControlError("cannot create control socket %s: %s"
                               % (path, exc.strerror or exc)) from None
        sock.setblocking(False)
        return lst

    def open_tcp(self, spec):
        label = "%s:%d" % (spec.host, spec.port)
        family = socket.AF_INET6 if ":" in spec.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((spec.host, spec.port))
            sock.listen(16)
        except OSError as exc:
            sock.close()
            raise ControlError("cannot listen on stats socket %s: %s"
                               % (label, exc.strerror or exc)) from None
        sock.setblocking(False)
        return Listening(sock, spec.level, None, label)

    def watch(self, lst):
        if not lst.watched:
            self.sel.register(lst.sock, selectors.EVENT_READ,
                              lambda mask, lst=lst: self.accept(lst))
            lst.watched = True

    def unwatch(self, lst):
        if lst.watched:
            self.sel.unregister(lst.sock)
            lst.watched = False

    # ------------------------------------------------------------------ connections

    def accept(self, lst):
        try:
            sock, _ = lst.sock.accept()
        except OSError:
            return
        sock.setblocking(False)
        conn = ControlConn(self, sock, time.monotonic(), self.timeout, lst.level, self.master)
        self.conns.add(conn)
        self.sel.register(sock, selectors.EVENT_READ, lambda mask: self.first_request(conn, mask))
        if len(self.conns) >= self.maxconn and not self.paused:
            self.paused = True               # stats maxconn: the rest wait in the backlog
            for other in self.listening:
                self.unwatch(other)

    def first_request(self, conn, mask):
        """The first bytes of a control connection: `_getsocks` (a new instance started
        with -x asks for the listening sockets, HAProxy's request) is answered here;
        anything else is ControlConn's from now on."""
        try:
            head = conn.sock.recv(len(GETSOCKS), socket.MSG_PEEK)
        except BlockingIOError:
            return
        except OSError:
            head = b""
        if head != GETSOCKS:
            self.sel.modify(conn.sock, selectors.EVENT_READ, conn.on_event)
            conn.on_event(mask)
            return
        master = self.master
        if master.stopping or not peer_may_take(conn.sock):
            master.log("refused the listening sockets to a -x request%s"
                       % (" (stopping)" if master.stopping else " from another user"))
        else:
            try:
                send_listeners(conn.sock, master.listening_sockets())
                master.log("handed %d listening socket(s) over to a new instance (-x)"
                           % len(master.listening_sockets()))
            except OSError as exc:
                master.log("cannot hand the listening sockets over: %s"
                           % (exc.strerror or exc))
        self.close_control_conn(conn)

    def close_control_conn(self, conn):
        if conn in self.conns:
            self.conns.discard(conn)
            try:
                self.sel.unregister(conn.sock)
            except (KeyError, ValueError):
                pass
            conn.sock.close()
            if self.paused and len(self.conns) < self.maxconn:
                self.paused = False
                for lst in self.listening:
                    self.watch(lst)

    def expire(self, now=None):
        """`stats timeout`: drop the clients silent that long."""
        now = time.monotonic() if now is None else now
        for conn in [c for c in self.conns if c.deadline <= now]:
            self.close_control_conn(conn)

    # ------------------------------------------------------------------ closing

    def close_after_fork(self):
        """In a worker: its copies of the sockets go, the files stay."""
        for lst in self.listening:
            lst.sock.close()
        for conn in self.conns:
            conn.sock.close()

    def close(self):
        for conn in list(self.conns):
            self.close_control_conn(conn)
        for lst in self.listening:
            self.unwatch(lst)
            lst.sock.close()
            if lst.path is None:
                continue
            try:
                # A newer instance (-sf) may have put its own socket there.
                if os.stat(lst.path).st_ino == lst.ino:
                    os.unlink(lst.path)
            except OSError as exc:
                if exc.errno != errno.ENOENT:
                    self.master.log("cannot remove %s: %s" % (lst.path, exc))
        self.listening = []
