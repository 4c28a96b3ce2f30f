"""Server-side HTTP/1: one connection to a server (HAProxy's mux_h1 on a backend connection).

An `H1Back` sends the request bytes its stream gives it, parses the response
head, frames the response body with one `BodyDecoder` (_native) and judges
whether the connection may carry another request (the server's keep-alive,
its Keep-Alive hint, connection-bound auth). It knows nothing of the client:
what it learns goes up to the stream it is attached to, through the methods
listed in `workers/stream.py` (the waist), and the body bytes go to the
stream's `sink`, the client side's writer the stream bound once.

While no stream uses it, the connection is idle: parked in its server's pool
(`workers/pool.py` writes `idle_since`/`expire`/`proven` then), or kept by one
stream between its requests when it is private (`keeper`). A parked
connection's events go to `on_idle`, a busy one's to `on_event`: the pool
swaps the two callbacks when it parks and hands out a connection.
"""

from selectors import EVENT_READ, EVENT_WRITE

from _native import (
    BODY_DONE, F_AUTH_CONN, F_KEEPALIVE_HDR, R_BODY, R_BODY_LEN, R_END, R_FLAGS, R_PERSIST,
    R_STATUS,
)
from proxy.http1.rules import BODY_CLOSE, BODY_LENGTH, BODY_NONE, keepalive_hint, persists

RECV_SIZE = 65536

# Response states.
RS_HEAD = 1      # the request went (or goes) out: waiting for (the rest of) a response head
RS_BODY = 2      # relaying the response body


class H1Back:
    """One connection to a server: idle, or carrying one stream's exchange."""

    __slots__ = ("worker", "server", "xprt", "stream", "keeper", "t_server", "busy_io", "idle_io",
                 # the connection's life (the pool reads these)
                 "uses", "proven", "private", "warm", "idle_since", "expire", "uses_left",
                 "hint_timeout", "sni",
                 # the exchange in flight
                 "head_req", "rstate", "rbuf", "rprev", "kind", "dec", "server_ka")

    def __init__(self, worker, server, sock, connecting, sni=None):
        self.worker = worker
        self.sni = sni           # the SNI name of `sni <expression>` (None: the server's)
        self.server = server
        # Two event callbacks, bound once: carrying a stream, or parked (the pool
        # swaps them: Transport.data, no system call).
        self.busy_io = self.on_event
        self.idle_io = self.on_idle
        make = server.transport or worker.transport
        if sni is not None:
            make = server.transport_for(sni)
        self.xprt = make(worker.sel, sock, self.busy_io, connecting)
        self.stream = None       # the stream this connection carries now (None: idle)
        self.keeper = None       # while idle and private: the stream that keeps it
        self.t_server = server.backend.t_server
        self.uses = 0            # requests sent on this connection
        self.proven = False      # reused at least once (HAProxy's word): the server keeps connections
        self.private = False     # bound to one client by connection-based auth
        self.warm = False        # opened by pool-warm-conn before any request
        self.idle_since = 0.0
        self.expire = 0.0        # while idle: not to be used (closed) from this time on
        self.uses_left = -1      # requests the server still accepts here (-1: no limit known)
        self.hint_timeout = None  # the server's Keep-Alive: timeout=N
        self.head_req = False    # the request in flight is a HEAD (its response has no body)
        self.rstate = RS_HEAD
        self.rbuf = b""          # a response head received in part
        self.rprev = 0
        self.kind = BODY_NONE    # the response body's framing (proxy.http1.rules.BODY_*)
        self.dec = None          # the response's BodyDecoder, made at the first body
        self.server_ka = False   # the server keeps this connection after the response

    def on_event(self, mask):
        st = self.stream
        xprt = self.xprt
        if mask & EVENT_WRITE:
            if xprt.connecting:
                if xprt.connect_error():
                    st.server_failed(self, True)
                    return
                st.connected()
            if xprt.flush() < 0:
                st.server_failed(self, xprt.failed_connecting())
                return
            if not xprt.out:
                st.request_flushed(self)
        if not mask & EVENT_READ or self.stream is not st:
            return
        try:
            data = xprt.recv(RECV_SIZE)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            if self.rstate == RS_BODY and self.kind == BODY_CLOSE:
                self.server_ka = False
                st.finish(self)
            else:
                st.server_failed(self, xprt.failed_connecting())
            return
        self.server.counters.bout += len(data)
        if self.rstate == RS_HEAD:
            # The deadline armed when the request went out still runs: a head that
            # arrives whole ends the wait; a partial one re-arms it.
            self.on_head(data, st)
        else:
            st.deadline = self.worker.now + self.t_server
            self.on_body(data, None, st)

    def on_idle(self, mask):
        """Readable while parked: the server closed it, or sent bytes nobody asked for
        (over TLS, records that carry no data, a TLS 1.3 session ticket, are not that)."""
        if self.xprt.tls is not None and self.xprt.quiet():
            return
        keeper = self.keeper
        if keeper is not None:
            keeper.idle_lost(self, True)     # private, between two requests of its stream
        else:
            self.server.pool.evict(self)

    def drop_kept(self):
        """Private and kept by a stream between its requests: close it now (its
        server went DOWN)."""
        self.keeper.idle_lost(self, False)

    def on_head(self, data, st):
        parser = self.worker.parser
        if self.rbuf:
            data = self.rbuf + data
        while True:
            r = parser.response_rc(data, len(data), 0, self.rprev)
            if r <= 0:
                if r == 0:
                    self.rbuf = data
                    self.rprev = len(data)
                    st.deadline = self.worker.now + self.t_server
                    return
                st.bad_response()
                return
            r = parser.result()
            self.rbuf = b""
            self.rprev = 0
            if r[R_STATUS] >= 200:
                break
            end = r[R_END]
            if r[R_STATUS] == 101:
                st.upgrade(self, data, end)
                return
            # 1xx interim response (100 Continue, 103 Early Hints): the client side
            # decides whether to relay it; then the final one is awaited.
            st.interim(data[:end])
            if self.stream is not st:
                return
            data = data[end:]
            if not data:
                st.deadline = self.worker.now + self.t_server
                return
        end = r[R_END]
        # The parser decided the framing (proxy.http1.rules.classify_response), all
        # but HEAD's rule: it does not know the request.
        if self.head_req:
            kind = BODY_NONE
            self.server_ka = persists(r)
        else:
            kind = r[R_BODY]
            self.server_ka = r[R_PERSIST]
        flags = r[R_FLAGS]
        if flags & F_AUTH_CONN:
            self.private = True
        if flags & F_KEEPALIVE_HDR:
            self.read_keepalive_hint(parser.headers(data))
        self.kind = kind
        if kind == BODY_NONE:
            whole = True
            if end != len(data):
                self.server_ka = False      # bytes after a body-less response: not clean
                data = data[:end]
        else:
            whole = kind == BODY_LENGTH and len(data) - end == r[R_BODY_LEN]
        head = st.on_head(data, r, end, kind, whole)
        if self.stream is not st:
            return                          # retried, failed, or the client went away
        if whole:
            st.finish(self)
            return
        self.rstate = RS_BODY
        if kind != BODY_CLOSE:
            dec = self.dec
            if dec is None:
                dec = self.dec = self.worker.new_body_decoder()
            if kind == BODY_LENGTH:
                dec.start_length(r[R_BODY_LEN])
            else:
                dec.start_chunked()
        if end != len(data):
            self.on_body(data[end:], head, st)
        else:
            st.sink(head)

    def on_body(self, data, head, st):
        """Frame response body bytes and pass them on (after `head`, when given: one
        write for both); at the body's end, the stream finishes."""
        done = False
        if self.kind != BODY_CLOSE:
            n = self.dec.feed_rc(data, len(data), 0)
            if n < 0:
                # Bad framing: a clean 502 while nothing reached the client yet,
                # else the client's connection is cut.
                st.bad_body(head is not None)
                return
            if n >= BODY_DONE:
                done = True
                n -= BODY_DONE
                if n != len(data):
                    self.server_ka = False      # bytes after the body: not clean
                    data = data[:n]
        st.sink(head + data if head is not None else data)
        if done and self.stream is st:
            st.finish(self)

    def read_keepalive_hint(self, headers):
        """Slow path: the server said how long and how often it keeps this connection."""
        for name, value in headers:
            if name.lower() == b"keep-alive":
                timeout, maximum = keepalive_hint(value)
                if timeout is not None:
                    self.hint_timeout = timeout
                if maximum is not None:
                    # max=M counts the requests the server still accepts; keep one in hand.
                    self.uses_left = max(0, maximum - 1)

    def close(self):
        self.stream = None
        self.keeper = None
        self.xprt.close()
