"""The stream: one request/response exchange between a client endpoint and a server.

HAProxy's stream + backend: the routing call, balancing, a pooled or new server
connection, retries, redispatch, replay, the backend queue, and the server
side's timeouts (queue, connect, server). Made once per client connection, reset
per request; it moves the original head bytes and the parser's result list.

The waist. Neither the client endpoint above nor the server connection below
is imported here; each talks to the stream, and the stream to them, through a
fixed set of methods on objects handed over (HAProxy's stconn / mux_ops):

    the client endpoint (`front`, given at construction; H1Front today):
        response_head(data, r, end, kind, whole) -> head bytes still to send, or None
                                  when the front sent the whole response itself
        send(data)                body bytes for the client (bound once: `sink`; the
                                  front may point `sink` elsewhere for one response)
        interim(head)             a 1xx response head (bound once: `interim`)
        answer(status, page)      this stream's own error answer (503, 502, 504...;
                                  `page`: an errorfile's response, or None)
        stream_done()             the exchange ended: next request, or close
        continues()               will there be a next request? (private connections)
        upgraded(data, end, xprt, server, t_tunnel) -> bool
                                  a 101: hand both transports to a tunnel
        pause(), resume()         stop / start reading the client (request body)
        abort()                   close the client connection at once

    the server connection (`conn`, H1Back) calls on its stream:
        on_head(data, r, end, kind, whole), sink(data), interim(head), finish(conn),
        bad_response(), bad_body(head_pending), server_failed(conn, connect_error),
        upgrade(conn, data, end), connected(), request_flushed(conn),
        idle_lost(conn, by_server) (a private connection this stream keeps), and
        re-arms `deadline` (timeout server) on what it reads.

    the worker's tick reads `deadline`; the front's on_timeout(now) hands over to
    `on_timeout()` here when this deadline is the one due.
"""

from selectors import EVENT_READ, EVENT_WRITE

from _native import M_HEAD, R_METHOD, R_STATUS
from proxy.http1.rules import IDEMPOTENT, REUSE_NEVER, REUSE_NONE, REUSE_PROVEN, STATUS_CLASS, reuse_scope
from proxy.rules.txn import Txn
from workers.balance import request_key
from workers.h1_back import RS_HEAD
from workers.pool import worn_out
from workers.runtime import NEVER, request_view

PH_NONE = 0      # no exchange, or its response is under way
PH_QUEUED = 1    # every server is at its maxconn: waiting in the backend's queue


class Stream:
    """The exchange a client connection carries now (one at a time in HTTP/1)."""

    __slots__ = ("worker", "front", "frontend", "fc", "backend", "router", "peer", "local",
                 "sink", "interim", "txn", "sess", "keep_server", "conn", "server", "idle",
                 "nreq", "phase", "deadline",
                 # the current request
                 "replay", "retries", "replayed", "lb_key", "queued_out", "head_req",
                 "req_done", "resp_started", "status", "held", "t_sent", "t_conn", "t_resp")

    def __init__(self, worker, front, frontend, peer, local=None):
        self.worker = worker
        self.front = front
        self.frontend = frontend
        self.fc = frontend.counters
        self.backend = frontend.backend      # default_backend, unless a rule routes elsewhere
        self.router = frontend.router
        self.peer = peer
        self.local = local       # the frontend's address (only when the frontend routes)
        self.txn = self.sess = None   # the rules' view of the request; sess.* variables
        # The two front methods called per response, bound once.
        self.sink, self.interim = front.send, front.interim
        self.keep_server = frontend.pair.server_keepalive
        self.conn = self.server = None   # the exchange's server connection, and its server
        self.idle = None         # a private server connection kept between requests
        self.nreq = 0            # requests sent to servers on this client connection
        self.phase = PH_NONE
        self.deadline = NEVER    # timeout queue, connect or server: whichever runs
        self.replay = self.queued_out = self.lb_key = None
        self.req_done, self.resp_started = True, False
        self.status = 0          # the last response's status (0: none yet)
        self.held = False        # the client is slow: the server is not read meanwhile
        self.t_sent = self.t_conn = self.t_resp = -1.0    # clocks for the log: see send()

    # ----------------------------------------------------------- from the front

    def route(self, r, data):
        """The one routing call (a frontend with rules: runtime.make_decider): the
        backend's Pairing, or the (status, response) an http-request rule answered."""
        be = self.router(self.new_txn(data))
        if be.__class__ is tuple:
            return be                # (status, response): a rule answered it
        self.backend = be
        pair = self.frontend.pair_for(be)
        self.keep_server = pair.server_keepalive
        return pair

    def new_txn(self, data):
        """The rule engine's view of the request in `data` (kept for the response's rules)."""
        w, be = self.worker, self.backend    # (route() names the backend it chose)
        self.txn = txn = Txn(w.world, data, w.parser, self.peer, self.local,
                             self.frontend.name_bytes, be and be.name_bytes or b"", self.sess,
                             xprt=self.front.xprt)
        self.sess = txn.sess_vars        # sess.* variables live as long as the connection
        return txn

    def request_txn(self, data):        # this request's view: route()'s, else a new one
        return self.txn if self.router is not None else self.new_txn(data)

    def start(self, head, r, data, done):
        """A request head (and the body bytes in hand, all of it when `done`) to send."""
        be = self.backend
        if be is None:              # no use_backend rule matched, no default_backend: 503
            self.req_done = done
            return self.answer_error(503, None)
        method = r[R_METHOD]
        # is_replayable(method, kind, done), inlined: a body-less request is always done.
        self.replay = head if done and method in IDEMPOTENT else None
        self.head_req = method == M_HEAD
        self.req_done = done
        self.retries = be.retries
        self.replayed = False
        self.status = 0
        if be.lb.needs_key:
            self.lb_key = request_key(be.lb, self.peer, self.worker.parser, data)
        if be.dyn_sni:               # `sni <expression>` reads it as forwarded (dispatch)
            self.txn = request_view(self, data)
        self.dispatch(head, None)

    def body(self, data, done):
        """Request body bytes from the client (the last ones when `done`)."""
        conn = self.conn
        if done:
            self.req_done = True
        if conn is None:
            return                   # queued (the client is paused), or answered already
        self.server.counters.bin += len(data)
        xprt = conn.xprt
        if xprt.write(data) < 0:
            self.server_failed(conn, xprt.failed_connecting())
            return
        if done:
            if not xprt.connecting:
                self.deadline = self.worker.now + self.backend.t_server
        elif xprt.out:
            self.front.pause()

    def hold(self):
        """A slow client: stop reading the server (and its timeout) until `unhold`."""
        conn = self.conn
        if conn is not None:
            self.held = True
            self.deadline = NEVER
            events = conn.xprt.events
            if events & EVENT_READ:
                conn.xprt.set_events(events & ~EVENT_READ)

    def unhold(self):
        if self.held:
            self.held = False
            conn = self.conn
            if conn is not None:
                conn.xprt.set_events(EVENT_READ | EVENT_WRITE if conn.xprt.out else EVENT_READ)
                self.deadline = self.worker.now + self.backend.t_server

    # ----------------------------------------------------------- server choice and sending

    def dispatch(self, out, exclude, server=None):
        """Send `out` (head, body bytes in hand) to the balancer's server (or `server`)."""
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
        sni = None if server is None or server.sni_fetch is None else server.sni_of(self.txn)
        if conn is not None:
            # The stream's own (private) connection serves it again if the
            # balancer chose the same server (HAProxy does the same).
            self.take_own_idle()
            if conn.server is not server or conn.sni != sni:
                lost_private = conn.private
                conn.close()             # private: nobody else may use it
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
                                            self.replay is None, sni)
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
            conn = worker.connect(server, sni)
            if conn is None:
                self.server = server
                self.connect_failed(server, out)
                return
        self.send(conn, server, out)

    def send(self, conn, server, out):
        """Attach `conn` (to `server`) to this stream and write `out` on it (t_sent, t_conn,
        t_resp: clocks for the access log, which resets them to -1.0 per request)."""
        conn.stream = self
        conn.uses += 1
        conn.head_req = self.head_req
        conn.rstate = RS_HEAD
        self.conn = conn
        self.server = server
        sc = server.counters
        sc.req_tot += 1          # a server's stot (streams) is req_tot: derived at snapshot
        cur = sc.scur + 1
        sc.scur = cur
        if cur > sc.smax:
            sc.smax = cur
        if cur > server.pool.max_used:
            server.pool.used(cur)
        sc.bin += len(out)
        self.nreq += 1
        self.resp_started = False
        xprt = conn.xprt
        self.t_sent = now = self.worker.now
        if xprt.write(out) < 0:
            self.server_failed(conn, xprt.failed_connecting())
            return
        if xprt.connecting:
            self.deadline = now + self.backend.t_connect
        else:
            self.t_conn = now    # pooled, or connected by the 1st write; NEVER: body to come
            self.deadline = now + self.backend.t_server if self.req_done else NEVER
        if not self.req_done:
            if xprt.out:
                self.front.pause()
            else:
                self.front.resume()      # e.g. a pipelined request whose body was held

    def enqueue(self, out):
        """Every usable server at its maxconn: wait in the queue for `timeout queue` (503)."""
        be = self.backend
        if be.maxqueue and len(be.queue) >= be.maxqueue:
            be.counters.req_tot += 1
            self.answer_error(503, be.counters)
            return
        self.queued_out = out
        self.phase = PH_QUEUED
        be.queue.append(self)
        c = be.counters
        c.qcur = len(be.queue)
        if c.qcur > c.qmax:
            c.qmax = c.qcur
        self.worker.queued += 1
        self.deadline = self.worker.now + be.t_queue
        if not self.req_done:
            self.front.pause()

    def leave_queue(self):
        """Stop waiting for a server (timeout queue, or the client went away)."""
        self.phase = PH_NONE
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
        self.phase = PH_NONE
        if server is None:
            self.backend.counters.req_tot += 1
            self.answer_error(503, self.backend.counters)
            return
        self.dispatch(out, None, server)
        if not self.req_done and self.conn is not None and not self.conn.xprt.out:
            self.front.resume()

    # ----------------------------------------------------------- from the server connection

    def connected(self):                 # the connect() in progress succeeded
        self.t_conn = now = self.worker.now
        self.deadline = now + self.backend.t_server if self.req_done else NEVER

    def request_flushed(self, conn):
        """What waited for the server went: read it (unless held), take more body."""
        conn.xprt.set_events(0 if self.held else EVENT_READ)
        if not self.req_done:
            self.front.resume()

    def on_head(self, data, r, end, kind, whole):
        """The final response head: `retry-on <status>`, counters, then the client's turn."""
        status = r[R_STATUS]
        be = self.backend
        if status in be.retry_status and self.replay is not None and self.may_retry(status):
            # retry-on <status>: drop this answer (and its connection), ask again.
            self.drop_conn()
            self.nreq -= 1
            self.retry(self.replay)
            return None
        self.status = status
        self.t_resp = self.worker.now
        server = self.server
        if server.observe is not None:
            # layer7 counts 5xx (but 501 and 505, the client's doing) as errors.
            self.worker.observed(server, server.observe == "layer4" or status < 500
                                 or status == 501 or status == 505)
        cls = STATUS_CLASS[status]
        self.fc.hrsp[cls] += 1
        server.counters.hrsp[cls] += 1
        self.resp_started = True
        return self.front.response_head(data, r, end, kind, whole)

    def upgrade(self, conn, data, end):
        """101 Switching Protocols: the client side hands both connections to a
        tunnel, or (no Upgrade asked for, a WebSocket answer without a valid
        Sec-WebSocket-Accept) it is a protocol error: 502, as HAProxy answers."""
        server = self.server
        if not self.req_done or not self.front.upgraded(data, end, conn.xprt, server,
                                                        self.backend.t_tunnel):
            self.bad_response()
            return
        self.fc.hrsp[1] += 1
        server.counters.hrsp[1] += 1
        self.status = 101
        self.resp_started = True
        conn.stream = None       # the tunnel owns its transport and scur now
        self.conn = None
        self.deadline = NEVER
        if self.idle is not None:
            self.take_own_idle().close()

    def finish(self, conn):
        """The response ended: free or pool the server connection, then the client
        side goes on (next request) or closes."""
        self.conn = None
        self.held = False
        self.deadline = NEVER
        server = self.server
        server.counters.scur -= 1
        conn.stream = None
        if not (conn.server_ka and self.keep_server and self.req_done) or conn.xprt.out:
            # (An answer before the whole request body arrived ends the connection:
            # the rest of the body must never be read as a next request.)
            conn.close()
        elif not (conn.private or self.backend.reuse == REUSE_NEVER):
            # Into the pool (which closes it if worn out or not wanted), also for this
            # stream's next request: a silent client must not pin a server
            # connection (HAProxy does the same).
            server.pool.release(conn, self.worker.now, server.counters.scur + 1,
                                server.usable and self.worker.running)
        elif not worn_out(conn) and self.front.continues():
            # Private: kept for this client's next request only.
            self.idle = conn
            conn.keeper = self
            server.kept.add(conn)
            server.pool.park(conn, self.worker.now)
        else:
            conn.close()
        self.front.stream_done()

    def server_failed(self, conn, connect_error):
        """The server connection broke: retry, replay, or answer 502/503."""
        if conn.rbuf and not self.resp_started:
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
        if self.resp_started:
            # Part of a response already went out: nothing clean is possible.
            sc.srv_abrt += 1
            self.front.abort()
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

    def bad_response(self):
        """Unparsable or invalid response head: 502 (or a retry under `retry-on
        junk-response`), and never pool that connection."""
        server = self.server
        server.counters.eresp += 1
        if server.observe == "layer7":
            self.worker.observed(server, False)
        self.drop_conn()
        if self.replay is not None and not self.resp_started and self.may_retry("junk-response"):
            self.nreq -= 1
            self.retry(self.replay)
            return
        self.answer_error(502, self.server.counters)

    def bad_body(self, head_pending):
        """Bad body framing: a clean 502 while the head is still in hand, else a cut."""
        if head_pending:
            cls = STATUS_CLASS[self.status]
            self.fc.hrsp[cls] -= 1
            self.server.counters.hrsp[cls] -= 1
            self.resp_started = False
            self.bad_response()
            return
        self.server.counters.eresp += 1
        self.front.abort()

    def idle_lost(self, conn, by_server):
        """The private connection kept between requests closes (server closed, or DOWN)."""
        self.take_own_idle()
        if by_server:
            conn.server.counters.idle_srv_closed += 1
        conn.close()

    # ----------------------------------------------------------- retries

    def may_retry(self, event):          # retries left, and retry-on covers `event`?
        return self.retries > 0 and event in self.backend.retry_on

    def retry(self, out):
        """Again on a new connection: the same server, or another (redispatch)."""
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
        conn = self.worker.connect(server, server.sni_of(self.txn))
        if conn is None:
            self.connect_failed(server, out)
            return
        self.send(conn, server, out)

    # ----------------------------------------------------------- timeouts and ends

    def answer_error(self, status, counters):
        """This stream's own answer (`counters`: the server's or the backend's, None
        when no backend was chosen)."""
        self.phase = PH_NONE
        self.deadline = NEVER
        self.resp_started = True
        self.status = status
        cls = STATUS_CLASS[status]
        self.fc.hrsp[cls] += 1
        if counters is not None:            # None: no backend was chosen
            counters.hrsp[cls] += 1
        self.drop_conn()
        # errorfile: the backend's for this status, else the frontend's (HAProxy's order)
        be = self.backend
        page = be.errorfiles.get(status) if be is not None else None
        self.front.answer(status, page if page is not None
                          else self.frontend.errorfiles.get(status))

    def on_timeout(self):
        """`deadline` passed: timeout queue, connect or server."""
        self.deadline = NEVER
        if self.phase == PH_QUEUED:
            # timeout queue: the request never reached a server; the queue drops
            # it lazily (serve_queue skips streams no longer queued).
            self.leave_queue()
            self.backend.counters.req_tot += 1
            self.answer_error(503, self.backend.counters)
            return
        conn = self.conn
        if conn is None:
            return
        if self.resp_started:
            self.front.abort()           # the server stopped in the middle of its response
            return
        connecting = conn.xprt.connecting
        self.drop_conn()
        server = self.server
        if server.observe is not None:
            self.worker.observed(server, False)
        if connecting:
            server.counters.econ += 1
        event = "conn-failure" if connecting else "response-timeout"
        if self.replay is not None and self.may_retry(event):
            self.nreq -= 1
            self.retry(self.replay)
            return
        self.answer_error(503 if connecting else 504, server.counters)

    def drop_conn(self):
        """Close the current exchange's server connection, if any (never pooled)."""
        conn = self.conn
        if conn is not None:
            self.conn = None
            self.held = False
            self.server.counters.scur -= 1
            conn.close()

    def take_own_idle(self):
        """Take back the private connection kept between requests."""
        conn = self.idle
        self.idle = None
        conn.keeper = None
        server = conn.server
        server.kept.discard(conn)
        server.pool.unpark(conn)
        return conn

    def uses_server(self, matches):
        """Is the exchange in flight on a server `matches(server)` accepts?"""
        return self.conn is not None and matches(self.server)

    def stop(self):
        """The client connection closes: leave the queue, close the server side."""
        if self.phase == PH_QUEUED:
            self.leave_queue()
        self.deadline = NEVER
        self.drop_conn()
        if self.idle is not None:
            self.take_own_idle().close()


def serve_queue(be):
    """Hand queued requests of backend `be` to servers that have room again;
    return how many left the queue (served, or gone meanwhile)."""
    queue = be.queue
    n = 0
    while queue:
        st = queue[0]
        if st.phase != PH_QUEUED:
            queue.popleft()          # timed out or closed: dropped lazily
            n += 1
            continue
        server = be.lb.pick(None, st.lb_key)
        if server is None and be.lb.saturated:
            break
        queue.popleft()
        n += 1
        st.dequeued(server)
    be.counters.qcur = len(queue)
    return n
