"""The transport layer: a connected non-blocking socket as a byte stream, for either side.

HAProxy's `xprt`: the only code that calls recv/send/shutdown/close on a
client or server socket, keeps the bytes the socket did not take yet, and
registers the socket with the loop's selector for what its owner waits for.
The HTTP/1 code above reads with `recv` (for the plain transport, the socket's
own bound method: no extra call on the hot path) and writes with `write`; a
TLS transport offers the same attributes and methods and nothing above
changes.

The owner is told of readiness through the callback it gave (`on_io(mask)`,
kept in `data`: the transport is its own selector key, so an owner that
changes state changes callback by assignment, `retarget`), the one upward
conversation; it reads `out` to know whether bytes wait, and
`err`/`failed_connecting()` to know why a write failed.
"""

import errno
import socket
from selectors import EVENT_WRITE

# A connection that failed with one of these never reached the server.
CONNECT_ERRNOS = frozenset((errno.ECONNREFUSED, errno.EHOSTUNREACH, errno.ENETUNREACH,
                            errno.ETIMEDOUT, errno.EADDRNOTAVAIL))


class Transport:
    """A plain TCP connection (client or server side) and its unsent bytes."""

    __slots__ = ("sel", "sock", "fileobj", "fd", "recv", "send", "out", "events", "data",
                 "err", "connecting")
    tls = None                       # a TLS connection's SSLSocket (workers/tls.py)

    def __init__(self, sel, sock, on_io, connecting=False):
        self.sel = sel
        self.sock = sock
        self.fileobj = sock          # (fileobj, fd, events, data): the transport is its
        self.fd = sock.fileno()      # own selector key (workers/loop.py)
        self.recv = sock.recv        # recv(n): bytes, b"" at EOF; BlockingIOError when none
        self.send = sock.send
        self.out = b""               # bytes accepted but not yet taken by the socket
        self.events = 0              # what the selector watches (0: not registered)
        self.data = on_io            # the owner's callback, on_io(mask)
        self.err = 0                 # errno of the last failed send
        self.connecting = connecting  # a connect() still in progress (server side)

    def set_events(self, events):
        current = self.events
        if events != current and self.sock is not None:
            if current == 0:
                self.sel.add(self, events)
            elif events == 0:
                self.sel.remove(self)
            else:
                self.sel.change(self, events)
            self.events = events

    def retarget(self, on_io):
        """Hand the connection to a new owner, or the same owner's other state (a
        tunnel after a 101; a server connection parked in its pool): readiness
        goes to `on_io` from now on. An assignment: no system call."""
        self.data = on_io

    def write(self, data):
        """Send `data` now, or keep what the socket does not take and wait for
        writability (reads stay as they were). Returns the bytes sent now, or -1
        if the connection is broken (`err` says why).

        A connection still in progress is written to at once too: on loopback and
        fast networks the handshake is usually done already, which saves a turn
        of the loop; if not, the kernel says EAGAIN and we wait for writability."""
        if self.out:
            self.out += data
            return 0
        try:
            n = self.send(data)
        except BlockingIOError:
            n = 0
        except OSError as exc:
            self.err = exc.errno
            return -1
        if n:
            self.connecting = False
        if n != len(data):
            self.out = data[n:]
            self.set_events(self.events | EVENT_WRITE)
        return n

    def flush(self):
        """Send what is kept; the bytes sent, or -1 if the connection is broken. The
        owner decides what to watch next (it knows whether it still reads)."""
        out = self.out
        try:
            n = self.send(out)
        except BlockingIOError:
            return 0
        except OSError as exc:
            self.err = exc.errno
            return -1
        self.out = out[n:]
        return n

    def connect_error(self):
        """The pending connect()'s outcome, once the socket is writable: 0 if it succeeded."""
        err = self.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if not err:
            self.connecting = False
        return err

    def failed_connecting(self):
        """Did this connection fail before the server accepted it?"""
        return self.connecting or self.err in CONNECT_ERRNOS

    def still_open(self):
        """An idle connection's liveness, without reading it: True while nothing came
        (EOF or bytes nobody asked for mean it is no clean idle connection)."""
        try:
            self.sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT)
        except BlockingIOError:
            return True
        except OSError:
            return False
        return False

    def shutdown_write(self):
        """Send our FIN (half-close); False if the socket is already broken."""
        try:
            self.sock.shutdown(socket.SHUT_WR)
        except OSError:
            return False
        return True

    def close(self):
        sock = self.sock
        if sock is None:
            return
        if self.events:
            self.sel.remove(self)
            self.events = 0
        self.sock = None
        sock.close()
