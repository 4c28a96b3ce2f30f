"""The master process: owns the listeners, forks and supervises workers, aggregates stats, serves the control socket.

Shaped like gunicorn's arbiter: signal handlers only record the signal and wake
the loop (signal.set_wakeup_fd); the loop then calls plainly named methods.
SIGHUP and SIGUSR2 reload: the configuration is read again and, if it is valid,
a new generation of workers starts on it while the old one finishes its
streams (HAProxy's master-worker reload, nginx's SIGHUP). What a service manager
sees (systemd notify, daemon mode, pidfile, -sf/-x hand-over) and what a worker
drops after fork (chroot, uid/gid, cpu-map) is proxy/service.py's, called at the
master's milestones: bound, ready, reloading, reloaded, stopping, exited.
"""

import os
import resource
import selectors
import signal
import socket
import sys
import time

import _native
from proxy import __version__
from proxy.config import ConfigError, load
from proxy.config.stats_section import serves_stats
from proxy.control_server import ControlError as ControlOpenError, ControlServer
from proxy.health import HealthChecker
from proxy.runtime_actions import RuntimeActions
from proxy.log import events as ev
from proxy.service import (Service, ServiceError, check_privileges, enter_worker,
                           fd_limit_wanted, fit_maxconn)
from proxy.stats import StatsBook
from workers.channel import Channel
from workers.worker import EXIT_BOOT_FAILED, worker_main

LOOP_TICK = 0.25
STOP_GRACE = 0.7             # fast stop: SIGKILL what is still alive after this
GRACEFUL_GRACE = 35.0        # graceful stop: a little longer than the workers' own limit
HEARTBEAT_TIMEOUT = 10.0     # a worker silent this long is stuck: kill it
QUICK_DEATH = 2.0            # a worker dying sooner than this after start counts as a crash loop
MAX_BACKOFF = 5.0
FD_MARGIN = 256             # descriptors beyond 2 per maxconn: listeners, pipes, pools, checks
FORK_BLOCKED = {signal.SIGTERM, signal.SIGINT, signal.SIGQUIT, signal.SIGUSR1, signal.SIGHUP,
                signal.SIGUSR2, signal.SIGCHLD}


# What resolving or binding a configured address can raise: socket errors, and
# UnicodeError/ValueError for names the IDNA codec or the address parser refuse.
ADDRESS_ERRORS = (OSError, UnicodeError, ValueError)


def _reason(exc):
    """An error's text without Python's "[Errno N]" prefix where there is one."""
    return exc.strerror if isinstance(exc, OSError) and exc.strerror else exc


def set_defer_accept(sock, bind):
    """`bind ... defer-accept`: the kernel queues a connection for accept() only once
    its first data (the request) has arrived, or after about a second without any
    (TCP_DEFER_ACCEPT, as HAProxy and nginx's `deferred` set it). Linux only;
    elsewhere the option is ignored, as HAProxy does."""
    opt = getattr(socket, "TCP_DEFER_ACCEPT", None)
    if opt is not None and sock.family != socket.AF_UNIX:
        sock.setsockopt(socket.IPPROTO_TCP, opt, 1 if bind.defer_accept else 0)


def _bind_family(bind):
    if bind.path:
        return socket.AF_UNIX
    return socket.AF_INET6 if ":" in bind.host else socket.AF_INET


def listen_unix(fe, bind, backlog, takeover=False):
    """A listening UNIX socket at `bind.path`: a stale file of a dead instance is
    replaced; one a live instance answers on is an error, unless this instance
    takes over from it (-sf/-st): then it is bound beside and renamed over it, as
    HAProxy does, and the old instance keeps serving what it accepted."""
    path = os.path.abspath(bind.path)
    bind_path = "%s.%d.tmp" % (path, os.getpid()) if takeover else path
    if takeover:
        try:
            os.unlink(bind_path)
        except OSError:
            pass
    elif os.path.exists(path):
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        probe.settimeout(0.5)
        try:
            probe.connect(path)
        except OSError:
            try:
                os.unlink(path)
            except OSError:
                pass
        else:
            raise StartupError("frontend '%s': cannot bind unix@%s: another process "
                               "listens there" % (fe.name, path))
        finally:
            probe.close()
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.bind(bind_path)
        sock.listen(backlog)
        if bind_path != path:
            os.rename(bind_path, path)
    except OSError as exc:
        sock.close()
        raise StartupError("frontend '%s': cannot bind unix@%s: %s"
                           % (fe.name, path, _reason(exc))) from None
    sock.setblocking(False)
    return sock


class StartupError(Exception):
    """The master cannot start (listener, socket path, address); shown in one line."""


class WorkerSlot:
    """One worker position: its listeners live as long as the master, its process may change."""

    def __init__(self, index):
        self.index = index
        self.listeners = []       # (socket, frontend name)
        self.pid = None
        self.channel = None       # the msgpack pipe to its worker (workers/channel.py)
        self.ready = False
        self.started = 0.0
        self.last_seen = 0.0
        self.restarts = 0
        self.backoff = 0.0
        self.respawn_at = 0.0
        self.kill_at = None       # a retired slot's worker: SIGKILL if still alive then
        self.reloads = 0          # reloads its worker has outlived (mworker-max-reloads)


class Master(RuntimeActions):
    def __init__(self, config, socket_path, log=None, config_path=None, service=None):
        config = fit_maxconn(config, FD_MARGIN)
        self.config = config
        self.report_due = 0.0        # share_report(): when the workers get the next one
        self.config_path = config_path   # read again on reload: a path, or a list (-f A -f B)
        self.socket_path = socket_path
        self.nworkers = config.global_.workers or os.cpu_count() or 1
        self.slots = [WorkerSlot(i) for i in range(self.nworkers)]
        self.retiring = []           # slots of older generations, finishing their streams
        self.reloads = 0             # reloads that took effect
        self.restarts_before = 0     # worker restarts of the generations reloads replaced
        self.sel = selectors.DefaultSelector()
        self.book = StatsBook()
        self.signals = []
        self.stopping = None         # None, "fast" or "graceful"
        self.stop_deadline = None
        self.exit_status = 0
        self.started = time.time()
        self.control = None          # the runtime API's sockets (proxy/control_server.py)
        self.unix_inodes = {}        # UNIX binds' paths -> inode: unlink only our own at exit
        self.addrs = {}
        self.health = None
        self.events = None           # the event log's targets (proxy/log/events.py), if any
        self.weights = {}            # (backend, server) -> weight set at run time
        self.log_stream = log or sys.stderr
        # systemd notify, daemon, pidfile, old pids (proxy/service.py); the default does none
        self.service = service or Service(log=self.log)
        self.announce = "start"      # READY=1 owed once the current generation is ready
        self.grace_until = None      # `grace`: a soft stop waits until then, still accepting

    # ------------------------------------------------------------------ setup

    def log(self, message, level=None):
        """One line on stderr; with a syslog ``level`` (proxy/log/events.py), to the
        global log targets too."""
        try:
            self.log_stream.write("keepwarm[master pid %d]: %s\n" % (os.getpid(), message))
            self.log_stream.flush()
        except (OSError, ValueError):
            pass
        if level is not None and self.events:
            self.events.emit(None, (level, message))

    # What the health checker hands the event log (HealthChecker's ``events``).

    def emit(self, proxy, line):
        if self.events:
            self.events.emit(proxy, line)

    def load(self, backend, server):
        """(sessions active, queued) on a server, as the workers last reported them."""
        row = self.book.totals().get(("srv", backend, server), {})
        return row.get("scur", 0), row.get("qcur", 0)

    def open_events(self, config):
        """The event log on `config`'s targets (the previous one closed); its warnings
        for unreachable targets and the configuration's warnings go to it."""
        if self.events is not None:
            self.events.close()
        self.events = ev.EventLog(config)
        for warning in self.events.open():
            self.log(warning)
        for warning in config.warnings:
            self.emit(None, (ev.WARNING, warning))

    def proxies_stopped(self, pids=None):
        """HAProxy's 'Proxy NAME stopped (cumulated conns: ...)' for each proxy, in the
        configuration's order: once every worker has gone (a soft stop), or for the
        old workers `pids` when a reload tells them to stop (as HAProxy's old worker
        logs it, with the sessions it served)."""
        if not self.events:
            return
        if pids is None:
            stot = {key: row.get("stot", 0) for key, row in self.book.totals().items()}
        else:
            stot = self.book.sessions_of(pids)
        conns = {}
        for kind, proxies in (("fe", self.config.frontends), ("be", self.config.backends)):
            for px in proxies:
                entry = conns.setdefault(px.name, [px.line, 0, 0])
                entry[1 if kind == "fe" else 2] = stot.get((kind, px.name), 0)
        for name, (_, fe, be) in sorted(conns.items(), key=lambda kv: kv[1][0]):
            self.emit(name, ev.proxy_stopped(name, fe, be))

    def resolve_servers(self, config=None):
        """{(backend, server): (family, sockaddr)} of `config` (default: the running one)."""
        config = config or self.config
        addrs = {}
        for be in config.backends:
            for srv in be.servers:
                try:
                    infos = socket.getaddrinfo(srv.host, srv.port, type=socket.SOCK_STREAM)
                except ADDRESS_ERRORS as exc:
                    raise StartupError("backend '%s', server '%s': cannot resolve '%s': %s"
                                       % (be.name, srv.name, srv.host, _reason(exc))) from None
                family, _, _, _, sockaddr = infos[0]
                addrs[(be.name, srv.name)] = (family, sockaddr)
        return addrs

    def open_listeners(self, config=None, slots=None, reusable=None):
        """One SO_REUSEPORT socket per bind and per worker slot, kept for the master's life.

        On reload, `reusable` maps a listening address (family, host, port) to the
        sockets the running workers listen on there: the new generation takes those
        very sockets, so what waits in their accept queues is served by the new
        workers. Each is handed out once; when there are more than new slots
        (fewer workers), the extra ones go round the slots, so every listening
        socket keeps a worker accepting on it. Returns the (socket, bind) pairs it
        reused: their options follow the new bind once every bind is open."""
        config = config or self.config
        slots = self.slots if slots is None else slots
        reusable = {} if reusable is None else reusable
        backlog = max(1024, config.global_.maxconn)
        kept = []
        for fe in config.frontends:
            for bind in fe.binds:
                existing = reusable.pop(self.bind_address(fe, bind), [])
                kept += [(sock, bind) for sock in existing]
                if bind.path:
                    # A UNIX socket cannot be bound once per worker (SO_REUSEPORT is
                    # for TCP): one socket, accepted on by every worker.
                    if existing:
                        sock = existing[0]
                    else:
                        sock = listen_unix(fe, bind, backlog, self.service.takeover)
                        path = os.path.abspath(bind.path)
                        self.unix_inodes[path] = os.stat(path).st_ino
                    for slot in slots:
                        slot.listeners.append((sock, fe.name))
                    continue
                for i, slot in enumerate(slots):
                    sock = existing[i] if i < len(existing) else self.listen_on(fe, bind, backlog)
                    slot.listeners.append((sock, fe.name))
                for j in range(len(slots), len(existing)):
                    slots[j % len(slots)].listeners.append((existing[j], fe.name))
        return kept

    def take_listeners_over(self):
        """Open the listeners, on the old instance's very sockets where -x got them
        (nothing waiting in their queues is lost when it stops); close the ones this
        configuration does not bind."""
        inherited = self.service.inherited_listeners()
        try:
            for sock, bind in self.open_listeners(reusable=inherited):
                set_defer_accept(sock, bind)
        finally:
            for socks in inherited.values():
                for sock in socks:
                    sock.close()

    @staticmethod
    def bind_address(fe, bind):
        """(family, host, port) a bind listens on, as its socket's getsockname() says."""
        if bind.path:
            return socket.AF_UNIX, os.path.abspath(bind.path), 0
        family = _bind_family(bind)
        try:
            infos = socket.getaddrinfo(bind.host, bind.port, family, socket.SOCK_STREAM, 0,
                                       socket.AI_PASSIVE)
        except ADDRESS_ERRORS as exc:
            raise StartupError("frontend '%s': cannot resolve bind address %s: %s"
                               % (fe.name, bind.host, exc)) from None
        sockaddr = infos[0][4]
        return family, sockaddr[0], sockaddr[1]

    @staticmethod
    def listen_on(fe, bind, backlog):
        sock = None
        try:
            sock = socket.socket(_bind_family(bind), socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            # Accepted sockets inherit it: no setsockopt per connection.
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            set_defer_accept(sock, bind)
            sock.bind((bind.host, bind.port))
            sock.listen(backlog)
        except ADDRESS_ERRORS as exc:
            if sock is not None:
                sock.close()
            raise StartupError("frontend '%s': cannot bind %s:%d: %s" % (
                fe.name, bind.host, bind.port, _reason(exc))) from None
        sock.setblocking(False)
        return sock

    def open_control(self):
        g = self.config.global_
        self.control = ControlServer(self.sel, self, self.socket_path, g.stats_sockets,
                                     g.stats_timeout, g.stats_maxconn, self.service.takeover)
        try:
            self.control.open()
        except ControlOpenError as exc:
            self.control = None
            raise StartupError(str(exc)) from None

    def init_signals(self):
        self.wakeup_r, self.wakeup_w = socket.socketpair()
        for s in (self.wakeup_r, self.wakeup_w):
            s.setblocking(False)
        signal.set_wakeup_fd(self.wakeup_w.fileno(), warn_on_full_buffer=False)
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT, signal.SIGUSR1,
                       signal.SIGHUP, signal.SIGUSR2, signal.SIGCHLD):
            signal.signal(signum, self.record_signal)
        signal.signal(signal.SIGPIPE, signal.SIG_IGN)
        self.sel.register(self.wakeup_r, selectors.EVENT_READ, self.drain_wakeup)

    def record_signal(self, signum, frame):
        self.signals.append(signum)

    def drain_wakeup(self, mask):
        try:
            while self.wakeup_r.recv(4096):
                pass
        except OSError:
            pass

    # ------------------------------------------------------------------ main loop

    def run(self):
        """Run until stopped; returns the process exit status."""
        for signum in (signal.SIGHUP, signal.SIGUSR2):
            signal.signal(signum, signal.SIG_IGN)    # until init_signals: no reload yet
        self.fit_fd_limit(self.config)
        try:
            problem = check_privileges(self.config.global_)
            if problem:
                raise StartupError(problem)
            self.addrs = self.resolve_servers()
            self.take_listeners_over()
            self.open_control()
            self.service.bound()
        except (StartupError, ServiceError) as exc:
            self.log("cannot start: %s" % exc)
            self.close_sockets()
            self.service.exited()
            return 1
        self.init_signals()
        self.open_events(self.config)
        self.health = HealthChecker(self.sel, self.config, self.addrs, self.server_changed,
                                    self.log, self)
        binds = ", ".join(b.label for fe in self.config.frontends for b in fe.binds)
        self.log("keepwarm %s starting %d worker(s) (parser: %s), listening on %s, control socket %s"
                 % (__version__, self.nworkers, _native.IMPLEMENTATION, binds, self.socket_path))
        for slot in self.slots:
            self.spawn_worker(slot)
        try:
            while True:
                for key, mask in self.sel.select(self.loop_timeout()):
                    key.data(mask)
                self.health.tick(time.monotonic())
                self.handle_signals()
                self.reap_workers()
                if self.grace_until is not None and time.monotonic() >= self.grace_until:
                    self.grace_until = None
                    self.stop(graceful=True)
                if self.stopping:
                    if not any(slot.pid for slot in self.slots + self.retiring):
                        break
                    if time.monotonic() >= self.stop_deadline:
                        self.kill_workers(signal.SIGKILL)
                else:
                    self.manage_workers()
                    self.murder_workers()
                    self.share_report()
                    self.rotate_ticket_keys()
                self.finish_sessions()
                if self.control is not None:
                    self.control.expire()
        finally:
            self.kill_workers(signal.SIGKILL)
            self.reap_workers()
            self.health.close()
            self.close_sockets()
            self.service.exited()
        if self.stopping == "graceful":
            self.proxies_stopped()
        self.log("stopped")
        self.events.close()
        return self.exit_status

    def loop_timeout(self):
        """Wake for the next health check if it is due before the next tick."""
        due = self.health.next_due()
        if due is None:
            return LOOP_TICK
        return min(LOOP_TICK, max(0.0, due - time.monotonic()))

    def server_changed(self, backend, server, state):
        """A server went UP, DOWN, MAINT or DRAIN: every worker learns it at once."""
        self.broadcast({"t": "server", "backend": backend, "server": server,
                        "usable": state["usable"], "weight": None,
                        "down": state["status"].startswith("DOWN")})

    def broadcast(self, msg):
        for slot in self.slots:
            self.send_worker(slot, msg)

    def send_worker(self, slot, msg):
        if slot.channel is None:
            return
        # Messages are small and workers read their pipe every loop turn; a
        # short blocking write keeps framing intact without a queue per worker.
        try:
            slot.channel.send_blocking(msg, 1.0)
        except OSError as exc:
            # A worker that has not read its pipe for a second is stuck, and a
            # partial message would break the framing: replace the worker.
            self.log("cannot reach worker %d (pid %s): %s; killing it" % (slot.index, slot.pid, exc))
            if slot.pid:
                self.signal_worker(slot, signal.SIGKILL)

    def state_messages(self):
        """Messages that tell a new worker which servers are not usable now."""
        msgs = [{"t": "server", "backend": backend, "server": server, "usable": False, "weight": None}
                for (backend, server), state in self.health.states().items() if not state["usable"]]
        msgs += [{"t": "server", "backend": backend, "server": server, "usable": None, "weight": w}
                 for (backend, server), w in self.weights.items()]
        return msgs + self.runtime_messages()

    def handle_signals(self):
        reload = False
        while self.signals:
            signum = self.signals.pop(0)
            if signum in (signal.SIGTERM, signal.SIGINT):
                self.stop(graceful=False)
            elif signum in (signal.SIGQUIT, signal.SIGUSR1):
                self.soft_stop()
            elif signum in (signal.SIGHUP, signal.SIGUSR2):
                reload = True        # several at once make one reload
        if reload:
            self.reload()

    def soft_stop(self):
        """SIGUSR1/SIGQUIT: a graceful stop, after `grace` if the config sets one (the
        workers keep accepting meanwhile, as HAProxy's listeners do)."""
        grace = self.config.global_.grace
        if self.stopping or self.grace_until is not None:
            return
        if grace:
            self.grace_until = time.monotonic() + grace
            self.log("soft stop in %gs (grace); still accepting until then" % grace, ev.WARNING)
            return
        self.stop(graceful=True)

    def soft_stop_limit(self):
        """How long a soft stop may last before what is still alive is killed:
        `hard-stop-after`, else a little longer than the workers' own limit."""
        return self.config.global_.hard_stop_after or GRACEFUL_GRACE

    def stop(self, graceful, status=0):
        if self.stopping == "fast" or (self.stopping and graceful):
            return
        self.stopping = "graceful" if graceful else "fast"
        self.grace_until = None
        if status:
            self.exit_status = status
        self.log("%s stop" % ("graceful" if graceful else "fast"))
        self.service.stopping()
        # The master's copies go now: once the workers have taken what waits in the
        # accept queues and closed theirs, the sockets leave the SO_REUSEPORT group,
        # and a newer instance bound beside this one (-sf) gets every new connection.
        for sock in self.listening_sockets():
            sock.close()
        if graceful:
            self.stop_deadline = time.monotonic() + self.soft_stop_limit()
            self.kill_workers(signal.SIGUSR1)
        else:
            self.stop_deadline = time.monotonic() + STOP_GRACE
            self.kill_workers(signal.SIGTERM)

    # ------------------------------------------------------------------ reload

    def reload(self):
        """Read the configuration again. Valid: start a new generation of workers on it,
        on the same listening sockets where the binds stay, and stop the old one
        gracefully. Invalid (or a bind that cannot be opened): say why and keep
        running as before."""
        if self.stopping:
            return
        if self.config_path is None:
            self.log("reload: no configuration file to read again; nothing changed")
            return
        self.service.reloading()
        try:
            config = load(self.config_path)
        except ConfigError as exc:
            self.reload_failed(str(exc).replace("\n", " "))
            return
        except Exception as exc:     # noqa: BLE001 - a reload must never take the master down
            self.reload_failed("cannot load %s: %s: %s"
                               % (self.config_name(), type(exc).__name__, exc))
            return
        problem = check_privileges(config.global_)
        if problem:
            self.reload_failed(problem)
            return
        config = fit_maxconn(config, FD_MARGIN)
        nworkers = config.global_.workers or os.cpu_count() or 1
        slots = [WorkerSlot(i) for i in range(nworkers)]
        running = self.listening_sockets()
        reusable = {}
        for sock in running:
            reusable.setdefault(self.socket_address(sock), []).append(sock)
        try:
            addrs = self.resolve_servers(config)
            kept = self.open_listeners(config, slots, reusable)
            # Only now that every bind is open: a reload that fails changes nothing.
            for sock, bind in kept:
                set_defer_accept(sock, bind)     # the new file may add or drop it
        except Exception as exc:     # noqa: BLE001 - a reload must never take the master down
            kept = {id(sock) for sock in running}
            for slot in slots:
                for sock, _ in slot.listeners:
                    if id(sock) not in kept:
                        sock.close()
            self.reload_failed(str(exc))
            return
        self.fit_fd_limit(config)
        if (config.global_.stats_socket or self.socket_path) != self.socket_path:
            self.log("reload: a new 'stats socket' needs a restart; the control socket "
                     "stays %s" % self.socket_path)
        for warning in config.warnings:
            self.log("reload: %s" % warning)
        old = self.slots
        self.proxies_stopped([slot.pid for slot in old if slot.pid])   # (the old targets)
        self.open_events(config)
        deadline = time.monotonic() + (config.global_.hard_stop_after or GRACEFUL_GRACE)
        for slot in old:
            slot.kill_at = deadline
            if slot.pid:
                # Finish streams, then exit. Told through its pipe, in order with
                # what the worker has still to read, and by a signal, which a
                # worker whose pipe is full still gets (a second one changes nothing).
                self.send_worker(slot, {"t": "stop", "graceful": True})
                self.signal_worker(slot, signal.SIGUSR1)
        self.retiring = [slot for slot in self.retiring + old if slot.pid]
        self.retire_old_reloads(config.global_.mworker_max_reloads)
        self.restarts_before += sum(slot.restarts for slot in old)
        self.config, self.addrs, self.nworkers, self.slots = config, addrs, nworkers, slots
        # As in HAProxy without a server-state file, run-time changes made through the
        # control socket (weights, maintenance) and health states do not survive a reload.
        self.weights = {}
        self.health.close()
        self.health = HealthChecker(self.sel, config, addrs, self.server_changed, self.log,
                                    self)
        self.release_listeners(running)
        for slot in slots:
            self.spawn_worker(slot)
        self.reloads += 1
        self.announce = "reload"
        self.log("reloaded %s: %d new worker(s); %d old one(s) finish their streams"
                 % (self.config_name(), nworkers, len(self.retiring)), ev.NOTICE)

    def retire_old_reloads(self, limit):
        """`mworker-max-reloads N`: an old worker that has outlived more than N reloads
        is told to stop now (SIGTERM), as HAProxy's master does."""
        for slot in self.retiring:
            slot.reloads += 1
            if limit is not None and slot.reloads > limit and slot.pid:
                self.log("old worker %d (pid %d) outlived %d reload(s) (mworker-max-reloads "
                         "%d); terminating it" % (slot.index, slot.pid, slot.reloads, limit))
                self.signal_worker(slot, signal.SIGTERM)

    def config_name(self):
        path = self.config_path
        return path if isinstance(path, str) else ", ".join(path)

    def reload_failed(self, reason):
        self.log("reload failed, still running the previous configuration: %s" % reason,
                 ev.WARNING)
        self.service.reload_failed(reason)

    def generation_ready(self):
        """Every worker of the current generation said it is ready: READY=1 for the
        start or the reload that made it (once)."""
        announce, self.announce = self.announce, None
        if not self.service.started:
            self.service.ready(self.nworkers)     # the start, even if a reload came first
        elif announce == "reload":
            self.service.reloaded(self.nworkers)

    def fit_fd_limit(self, config):
        """Raise the soft RLIMIT_NOFILE, which the workers inherit, to what maxconn
        needs (HAProxy computes its ulimit-n the same way: a client and a server
        connection per maxconn, plus room for listeners, pools and checks), within the
        hard limit; say so when the hard limit is too low for it."""
        want = fd_limit_wanted(config.global_, FD_MARGIN)
        try:
            soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
            if config.global_.ulimit_n and soft != want:
                # `ulimit-n N`: exactly N, the hard limit raised too when privileged.
                if hard != resource.RLIM_INFINITY and want > hard and os.geteuid() == 0:
                    hard = want
                top = want if hard == resource.RLIM_INFINITY else min(want, hard)
                resource.setrlimit(resource.RLIMIT_NOFILE, (top, hard))
                soft = top
            elif soft != resource.RLIM_INFINITY and soft < want:
                top = want if hard == resource.RLIM_INFINITY else min(want, hard)
                if top > soft:
                    resource.setrlimit(resource.RLIMIT_NOFILE, (top, hard))
                    soft = top
        except (OSError, ValueError) as exc:
            self.log("cannot read or raise the file descriptor limit: %s" % _reason(exc))
            return
        if soft != resource.RLIM_INFINITY and soft < want:
            self.log("%s %d file descriptors, but the limit is %d "
                     "(ulimit -n, hard limit %s): connections past it will be refused; "
                     "raise the limit or lower maxconn"
                     % ("ulimit-n asks for" if config.global_.ulimit_n else
                        "maxconn %d needs about" % config.global_.maxconn, want, soft,
                        "unlimited" if hard == resource.RLIM_INFINITY else hard))

    def listening_sockets(self):
        """Every listening socket the master holds, once (retiring slots hold none: see
        release_listeners; a TCP socket belongs to one slot, a UNIX one to all)."""
        seen = {}
        for slot in self.slots:
            for sock, _ in slot.listeners:
                seen.setdefault(id(sock), sock)
        return list(seen.values())

    @staticmethod
    def socket_address(sock):
        if sock.family == socket.AF_UNIX:
            return sock.family, sock.getsockname(), 0
        host, port = sock.getsockname()[:2]
        return sock.family, host, port

    def release_listeners(self, previous):
        """Close the master's copy of every socket of `previous` the running generation
        does not use (a bind the reload removed). The old workers close their own
        copies when they stop, after taking what waits in the accept queues."""
        keep = {id(sock) for slot in self.slots for sock, _ in slot.listeners}
        for sock in previous:
            if id(sock) not in keep:
                sock.close()
        for slot in self.retiring:
            slot.listeners = []

    # ------------------------------------------------------------------ workers

    def spawn_worker(self, slot):
        try:
            parent_end, child_end = socket.socketpair()
        except OSError as exc:
            self.spawn_failed(slot, exc)
            return
        # Written before the fork, the current server states are the first thing
        # the worker reads, before it accepts anything.
        channel = Channel(parent_end)
        for msg in self.state_messages():
            channel.send_blocking(msg, None)
        sys.stdout.flush()
        sys.stderr.flush()
        # Signals wait while the child still runs the master's handlers: a SIGUSR1
        # sent to a worker just forked (a second reload at once) would otherwise
        # be recorded by the master's handler in the child and lost, and the
        # worker would never stop. The child unblocks once its own are in place.
        saved = signal.pthread_sigmask(signal.SIG_BLOCK, FORK_BLOCKED)
        try:
            pid = os.fork()
        except OSError as exc:
            signal.pthread_sigmask(signal.SIG_SETMASK, saved)
            parent_end.close()
            child_end.close()
            self.spawn_failed(slot, exc)
            return
        if pid == 0:
            status = 70
            try:
                parent_end.close()
                self.after_fork_in_child(slot)
                try:
                    enter_worker(self.config.global_, slot.index + 1, self.log)
                except ServiceError as exc:
                    self.log("worker %d cannot start: %s" % (slot.index, exc))
                    status = EXIT_BOOT_FAILED
                    raise SystemExit
                signal.pthread_sigmask(signal.SIG_SETMASK, saved)
                status = worker_main(self.config, slot.index, slot.listeners, child_end,
                                     self.addrs, self.nworkers)
            except SystemExit:
                pass
            except BaseException:        # noqa: BLE001 - nothing may escape a forked child
                import traceback
                traceback.print_exc()
            finally:
                try:
                    sys.stderr.flush()
                except Exception:        # noqa: BLE001
                    pass
                os._exit(status)
        signal.pthread_sigmask(signal.SIG_SETMASK, saved)
        child_end.close()
        parent_end.setblocking(False)
        slot.pid = pid
        slot.channel = channel
        slot.ready = False
        slot.started = slot.last_seen = time.monotonic()
        self.sel.register(parent_end, selectors.EVENT_READ, lambda mask, s=slot: self.read_worker(s))

    def spawn_failed(self, slot, exc):
        """No pipe or no fork (EMFILE, EAGAIN): try again later, as after a crash."""
        slot.backoff = min(MAX_BACKOFF, max(0.5, slot.backoff * 2))
        slot.respawn_at = time.monotonic() + slot.backoff
        self.log("cannot start worker %d: %s; trying again in %.1fs"
                 % (slot.index, exc.strerror or exc, slot.backoff))

    def after_fork_in_child(self, slot):
        """Drop everything of the master's that the worker must not hold."""
        signal.set_wakeup_fd(-1)
        for signum in (signal.SIGTERM, signal.SIGQUIT, signal.SIGUSR1, signal.SIGCHLD):
            signal.signal(signum, signal.SIG_DFL)
        # Reload is the master's business: a SIGHUP sent to the whole process group
        # must not kill a worker that has not set up its own handlers yet.
        for signum in (signal.SIGHUP, signal.SIGUSR2):
            signal.signal(signum, signal.SIG_IGN)
        if self.health is not None:
            self.health.close_after_fork()
        if self.events is not None:
            self.events.close()
        self.service.close_after_fork()
        self.sel.close()
        self.wakeup_r.close()
        self.wakeup_w.close()
        if self.control is not None:
            self.control.close_after_fork()
        mine = {id(sock) for sock, _ in slot.listeners}
        for other in self.slots + self.retiring:
            if other.channel is not None:
                other.channel.close()
            if other is not slot:
                for sock, _ in other.listeners:
                    if id(sock) not in mine:     # a UNIX bind's socket is every slot's
                        sock.close()

    def read_worker(self, slot):
        msgs = slot.channel.receive(262144)
        if msgs is None:
            self.drop_channel(slot)
            return
        slot.last_seen = time.monotonic()
        for msg in msgs:
            if not isinstance(msg, dict):
                continue
            kind = msg.get("t")
            if kind == "ready":
                slot.ready = True
                if self.announce and slot in self.slots and all(s.ready for s in self.slots):
                    self.generation_ready()
            elif kind in ("stats", "bye"):
                self.book.update(slot.pid, msg.get("c", {}))
            elif kind == "observe":
                # A worker saw error-limit consecutive errors on live traffic.
                self.health.passive_error(str(msg.get("backend")), str(msg.get("server")))
            elif kind == "admin":
                self.page_admin(msg)         # the stats page's `stats admin` form
            elif kind == "sess":
                self.sessions_reply(slot.pid, msg)      # `show sess`

    def drop_channel(self, slot):
        self.sel.unregister(slot.channel.sock)
        slot.channel.close()
        slot.channel = None

    def reap_workers(self):
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            for slot in self.slots + self.retiring:
                if slot.pid == pid:
                    self.worker_exited(slot, status)
                    break

    def worker_exited(self, slot, status):
        if slot.channel is not None:
            # Read what the worker said last (its final counters), then drop the pipe.
            self.read_worker(slot)
            if slot.channel is not None:
                self.drop_channel(slot)
        self.book.retire(slot.pid)
        code = os.waitstatus_to_exitcode(status)
        pid, slot.pid = slot.pid, None
        if slot in self.retiring:
            self.log("old worker %d (pid %d) finished after the reload" % (slot.index, pid))
            self.retiring.remove(slot)
            return
        if self.stopping:
            return
        if code == EXIT_BOOT_FAILED:
            self.log("worker %d (pid %d) could not start; stopping" % (slot.index, pid),
                     ev.ALERT)
            self.stop(graceful=False, status=1)
            return
        how = "killed by signal %d" % -code if code < 0 else "exited with status %d" % code
        lived = time.monotonic() - slot.started
        if lived < QUICK_DEATH:
            slot.backoff = min(MAX_BACKOFF, max(0.1, slot.backoff * 2))
        else:
            slot.backoff = 0.0
        slot.respawn_at = time.monotonic() + slot.backoff
        slot.restarts += 1
        self.log("worker %d (pid %d) %s; restarting%s" % (
            slot.index, pid, how, " in %.1fs" % slot.backoff if slot.backoff else ""),
            ev.ALERT if code < 0 else ev.WARNING)

    def manage_workers(self):
        now = time.monotonic()
        for slot in self.slots:
            if slot.pid is None and now >= slot.respawn_at:
                self.spawn_worker(slot)

    def murder_workers(self):
        now = time.monotonic()
        for slot in self.retiring:
            if slot.pid and now >= slot.kill_at:
                self.log("old worker %d (pid %d) still busy %.0fs after the reload; killing it"
                         % (slot.index, slot.pid, GRACEFUL_GRACE))
                self.signal_worker(slot, signal.SIGKILL)
                slot.kill_at = now + GRACEFUL_GRACE
        for slot in self.slots:
            if slot.pid and now - slot.last_seen > HEARTBEAT_TIMEOUT:
                self.log("worker %d (pid %d) silent for %.0fs; killing it"
                         % (slot.index, slot.pid, now - slot.last_seen), ev.ALERT)
                self.signal_worker(slot, signal.SIGKILL)
                slot.last_seen = now

    def kill_workers(self, signum):
        for slot in self.slots + self.retiring:
            if slot.pid:
                self.signal_worker(slot, signum)

    @staticmethod
    def signal_worker(slot, signum):
        try:
            os.kill(slot.pid, signum)
        except ProcessLookupError:
            pass

    def info(self):
        """The process's information: `show info`, `keepwarm info`, the stats' "info"."""
        return {
            "pid": os.getpid(),
            "version": __version__,
            "parser": _native.IMPLEMENTATION,
            "uptime": round(time.time() - self.started, 3),
            "nbproc": self.nworkers,
            # Counted since the master started, across reloads ("restarts" per worker:
            # since its slot was created).
            "worker_restarts": self.restarts_before + sum(s.restarts for s in self.slots),
            "stats_socket": self.socket_path,
            "workers": [self.worker_info(s) for s in self.slots],
            # Workers of an older configuration, finishing their streams after a reload.
            "old_workers": [self.worker_info(s) for s in self.retiring if s.pid],
            "reloads": self.reloads,
            # `node` (default: the host name, as HAProxy) and `description` of the global section
            "node": self.config.global_.node or socket.gethostname(),
            "description": self.config.global_.description or "",
            # log lines the workers could not hand to a target (full or absent)
            "dropped_logs": self.book.dropped_logs,
        }

    def worker_info(self, slot):
        stot, req = self.book.worker_requests(slot.pid) if slot.pid else (0, 0)
        return {"slot": slot.index, "pid": slot.pid, "restarts": slot.restarts,
                "ready": slot.ready, "stot": stot, "req_tot": req}

    def report(self):
        """The statistics the workers last sent, with the servers' states (proxy/stats.py)."""
        states = self.health.states()
        for key, weight in self.weights.items():
            states[key] = dict(states.get(key, {}), weight=weight)
        doc = self.book.report(self.config, self.info(), states)
        for name, fe in doc["frontends"].items():
            fe["status"] = "OPEN" if self.frontend_enabled(name) else "STOP"
        return doc

    # What the control socket's commands do (proxy/control_commands.py parses them
    # and words the replies): info() and report() above, and these.

    def share_report(self):
        """Every second, while a proxy serves the statistics (the stats page,
        use-service prometheus-exporter), the workers get the report they show."""
        now = time.monotonic()
        if now < self.report_due or not serves_stats(self.config):
            return
        self.report_due = now + 1.0
        self.broadcast({"t": "report", "doc": self.report()})

    def configured_weight(self, backend, server):
        """The weight the configuration gives a server; KeyError if there is no such server."""
        return self.config.backend(backend).server(server).weight

    def set_server_admin(self, backend, server, state):
        """`state` is one of proxy.health.ADMIN_STATES; KeyError if there is no such server."""
        self.health.set_admin(backend, server, state)
        self.log("server %s/%s set to %s by the control socket" % (backend, server, state))

    def set_server_weight(self, backend, server, weight):
        """Every worker, and every worker started later in this generation, uses `weight`."""
        self.weights[(backend, server)] = weight
        self.broadcast({"t": "server", "backend": backend, "server": server, "usable": None,
                        "weight": weight})
        self.log("server %s/%s weight set to %d by the control socket" % (backend, server, weight))

    # ------------------------------------------------------------------ teardown

    def close_sockets(self):
        for slot in self.slots:
            for sock, _ in slot.listeners:
                sock.close()
            slot.listeners = []
        for path, ino in self.unix_inodes.items():
            try:
                if os.stat(path).st_ino == ino:     # not a newer instance's (-sf)
                    os.unlink(path)
            except OSError:
                pass
        self.unix_inodes = {}
        if self.control is not None:
            self.control.close()
            self.control = None
