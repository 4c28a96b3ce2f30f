"""The TLS transport: a client connection that speaks TLS below the HTTP/1 endpoint.

The same attributes and methods as the plain `Transport` (workers/xprt.py), so
the endpoint above does not know it runs over TLS: `recv(n)` gives plaintext
(b"" at the end, BlockingIOError when none is ready), `write`/`flush` take
plaintext. What differs stays here:

- the handshake, run by the transport itself on the socket's readiness before
  the owner hears of anything; the owner's deadline (`timeout client` /
  `timeout http-request`, set when the connection came) bounds a client that
  stalls it. A failed handshake ends as an end of stream for the owner
  (``recv`` gives b""), is counted, and never reaches a server;
- OpenSSL's "want read"/"want write", turned into BlockingIOError (both are
  OSErrors, which the endpoint would take for a broken connection);
- plaintext OpenSSL decrypted but did not hand over yet (`pending()`), read
  in the same call;
- close_notify, sent on close and on a half-close.

Renegotiation is refused by the context (OP_NO_RENEGOTIATION, proxy/tls).
"""

import socket
import ssl
from selectors import EVENT_READ, EVENT_WRITE

from workers.xprt import Transport

_WANT = (ssl.SSLWantReadError, ssl.SSLWantWriteError)


class TLSTransport(Transport):
    """A server-side TLS connection: `context` is the bind's default SSLContext
    (its SNI callback switches to the certificate asked for); `failures`, when
    given, is called with the exception of a failed handshake."""

    __slots__ = ("owner", "handshaking", "failed", "failures", "tls")

    def __init__(self, sel, sock, on_io, context, failures=None):
        tls = context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        Transport.__init__(self, sel, tls, self._handshake_io)
        self.owner = on_io           # the endpoint's callback, once the handshake is done
        self.handshaking = True
        self.failed = None           # the handshake's error, when it failed
        self.failures = failures
        self.tls = None              # the SSLSocket, once the handshake is done (fetches)
        self.recv = self._recv
        self.send = self._send

    # ------------------------------------------------------------ handshake

    def _step(self):
        """Go on with the handshake; True once it is over (done or failed)."""
        try:
            self.sock.do_handshake()
        except ssl.SSLWantReadError:
            self.set_events(EVENT_READ)
            return False
        except ssl.SSLWantWriteError:
            self.set_events(EVENT_WRITE)
            return False
        except (ssl.SSLError, OSError, ValueError) as exc:
            self.failed = exc
            if self.failures is not None:
                self.failures(exc)
        self.handshaking = False
        self.data = self.owner
        if self.failed is None:
            self.tls = self.sock
        if self.sock is not None:
            self.set_events(EVENT_READ)
        return True

    def _handshake_io(self, mask):
        if self._step():
            # The request may be in hand already (it can come with the client's
            # Finished), or the handshake failed: the owner reads either way.
            self.owner(EVENT_READ)

    def retarget(self, on_io):
        if self.handshaking:
            self.owner = on_io
        else:
            self.data = on_io

    # ------------------------------------------------------------ data

    def _recv(self, n):
        if self.handshaking and not self._step():
            raise BlockingIOError
        if self.failed is not None:
            return b""
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
            # No TLS session (a handshake that timed out or failed): nothing the
            # endpoint says (a 408...) can reach the client; the connection ends.
            raise BrokenPipeError
        try:
            return self.sock.send(data)
        except _WANT:
            # OpenSSL keeps what it took; the same bytes (and maybe more) are
            # offered again by flush() (Python lets the buffer move).
            raise BlockingIOError from None

    def still_open(self):
        """(A client connection is never pooled; kept for the interface.)"""
        return self.sock is not None and self.failed is None

    def shutdown_write(self):
        """close_notify, then our FIN (half-close)."""
        self._close_notify()
        try:
            self.sock.shutdown(socket.SHUT_WR)
        except OSError:
            return False
        return True

    def _close_notify(self):
        if self.handshaking or self.failed is not None or self.sock is None:
            return
        try:
            self.sock.unwrap()           # sends ours; does not wait for the client's
        except (ssl.SSLError, OSError, ValueError):
            pass

    def close(self):
        if self.sock is not None and not self.out:
            self._close_notify()
        Transport.close(self)
