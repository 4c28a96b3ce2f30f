"""Health checks end to end (issue 5): the real master and workers, scripted backends, the control socket.

What each test proves is in its name. Timing bounds are what rise/fall x inter
predict plus a stated tolerance (TOLERANCE below): this suite runs on a
loaded 2-core machine, so the tolerance covers scheduling delays, the stats
round trip used to observe a state, and one check's own duration.
"""

import os
import signal
import socket
import threading
import time

import pytest

from proxy.control import request_text
from support.backend import Reply
from support.checks import assert_html_error
from support.client import HttpClient, get

pytestmark = pytest.mark.timeout(60)

INTER = 0.2                 # every test's check interval (inter 200ms)
TOLERANCE = 0.6             # seconds allowed beyond what rise/fall x inter predict
POLL = 0.02                 # stats polling period when timing a transition


# --------------------------------------------------------------------------- helpers

class HealthScript:
    """A ScriptedBackend handler: /health answers 200 or 500 as ``healthy`` says; logs every request.

    ``log`` holds (monotonic time, target, status) in arrival order; other paths
    get the backend's default 200 answer.
    """

    def __init__(self, healthy=True):
        self.healthy = healthy
        self.log = []
        self.lock = threading.Lock()

    def __call__(self, backend, req):
        if req.target == "/health":
            status = 200 if self.healthy else 500
            with self.lock:
                self.log.append((time.monotonic(), req.target, status))
            return Reply(status, body=b"ok\n" if status == 200 else b"failing\n")
        with self.lock:
            self.log.append((time.monotonic(), req.target, 200))
        if req.target.startswith("/hold"):
            return Reply(200, body=b"held\n", delay=0.2)   # keeps its connection busy a moment
        return None

    def checks(self, since=0.0, status=None):
        with self.lock:
            return [t for t, target, st in self.log
                    if target == "/health" and t >= since and (status is None or st == status)]

    def client_requests(self, since=0.0, until=None):
        with self.lock:
            return [(t, target) for t, target, _ in self.log
                    if target != "/health" and t >= since and (until is None or t < until)]


class Traffic:
    """Client requests in a background thread, one fresh connection each, paced; every outcome kept."""

    def __init__(self, port, period=0.02):
        self.port = port
        self.period = period
        self.results = []          # (monotonic time, status or None, X-Conn-Id or error text)
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        n = 0
        while not self.stop_event.is_set() and n < 5000:
            n += 1
            try:
                r = get(self.port, "/t%d" % n, timeout=5)
                self.results.append((time.monotonic(), r.status, r.conn_id))
            except (OSError, AssertionError) as exc:
                self.results.append((time.monotonic(), None, repr(exc)))
            self.stop_event.wait(self.period)     # pacing, not synchronisation

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop_event.set()
        self.thread.join(10)
        assert not self.thread.is_alive(), "client thread still running"

    def failures(self):
        return [r for r in self.results if r[1] != 200]


def server_status(stats, name, backend="be"):
    return stats["backends"][backend]["servers"][name]["status"]


def wait_status(kw, name, predicate, timeout, what):
    """Poll stats every POLL s until ``predicate(status)``; return the monotonic time it was seen."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        try:
            last = server_status(kw.stats(), name)
        except AssertionError as exc:      # StatsError: report it if we time out
            last = "stats failed: %s" % exc
        now = time.monotonic()
        if last is not None and predicate(last):
            return now
        if now >= deadline:
            raise AssertionError("server %s: timed out after %.1f s waiting for %s; last status %r\n%s"
                                 % (name, timeout, what, last, kw.stderr_text()[-2000:]))
        time.sleep(POLL)   # polling another process's state; no event to wait on


def closed_port():
    """A 127.0.0.1 port with nothing listening (bound, then released)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def established_to(pid, port):
    """How many ESTABLISHED TCP sockets process ``pid`` holds to remote port ``port`` on 127.0.0.1."""
    inodes = set()
    try:
        for fd in os.listdir("/proc/%d/fd" % pid):
            try:
                link = os.readlink("/proc/%d/fd/%s" % (pid, fd))
            except OSError:
                continue
            if link.startswith("socket:["):
                inodes.add(link[8:-1])
    except OSError:
        return 0
    count = 0
    for table in ("tcp", "tcp6"):
        try:
            with open("/proc/%d/net/%s" % (pid, table)) as f:
                lines = f.readlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            remote, state, inode = fields[2], fields[3], fields[9]
            if state == "01" and inode in inodes and int(remote.rsplit(":", 1)[1], 16) == port:
                count += 1
    return count


def fall_bound(fall):
    """Seconds until ``fall`` failed checks mark a fully UP server DOWN: fall x inter, plus one inter
    for the check under way when the server started failing."""
    return (fall + 1) * INTER


HTTPCHK = ["option httpchk GET /health"]


# --------------------------------------------------------------------------- 1. flip

def test_flipping_health_takes_server_out_and_back_within_rise_fall_times_inter_without_client_errors(
        backend_factory, proxy_factory):
    rise, fall = 2, 3
    script = HealthScript()
    s1 = backend_factory("s1", script)
    s2 = backend_factory("s2")
    kw = proxy_factory([s1, s2], nbproc=2, backend_lines=HTTPCHK,
                       server_opts="check inter 200ms rise %d fall %d" % (rise, fall))
    wait_status(kw, "s1", lambda s: s == "UP", 5, "s1 UP")
    wait_status(kw, "s2", lambda s: s == "UP", 5, "s2 UP")

    with Traffic(kw.port) as traffic:
        # s1 takes its share before it fails.
        s1.wait_for(lambda b: len(script.client_requests()) >= 3, 5, "client traffic on s1")

        t_fail = time.monotonic()
        script.healthy = False
        t_down = wait_status(kw, "s1", lambda s: s.startswith("DOWN"), fall * INTER + TOLERANCE + 2,
                             "s1 DOWN")
        failed_before_down = len(script.checks(t_fail, 500))
        # Out of rotation: no client request reaches s1 while it is DOWN.
        s2_before = s2.request_count
        s2.wait_for(lambda b: b.request_count >= s2_before + 10, 5, "10 requests served by s2")

        t_heal = time.monotonic()
        script.healthy = True
        t_up = wait_status(kw, "s1", lambda s: s == "UP", rise * INTER + TOLERANCE + 2, "s1 UP")
        passed_before_up = len(script.checks(t_heal, 200))
        during_down = script.client_requests(t_down, t_heal)
        # Back in rotation: client requests reach s1 again.
        s1.wait_for(lambda b: len(script.client_requests(t_up)) >= 3, 5, "client traffic on s1 again")

    took_down, took_up = t_down - t_fail, t_up - t_heal
    print("DOWN after %.3f s (fall %d x inter %.1f s), UP after %.3f s (rise %d x inter); "
          "%d client requests" % (took_down, fall, INTER, took_up, rise, len(traffic.results)))
    assert failed_before_down >= fall, "DOWN after %d failed checks, fall is %d" % (
        failed_before_down, fall)
    assert took_down <= fall * INTER + TOLERANCE, "DOWN took %.3f s" % took_down
    assert passed_before_up >= rise, "UP after %d passed checks, rise is %d" % (passed_before_up, rise)
    assert took_up <= rise * INTER + TOLERANCE, "UP took %.3f s" % took_up
    assert during_down == [], "client requests reached s1 while DOWN: %r" % during_down[:10]
    assert traffic.failures() == [], "clients saw errors: %r" % traffic.failures()[:10]


# --------------------------------------------------------------------------- 2. one check per interval

def test_one_check_per_interval_reaches_each_server_whatever_the_worker_count(backend_factory,
                                                                              proxy_factory):
    scripts = {name: HealthScript() for name in ("s1", "s2")}
    servers = [backend_factory(name, scripts[name]) for name in ("s1", "s2")]
    kw = proxy_factory(servers, nbproc=None, workers=4, global_lines=["nbthread 4"],
                       backend_lines=HTTPCHK, server_opts="check inter 200ms")
    assert len(kw.worker_pids()) == 4
    window = 2.0
    t0 = time.monotonic()
    for name, b in zip(scripts, servers):
        b.wait_for(lambda _b, s=scripts[name]: bool(s.checks(t0 + window)), window + 3,
                   "a check after the %.0f s window" % window)
    expected = window / INTER
    for name, script in scripts.items():
        times = script.checks(t0)
        times = [t for t in times if t < t0 + window]
        gaps = [b - a for a, b in zip(times, times[1:])]
        print("%s: %d checks in %.1f s (inter %.1f s, 4 workers); smallest gap %.3f s"
              % (name, len(times), window, INTER, min(gaps) if gaps else -1))
        # The next check starts one inter after the previous one ended: at most
        # window/inter (+1 for the edge), never one per worker.
        assert len(times) <= expected + 1, "%s got %d checks in %.1f s" % (name, len(times), window)
        assert len(times) >= expected / 2, "%s got only %d checks in %.1f s" % (name, len(times),
                                                                              window)
        assert min(gaps) >= 0.75 * INTER, "%s: two checks %.3f s apart" % (name, min(gaps))


# --------------------------------------------------------------------------- 3. no usable server

def test_no_usable_server_answers_503_at_once_not_after_timeout_connect(backend_factory,
                                                                        proxy_factory):
    # s1: nothing listens. s2 listens, but its check goes to a closed port, so
    # it is DOWN too; it must then see no connection at all.
    s2 = backend_factory("s2")
    kw = proxy_factory([("s1", closed_port()), s2], nbproc=2,
                       timeouts=("connect 3s", "client 5s", "server 5s"),
                       server_opts={"s1": "check inter 200ms",
                                    "s2": "check inter 200ms port %d" % closed_port()})
    wait_status(kw, "s1", lambda s: s == "DOWN", 5, "s1 DOWN")
    wait_status(kw, "s2", lambda s: s == "DOWN", 5, "s2 DOWN")
    for i in range(4):
        t0 = time.monotonic()
        r = get(kw.port, "/nobody%d" % i, timeout=5)
        took = time.monotonic() - t0
        assert_html_error(r, 503)
        assert took < 0.5, "503 took %.3f s (timeout connect is 3 s)" % took
    assert s2.conn_count == 0, "a DOWN server was connected to"


# --------------------------------------------------------------------------- 4. admin

def test_disable_server_on_control_socket_stops_its_traffic_and_enable_brings_it_back(
        backend_factory, proxy_factory):
    s1, s2 = backend_factory("s1"), backend_factory("s2")
    kw = proxy_factory([s1, s2], nbproc=2, server_opts="check inter 200ms")
    wait_status(kw, "s1", lambda s: s == "UP", 5, "s1 UP")
    for i in range(4):
        assert get(kw.port, "/warm%d" % i).status == 200
    assert s1.request_count >= 1

    assert request_text(kw.sock, "disable server be/s1").strip() == ""
    assert server_status(kw.stats(), "s1") == "MAINT"
    before = s1.request_count
    served = [get(kw.port, "/off%d" % i) for i in range(20)]
    assert [r.status for r in served] == [200] * 20
    assert all(r.conn_id.startswith("s2-") for r in served), [r.conn_id for r in served]
    assert s1.request_count == before, "requests reached s1 in maintenance"

    assert request_text(kw.sock, "enable server be/s1").strip() == ""
    wait_status(kw, "s1", lambda s: s == "UP", 3, "s1 UP after enable")
    served = [get(kw.port, "/on%d" % i) for i in range(20)]
    assert [r.status for r in served] == [200] * 20
    back = sum(1 for r in served if r.conn_id.startswith("s1-"))
    assert back >= 5, "only %d of 20 requests reached s1 after enable" % back


def test_set_server_state_maint_and_ready_on_control_socket_match_disable_and_enable(
        backend_factory, proxy_factory):
    s1, s2 = backend_factory("s1"), backend_factory("s2")
    kw = proxy_factory([s1, s2], nbproc=1, server_opts="check inter 200ms")
    wait_status(kw, "s1", lambda s: s == "UP", 5, "s1 UP")
    assert request_text(kw.sock, "set server be/s1 state maint").strip() == ""
    assert server_status(kw.stats(), "s1") == "MAINT"
    before = s1.request_count
    assert all(get(kw.port, "/m%d" % i).conn_id.startswith("s2-") for i in range(6))
    assert s1.request_count == before
    assert request_text(kw.sock, "set server be/s1 state ready").strip() == ""
    wait_status(kw, "s1", lambda s: s == "UP", 3, "s1 UP after ready")
    ids = [get(kw.port, "/r%d" % i).conn_id for i in range(6)]
    assert sum(1 for c in ids if c.startswith("s1-")) == 3, ids   # one worker: strict alternation


# --------------------------------------------------------------------------- 5. restarted worker

def test_restarted_worker_sends_nothing_to_a_server_that_is_down(backend_factory, proxy_factory):
    # s1 serves, but its layer-4 check goes to a closed port: DOWN from the
    # first check on. Were a worker to start without the states, round-robin
    # would send it every other request, and s1 would count them.
    s1, s2 = backend_factory("s1"), backend_factory("s2")
    kw = proxy_factory([s1, s2], nbproc=1,
                       server_opts={"s1": "check inter 200ms port %d" % closed_port(),
                                    "s2": "check inter 200ms"})
    wait_status(kw, "s1", lambda s: s == "DOWN", 5, "s1 DOWN")
    old = kw.worker_pids()
    os.kill(old[0], signal.SIGKILL)
    kw.wait_stats(lambda s: s["info"]["workers"][0]["pid"] not in old
                  and s["info"]["workers"][0]["ready"], timeout=8, what="replacement worker ready")
    served = [get(kw.port, "/after-restart%d" % i) for i in range(10)]
    assert [r.status for r in served] == [200] * 10
    assert all(r.conn_id.startswith("s2-") for r in served), [r.conn_id for r in served]
    assert s1.conn_count == 0, "the DOWN server got %d connection(s)" % s1.conn_count


# --------------------------------------------------------------------------- 6. idle pools on DOWN

def test_idle_pooled_connections_are_closed_in_every_worker_when_server_goes_down(
        backend_factory, proxy_factory):
    script = HealthScript()
    s1 = backend_factory("s1", script)
    s2 = backend_factory("s2")
    kw = proxy_factory([s1, s2], nbproc=2, backend_lines=HTTPCHK,
                       server_opts="check inter 200ms fall 1 pool-purge-delay 30s")
    wait_status(kw, "s1", lambda s: s == "UP", 5, "s1 UP")
    workers = kw.worker_pids()
    # Fresh client connections land on either worker (SO_REUSEPORT); go on
    # until each worker holds a pooled connection to s1.
    for i in range(60):
        assert get(kw.port, "/fill%d" % i).status == 200
        if i >= 3 and all(established_to(pid, s1.port) >= 1 for pid in workers):
            break
    pooled = {pid: established_to(pid, s1.port) for pid in workers}
    assert all(pooled.values()), "a worker holds no connection to s1: %r" % pooled
    kw.wait_stats(lambda s: s["backends"]["be"]["servers"]["s1"]["idle_conn_cur"] >= 2,
                  what="s1 idle connections in stats")

    def data_conns(b):
        ids = {r.conn_id for r in b.requests if r.target != "/health"}
        return [c for c in b.open_connections() if c.conn_id in ids]

    assert len(data_conns(s1)) >= 2
    t_fail = time.monotonic()
    script.healthy = False
    s1.wait_for(lambda b: not data_conns(b), fall_bound(1) + TOLERANCE,
                "s1's pooled connections closed")
    failed = script.checks(t_fail, 500)
    assert failed, "s1 lost its connections before any check failed"
    data_ids = {r.conn_id for r in list(s1.requests) if r.target != "/health"}
    closed = [c.closed_at for c in list(s1.connections) if c.conn_id in data_ids]
    after = max(closed) - failed[0]
    print("pooled connections to s1 closed %.3f s after the failing check (%r per worker before)"
          % (after, pooled))
    assert after < 0.3, "closing the idle pool took %.3f s after DOWN" % after
    assert all(established_to(pid, s1.port) == 0 for pid in workers)
    assert server_status(kw.stats(), "s1") == "DOWN"
    kw.wait_stats(lambda s: s["backends"]["be"]["servers"]["s1"]["idle_conn_cur"] == 0,
                  timeout=2, what="s1 idle_conn_cur 0")


# --------------------------------------------------------------------------- in flight

class SlowScript(HealthScript):
    """HealthScript whose /slow answers after ``delay`` seconds."""

    def __init__(self, delay):
        super().__init__()
        self.delay = delay
        self.slow_seen = threading.Event()

    def __call__(self, backend, req):
        reply = super().__call__(backend, req)
        if req.target == "/slow":
            self.slow_seen.set()
            return Reply(200, body=b"slow\n", delay=self.delay)
        return reply


def test_request_in_flight_on_a_server_marked_down_finishes_and_the_next_gets_503(backend_factory,
                                                                                   proxy_factory):
    script = SlowScript(delay=1.5)
    s1 = backend_factory("s1", script)
    kw = proxy_factory([s1], nbproc=1, backend_lines=HTTPCHK,
                       server_opts="check inter 200ms fall 1")
    wait_status(kw, "s1", lambda s: s == "UP", 5, "s1 UP")
    with HttpClient(kw.port, timeout=5) as c:
        c.send_request("GET", "/slow")
        assert script.slow_seen.wait(5), "/slow did not reach s1"
        script.healthy = False
        wait_status(kw, "s1", lambda s: s == "DOWN", 2 * INTER + TOLERANCE, "s1 DOWN")
        r = c.read_response()
    assert r.status == 200 and r.body == b"slow\n", (r.status, r.body)
    assert_html_error(get(kw.port, "/after"), 503)


def test_drain_state_sends_new_requests_elsewhere_and_lets_the_one_in_flight_finish(
        backend_factory, proxy_factory):
    script = SlowScript(delay=1.0)
    s1 = backend_factory("s1", script)
    s2 = backend_factory("s2")
    kw = proxy_factory([s1, s2], nbproc=1, server_opts="check inter 200ms")
    wait_status(kw, "s1", lambda s: s == "UP", 5, "s1 UP")
    with HttpClient(kw.port, timeout=5) as c:
        # One worker, round-robin: of two requests one reaches s1.
        for i in range(2):
            c.send_request("GET", "/slow")
            if script.slow_seen.wait(1.0 if i == 0 else 5):
                break
            c.read_response()
        assert script.slow_seen.is_set(), "/slow did not reach s1"
        assert request_text(kw.sock, "set server be/s1 state drain").strip() == ""
        assert server_status(kw.stats(), "s1") == "DRAIN"
        before = len(script.client_requests())
        ids = [get(kw.port, "/d%d" % i).conn_id for i in range(6)]
        r = c.read_response()
    assert r.status == 200 and r.body == b"slow\n"
    assert all(i.startswith("s2-") for i in ids), ids
    assert len(script.client_requests()) == before, "a draining server got a new request"


def test_server_connections_kept_by_idle_keepalive_clients_are_closed_when_server_goes_down(
        backend_factory, proxy_factory):
    # Three keep-alive clients busy at once leave three idle server connections
    # when they go silent (in the pool, where a silent client pins none, as in
    # HAProxy; private ones stay with their session). When the server goes DOWN
    # they must be closed, not left open until the clients speak again.
    script = HealthScript()
    s1 = backend_factory("s1", script)
    kw = proxy_factory([s1], nbproc=1, backend_lines=HTTPCHK,
                       server_opts="check inter 200ms fall 1 pool-purge-delay 30s")
    wait_status(kw, "s1", lambda s: s == "UP", 5, "s1 UP")
    clients = [HttpClient(kw.port, timeout=5) for _ in range(3)]
    try:
        for i, c in enumerate(clients):
            c.send_request("GET", "/hold%d" % i)          # keep-alive, stays open
        assert [c.read_response().status for c in clients] == [200] * 3
        data_ids = {r.conn_id for r in list(s1.requests) if r.target != "/health"}
        assert len(data_ids) == 3
        t_fail = time.monotonic()
        script.healthy = False
        wait_status(kw, "s1", lambda s: s == "DOWN", 2 * INTER + TOLERANCE, "s1 DOWN")
        try:
            s1.wait_for(lambda b: not [c for c in b.open_connections() if c.conn_id in data_ids],
                        2 * INTER + TOLERANCE, "s1's idle connections closed")
        except AssertionError:
            still = [c.conn_id for c in s1.open_connections() if c.conn_id in data_ids]
            st = kw.stats()["backends"]["be"]["servers"]["s1"]
            raise AssertionError(
                "s1 DOWN since %.2f s, yet %d of its 3 idle connections are still open (conns %s); "
                "stats say idle_conn_cur=%d, status=%s"
                % (time.monotonic() - t_fail, len(still), still, st["idle_conn_cur"],
                   st["status"])) from None
    finally:
        for c in clients:
            c.close()
