"""TLS transports: a connection that speaks TLS below the HTTP/1 endpoint, on
the client side (`bind ... ssl`) or the server side (`server ... ssl`).

The same attributes and methods as the plain `Transport` (workers/xprt.py), so
the endpoints above do not know they run over TLS: `recv(n)` gives plaintext
(b"" at the end, BlockingIOError when none is ready), `write`/`flush` take
plaintext. What differs stays here:

- the handshake, run by the transport itself on the socket's readiness before
  its owner hears of anything. A client's: the owner's deadline (`timeout
  client`, set when the connection came) bounds one that stalls; a failed one
  ends as an end of stream for the owner (``recv`` gives b""), is counted, and
  never reaches a server. A server's: it is part of connecting (`connecting`
  stays true until it is done, so the owner's connect path and `timeout
  connect` cover it); a failed one is a failed connection attempt;
- OpenSSL's "want read"/"want write", turned into BlockingIOError (both are
  OSErrors, which an endpoint would take for a broken connection);
- plaintext OpenSSL decrypted but did not hand over yet (`pending()`), read
  in the same call;
- close_notify, sent on close and on a half-close.

Renegotiation is refused by the contexts (proxy/tls).
"""

import errno
import socket
import ssl
import time
from selectors import EVENT_READ, EVENT_WRITE

from workers.xprt import Transport

_WANT = (ssl.SSLWantReadError, ssl.SSLWantWriteError)
_FAILED = (ssl.SSLError, OSError, ValueError)


class _TLS(Transport):
    """What both sides share once the handshake is done."""

    __slots__ = ("owner", "handshaking", "failed", "tls")

    def _setup(self, on_io):
        self.owner = on_io           # the endpoint's callback, once the handshake is done
        self.handshaking = True
        self.failed = None           # why the handshake failed
        self.tls = None              # the SSLSocket, once the handshake is done (fetches)
        self.recv = self._recv
        self.send = self._send

    def retarget(self, on_io):
        if self.handshaking:
            self.owner = on_io
        else:
            self.data = on_io

    def _handshake(self):
        """Go on with the handshake; True once it is over (done or failed)."""
        try:
            self.sock.do_handshake()
        except ssl.SSLWantReadError:
            self.set_events(EVENT_READ)
            return False
        except ssl.SSLWantWriteError:
            self.set_events(EVENT_WRITE)
            return False
        except _FAILED as exc:
            self.failed = exc
        self.handshaking = False
        self.data = self.owner
        if self.failed is None:
            self.tls = self.sock
        return True

    def _recv(self, n):
        if self.tls is None:
            if self.handshaking:
                raise BlockingIOError
            return b""                   # the handshake failed: nothing more comes
        sock = self.sock
        try:
            data = sock.recv(n)
        except _WANT:
            raise BlockingIOError from None
        except ssl.SSLZeroReturnError:
            return b""                   # close_notify
        # Plaintext OpenSSL holds already (the rest of a record): take it now,
        # the socket will not say it is readable for it.
        for _ in range(64):
            left = sock.pending() if data else 0
            if not left or len(data) >= n:
                break
            data += sock.recv(min(left, n - len(data)))
        return data

    def _send(self, data):
        if self.tls is None:
            if self.handshaking and self.connecting:
                raise BlockingIOError    # (a server's) kept until the handshake is done
            # No TLS session (a client's handshake that timed out or failed):
            # nothing the endpoint says (a 408...) can reach the peer.
            raise BrokenPipeError
        try:
            return self.sock.send(data)
        except _WANT:
            # OpenSSL keeps what it took; the same bytes (and maybe more) are
            # offered again by flush() (Python lets the buffer move).
            raise BlockingIOError from None

    def shutdown_write(self):
        """close_notify, then our FIN (half-close)."""
        self._close_notify()
        try:
            # The socket's own shutdown: SSLSocket.shutdown() would drop the TLS
            # object, and later reads would hand the peer's records up as they are.
            socket.socket.shutdown(self.sock, socket.SHUT_WR)
        except OSError:
            return False
        return True

    def _close_notify(self):
        if self.tls is None or self.sock is None:
            return
        try:
            self.sock.unwrap()           # sends ours; does not wait for the peer's
        except _FAILED:
            pass

    def close(self):
        if self.sock is not None and not self.out:
            self._close_notify()
        Transport.close(self)


class TLSTransport(_TLS):
    """A client's TLS connection (`bind ... ssl`): `context` is the bind's default
    SSLContext (its SNI callback switches to the certificate asked for);
    `failures`, when given, is called with the exception of a failed handshake."""

    __slots__ = ("failures", "bind_id", "t_done")

    def __init__(self, sel, sock, on_io, context, failures=None, bind_id=b"1"):
        tls = context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        Transport.__init__(self, sel, tls, self._handshake_io)
        self._setup(on_io)
        self.failures = failures
        self.bind_id = bind_id       # the listener's number in its frontend (logs)
        self.t_done = -1.0           # the clock when the handshake was over (%Th)

    def handshake_error(self):
        """Why the handshake did not complete, in HAProxy's words (its connection
        error codes), and whether `option dontlognull` hides it; None once done."""
        if self.tls is not None:
            return None
        exc = self.failed
        if exc is None:
            return b"Timeout during SSL handshake", True     # (the owner's deadline)
        if isinstance(exc, (ssl.SSLEOFError, ssl.SSLZeroReturnError)):
            return b"Connection closed during SSL handshake", True
        if isinstance(exc, ssl.SSLCertVerificationError) or \
                getattr(exc, "reason", None) == "CERTIFICATE_VERIFY_FAILED":
            return b"SSL client certificate not trusted", False
        if isinstance(exc, ssl.SSLError):
            return b"SSL handshake failure", False
        return b"Connection error during SSL handshake", True

    def _step(self):
        if not self._handshake():
            return False
        self.t_done = time.monotonic()
        if self.failed is not None and self.failures is not None:
            self.failures(self.failed)
        if self.sock is not None:
            self.set_events(EVENT_READ)
        return True

    def _handshake_io(self, mask):
        if self._step():
            # The request may be in hand already (it can come with the client's
            # Finished), or the handshake failed: the owner reads either way.
            self.owner(EVENT_READ)

    def _recv(self, n):
        if self.handshaking and not self._step():
            raise BlockingIOError
        return _TLS._recv(self, n)

    def still_open(self):
        """(A client connection is never pooled; kept for the interface.)"""
        return self.sock is not None and self.failed is None


class TLSClientTransport(_TLS):
    """A connection to a server over TLS (`server ... ssl`). Made while its TCP
    connect is in progress, as a plain one: the owner writes the request at
    once (kept until the handshake is done) and hears of the connection when
    TLS is up (`connecting` is true until then) or has failed
    (`connect_error()` says so). `server` keeps the last TLS session of each
    name to resume (`tls_sessions`; not kept with `no-ssl-reuse`)."""

    __slots__ = ("context", "hostname", "server", "reuse", "unread")

    def __init__(self, sel, sock, on_io, connecting, context, hostname, server, reuse=True):
        Transport.__init__(self, sel, sock, self._connect_io, True)
        self._setup(on_io)
        self.context = context
        self.hostname = hostname
        self.server = server
        self.reuse = reuse
        self.unread = True           # no response read yet (a TLS 1.3 ticket comes then)
        if not connecting:
            self.set_events(EVENT_WRITE)     # TLS starts on the loop's next turn

    def _connect_io(self, mask):
        """The TCP connect is over: start TLS, or let the owner see the failure."""
        err = self.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if err:
            self.handshaking = False
            self.failed = OSError(err, "connect failed")
            self._hand_over()
            return
        self._start_tls()

    def _start_tls(self):
        session = self.server.tls_sessions.get(self.hostname) if self.reuse else None
        try:
            self.sock = self.fileobj = self.context.wrap_socket(
                self.sock, server_hostname=self.hostname, do_handshake_on_connect=False,
                session=session)
        except _FAILED as exc:
            self.handshaking = False
            self.failed = exc
            self._hand_over()
            return
        self.data = self._handshake_io
        self._handshake_io(EVENT_WRITE)

    def _handshake_io(self, mask):
        if self._handshake():
            if self.failed is not None:
                self.server.counters.ssl_handshake_errors += 1   # (a wrong CA, name...)
            self._hand_over()

    def _recv(self, n):
        data = _TLS._recv(self, n)
        if self.unread and data:
            # The session to resume next time: after the first bytes, when a TLS
            # 1.3 server's ticket has been read too.
            self.unread = False
            if self.reuse:
                self._keep_session(self.tls.session)
        return data

    def _keep_session(self, session):
        sessions = self.server.tls_sessions
        if len(sessions) >= 64 and self.hostname not in sessions:
            sessions.clear()             # (an `sni` expression naming many hosts)
        sessions[self.hostname] = session

    def _hand_over(self):
        """TLS is up (or failed): the owner connects (and flushes its request). A
        connection parked in its pool meanwhile (pool-warm-conn) stays parked: its
        idle callback is told nothing (it takes any event for the server closing),
        unless the handshake failed."""
        owner = self.data = self.owner
        if self.sock is None:
            return
        holder = getattr(owner, "__self__", None)
        if self.failed is None and holder is not None and owner == getattr(holder, "idle_io",
                                                                            None):
            self.set_events(EVENT_READ)
            return
        self.set_events(EVENT_READ | EVENT_WRITE)
        owner(EVENT_WRITE)

    def connect_error(self):
        if self.failed is not None:
            return getattr(self.failed, "errno", None) or errno.EPROTO
        if self.handshaking:
            return 0                     # (not asked before the hand-over)
        self.connecting = False
        return 0

    def failed_connecting(self):
        return self.connecting or self.failed is not None or Transport.failed_connecting(self)

    def still_open(self):
        """An idle connection's liveness: nothing below TLS, or only records that
        carry no data (session tickets, read now); an end, an alert or data means
        it is no clean idle one."""
        if self.tls is None:
            return self.handshaking      # (a warm one still in its handshake: usable)
        try:
            socket.socket.recv(self.sock, 1, socket.MSG_PEEK | socket.MSG_DONTWAIT)
        except BlockingIOError:
            return True
        except OSError:
            return False
        return self.quiet()

    def quiet(self):
        """Read what the server sent while idle: True when it was only TLS's own
        records (a TLS 1.3 server sends its session tickets after the handshake)."""
        try:
            self.sock.recv(1)
        except ssl.SSLWantReadError:
            if self.reuse:
                self._keep_session(self.sock.session)       # the ticket just read
            return True
        except (ssl.SSLError, OSError, ValueError):
            return False
        return False                     # data or the end: not idle any more
