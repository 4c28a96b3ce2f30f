"""A worker's listening sockets: each accepts for one frontend and makes a client
session per connection, plain or TLS as its `bind` line says (workers/tls.py).
The worker that owns it is handed down (`worker`): its sessions, its maxconn and
the pauses (pause_accepting, pause_frontend, accept_failed)."""

import errno
import functools
import socket
from selectors import EVENT_READ

from proxy.tls.options import bind_for, cert_store
from workers.h1_front import H1Front
from workers.tls import TLSTransport
from workers.txlog import LoggedH1Front

ACCEPT_BATCH = 64           # connections accepted per listener wakeup at most


class Listener:
    """One accepting socket of this worker's slot, feeding one frontend."""

    __slots__ = ("worker", "sock", "frontend", "family", "deferred", "watched", "session",
                 "transport")

    def __init__(self, worker, sock, frontend):
        self.worker = worker
        self.sock = sock
        self.frontend = frontend
        # A frontend with `log` targets logs each request (workers/txlog.py).
        self.session = H1Front if frontend.txlog is None else LoggedH1Front
        # `bind ... ssl`: its connections speak TLS (workers/tls.py); else plain.
        bind = bind_for(frontend.config.binds, sock.getsockname())
        self.transport = None
        if bind is not None and bind.tls is not None:
            self.transport = functools.partial(
                TLSTransport, context=cert_store(bind.tls).default,
                failures=frontend.counters.tls_failed,
                bind_id=b"%d" % (frontend.config.binds.index(bind) + 1))
        self.family = sock.family
        self.watched = False        # registered in the selector: accepting
        # `bind ... defer-accept`, read from the socket itself (the master set it):
        # connections come with data. A reload that changes it on a socket it keeps
        # affects the new workers; old ones keep reading first until they finish,
        # which costs them one failed read per connection at most.
        try:
            self.deferred = bool(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_DEFER_ACCEPT))
        except (AttributeError, OSError):
            self.deferred = False

    def watch(self):
        """Accept on this socket again (register it in the worker's selector)."""
        if not self.watched:
            self.worker.sel.register(self.sock, EVENT_READ, self.on_accept)
            self.watched = True

    def unwatch(self):
        if self.watched:
            self.worker.sel.unregister(self.sock)
            self.watched = False

    def on_accept(self, mask):
        """Accept what the backlog holds, up to a batch (HAProxy's tune.maxaccept).

        socket._accept() and a socket built from the fd skip accept()'s enum
        conversions (~2.5 µs per connection here)."""
        worker = self.worker
        sessions = worker.sessions
        accept = self.sock._accept
        fe = self.frontend
        fc = fe.counters
        family = self.family
        deferred = self.deferred
        new_session = self.session
        transport = self.transport
        for _ in range(ACCEPT_BATCH):
            if len(sessions) >= worker.maxconn:
                worker.pause_accepting()
                return
            if fc.scur >= fe.maxconn:
                worker.pause_frontend(fe)      # this frontend's own maxconn
                return
            try:
                fd, addr = accept()
            except BlockingIOError:
                return
            except OSError as exc:
                # EMFILE/ENFILE/ENOBUFS: leave the rest in the backlog; the next
                # tick or closed session tries again.
                if exc.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                    worker.accept_failed(exc)
                return
            sock = socket.socket(family, socket.SOCK_STREAM, 0, fd)
            # TCP_NODELAY is inherited from the listener (set by the master).
            sock.setblocking(False)
            try:
                sess = new_session(worker, fe, sock, addr, transport)
            except (OSError, ValueError) as exc:
                # TLS only: wrapping a connection the client already reset fails.
                sock.close()
                fc.tls_failed(exc)
                continue
            sessions.add(sess)
            if deferred:
                sess.start()          # the request is (almost always) there already
            else:
                sess.watch()
