"""The worker process: one selectors loop over its listeners, sessions, server connections and master pipe."""

import errno
import os
import signal
import socket
import sys
import time
from selectors import EVENT_READ

from _native import BodyDecoder, Parser
from proxy.rules.txn import World
from workers.balance import slowstart_weight
from workers import runtime_cmds
from workers.channel import Channel
from workers.loop import Selector
from workers.h1_back import H1Back
from workers.runtime import BackendRuntime, FrontendRuntime, make_decider, needs_decider
from workers.stream import serve_queue
from workers.listener import ACCEPT_BATCH, Listener
from workers.txlog import front_logs
from workers.xprt import Transport

DRAIN_BATCHES = 16           # accept batches taken from a queue when a graceful stop begins
TICK = 0.25                 # stats report, timeouts and pool purge run this often
LOG_EVERY = 10.0             # seconds between two log lines about the same resource error
GRACEFUL_LIMIT = 30.0       # a graceful stop ends sessions still open after this (no hard-stop-after)

# Exit statuses the master understands.
EXIT_OK = 0
EXIT_BOOT_FAILED = 4        # reserved: the worker could not start; the master must not fork again


class Worker:
    """Everything one worker process owns, and its loop."""

    # The transport every connection gets, both sides (a test slots another in).
    transport = Transport

    def __init__(self, config, slot, listeners, pipe, addrs, nworkers):
        self.config = config
        self.slot = slot
        self.channel = Channel(pipe)   # to and from the master (workers/channel.py)
        self.sel = Selector()
        self.now = time.monotonic()
        g = config.global_
        # tune.bufsize bounds a head (request or response), tune.http.maxhdr its
        # header count (docs/configuration.md: HAProxy keeps tune.maxrewrite of
        # the buffer free on requests; keepwarm builds rewritten heads anew).
        self.parser = Parser(max_headers=g.max_headers, max_head=g.bufsize, max_line=8192)
        self.sessions = set()
        self.sessions_peak = 0       # the most sessions a tick has seen since the set was made
        share = self.share_of
        self.nworkers = nworkers
        self.backends = {b.name: BackendRuntime(b, addrs, share) for b in config.backends}
        # What the rule engine's fetches read of the worker (nbsrv(BACKEND), proc vars).
        self.world = World(nbsrv=self.usable_servers, hostname=socket.gethostname().encode(),
                           pid=os.getpid(), stats=self.stats_view)
        self.stats_doc = None        # the master's latest report ("report" messages)
        self.errors = []             # refused requests not reported yet (capture_error)
        self.world.admin = lambda msg: self.send_master(dict(msg, t="admin"))
        self.frontends = []
        for fe in config.frontends:
            default = self.backends.get(fe.default_backend)
            stepped = needs_decider(fe, self.backends)
            rt = FrontendRuntime(fe, default, stepped)
            route = fe.routes.compile(self.backends, default) if fe.routes is not None else None
            if stepped:
                rt.router = make_decider(fe, default, route, self.backends)
            self.frontends.append(rt)
        self.log_held = []           # the log senders that hold lines (flush_logs)
        logs = front_logs(self, config)     # the frontends that log: targets opened
        for fe in self.frontends:
            fe.txlog = logs.get(fe.name)
        by_name = {fe.name: fe for fe in self.frontends}
        self.listeners = [Listener(self, sock, by_name[fe_name]) for sock, fe_name in listeners]
        for lst in self.listeners:
            lst.frontend.listeners.append(lst)
        limit = g.maxconn
        fe_limits = [fe.maxconn for fe in config.frontends if fe.maxconn]
        if fe_limits:
            limit = min(limit, sum(fe_limits))
        # Each worker takes an equal share of maxconn (the global one and each
        # frontend's, as of server maxconn: share_of): the kernel spreads connections
        # evenly across SO_REUSEPORT listeners, so shares fill at the same pace.
        self.maxconn = share(limit)
        for fe in self.frontends:
            fe.maxconn = share(fe.config.maxconn)
        self.accepting = False
        self.logged = {}             # log_limited(): key -> when it was last said
        self.queued = 0          # sessions waiting in backend queues
        self.running = True
        self.stopping_at = None
        self.idle_seen = set()       # while stopping: sessions idle at the last tick
        self.next_tick = self.now + TICK
        self.signals = []

    # ----------------------------------------------------------- helpers for sessions

    def usable_servers(self, backend):
        """nbsrv(BACKEND): how many of its servers are usable now (0: no such backend)."""
        be = self.backends.get(backend)
        return sum(1 for s in be.servers if s.usable) if be is not None else 0

    def share_of(self, limit):
        """This worker's share of a limit that HAProxy counts per process (server
        maxconn, maxqueue): workers share no memory and SO_REUSEPORT spreads
        connections evenly, so each takes limit/N, the remainder to the lowest
        slots, and at least 1 so that no worker is shut out of a server."""
        if not limit:
            return 0
        n = self.nworkers
        return max(1, limit // n + (1 if self.slot < limit % n else 0))

    def run_queues(self):
        """Hand queued requests to servers that have room again (after each batch of events)."""
        for be in self.backends.values():
            if be.queue:
                self.queued -= serve_queue(be)

    def new_body_decoder(self):
        return BodyDecoder()

    def connect(self, server, sni=None):
        """Open a non-blocking connection to `server` (sending `sni` as its TLS
        name, for `sni <expression>`); None if it failed at once."""
        try:
            sock = socket.socket(server.family, socket.SOCK_STREAM)
        except OSError as exc:
            self.log_limited(("socket", exc.errno), "cannot open a server connection: %s"
                             % (exc.strerror or exc))
            return None
        sock.setblocking(False)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        err = sock.connect_ex(server.addr)
        if err and err != errno.EINPROGRESS:
            sock.close()
            return None
        server.counters.conn_tot += 1
        conn = H1Back(self, server, sock, err == errno.EINPROGRESS, sni)
        conn.xprt.set_events(EVENT_READ)
        return conn

    def warm_pools(self):
        """pool-warm-conn N: keep N idle connections open to every usable server.

        Opened at start, when a server comes UP, and refilled every tick as they are
        used or purged (so they are also renewed every pool-purge-delay, before a
        server's own idle timeout would close them).
        """
        if not self.running or self.stopping_at is not None:
            return
        for be in self.backends.values():
            for s in be.servers:
                want = s.config.pool_warm_conn
                if want > len(s.pool) and s.usable:
                    s.pool.refill(want, lambda: self.connect(s), self.now)

    def session_closed(self, sess, frontend):
        """A session (client endpoint or tunnel) of `frontend` ended."""
        self.sessions.discard(sess)
        if not self.accepting:
            self.try_accepting()
        elif frontend.paused and self.running:
            self.resume_frontend(frontend)

    def session_replaced(self, old, new):
        """A client connection changed hands (an HTTP/1 endpoint became a tunnel)."""
        self.sessions.discard(old)
        self.sessions.add(new)

    def try_accepting(self):
        """Accept again after a pause (global maxconn, an accept error) if the worker
        runs, is not stopping and is below its share of maxconn."""
        if not self.accepting and self.running and self.stopping_at is None \
                and len(self.sessions) < self.maxconn:
            self.resume_accepting()

    def pause_accepting(self):
        """Stop accepting on every listener (global maxconn, an accept error, a stop)."""
        if self.accepting:
            for lst in self.listeners:
                lst.unwatch()
            self.accepting = False

    def resume_accepting(self):
        if not self.accepting:
            self.accepting = True
            for fe in self.frontends:
                self.resume_frontend(fe)

    def pause_frontend(self, fe):
        """A frontend at its own maxconn stops accepting; the others go on."""
        fe.paused = True
        for lst in fe.listeners:
            lst.unwatch()

    def resume_frontend(self, fe):
        """Accept on `fe`'s listeners again, if it is below its own maxconn (and not
        disabled through the runtime API)."""
        if fe.disabled:
            return
        if fe.counters.scur >= fe.maxconn:
            fe.paused = True
            return
        fe.paused = False
        for lst in fe.listeners:
            lst.watch()

    def accept_failed(self, exc):
        """Out of descriptors or memory: stop accepting until a session closes or the
        next tick (and say so, at most once per kind of error per LOG_EVERY)."""
        self.log_limited(("accept", exc.errno), "accept failed: %s; pausing, trying again "
                         "every %.2fs" % (exc.strerror or exc, TICK))
        self.pause_accepting()

    def log_limited(self, key, message):
        """log(), but a message of the same `key` at most once per LOG_EVERY seconds
        (out of descriptors, every accept and every connect would say it again)."""
        now = self.now
        if now - self.logged.get(key, -LOG_EVERY) >= LOG_EVERY:
            self.logged[key] = now
            self.log(message)

    def log(self, message):
        try:
            sys.stderr.write("keepwarm[worker %d pid %d]: %s\n" % (self.slot, os.getpid(), message))
            sys.stderr.flush()
        except OSError:
            pass

    # ----------------------------------------------------------- master pipe

    def send_master(self, msg):
        if not self.channel.send(msg):
            self.running = False     # the master is gone

    def on_master(self, mask):
        msgs = self.channel.receive()
        if msgs is None:
            # The master died: a worker never outlives it.
            self.running = False
            self.stopping_at = None
            return
        for msg in msgs:
            self.handle_master_message(msg)

    def handle_master_message(self, msg):
        kind = msg.get("t") if isinstance(msg, dict) else None
        if kind == "stop":
            if msg.get("graceful"):
                self.begin_graceful_stop()
            else:
                self.running = False
        elif kind == "server":
            self.set_server_state(msg.get("backend"), msg.get("server"), msg.get("usable"),
                                  msg.get("weight"), bool(msg.get("down")))
        elif kind == "report":
            self.stats_doc = msg.get("doc")
        elif kind in runtime_cmds.KINDS:
            runtime_cmds.apply(self, msg)
        else:
            self.log("ignored unknown message from master: %r" % (msg,))

    def stats_view(self):
        """What the stats services show: the master's latest report (sent about
        every second while a frontend serves them) and the configuration."""
        return self.stats_doc, self.config

    def set_server_state(self, backend, server, usable, weight, down=False):
        be = self.backends.get(backend)
        if be is None:
            return
        for s in be.servers:
            if s.name != server:
                continue
            if weight is not None:
                s.weight = weight
            if usable is not None and bool(usable) != s.usable:
                s.usable = bool(usable)
                if not s.usable:
                    s.up_since = None
                    self.close_idle_to(s)
                    if down and s.config.on_marked_down == "shutdown-sessions":
                        self.shutdown_sessions(lambda srv: srv is s)
                else:
                    if s.config.slowstart > 0:
                        s.up_since = self.now
                        s.weight = slowstart_weight(s.config.weight, s.config.slowstart, 0)
                    if s.config.on_marked_up == "shutdown-backup-sessions" and not s.config.backup:
                        self.shutdown_sessions(lambda srv: srv.backend is be and srv.config.backup)
                    self.warm_pools()
            be.lb.update()

    def shutdown_sessions(self, on_server):
        """on-marked-down shutdown-sessions / on-marked-up shutdown-backup-sessions:
        end at once every session whose exchange is on a matching server."""
        for sess in list(self.sessions):
            sess.on_server_down(on_server)

    def ramp_weights(self, now):
        """slowstart: a server that came UP gets its weight back gradually."""
        for be in self.backends.values():
            changed = False
            for s in be.servers:
                if s.up_since is not None:
                    elapsed = now - s.up_since
                    s.weight = slowstart_weight(s.config.weight, s.config.slowstart, elapsed)
                    if elapsed >= s.config.slowstart:
                        s.up_since = None
                    changed = True
            if changed:
                be.lb.update()

    def observed(self, server, ok):
        """observe layer4|layer7: count consecutive errors on live traffic; at
        error-limit, tell the master, whose health checker applies on-error."""
        if ok:
            server.errors = 0
            return
        server.errors += 1
        if server.errors >= server.config.error_limit:
            server.errors = 0
            self.send_master({"t": "observe", "backend": server.backend.name, "server": server.name})

    def close_idle_to(self, server):
        """A server went DOWN or out of service: close every idle connection to it at once,
        pooled or kept by a session between its requests."""
        server.pool.close_all()
        for conn in list(server.kept):
            conn.drop_kept()

    def snapshot(self):
        """Counters for the master: {"fe": {name: [...]}, "be": {name: {"own": [...], "srv": {name: [...]}}}}."""
        be_snap = {}
        for be in self.backends.values():
            srv = {}
            for s in be.servers:
                # Idle connections: pooled, plus private ones kept by a session
                # between its requests.
                s.counters.idle_conn_cur = len(s.pool) + len(s.kept)
                s.counters.stot = s.counters.req_tot     # streams sent to this server
                srv[s.name] = s.counters.snapshot()
            be_snap[be.name] = {"own": be.counters.snapshot(), "srv": srv}
        snap = {"fe": {fe.name: fe.counters.snapshot() for fe in self.frontends}, "be": be_snap,
                "dropped_logs": sum(fe.txlog.dropped for fe in self.frontends
                                    if fe.txlog is not None)}
        if self.errors:              # requests refused since the last snapshot (show errors)
            snap["errors"], self.errors = self.errors, []
        return snap

    def capture_error(self, fe, data, peer):
        """A request that did not parse, for `show errors` (the last per frontend)."""
        self.errors = [e for e in self.errors if e[0] != fe.name] + [
            (fe.name, time.time(), peer[0] if peer else "", peer[1] if peer else 0,
             bytes(data[:16384]))]

    # ----------------------------------------------------------- stopping

    def begin_graceful_stop(self):
        """Stop accepting, finish the streams in flight, close idle sessions, then exit.

        What already waits in the accept queues is taken first, then this process's
        descriptors of the listening sockets are closed: after a reload the master
        may have dropped a socket too (a bind removed), and a socket nobody accepts
        on would only collect connections to reset. Sockets the new workers use
        stay open in them."""
        if self.stopping_at is not None:
            return
        # From now on every response says `Connection: close` and its connection
        # closes after it, as HAProxy does when stopping: a client told so does not
        # send a next request that a closing connection would lose. That holds for
        # requests to come (those drained below included) and for those whose
        # response has not started yet.
        for fe in self.frontends:
            fe.keepalive = False
        for sess in self.sessions:
            sess.stopping()
        if self.accepting:
            for lst in self.listeners:
                for _ in range(DRAIN_BATCHES):
                    before = len(self.sessions)
                    lst.on_accept(EVENT_READ)
                    if len(self.sessions) - before < ACCEPT_BATCH or not self.accepting:
                        break
        self.pause_accepting()
        for lst in self.listeners:
            lst.sock.close()
        self.listeners = []
        for fe in self.frontends:
            fe.listeners = []
        # hard-stop-after bounds a soft stop; without it keepwarm still bounds it
        # (GRACEFUL_LIMIT) where HAProxy waits for the last stream (docs/service.md).
        self.stopping_at = self.now + (self.config.global_.hard_stop_after or GRACEFUL_LIMIT)
        self.idle_seen = set()
        # Idle sessions are closed from the next ticks on (close_idle_sessions), not
        # here: a busy keep-alive client's next request is on its way this very
        # moment, and a connection closed under it loses it.

    def close_idle_sessions(self):
        """Close sessions idle between two requests, with nothing left to send them,
        that were idle at the previous tick too (so for at least a TICK): a client
        that sends its next request the moment an answer arrives (wrk, a busy
        browser) gets it answered, with Connection: close, instead of a close that
        crosses it (HAProxy closes them at once and loses ~2 per reload under wrk
        -c32; keepwarm lost ~18 when it did the same, 3 with the read below alone).
        Since the stop began every answer closes its connection, so a session idle
        at two ticks in a row has been idle all along.

        Kept: a connection that has not sent its first request yet (it was accepted
        to be served; `timeout http-request` bounds its wait), and the idle ones of a
        frontend with `option idle-close-on-response` (they wait for one more
        request or their keep-alive timeout)."""
        idle = {x for x in self.sessions if x.idle_between_requests()}
        for sess in idle & self.idle_seen:
            sess.close_if_idle()
        self.idle_seen = idle - self.idle_seen

    def on_signal(self, mask):
        try:
            data = self.wakeup_r.recv(64)
        except OSError:
            return
        for signum in data:
            if signum == signal.SIGTERM:
                self.running = False
            elif signum in (signal.SIGUSR1, signal.SIGQUIT):
                self.begin_graceful_stop()

    # ----------------------------------------------------------- loop

    def tick(self, now):
        """Every TICK: timeouts, idle pool purge, stats to the master, and accepting
        again after an accept error (no session may be left to close and resume it;
        while the error lasts, each tick registers the listeners and the failing
        accept() unregisters them: a few syscalls four times a second)."""
        self.next_tick = now + TICK
        self.try_accepting()
        self.expire_sessions(now)
        sessions = self.sessions
        # A set keeps the size of its peak and every scan pays for it: after a
        # crowd has gone (thousands of slow or idle clients), make it small again.
        n = len(sessions)
        if n > self.sessions_peak:
            self.sessions_peak = n
        elif self.sessions_peak > 4 * n + 1024:
            self.sessions = set(sessions)
            self.sessions_peak = n
        for be in self.backends.values():
            for s in be.servers:
                s.pool.tick(now, s.counters.scur)
        self.warm_pools()
        self.ramp_weights(now)
        self.send_master({"t": "stats", "c": self.snapshot()})
        if self.stopping_at is not None:
            self.close_idle_sessions()
            if not self.sessions or now >= self.stopping_at:
                self.running = False

    def expire_sessions(self, now):
        """Each session has two deadlines, its client side's and its stream's (the
        timer protocol of workers/README.md): whichever is due, it handles it."""
        for sess in [s for s in self.sessions if s.deadline <= now or s.stream.deadline <= now]:
            sess.on_timeout(now)

    def setup_signals(self):
        self.wakeup_r, wakeup_w = socket.socketpair()
        self.wakeup_r.setblocking(False)
        wakeup_w.setblocking(False)
        self._wakeup_w = wakeup_w
        signal.set_wakeup_fd(wakeup_w.fileno(), warn_on_full_buffer=False)
        for signum in (signal.SIGTERM, signal.SIGUSR1, signal.SIGQUIT):
            signal.signal(signum, lambda *_: None)
        # Ctrl-C reaches the whole process group; the master decides what happens.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
        signal.signal(signal.SIGUSR2, signal.SIG_IGN)
        signal.signal(signal.SIGPIPE, signal.SIG_IGN)
        self.sel.register(self.wakeup_r, EVENT_READ, self.on_signal)

    def run(self):
        self.channel.sock.setblocking(False)
        self.sel.register(self.channel.sock, EVENT_READ, self.on_master)
        self.setup_signals()
        self.on_master(EVENT_READ)          # server states the master wrote before forking us
        self.warm_pools()
        self.resume_accepting()
        self.send_master({"t": "ready", "pid": os.getpid(), "slot": self.slot})
        dispatch = self.sel.dispatch
        monotonic = time.monotonic
        woke = self.woke
        while self.running:
            timeout = self.next_tick - monotonic()
            dispatch(timeout if timeout > 0 else 0, woke)
            if self.queued:
                self.run_queues()
            now = self.now
            if now >= self.next_tick:
                self.tick(now)
            if self.log_held:
                self.flush_logs()
        self.shutdown()
        return EXIT_OK

    def flush_logs(self):
        """The access-log lines of this turn, one system call per target."""
        held = self.log_held        # (the senders' on_hold appends to this very list)
        for sender in held:
            sender.flush()
        held.clear()

    def woke(self):
        """The loop woke up: the time every deadline set by this batch counts from
        (read before the wait, a deadline could start up to a TICK early)."""
        self.now = time.monotonic()

    def shutdown(self):
        for sess in list(self.sessions):
            sess.close()
        for be in self.backends.values():
            for s in be.servers:
                s.pool.close_all()
        self.pause_accepting()
        self.flush_logs()
        try:
            # What send_master() queued goes first: it may end a frame begun.
            self.channel.send_blocking({"t": "bye", "c": self.snapshot()}, 1.0)
        except OSError:
            pass


def worker_main(config, slot, listeners, pipe, addrs, nworkers):
    """Entry point in the forked child; returns the process exit status."""
    try:
        worker = Worker(config, slot, listeners, pipe, addrs, nworkers)
    except Exception as exc:     # noqa: BLE001 - any failure here is a boot failure
        sys.stderr.write("keepwarm[worker %d]: cannot start: %s\n" % (slot, exc))
        return EXIT_BOOT_FAILED
    try:
        return worker.run()
    except Exception:            # a bug: log it with context, exit non-zero, the master restarts us
        import traceback
        worker.log("internal error, worker exiting:\n" + traceback.format_exc())
        return 70
