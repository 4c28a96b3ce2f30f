"""The access log in a worker: a logging client endpoint and stream that fill a LogRecord.

A frontend with `log` targets gets a `FrontLog` (its compiled format, its
`LogOutput`, its switches) and its connections are `LoggedH1Front`s, whose
stream is a `LoggedStream`: subclasses that take note where the plain classes
keep nothing (the head complete, the ways to end) and call the plain method.
The rest the plain classes keep themselves, a store each: the clock at the
head's first bytes when it comes in parts (H1Front.t_first), when the request
went to a server, its connection was up, the response head came (Stream.t_sent,
t_conn, t_resp), the bytes written to the client (H1Front.nout); `stamps()`
reads them into the record at the end. The response head is read only where a
`capture response header` or `option logasap` needs it (LoggedStreamHeads). A
frontend without targets keeps the plain classes and pays those few stores.

One line per request, built once when the exchange ends (`LoggedH1Front.end`,
from stream_done, close_gracefully or close, whichever comes first), as HAProxy
2.6 writes it (measured with 2.6.12, tests/fixtures/haproxy_httplog.json): a
connection that closes or times out before a whole request is a `<BADREQ>` line
(`CR`/`cR`, 400/408) unless `option dontlognull`; a keep-alive connection that
closes between requests logs nothing; a frontend with targets and no format
logs HAProxy's `Connect from ...` line at the accept instead.
"""

import os
import time

from _native import R_METHOD_LEN, R_METHOD_OFF, R_TARGET_LEN, R_TARGET_OFF, R_VERSION
from proxy.log import termination
from proxy.log.httplog import LogRecord, _World, capture, compile_httplog, date_log
from proxy.log.output import LogOutput
from workers.h1_front import CLOSED, LINGER, RQ_BODY, RQ_HEAD, H1Front
from workers.stream import PH_QUEUED, Stream

_STATE = termination.state_of
LEVEL_INFO, LEVEL_ERR = 6, 3


class FrontLog:
    """A frontend's logging in one worker, made once at start."""

    def __init__(self, config, plog, g, hostname, on_hold=None):
        self.name = config.name.encode()
        self.output = LogOutput(plog.targets, plog.tag or g.log_tag, g.log_send_hostname,
                                os.getpid(), on_hold=on_hold)
        self.world = _World(hostname, os.getpid())
        self.fmt = compile_httplog(plog.format) if plog.format else None
        self.fmt_sd = compile_httplog(plog.format_sd) if plog.format_sd else None
        self.err_fmt = compile_httplog(plog.error_format) if plog.error_format else None
        self.dontlognull = plog.dontlognull
        self.dontlog_normal = plog.dontlog_normal
        self.separate_errors = plog.log_separate_errors
        self.req_caps = tuple((c.name.lower().encode() if c.name else None, c.length)
                              for c in plog.req_captures) or None
        self.res_caps = tuple((c.name.lower().encode() if c.name else None, c.length)
                              for c in plog.res_captures) or None
        self.no_req_caps = (None,) * len(self.req_caps or ())
        self.no_res_caps = (None,) * len(self.res_caps or ())
        # This frontend's records: what every one of them starts with is the class's.
        self.logasap = plog.logasap
        self.Record = type("Record", (LogRecord,), {
            "fe_name": self.name, "be_name": self.name, "status": -1, "world": self.world,
            "logasap": plog.logasap,
            "req_captures": self.no_req_caps if self.req_caps else None,
            "res_captures": self.no_res_caps if self.res_caps else None})
        self.uid = compile_httplog(plog.unique_id_format) if plog.unique_id_format else None
        self.uid_header = plog.unique_id_header.encode() if (
            self.uid and plog.unique_id_header) else None
        self.count = 0                  # %lc, %rt: lines this frontend logged in this worker
        # (LoggedStreamHeads: defined below)
        self.stream_class = LoggedStreamHeads if self.res_caps or self.logasap else LoggedStream

    def open(self):
        """Open the targets: the warnings for those not reachable now."""
        return self.output.open()

    @property
    def dropped(self):
        return self.output.dropped

    def emit(self, rec, worker):
        """The line of one finished stream, to the frontend's targets."""
        err = (rec.termination[0] not in "-L" or rec.status >= 500 or rec.redispatched
               or rec.retries > 0)
        if not err and self.dontlog_normal:
            return
        rec.request_counter = rec.log_counter = self.count
        self.count += 1
        rec.actconn = len(worker.sessions)
        try:
            line = self.fmt(rec)
            sd = self.fmt_sd(rec) if self.fmt_sd is not None else b""
        except Exception as exc:     # noqa: BLE001 - a bug in a format: say so, never crash
            worker.log_limited(("log-format", self.name), "log line not built: %r" % (exc,))
            return
        self.output.emit(line, LEVEL_ERR if err and self.separate_errors else LEVEL_INFO,
                         sd=sd)

    def connect_line(self, peer, local):
        """No format: HAProxy's connection line, at the accept."""
        self.output.emit(b"Connect from %s:%d to %s:%d (%s/HTTP)" % (
            peer[0].encode(), peer[1], local[0].encode(), local[1], self.name), LEVEL_INFO)

    def tls_error(self, rec, xprt, worker):
        """HAProxy's line for a connection whose TLS handshake did not complete:
        'ADDR:PORT [DATE] FRONTEND/BIND: REASON', or the frontend's
        error-log-format filled as HAProxy 2.6.12 fills it for such a session
        (no request: status 0, PR, <BADREQ>, the timers not reached -1, %Ta 0;
        measured). option dontlognull hides those that carried nothing."""
        reason, null = xprt.handshake_error()
        if null and self.dontlognull:
            return
        level = LEVEL_ERR if self.separate_errors else LEVEL_INFO
        if self.err_fmt is None:
            self.output.emit(b"%s:%d [%s] %s/%s: %s" % (
                (rec.src or "-").encode(), rec.src_port or 0, date_log(rec.accept_date),
                self.name, xprt.bind_id, reason), level)
            return
        rec.status, rec.termination, rec.t_idle, rec.t_close = 0, "PR", 0, 0
        rec.req_captures = rec.res_captures = None
        rec.xprt = _Embryonic(xprt)
        rec.actconn = len(worker.sessions)
        try:
            line = self.err_fmt(rec)
        except Exception as exc:     # noqa: BLE001 - a bug in a format: say so, never crash
            worker.log_limited(("error-log-format", self.name), "log line not built: %r"
                               % (exc,))
            return
        self.output.emit(line, level)

    def rule_captures(self, rec, caps):
        """The values `http-request|http-response capture` rules put in the slots (each
        cut at its slot's length), over what the header captures found."""
        for side, slots in ((0, self.req_caps), (1, self.res_caps)):
            if slots is None:
                continue
            got = list((rec.res_captures if side else rec.req_captures) or
                       (None,) * len(slots))
            for i, (_, length) in enumerate(slots):
                value = caps.get((side, i))
                if value is not None:
                    got[i] = value[:length]
            if side:
                rec.res_captures = tuple(got)
            else:
                rec.req_captures = tuple(got)

    def captured(self, caps, headers):
        """The values of the `capture ... header` slots (None: absent), first one kept."""
        out = [None] * len(caps)
        for name, value in headers:
            lname = name.lower()
            for i, (want, length) in enumerate(caps):
                if want == lname and out[i] is None:
                    out[i] = capture(value, length)
        return tuple(out)


class _Embryonic:
    """A connection whose TLS handshake failed, as an error-log-format sees it: on
    an ssl bind (%ft is 'fe~'), its TLS session unfinished (the ssl_fc fetches
    find no protocol, cipher or name)."""

    __slots__ = ("tls",)

    def __init__(self, xprt):
        self.tls = xprt.sock


_new = object.__new__


class LoggedH1Front(H1Front):
    """An H1Front whose requests are logged (workers/h1_front.py does the work)."""

    __slots__ = ("flog", "rec", "t0", "cause", "th_wait")
    # (t_first, the clock at a request's first byte when its head came in parts, is
    # H1Front's own: set on that rare path only, -1.0 here after each request.)

    def __init__(self, worker, frontend, sock, peer, transport=None):
        flog = self.flog = frontend.txlog
        self.cause = None
        self.rec = None
        self.new_record(worker, peer, time.time(), worker.now)
        H1Front.__init__(self, worker, frontend, sock, peer, transport)
        self.client_ka = False              # (next_record reads it: set per request)
        # a TLS client's first record takes its handshake's time (%Th) once it is over
        self.th_wait = getattr(self.xprt, "t_done", None) is not None
        if flog.fmt is None:
            self.rec = None                 # no format: one line now, none per request
            try:
                flog.connect_line(peer, self.xprt.sock.getsockname())
            except (OSError, TypeError, IndexError):
                pass

    @property
    def stream_class(self):                 # (read once, by H1Front.__init__)
        return self.flog.stream_class

    def new_record(self, worker, peer, date, mono):
        self.rec = rec = _new(self.flog.Record)     # (no __init__: its class has the rest)
        rec.accept_date = date
        if peer:
            rec.src, rec.src_port = peer
        self.nout = 0
        self.t0 = mono
        self.t_first = -1.0
        self.cause = None

    # ---------------------------------------------------------------- the request

    def first_byte(self, now):
        """Ti: the ms to this request's first byte (the head's, if it came in parts),
        after the handshake (Th)."""
        tf = self.t_first
        if self.th_wait:
            self.handshake()
        rec = self.rec
        ti = int(((tf if tf >= 0.0 else now) - self.t0) * 1000) - rec.t_handshake
        rec.t_idle = ti if ti >= 0 else 0   # (the handshake's end is read after the wakeup)

    def handshake(self):
        """Th, in the connection's first record: the ms from the accept to the end of
        its TLS handshake (HAProxy's; 0 in the later requests' records)."""
        self.th_wait = False
        done = self.xprt.t_done
        if done >= 0.0 and self.rec is not None:
            self.rec.t_handshake = max(0, int((done - self.t0) * 1000))

    def took_head(self, r, data):
        """A whole request head was parsed (before the rules run)."""
        rec = self.rec
        if rec is None:
            return
        worker = self.worker
        now = worker.now
        t0 = self.t0
        tf = self.t_first
        if self.th_wait:
            self.handshake()
        ti = int(((tf if tf >= 0.0 else now) - t0) * 1000) - rec.t_handshake
        rec.t_idle = ti if ti >= 0 else 0   # (the handshake's end is read after the wakeup)
        rec.t_request = int((now - t0) * 1000)
        parser = worker.parser
        r = parser.result_all()             # the offsets (`r` is the hot prefix only)
        off = r[R_METHOD_OFF]
        rec.method = data[off:off + r[R_METHOD_LEN]]
        off = r[R_TARGET_OFF]
        rec.target = data[off:off + r[R_TARGET_LEN]]
        rec.version = b"1.0" if r[R_VERSION] == 10 else b"1.1"
        flog = self.flog
        if flog.req_caps is not None:
            rec.req_captures = flog.captured(flog.req_caps, parser.headers(data))
        if flog.uid is not None:
            rec.unique_id = flog.uid(rec)

    def rule_answer(self, answer, r, data, end):
        self.took_head(r, data)
        status = answer[0]
        if self.rec is not None:
            self.rec.status = status
            self.cause = "tarpit" if len(answer) == 3 else (
                "local_reply" if status < 400 else "denied")
        H1Front.rule_answer(self, answer, r, data, end)

    def reject(self, status, counted=False, bad=None):
        rec = self.rec
        if rec is not None:
            if rec.t_idle < 0 and (status != 408 or self.t_first >= 0.0):
                self.first_byte(self.worker.now)    # (a 408 with no byte read: Ti -1)
            rec.status = status
            if status == 408:
                self.cause = "client_timeout_data" if self.state == RQ_BODY else \
                    "client_timeout_request"
            elif self.cause is None:
                self.cause = "bad_request"
            if self.state == RQ_HEAD:
                rec.method = None           # <BADREQ>: HAProxy logs no part of it
                rec.t_request = -1
        H1Front.reject(self, status, counted, bad)

    # ---------------------------------------------------------------- the ends

    def write_timed_out(self):
        if self.rec is not None:
            self.cause = "client_timeout_data"      # cD
        H1Front.write_timed_out(self)

    def stream_done(self):
        self.end()
        H1Front.stream_done(self)

    def close_gracefully(self):
        self.end()
        H1Front.close_gracefully(self)

    def close(self):
        if self.state != CLOSED:
            self.end()
        H1Front.close(self)

    def upgraded(self, data, end, server_xprt, server, t_tunnel):
        if not H1Front.upgraded(self, data, end, server_xprt, server, t_tunnel):
            return False
        if self.rec is not None:
            self.rec.status = 101
        self.end()                          # logged at the 101 (HAProxy: at the tunnel's end)
        return True

    def log_asap(self, pending):
        """option logasap: the line as the response head is forwarded (HAProxy: its
        end is then the response's first byte, %B what is forwarded so far; the
        exchange still holds its server connection, counted). `pending`: the head
        bytes the stream sends with the first body bytes."""
        rec = self.rec
        self.stamps(rec, self.stream)
        rec.termination = _STATE("normal")
        rec.t_close = rec.t_data
        if pending:
            rec.bytes_out += len(pending)
        self.emit(rec, 0)
        rec.logged = True

    def stamps(self, rec, st):
        """What the stream's own clocks and counters say of the request in hand: the
        server side's timers (the ms from the start to each), its server, retries
        and status, and the bytes written to the client; then they start again."""
        t0 = self.t0
        ts = st.t_sent
        if ts >= 0.0:
            rec.t_queue = int((ts - t0) * 1000)
            rec.server = st.server.name_bytes
            rec.retries = st.backend.retries - st.retries
            tc = st.t_conn
            if tc >= 0.0:
                rec.t_connect = int((tc - t0) * 1000)
            tr = st.t_resp
            if tr >= 0.0:
                rec.t_data = int((tr - t0) * 1000)
                if rec.status < 0:
                    rec.status = st.status
            st.t_sent = st.t_conn = st.t_resp = -1.0
        rec.bytes_out = self.nout

    def emit(self, rec, mine):
        """The connection counts (`mine`: 1 while this exchange holds a server
        connection HAProxy has released by now), the captures, then the line."""
        st = self.stream
        flog = self.flog
        be = st.backend
        if rec.server is not None:
            rec.srv_conn = st.server.counters.scur - mine
        if be is not None and rec.be_name is not flog.name:
            lone = be.lone
            rec.beconn = (lone.counters.scur if lone is not None
                          else sum([s.counters.scur for s in be.servers])) - mine
        rec.feconn = self.fc.scur
        rec.xprt = self.xprt
        txn = st.txn
        if txn is not None and txn.captures is not None:
            if rec.method is not None:
                flog.rule_captures(rec, txn.captures)
            txn.captures = None             # (this request's: not a next one's)
        flog.emit(rec, self.worker)

    def end(self):
        """The exchange in hand is over: its line, then a fresh record for the next."""
        rec = self.rec
        if rec is None:
            return
        worker = self.worker
        if rec.logged:                      # option logasap: written already
            self.next_record(worker.now)
            return
        flog = self.flog
        if self.nreq == 0 and self.xprt.tls is None and hasattr(self.xprt, "handshake_error"):
            self.rec = None                 # a TLS connection that never got past its handshake
            rec.feconn = self.fc.scur
            flog.tls_error(rec, self.xprt, worker)
            return
        cause = self.cause
        st = self.stream
        if self.th_wait:
            self.handshake()
        if rec.t_idle < 0 and self.t_first >= 0.0:
            self.first_byte(worker.now)     # a head begun, never finished
        if rec.t_idle < 0 and rec.method is None and rec.status < 0:
            # Nothing of a request: between two requests, nothing to log; before the
            # first, HAProxy logs the aborted or timed out connection (<BADREQ>),
            # unless dontlognull or http-ignore-probes.
            if self.nreq or self.state == LINGER or self.frontend.ignore_probes:
                return
            cause = cause or "client_abort_request"
        self.stamps(rec, st)
        if cause is None:
            if rec.status < 0 or st.conn is not None \
                    or self.state == RQ_BODY and not st.resp_started:
                cause = "client_abort_" + _phase(rec, st, self.state)
            else:
                cause = "normal"
        if rec.method is None:
            # <BADREQ>: HAProxy's mux answers it, with no captures and no bytes counted
            rec.req_captures = rec.res_captures = None
            rec.bytes_out = 0
            if rec.status < 0:
                rec.status = 400
            if flog.dontlognull and cause in ("client_abort_request",
                                              "client_timeout_request"):
                self.rec = None             # nothing more to log on this connection
                return
        rec.termination = _STATE(cause)
        now = worker.now
        rec.t_close = int((now - self.t0) * 1000)
        # HAProxy counts after releasing the server connection
        self.emit(rec, 1 if st.conn is not None else 0)
        self.next_record(now)

    def next_record(self, now):
        """The next request on this connection counts from now (HAProxy: no handshake);
        a connection that carries no other request keeps no record (its later ends:
        nothing to do)."""
        if self.client_ka and self.state < LINGER:
            self.new_record(self.worker, self.peer, time.time(), now)
        else:
            self.rec = None


def _phase(rec, st, state):
    """Where a stream was when its client left: request, queue, connect, headers, data
    (a request body still coming is HAProxy's data phase)."""
    if rec.t_data >= 0 or state == RQ_BODY:
        return "data"
    if rec.t_connect >= 0:
        return "headers"
    if st.phase == PH_QUEUED:
        return "queue"
    if rec.t_queue >= 0:
        return "connect"
    return "request"


class LoggedStream(Stream):
    """A Stream that notes its server side's times and ends in the front's record."""

    __slots__ = ("why",)

    def __init__(self, worker, front, frontend, peer, local=None):
        Stream.__init__(self, worker, front, frontend, peer, local)
        self.why = None

    def start(self, head, r, data, done):
        front = self.front
        front.took_head(r, data)
        rec = front.rec
        if rec is not None:
            be = self.backend
            rec.be_name = be.name_bytes if be is not None else front.flog.name
            uid = front.flog.uid_header
            if uid is not None and rec.unique_id is not None:
                head = _add_header(head, uid, rec.unique_id)
        Stream.start(self, head, r, data, done)

    def enqueue(self, out):
        Stream.enqueue(self, out)
        rec = self.front.rec
        if rec is not None:
            rec.bck_queue = len(self.backend.queue)     # itself included, as HAProxy's %bq
            rec.srv_queue = 0

    def retry(self, out):
        rec = self.front.rec
        server = self.server
        Stream.retry(self, out)
        if rec is not None and self.server is not server:
            rec.redispatched = True

    # ---------------------------------------------------------------- the ends

    def answer_error(self, status, counters):
        front = self.front
        rec = front.rec
        if rec is not None:
            rec.status = status
            why = self.why
            if status == 504:
                front.cause = "server_timeout_headers"
            elif status == 502:
                front.cause = "bad_response" if why == "bad" else "server_abort_headers"
            elif why == "timeout":
                front.cause = "queue_timeout" if self.phase == PH_QUEUED else \
                    "connect_timeout"
            elif why == "queue":
                front.cause = "queue_timeout"
                if rec.t_queue < 0:             # %Tw: the time it waited, as HAProxy logs it
                    rec.t_queue = int((self.worker.now - front.t0) * 1000)
            else:
                front.cause = "no_server"
            be = self.backend
            if be is None:
                rec.be_name = front.flog.name
            elif getattr(self, "retries", None) is not None:     # (set by start)
                rec.retries = be.retries - self.retries
        Stream.answer_error(self, status, counters)

    def on_timeout(self):
        front = self.front
        if front.rec is not None and self.resp_started and self.conn is not None:
            front.cause = "server_timeout_data"
        self.why = "queue" if self.phase == PH_QUEUED else "timeout"
        try:
            Stream.on_timeout(self)
        finally:
            self.why = None

    def server_failed(self, conn, connect_error):
        front = self.front
        if front.rec is not None and self.resp_started:
            front.cause = "server_abort_data"
        Stream.server_failed(self, conn, connect_error)

    def bad_response(self):
        self.why = "bad"
        try:
            Stream.bad_response(self)
        finally:
            self.why = None

    def bad_body(self, head_pending):
        front = self.front
        if front.rec is not None and not head_pending:
            front.cause = "server_abort_data"
        Stream.bad_body(self, head_pending)


class LoggedStreamHeads(LoggedStream):
    """A LoggedStream that also reads the response head (`capture response header`,
    `option logasap`): for the frontends that have either."""

    __slots__ = ()

    def on_head(self, data, r, end, kind, whole):
        front = self.front
        rec = front.rec
        flog = front.flog
        if rec is not None and flog.res_caps is not None:
            rec.res_captures = flog.captured(flog.res_caps, self.worker.parser.headers(data))
        out = Stream.on_head(self, data, r, end, kind, whole)
        if rec is not None and flog.logasap and self.status and self.resp_started \
                and front.rec is rec and not rec.logged:
            front.log_asap(out)
        return out


def _add_header(head, name, value):
    """`unique-id-header`: the header added at the end of the request head."""
    end = head.find(b"\r\n\r\n")
    if end < 0:
        return head
    return head[:end] + b"\r\n" + name + b": " + value + head[end:]


def front_logs(worker, config):
    """frontend name -> FrontLog, for the frontends that log (the others: absent).
    Their socket targets hold the lines of a loop's turn in the worker's
    `log_held` (the senders holding some), sent when the turn ends."""
    g = config.global_
    hostname = (g.log_send_hostname or g.hostname or "").encode() or \
        worker.world.hostname
    out = {}
    for fe in config.frontends:
        if fe.log.targets:
            flog = out[fe.name] = FrontLog(fe, fe.log, g, hostname,
                                           on_hold=worker.log_held.append)
            for warning in flog.open():
                worker.log("frontend '%s': %s" % (fe.name, warning))
    return out
