"""A client session and its current stream: read a request, pick a server, relay both ways.

One `Session` per client connection, one `ServerConn` per TCP connection to a
server. HTTP/1.1 has at most one exchange in flight per connection, so the
session carries its stream's state itself. The rules (framing, persistence,
reuse) come from `proxy.http1.rules`; this module only moves bytes and calls
them. It is the hot path: locals, no logging, no per-header objects.
"""

from selectors import EVENT_READ, EVENT_WRITE

from _native import (
    BODY_DONE,
    ERROR_STATUS, F_AUTH_CONN, F_CONN_UPGRADE, F_HOP, F_KEEPALIVE_HDR, F_UPGRADE, M_HEAD,
    R_BODY, R_BODY_LEN, R_END, R_FLAGS, R_METHOD, R_METHOD_OFF, R_PERSIST, R_STATUS,
    R_TARGET_LEN, R_TARGET_OFF, R_VERDICT, R_VERSION,
)
from proxy.http1.errors import error_response
from proxy.http1.rewrite import DEL as DEL_HEADER, apply_rules, forwarded_for
from proxy.http1.rules import (
    BODY_CHUNKED, BODY_CLOSE, BODY_LENGTH, BODY_NONE,
    REUSE_NEVER, REUSE_NONE, REUSE_PROVEN,
    IDEMPOTENT, STATUS_CLASS, keepalive_hint, persists, reuse_scope, websocket_handshake_ok,
)
from workers.pool import worn_out

RECV_SIZE = 65536
PIPELINE_HOLD = 65536          # pipelined bytes held while a response is in flight

# Session states (the client side).
ST_HEAD = 0      # waiting for (the rest of) a request head
ST_BODY = 1      # forwarding the request body
ST_WAIT = 2      # request forwarded; waiting for the response to end
ST_LINGER = 3    # our side is shut; reading and dropping until the client closes
ST_CLOSED = 4
ST_TUNNEL = 5    # after a 101 Switching Protocols: bytes flow both ways, unparsed

# Response states (the server side of the current stream).
RS_NONE = 0
RS_HEAD = 1
RS_BODY = 2
RS_QUEUED = 3    # every server is at its maxconn: waiting in the backend's queue
RS_TUNNEL = 4    # relaying the server's side of an upgraded connection

CONN_KEEPALIVE_10 = b"Connection: keep-alive\r\n"
CONN_CLOSE = b"Connection: close\r\n"
# Ends of a rewritten head: what we add, then the empty line.
END = b"\r\n"
END_KEEPALIVE_10 = CONN_KEEPALIVE_10 + END
END_CLOSE = CONN_CLOSE + END
END_UPGRADE = b"Connection: upgrade\r\n" + END
LINGER_TIME = 2.0


class ServerConn:
    """One connection to a server: idle in its pool, or carrying one session's stream."""

    __slots__ = ("xprt", "server", "session", "uses", "proven", "private", "warm",
                 "idle_since", "expire", "uses_left", "hint_timeout", "worker")

    def __init__(self, worker, server, sock, connecting):
        self.worker = worker
        self.server = server
        self.xprt = worker.transport(worker.sel, sock, self.on_event, connecting)
        self.session = None
        self.uses = 0            # requests sent on this connection
        self.proven = False      # reused at least once (HAProxy's word): the server keeps connections
        self.private = False     # bound to one client by connection-based auth
        self.warm = False        # opened by pool-warm-conn before any request
        self.idle_since = 0.0
        self.expire = 0.0        # while idle: not to be used (closed) from this time on
        self.uses_left = -1      # requests the server still accepts here (-1: no limit known)
        self.hint_timeout = None  # the server's Keep-Alive: timeout=N

    def on_event(self, mask):
        sess = self.session
        if sess is None:
            # Idle in the pool: readable means the server closed it or sent junk.
            self.server.pool.evict(self)
            return
        if sess.idle is self:
            # Private, idle between two requests of its session: the same.
            sess.take_own_idle()
            self.server.counters.idle_srv_closed += 1
            self.close()
            return
        xprt = self.xprt
        if mask & EVENT_WRITE:
            if xprt.connecting:
                if xprt.connect_error():
                    sess.server_failed(self, True)
                    return
                sess.deadline = self.worker.now + sess.backend.t_server
            if xprt.flush() < 0:
                sess.server_failed(self, xprt.failed_connecting())
                return
            if not xprt.out:
                # Read the server again unless the client still has our output to take.
                xprt.set_events(0 if sess.xprt.out else EVENT_READ)
                if sess.state == ST_BODY or sess.state == ST_TUNNEL:
                    sess.resume_client()
        if mask & EVENT_READ and self.session is sess:
            sess.read_server()

    def close(self):
        self.session = None
        self.xprt.close()


class Session:
    """One client connection and the stream it currently carries."""

    __slots__ = (
        "worker", "frontend", "fc", "backend", "xprt", "peer", "write", "recv", "state",
        "inbuf", "prev_len", "nreq", "deadline", "client_eof", "reading", "draining",
        # current stream
        "method", "version", "client_ka", "req_dec", "replay",
        "retries", "replayed", "server", "conn", "idle", "rstate", "queued_out", "lb_key",
        "upgrading", "dechunk", "rbuf", "rprev", "resp_kind",
        "resp_dec", "server_ka", "resp_started", "status",
    )

    def __init__(self, worker, frontend, sock, peer):
        self.worker = worker
        self.frontend = frontend
        self.fc = frontend.counters          # counted on every request: one lookup less
        self.backend = frontend.backend
        self.xprt = xprt = worker.transport(worker.sel, sock, self.on_client)
        self.peer = peer
        self.write = xprt.write      # bound once: the hot path's two calls into the transport
        self.recv = xprt.recv
        self.state = ST_HEAD
        self.inbuf = b""
        self.prev_len = 0
        self.nreq = 0
        self.status = 0          # the last response's status (0: none yet)
        self.client_eof = False
        self.reading = True
        self.draining = False    # finish_stream() is taking pipelined requests from inbuf
        self.conn = None
        self.idle = None         # this session's own server connection, between its requests
        self.queued_out = None
        self.lb_key = None
        self.upgrading = False
        self.dechunk = False     # relaying a chunked body to an HTTP/1.0 client, decoded
        self.server = None
        self.rstate = RS_NONE
        self.req_dec = None
        self.resp_dec = None
        self.rbuf = b""
        self.rprev = 0
        self.deadline = worker.now + frontend.t_http_request
        frontend.counters.session_start()

    # ----------------------------------------------------------- registration

    def pause_client(self):
        self.reading = False
        self.xprt.set_events(EVENT_WRITE if self.xprt.out else 0)

    def resume_client(self):
        if self.client_eof or self.state == ST_CLOSED:
            return
        self.reading = True
        self.xprt.set_events(EVENT_READ | EVENT_WRITE if self.xprt.out else EVENT_READ)

    # ----------------------------------------------------------- client side

    def start(self):
        """A connection just accepted from a `defer-accept` bind, so its request is
        already there: read it at once, then wait in the selector only for what is
        still to come. A client that said `Connection: close` and now waits for its
        response is not watched at all: nothing more it sends could be used, its
        last read (linger) happens at close, and a client gone meanwhile is noticed
        at the send of its response, as without the option. Against registering first, that
        saves one wakeup per connection and, for such a client, both epoll_ctl
        calls. (Without defer-accept the request is missing half the time on
        loopback, and a read that fails costs what it saves.)"""
        self.on_client(EVENT_READ)
        if self.xprt.events or self.state == ST_CLOSED or not self.reading:
            return           # closed, or registered for what it awaits (a slow write)
        if self.state == ST_WAIT and not self.client_ka and not self.upgrading:
            return
        self.xprt.set_events(EVENT_READ)

    def on_client(self, mask):
        """The client socket is ready: write what waits for it, then read what it sent."""
        if mask & EVENT_WRITE:
            self.flush_client()
            if self.state == ST_CLOSED or not mask & EVENT_READ:
                return
        try:
            data = self.recv(RECV_SIZE)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        state = self.state
        if not data:
            self.on_client_eof()
            return
        if state == ST_LINGER:
            return                      # dropped: we are closing
        self.fc.bin += len(data)
        if state == ST_HEAD:
            inbuf = self.inbuf
            if inbuf:
                data = inbuf + data
            self.on_head_data(data)
        elif state == ST_BODY:
            self.deadline = self.worker.now + self.frontend.t_client
            self.forward_request_body(data)
        elif state == ST_TUNNEL:
            self.tunnel_to_server(data)
        else:
            # Pipelined request while the previous response is in flight: hold it.
            self.inbuf += data
            if len(self.inbuf) >= PIPELINE_HOLD:
                self.pause_client()

    def on_client_eof(self):
        state = self.state
        self.client_eof = True
        if state == ST_WAIT:
            # The client half-closed after its request; answer it (and the requests
            # it pipelined before, held in inbuf: on_head_data marks the last one),
            # then close.
            if not self.inbuf:
                self.client_ka = False
            self.pause_client()
            return
        if state == ST_BODY:
            self.frontend.counters.cli_abrt += 1
        elif state == ST_TUNNEL and self.conn is not None and not self.conn.xprt.out:
            # Pass the half-close on; the server's side keeps flowing until it closes.
            self.pause_client()
            if not self.conn.xprt.shutdown_write():
                self.close()
            return
        elif state == ST_HEAD and self.xprt.out:
            # Between requests, the last answer still on its way: finish it, then close.
            self.close_gracefully()
            return
        self.close()

    def on_head_data(self, data):
        """Parse and dispatch the request head at the start of `data`."""
        worker = self.worker
        parser = worker.parser
        r = parser.request_rc(data, len(data), 0, self.prev_len)
        if r <= 0:
            if r == 0:
                if not self.prev_len:
                    # First bytes of a head: from now on `timeout http-request` runs.
                    self.deadline = worker.now + self.frontend.t_http_request
                self.inbuf = data
                self.prev_len = len(data)
                return
            self.reject(ERROR_STATUS[r])
            return
        r = parser.result()
        self.inbuf = b""
        self.prev_len = 0
        # The parser decided the framing and the verdict (proxy.http1.rules.classify_request).
        if r[R_VERDICT]:
            self.reject(r[R_VERDICT])
            return
        end = r[R_END]
        dlen = len(data)
        method = r[R_METHOD]
        version = r[R_VERSION]
        self.method = method
        self.version = version
        fe = self.frontend
        self.client_ka = r[R_PERSIST] and fe.keepalive
        kind = r[R_BODY]
        flags = r[R_FLAGS]
        if flags & F_HOP or version == 10 or r[R_METHOD_OFF] or fe.edit_requests:
            head = self.request_head(r, data, flags, version)
            if self.upgrading and not websocket_handshake_ok(parser.headers(data), False):
                self.reject(400)         # a WebSocket upgrade without its key (HAProxy: 400)
                return
        else:
            # The common case: the original head bytes, untouched.
            self.upgrading = False
            head = data if end == dlen else data[:end]
        if kind == BODY_NONE:
            done = True
            if end != dlen:
                self.inbuf = data[end:]
        else:
            # One decoder for both framings (_native's BodyDecoder): what of the
            # bytes in hand is body, and whether it is all there.
            dec = self.req_dec
            if dec is None:
                dec = self.req_dec = worker.new_body_decoder()
            if kind == BODY_LENGTH:
                dec.start_length(r[R_BODY_LEN])
            else:
                dec.start_chunked()
            n = dec.feed_rc(data, dlen, end)
            if n < 0:
                self.reject(400)
                return
            done = n >= BODY_DONE
            if done:
                n -= BODY_DONE
                self.inbuf = data[end + n:]
            head += data[end:end + n]
        if self.client_eof:
            # Pipelined behind a half-close. The rest of a body can never come (the
            # answer before it may still be on its way: finish that, then close); the
            # last complete request's answer ends the connection.
            if not done:
                self.fc.cli_abrt += 1
                self.close_gracefully()
                return
            if not self.inbuf:
                self.client_ka = False
        self.fc.req_tot += 1
        self.state = ST_WAIT if done else ST_BODY
        # is_replayable(method, kind, done), inlined: a body-less request is always done.
        self.replay = head if method in IDEMPOTENT and done else None
        be = self.backend
        self.retries = be.retries
        self.replayed = False
        self.status = 0
        if be.lb.needs_key:
            self.lb_key = self.balance_key(be.lb, r, data)
        self.dispatch(head, None)

    def request_head(self, r, data, flags, version):
        """The head to send when the original bytes will not do: hop-by-hop headers to
        drop, HTTP/1.0, an Upgrade, leading empty lines, or a configuration that edits
        requests (header rules, forwardfor, http-server-close/httpclose)."""
        fe = self.frontend
        parser = self.worker.parser
        self.upgrading = upgrading = bool(flags & F_UPGRADE and flags & F_CONN_UPGRADE
                                          and version == 11)
        if not (flags & F_HOP or version == 10 or fe.rewrite_requests or not fe.server_keepalive):
            # RFC 9112 §2.2: empty lines before a request line are skipped, not forwarded.
            return data[r[R_METHOD_OFF]:r[R_END]]
        # RFC 9110 §7.8: Upgrade is hop-by-hop but is what the client asks the
        # server for: an upgrading request keeps it and says so in Connection.
        head = parser.strip_hop(data, upgrading)
        if fe.rewrite_requests:
            extra = forwarded_for(head, fe.forwardfor, self.peer[0] if self.peer else None)
            head = apply_rules(head, fe.request_rules, extra)
        if upgrading:
            return head + END_UPGRADE
        if not fe.server_keepalive:
            # http-server-close / httpclose: tell the server this is the last request.
            return head + END_CLOSE
        return head + (END_KEEPALIVE_10 if version == 10 else END)

    def balance_key(self, lb, r, data):
        """What `balance source|uri|hdr(NAME)` hashes for this request (None: not there)."""
        kind = lb.needs_key
        if kind == "source":
            return self.peer[0] if self.peer else None
        if kind == "uri":
            r = self.worker.parser.result_all()    # `r` is the hot prefix only
            off = r[R_TARGET_OFF]
            return data[off:off + r[R_TARGET_LEN]]
        name = lb.hdr_name
        for hname, value in self.worker.parser.headers(data):
            if hname.lower() == name:
                return value
        return None

    def dispatch(self, out, exclude, server=None):
        """Send `out` (head and the body bytes in hand) to a server of the backend
        (the one the balancer picks, unless the queue already chose `server`)."""
        be = self.backend
        worker = self.worker
        conn = self.idle
        if server is None:
            if conn is not None and conn.private and conn.server.usable and conn.server is not exclude:
                # NTLM/Negotiate authenticated the connection itself: the session's next
                # requests go to the same server on it, bypassing the balancer (HAProxy's
                # "prefer last server" for private connections).
                server = conn.server
            else:
                lone = be.lone
                if lone is not None and lone.usable and lone.weight > 0 and exclude is None:
                    server = lone        # every algorithm picks a backend's only server
                else:
                    server = be.lb.pick(exclude, self.lb_key)
                    if server is None and be.lb.saturated:
                        self.enqueue(out)
                        return
        lost_private = False
        if conn is not None:
            # The session's own (private) connection serves it again if the
            # balancer chose the same server (HAProxy does the same).
            self.take_own_idle()
            if conn.server is not server:
                lost_private = conn.private
                worker.release(conn)
                conn = None
            elif not server.pool.fresh(conn, worker.now, self.replay is None):
                conn.close()
                conn = None
        if server is None:
            be.counters.req_tot += 1
            self.answer_error(503, be.counters)
            return
        sc = server.counters
        if conn is not None:
            sc.reuse += 1
        else:
            scope = reuse_scope(be.reuse, self.nreq == 0, self.replay is not None)
            if scope == REUSE_NONE:
                sc.nreuse_first += 1
            else:
                # A request that cannot be replayed is sent only on a connection
                # just seen open (peeked), whatever its idle time.
                conn = server.pool.checkout(worker.now, scope == REUSE_PROVEN,
                                            self.replay is None)
                if conn is None:
                    if lost_private:
                        sc.nreuse_private += 1
                    else:
                        sc.nreuse_empty += 1
                elif conn.uses:
                    sc.reuse += 1
                else:
                    sc.warm_used += 1       # a pool-warm-conn connection's first request
        if conn is None:
            conn = worker.connect(server)
            if conn is None:
                self.server = server
                self.connect_failed(server, out)
                return
        conn.session = self
        conn.uses += 1
        self.conn = conn
        self.server = server
        sc.req_tot += 1          # a server's stot (streams) is req_tot: derived at snapshot
        cur = sc.scur + 1
        sc.scur = cur
        if cur > sc.smax:
            sc.smax = cur
        if cur > server.pool.max_used:
            server.pool.used(cur)
        sc.bin += len(out)
        self.nreq += 1
        self.rstate = RS_HEAD
        self.resp_started = False
        xprt = conn.xprt
        if xprt.write(out) < 0:
            self.server_failed(conn, xprt.failed_connecting())
            return
        if xprt.connecting:
            self.deadline = worker.now + be.t_connect
        elif self.state == ST_BODY:
            self.deadline = worker.now + self.frontend.t_client   # the rest of the body is awaited
        else:
            self.deadline = worker.now + be.t_server
        if self.state == ST_BODY:
            if xprt.out:
                self.pause_client()
            elif not self.reading:
                self.resume_client()     # e.g. a pipelined request whose body was held

    def enqueue(self, out):
        """Every usable server is at its maxconn: wait in the backend queue for
        `timeout queue` at most (then 503), as HAProxy does."""
        be = self.backend
        if be.maxqueue and len(be.queue) >= be.maxqueue:
            be.counters.req_tot += 1
            self.answer_error(503, be.counters)
            return
        self.queued_out = out
        self.rstate = RS_QUEUED
        be.queue.append(self)
        c = be.counters
        c.qcur = len(be.queue)
        if c.qcur > c.qmax:
            c.qmax = c.qcur
        self.worker.queued += 1
        self.deadline = self.worker.now + be.t_queue
        if self.state == ST_BODY:
            self.pause_client()

    def leave_queue(self):
        """Stop waiting for a server (timeout queue, or the client went away)."""
        self.rstate = RS_NONE
        self.queued_out = None
        be = self.backend
        try:
            be.queue.remove(self)
        except ValueError:
            return
        self.worker.queued -= 1
        be.counters.qcur = len(be.queue)

    def dequeued(self, server):
        """A server has room again (or none is usable any more: server is None)."""
        out = self.queued_out
        self.queued_out = None
        self.rstate = RS_NONE
        if server is None:
            self.backend.counters.req_tot += 1
            self.answer_error(503, self.backend.counters)
            return
        self.dispatch(out, None, server)
        if self.state == ST_BODY and self.conn is not None and not self.conn.xprt.out:
            self.resume_client()

    def forward_request_body(self, data):
        conn = self.conn
        n = self.req_dec.feed_rc(data, len(data), 0)
        if n < 0:
            self.reject(400, counted=True)
            return
        done = n >= BODY_DONE
        if done:
            n -= BODY_DONE
            if n != len(data):
                self.inbuf = data[n:]       # pipelined after the body
                data = data[:n]
        if done:
            self.state = ST_WAIT
            self.deadline = self.worker.now + self.backend.t_server
        if conn is None:
            # The response already ended (the server answered early): drop the rest.
            if done:
                self.finish_stream()
            return
        self.server.counters.bin += len(data)
        if conn.xprt.write(data) < 0:
            self.server_failed(conn, conn.xprt.failed_connecting())
            return
        if conn.xprt.out and not done:
            self.pause_client()

    # ----------------------------------------------------------- server side

    def read_server(self):
        conn = self.conn
        try:
            data = conn.xprt.recv(RECV_SIZE)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            if self.rstate == RS_BODY and self.resp_kind == BODY_CLOSE:
                self.server_ka = False
                self.finish_stream()
            elif self.rstate == RS_TUNNEL:
                self.close_gracefully()
            else:
                self.server_failed(conn, conn.xprt.failed_connecting())
            return
        self.server.counters.bout += len(data)
        rstate = self.rstate
        if rstate == RS_HEAD:
            # The deadline armed when the request went out still runs: a head that
            # arrives whole ends the wait; a partial one re-arms it below.
            self.on_response_head_data(data)
        elif rstate == RS_BODY:
            self.deadline = self.worker.now + self.backend.t_server
            self.forward_response_body(data)
        else:
            self.deadline = self.worker.now + self.backend.t_tunnel
            self.send_client(data)

    def on_response_head_data(self, data):
        worker = self.worker
        parser = worker.parser
        if self.rbuf:
            data = self.rbuf + data
        while True:
            r = parser.response_rc(data, len(data), 0, self.rprev)
            if r <= 0:
                if r == 0:
                    self.rbuf = data
                    self.rprev = len(data)
                    self.deadline = worker.now + self.backend.t_server
                    return
                self.bad_response()
                return
            r = parser.result()
            self.rbuf = b""
            self.rprev = 0
            status = r[R_STATUS]
            if status >= 200:
                break
            if status == 101:
                if (self.upgrading and self.state == ST_WAIT
                        and websocket_handshake_ok(parser.headers(data), True)):
                    self.start_tunnel(data, r[R_END])
                else:
                    # No Upgrade was asked for, or a WebSocket one answered without
                    # Sec-WebSocket-Accept: a protocol error (HAProxy: 502).
                    self.bad_response()
                return
            # 1xx interim response (100 Continue, 103 Early Hints): relay, then await
            # the final one; never to an HTTP/1.0 client (RFC 9110 §15.2).
            end = r[R_END]
            if self.version != 10:
                self.send_client(data[:end])
                if self.state == ST_CLOSED:
                    return
            data = data[end:]
            if not data:
                self.deadline = worker.now + self.backend.t_server
                return
        end = r[R_END]
        if status in self.backend.retry_status and self.replay is not None \
                and self.may_retry(status):
            # retry-on <status>: drop this answer (and its connection), ask again.
            self.drop_conn()
            self.nreq -= 1
            self.retry(self.replay)
            return
        self.status = status
        server = self.server
        if server.observe is not None:
            # layer7 counts 5xx (but 501 and 505, the client's doing) as errors.
            worker.observed(server, server.observe == "layer4" or status < 500
                            or status == 501 or status == 505)
        # The parser decided the framing (proxy.http1.rules.classify_response), all
        # but HEAD's rule: it does not know the request.
        if self.method != M_HEAD:
            kind = r[R_BODY]
            self.server_ka = r[R_PERSIST] and self.frontend.server_keepalive
        else:
            kind = BODY_NONE
            self.server_ka = persists(r) and self.frontend.server_keepalive
        self.resp_kind = kind
        flags = r[R_FLAGS]
        if flags & F_AUTH_CONN:
            self.conn.private = True
        if flags & F_KEEPALIVE_HDR:
            self.read_keepalive_hint(parser.headers(data))
        # An answer before the whole request body arrived ends the connection: the
        # rest of the body must never be read as a next request.
        # RFC 9112 §7.1: an HTTP/1.0 recipient does not know chunked: it gets the
        # decoded body, delimited by the close.
        self.dechunk = dechunk = kind == BODY_CHUNKED and self.version == 10
        client_ka = (self.client_ka and kind != BODY_CLOSE
                     and self.state != ST_BODY and not dechunk)
        self.client_ka = client_ka
        fe = self.frontend
        cls = STATUS_CLASS[status]
        self.fc.hrsp[cls] += 1
        server.counters.hrsp[cls] += 1
        self.resp_started = True
        self.rstate = RS_BODY
        whole = kind == BODY_LENGTH and len(data) - end == r[R_BODY_LEN]
        if flags & F_HOP or not client_ka or self.version == 10 or fe.response_rules:
            if not client_ka:
                tail = END_CLOSE
            elif self.version == 10:
                tail = END_KEEPALIVE_10
            else:
                tail = END
            if whole and not fe.response_rules:
                # Small responses: the rewritten head and the whole body in one copy, one send.
                n = parser.rewrite_rc(data, len(data), 0, tail, len(tail))
                self.send_client(parser.rewritten(n) if n >= 0 else parser.rewrite(data, tail))
                if self.state != ST_CLOSED:
                    self.finish_stream()
                return
            head = parser.strip_hop(data)
            if fe.response_rules:
                head = apply_rules(head, fe.response_rules)
            if dechunk:
                head = apply_rules(head, ((DEL_HEADER, "Transfer-Encoding", None),))
            head += tail
            body = data[end:]
        elif whole:
            self.send_client(data)      # forwarded as received, head and body
            if self.state != ST_CLOSED:
                self.finish_stream()
            return
        elif end == len(data):
            head = data
            body = b""
        else:
            head = data[:end]
            body = data[end:]
        if kind == BODY_NONE:
            if body:
                self.server_ka = False      # bytes after a body-less response: not clean
            self.send_client(head)
            self.finish_stream()
            return
        if kind != BODY_CLOSE:
            dec = self.resp_dec
            if dec is None:
                dec = self.resp_dec = worker.new_body_decoder()
            if kind == BODY_LENGTH:
                dec.start_length(r[R_BODY_LEN])
            else:
                dec.start_chunked()
        if body:
            self.forward_response_body(body, head)
        else:
            self.send_client(head)

    def start_tunnel(self, data, end):
        """101 Switching Protocols: relay the head, then bytes both ways until a side
        closes, bounded by `timeout tunnel`. The server connection is never pooled."""
        head = self.worker.parser.strip_hop(data, True) + END_UPGRADE
        c = self.frontend.counters
        c.hrsp[1] += 1
        self.server.counters.hrsp[1] += 1
        self.status = 101
        self.resp_started = True
        self.client_ka = False
        self.server_ka = False
        self.state = ST_TUNNEL
        self.rstate = RS_TUNNEL
        self.deadline = self.worker.now + self.backend.t_tunnel
        self.send_client(head + data[end:])
        if self.state == ST_CLOSED:
            return
        if self.inbuf:
            # Bytes the client sent after its request head belong to the new protocol.
            early, self.inbuf = self.inbuf, b""
            self.tunnel_to_server(early)
        if not self.reading and not self.client_eof:
            self.resume_client()

    def tunnel_to_server(self, data):
        conn = self.conn
        self.deadline = self.worker.now + self.backend.t_tunnel
        self.server.counters.bin += len(data)
        if conn.xprt.write(data) < 0:
            self.close()
            return
        if conn.xprt.out:
            self.pause_client()

    def read_keepalive_hint(self, headers):
        """Slow path: the server said how long and how often it keeps this connection."""
        conn = self.conn
        for name, value in headers:
            if name.lower() == b"keep-alive":
                timeout, maximum = keepalive_hint(value)
                if timeout is not None:
                    conn.hint_timeout = timeout
                if maximum is not None:
                    # max=M counts the requests the server still accepts; keep one in hand.
                    conn.uses_left = max(0, maximum - 1)

    def forward_response_body(self, data, head=None):
        """Relay response body bytes (after `head`, when given: one send for both)."""
        done = False
        if self.resp_kind != BODY_CLOSE:
            dec = self.resp_dec
            if self.dechunk:
                n, spans = dec.feed_spans(data, 0)
                if n >= 0 and dec.done:
                    n += BODY_DONE
            else:
                n = dec.feed_rc(data, len(data), 0)
            if n < 0:
                if head is not None:
                    # Nothing reached the client yet: it can still get a clean 502
                    # (counted instead of the status the server announced).
                    cls = STATUS_CLASS[self.status]
                    self.frontend.counters.hrsp[cls] -= 1
                    self.server.counters.hrsp[cls] -= 1
                    self.resp_started = False
                    self.bad_response()
                    return
                # Bad framing mid-body: we cannot tell the client cleanly; cut it.
                self.server.counters.eresp += 1
                self.abort()
                return
            if n >= BODY_DONE:
                done = True
                n -= BODY_DONE
                if n != len(data):
                    self.server_ka = False      # bytes after the body: not clean
                    data = data[:n]
            if self.dechunk:
                data = b"".join([data[off:off + ln] for off, ln in spans])
        self.send_client(head + data if head is not None else data)
        if done and self.state != ST_CLOSED:
            self.finish_stream()

    def finish_stream(self):
        """The response ended: free or pool the server connection, then serve the next request."""
        conn = self.conn
        server = self.server
        if self.state == ST_BODY:
            # The server answered before the whole request body arrived; the
            # rest of the body must not reach the next request, so close both.
            self.client_ka = False
            self.server_ka = False
        if conn is not None:
            self.conn = None
            server.counters.scur -= 1
            if not self.server_ka or conn.xprt.out or worn_out(conn):
                conn.close()
            elif not (conn.private or self.backend.reuse == REUSE_NEVER):
                # Into the pool, also for this session's next request: a silent
                # client must not pin a server connection (HAProxy does the same).
                self.worker.release(conn)
            elif self.client_ka and not self.client_eof and self.state == ST_WAIT:
                # Private: kept for this session's next request only.
                self.idle = conn
                server.kept.add(conn)
                server.pool.park(conn, self.worker.now)
            else:
                conn.close()
        self.rstate = RS_NONE
        if self.state == ST_BODY:
            self.close_gracefully()
            return
        if not self.client_ka:
            self.close_gracefully()
            return
        self.state = ST_HEAD
        worker = self.worker
        # timeout http-keep-alive starts once the response is fully sent (HAProxy).
        self.deadline = worker.now + (self.frontend.t_client if self.xprt.out
                                      else self.frontend.t_keepalive)
        if self.inbuf:
            if self.draining:
                # Answered at once (an error page) while the loop below, further up
                # the stack, is taking pipelined requests: it takes the next one.
                return
            # A loop, not recursion: thousands of pipelined requests answered at once
            # (503, no server) would otherwise nest a call chain per request.
            self.draining = True
            try:
                while self.inbuf and self.state == ST_HEAD and not self.prev_len:
                    data = self.inbuf
                    self.inbuf = b""
                    self.deadline = worker.now + self.frontend.t_http_request
                    self.on_head_data(data)
            finally:
                self.draining = False
            if self.client_eof and self.state == ST_HEAD:
                self.close_gracefully()     # the rest of a head that will never come
                return
        if not self.reading and self.state == ST_HEAD:
            self.resume_client()

    def server_failed(self, conn, connect_error):
        """The server connection broke: retry, replay, or answer 502/503."""
        if self.rbuf and self.rstate == RS_HEAD and not self.resp_started:
            # The server closed in the middle of its response head: a bad response.
            self.bad_response()
            return
        server = self.server
        sc = server.counters
        pending = conn.xprt.out
        conn.close()
        self.conn = None
        sc.scur -= 1
        if server.observe is not None:
            self.worker.observed(server, False)
        if self.rstate != RS_HEAD or self.resp_started:
            # Part of a response already went out: nothing clean is possible.
            sc.srv_abrt += 1
            self.abort()
            return
        replay = self.replay
        if connect_error:
            # The server never took the request: retrying it cannot duplicate it.
            sc.econ += 1
            out = replay if replay is not None else pending
            if out and self.may_retry("conn-failure"):
                self.nreq -= 1
                self.retry(out)
                return
            self.answer_error(503, sc)
            return
        if replay is not None:
            if (conn.uses > 1 or conn.warm) and not self.replayed:
                # A connection that sat idle died before any response byte: the
                # idle-close race. Replay once on a fresh connection (DESIGN.md §4).
                sc.replays += 1
                self.replayed = True
                self.nreq -= 1
                self.dispatch_to(server, replay)
                return
            if self.may_retry("empty-response"):
                self.nreq -= 1
                self.retry(replay)
                return
        sc.eresp += 1
        self.answer_error(502, sc)

    def may_retry(self, event):
        """`retries` left and `retry-on` covering `event` (a keyword, or a status code)?"""
        return self.retries > 0 and event in self.backend.retry_on

    def retry(self, out):
        """Send the request again on a new connection: to the same server, or, with
        `option redispatch`, to another one on the last retry (or every Nth)."""
        be = self.backend
        self.retries -= 1
        self.replayed = True
        server = self.server
        server.counters.wretr += 1
        every = be.redispatch_interval
        done = be.retries - self.retries
        if be.redispatch and (self.retries == 0 if every < 0 else done % every == 0):
            other = be.lb.pick(server, self.lb_key)
            if other is not None and other is not server:
                server.counters.wredis += 1
                server = other
        self.dispatch_to(server, out)

    def connect_failed(self, server, out):
        """connect() failed at once (refused, unreachable): retry, then 503."""
        sc = server.counters
        sc.econ += 1
        self.server = server
        if server.observe is not None:
            self.worker.observed(server, False)
        if self.may_retry("conn-failure"):
            self.retry(out)
            return
        sc.req_tot += 1
        self.answer_error(503, sc)

    def dispatch_to(self, server, out):
        """Send `out` again on a new connection to `server` (retry or replay)."""
        worker = self.worker
        conn = worker.connect(server)
        if conn is None:
            self.connect_failed(server, out)
            return
        sc = server.counters
        conn.session = self
        conn.uses += 1
        self.conn = conn
        self.server = server
        cur = sc.scur + 1
        sc.scur = cur
        if cur > sc.smax:
            sc.smax = cur        # (this path used to raise scur but never smax)
        server.pool.used(cur)
        sc.bin += len(out)
        self.nreq += 1
        self.rstate = RS_HEAD
        if conn.xprt.write(out) < 0:
            self.server_failed(conn, conn.xprt.failed_connecting())
            return
        self.deadline = worker.now + (self.backend.t_connect if conn.xprt.connecting
                                      else self.backend.t_server)

    def bad_response(self):
        """Unparsable or invalid response head: 502 (or a retry under `retry-on
        junk-response`), and never pool that connection."""
        server = self.server
        server.counters.eresp += 1
        if server.observe == "layer7":
            self.worker.observed(server, False)
        self.drop_conn()
        self.rbuf = b""
        self.rprev = 0
        if self.replay is not None and not self.resp_started and self.may_retry("junk-response"):
            self.nreq -= 1
            self.retry(self.replay)
            return
        self.answer_error(502, self.server.counters)

    # ----------------------------------------------------------- answers

    def answer_error(self, status, counters):
        """Send keepwarm's own error response for the current stream, then go on or close."""
        self.rstate = RS_NONE
        self.resp_started = True
        self.status = status
        cls = STATUS_CLASS[status]
        self.frontend.counters.hrsp[cls] += 1
        counters.hrsp[cls] += 1
        keep = self.client_ka and self.state == ST_WAIT
        self.send_client(error_response(status, close=not keep))
        if self.state == ST_CLOSED:
            return
        if keep:
            self.drop_conn()
            self.finish_stream()
        else:
            self.close_gracefully()

    def reject(self, status, counted=False):
        """Refuse an invalid request: error response, then close (nothing more is forwarded).

        `counted`: the request was already counted in req_tot (it failed mid-body)."""
        fe = self.frontend
        fe.counters.hrsp[STATUS_CLASS[status]] += 1
        if not counted:
            fe.counters.req_tot += 1
        self.rstate = RS_NONE
        self.client_ka = False
        self.inbuf = b""
        self.send_client(error_response(status, close=True))
        if self.state != ST_CLOSED:
            self.close_gracefully()

    def on_timeout(self):
        state = self.state
        if state == ST_LINGER:
            self.close()                   # the client never closed its side
            return
        if state == ST_TUNNEL:
            self.close()                   # timeout tunnel: both sides idle too long
            return
        if self.rstate == RS_QUEUED:
            # timeout queue: the request never reached a server; the queue drops
            # it lazily (run_queues skips sessions no longer queued).
            self.leave_queue()
            self.backend.counters.req_tot += 1
            self.answer_error(503, self.backend.counters)
            return
        if state == ST_HEAD:
            if self.inbuf:
                self.reject(408)           # a head trickled too slowly (slowloris)
            elif self.nreq == 0 and not self.status and not self.frontend.ignore_probes:
                # A connection that never sent a byte: 408, as HAProxy does unless
                # `option http-ignore-probes` (browsers' speculative pre-connects).
                # (nreq counts requests sent to servers; status, any answered here.)
                self.reject(408)
            else:
                self.close()               # idle keep-alive connection, or an ignored probe
        elif state == ST_BODY and not self.resp_started:
            self.reject(408, counted=True)
        elif self.rstate == RS_HEAD and not self.resp_started:
            conn = self.conn
            connecting = conn is not None and conn.xprt.connecting
            self.drop_conn()
            if self.server.observe is not None:
                self.worker.observed(self.server, False)
            event = "conn-failure" if connecting else "response-timeout"
            if self.replay is not None and self.may_retry(event):
                if connecting:
                    self.server.counters.econ += 1
                self.nreq -= 1
                self.retry(self.replay)
                return
            if connecting:
                self.server.counters.econ += 1
                self.answer_error(503, self.server.counters)
            else:
                self.answer_error(504, self.server.counters)
        else:
            self.abort()

    # ----------------------------------------------------------- output and closing

    def send_client(self, data):
        xprt = self.xprt
        n = self.write(data)
        if n < 0:
            self.abort()
            return
        self.fc.bout += n
        if not xprt.out:
            return
        # The client is slower than the server: stop reading the server until it drains.
        conn = self.conn
        if conn is not None and conn.xprt.events & EVENT_READ:
            conn.xprt.set_events(conn.xprt.events & ~EVENT_READ)
        xprt.set_events(EVENT_READ | EVENT_WRITE if self.reading else EVENT_WRITE)
        self.deadline = self.worker.now + self.frontend.t_client

    def flush_client(self):
        xprt = self.xprt
        n = xprt.flush()
        if n < 0:
            self.abort()
            return
        self.frontend.counters.bout += n
        self.deadline = self.worker.now + self.frontend.t_client
        if xprt.out:
            return
        if self.state == ST_LINGER:
            self.linger()
            return
        if self.state == ST_HEAD and not self.inbuf and not self.prev_len:
            self.deadline = self.worker.now + self.frontend.t_keepalive
        xprt.set_events(EVENT_READ if self.reading else 0)
        conn = self.conn
        if conn is not None and self.rstate != RS_NONE:
            conn.xprt.set_events(EVENT_READ | EVENT_WRITE if conn.xprt.out else EVENT_READ)

    def idle_between_requests(self):
        """Between two requests, with nothing read of the next one and nothing left to
        send: a connection a stopping worker may close. One that has not sent its
        first request yet is not idle: it was accepted to be served."""
        return (self.state == ST_HEAD and (self.nreq or self.status) and not self.inbuf
                and not self.prev_len and not self.xprt.out)

    def close_gracefully(self):
        """Close after the pending output is written, without resetting it.

        Closing a socket with unread input makes the kernel send a reset that can
        destroy the response still in flight; so shut our side, then read and drop
        until the client closes (or LINGER_TIME passes).
        """
        self.drop_conn()
        self.drop_idle()
        self.state = ST_LINGER
        self.reading = True
        self.deadline = self.worker.now + LINGER_TIME
        if self.xprt.out:
            self.xprt.set_events(EVENT_WRITE)
            return
        self.linger()

    def linger(self):
        if self.client_eof:
            self.close()
            return
        # Common case: the client sent nothing more. One non-blocking read
        # proves it, and a plain close then sends FIN, not a reset.
        try:
            data = self.recv(RECV_SIZE)
        except BlockingIOError:
            self.close()
            return
        except OSError:
            self.close()
            return
        if not data:
            self.close()
            return
        if not self.xprt.shutdown_write():
            self.close()
            return
        self.xprt.set_events(EVENT_READ)

    def drop_conn(self):
        """Close the current stream's server connection, if any (never pooled)."""
        conn = self.conn
        if conn is not None:
            self.conn = None
            self.server.counters.scur -= 1
            conn.close()

    def take_own_idle(self):
        """Take back the private connection this session keeps between its requests."""
        conn = self.idle
        self.idle = None
        conn.server.kept.discard(conn)
        return conn

    def drop_idle(self):
        """The session ends: its private idle server connection, if any, closes with it."""
        if self.idle is not None:
            self.take_own_idle().close()

    def abort(self):
        """Close everything at once (broken peer, unrecoverable mid-stream error)."""
        self.close()

    def close(self):
        if self.state == ST_CLOSED:
            return
        self.state = ST_CLOSED
        if self.rstate == RS_QUEUED:
            self.leave_queue()
        self.drop_conn()
        self.drop_idle()
        self.xprt.close()
        self.frontend.counters.scur -= 1
        self.worker.session_closed(self)
