"""Health checks run by the master (proxy/health.py): rise/fall, intervals, HTTP and layer-4 probes.

A small selectors loop in the test drives HealthChecker.tick/select the way the
master does; scripted backends on 127.0.0.1 play the health endpoints.
"""

import os
import selectors
import socket
import threading
import time

import pytest

from proxy.config import parse
from proxy.health import HealthChecker
from support.backend import Reply

pytestmark = pytest.mark.timeout(30)

HEADER = """defaults
    mode http
    timeout connect 1s
    timeout client 5s
    timeout server 5s
"""


def client_sockets(server_ports):
    """Inodes of this process's TCP client sockets: not listening, local port not a server's.

    The scripted backends run in this process too; their sockets have a server
    port as local port, so what is left are the checker's (and other clients').
    """
    found = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            link = os.readlink("/proc/self/fd/" + fd)
            if not link.startswith("socket:["):
                continue
            s = socket.socket(fileno=os.dup(int(fd)))
        except OSError:
            continue
        with s:
            if s.family not in (socket.AF_INET, socket.AF_INET6) or s.type != socket.SOCK_STREAM:
                continue
            if s.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN):
                continue
            if s.getsockname()[1] not in server_ports:
                found.add(link)
    return found


def closed_port():
    """A 127.0.0.1 port with nothing listening (bound, then released)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Flip:
    """A health endpoint's answer, changed by the test; counts what it served."""

    def __init__(self, status=200):
        self.status = status
        self.lock = threading.Lock()
        self.served = []            # (monotonic time, status)

    def set(self, status):
        with self.lock:
            self.status = status

    def reply(self, reply_cls, **kw):
        with self.lock:
            status = self.status
            self.served.append((time.monotonic(), status))
        return reply_cls(status, **kw)

    def count(self, status):
        with self.lock:
            return sum(1 for _, s in self.served if s == status)


class Harness:
    """Config text -> a HealthChecker on its own selector, with recorded changes and logs."""

    def __init__(self, config_text, header=HEADER):
        self.config = parse(header + config_text)
        self.addrs = {}
        for be in self.config.backends:
            for srv in be.servers:
                family, _, _, _, sockaddr = socket.getaddrinfo(
                    srv.host, srv.port, type=socket.SOCK_STREAM)[0]
                self.addrs[(be.name, srv.name)] = (family, sockaddr)
        self.sel = selectors.DefaultSelector()
        self.changes = []           # (monotonic time, backend, server, state)
        self.logs = []
        self.seen = {}              # (be, srv) -> statuses in the order they were observed
        self.checker = HealthChecker(self.sel, self.config, self.addrs, self.on_change,
                                     self.logs.append)

    def on_change(self, backend, server, state):
        self.changes.append((time.monotonic(), backend, server, state))

    def state(self, server, backend="be"):
        return self.checker.states()[(backend, server)]

    def observe(self):
        for key, st in self.checker.states().items():
            seen = self.seen.setdefault(key, [])
            if not seen or seen[-1] != st["status"]:
                seen.append(st["status"])

    def turn(self, max_wait=0.02):
        """One loop turn: wait for events (bounded), dispatch them, tick."""
        now = time.monotonic()
        due = self.checker.next_due()
        wait = max_wait if due is None else max(0.0, min(due - now, max_wait))
        for key, mask in self.sel.select(wait):
            key.data(mask)
        self.checker.tick(time.monotonic())
        self.observe()

    def run_until(self, predicate, timeout, what="condition"):
        """Turn the loop until ``predicate()``; return the monotonic time it became true."""
        deadline = time.monotonic() + timeout
        self.observe()
        while not predicate():
            if time.monotonic() >= deadline:
                raise AssertionError("timed out after %.1fs waiting for %s; states=%r logs=%r"
                                     % (timeout, what, self.checker.states(), self.logs[-5:]))
            self.turn()
        return time.monotonic()

    def run_for(self, seconds):
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self.turn()

    def status_is(self, server, status, backend="be"):
        return lambda: self.state(server, backend)["status"] == status

    def close(self):
        self.checker.close()
        self.sel.close()


TOLERANCE = 0.4          # scheduling slack on a shared 2-core machine


@pytest.fixture
def harness():
    made = []

    def make(text, **kw):
        h = Harness(text, **kw)
        made.append(h)
        return h

    yield make
    for h in made:
        h.close()


def flip_backend(backend_factory, flip, name="s1", **reply_kw):
    return backend_factory(name, lambda b, req: flip.reply(Reply, **reply_kw))


# ----------------------------------------------------------------- rise / fall


def test_http_check_takes_server_down_after_fall_failures_and_up_after_rise_successes(
        backend_factory, harness):
    flip = Flip(200)
    b = flip_backend(backend_factory, flip)
    h = harness("""backend be
    option httpchk GET /health
    server s1 %s check inter 100ms rise 2 fall 3
""" % b.address)
    h.run_until(h.status_is("s1", "UP"), 2, "first success")

    flip.set(500)
    t0 = time.monotonic()
    t_down = h.run_until(h.status_is("s1", "DOWN"), 3, "DOWN")
    assert flip.count(500) == 3                       # exactly `fall` failures
    assert t_down - t0 <= 3 * 0.1 + TOLERANCE
    st = h.state("s1")
    assert st["usable"] is False
    assert (st["check_status"], st["check_code"]) == ("L7STS", 500)
    assert st["chkdown"] == 1 and st["chkfail"] == 3

    flip.set(200)
    t1 = time.monotonic()
    t_up = h.run_until(h.status_is("s1", "UP"), 3, "UP again")
    assert flip.count(200) - 1 == 2                   # exactly `rise` successes after the flip
    assert t_up - t1 <= 2 * 0.1 + TOLERANCE
    assert h.state("s1")["usable"] is True

    seen = h.seen[("be", "s1")]
    assert seen == ["UP 1/3", "UP", "UP 2/3", "UP 1/3", "DOWN", "DOWN 1/2", "UP"]
    assert [(c[3]["status"], c[3]["usable"]) for c in h.changes] == [("DOWN", False), ("UP", True)]


def test_checked_server_starts_up_and_goes_down_at_its_first_failed_check(backend_factory,
                                                                         harness):
    flip = Flip(503)
    b = flip_backend(backend_factory, flip)
    h = harness("""backend be
    option httpchk
    server s1 %s check inter 100ms rise 2 fall 3
""" % b.address)
    st = h.state("s1")
    assert (st["status"], st["usable"], st["check_status"]) == ("UP 1/3", True, "INI")
    h.run_until(h.status_is("s1", "DOWN"), 2, "DOWN")
    assert flip.count(503) == 1
    assert h.state("s1")["chkdown"] == 1


def test_down_log_line_reads_like_haproxys(backend_factory, harness):
    flip = Flip(500)
    b = flip_backend(backend_factory, flip)
    h = harness("""backend be
    option httpchk GET /health
    server s1 %s check inter 100ms
""" % b.address)
    h.run_until(h.status_is("s1", "DOWN"), 2, "DOWN")
    line = [m for m in h.logs if " is DOWN" in m][0]
    assert line.startswith('Server be/s1 is DOWN, reason: Layer7 wrong status, code: 500, '
                           'info: "Internal Server Error", check duration: ')
    assert line.endswith("ms. 0 active and 0 backup servers left. 0 sessions active, "
                         "0 requeued, 0 remaining in queue.")
    assert "backend be has no server available!" in h.logs


def test_log_counts_the_servers_left_in_the_backend(backend_factory, harness):
    flip = Flip(500)
    bad = flip_backend(backend_factory, flip)
    good = backend_factory("s2")
    h = harness("""backend be
    option httpchk GET /health
    server s1 %s check inter 100ms
    server s2 %s check inter 100ms
    server s3 %s backup
""" % (bad.address, good.address, good.address))
    h.run_until(h.status_is("s1", "DOWN"), 2, "DOWN")
    assert any(m.startswith("Server be/s1 is DOWN") and "1 active and 1 backup servers left."
               in m for m in h.logs)


# ----------------------------------------------------------------- layer 4


def test_layer4_check_marks_a_closed_port_down_with_l4con(harness):
    h = harness("""backend be
    server s1 127.0.0.1:%d check inter 100ms
""" % closed_port())
    h.run_until(h.status_is("s1", "DOWN"), 2, "DOWN")
    st = h.state("s1")
    assert st["check_status"] == "L4CON"
    assert st["check_code"] is None
    assert any('info: "Connection refused"' in m for m in h.logs)


def test_layer4_check_passes_on_an_open_port_without_sending_anything(backend_factory, harness):
    b = backend_factory("s1")
    h = harness("""backend be
    server s1 %s check inter 100ms
""" % b.address)
    h.run_until(h.status_is("s1", "UP"), 2, "UP")
    assert h.state("s1")["check_status"] == "L4OK"
    b.wait_for(lambda x: x.conn_count >= 1, 2, "a check connection")
    assert b.request_count == 0


def test_layer4_connect_timeout_is_l4tout(harness):
    # A listener whose accept queue is full drops SYNs: the connect never completes.
    ls = socket.socket()
    fillers = []
    try:
        ls.bind(("127.0.0.1", 0))
        ls.listen(0)
        for _ in range(3):
            f = socket.socket()
            f.setblocking(False)
            f.connect_ex(ls.getsockname())
            fillers.append(f)
        h = harness("""backend be
    server s1 127.0.0.1:%d check inter 150ms
""" % ls.getsockname()[1])
        h.run_until(lambda: h.state("s1")["check_status"] != "INI", 2, "a result")
        st = h.state("s1")
        assert st["check_status"] == "L4TOUT"
        assert 100 <= st["check_duration"] <= 150 + TOLERANCE * 1000
    finally:
        for f in fillers:
            f.close()
        ls.close()


# ----------------------------------------------------------------- the request


def request_head(backend_factory, harness, checkcfg, server_opts="", expect_n=1):
    b = backend_factory("s1")
    h = harness("""backend be
%s
    server s1 %s check inter 100ms %s
""" % (checkcfg, b.address, server_opts))
    h.run_until(lambda: b.request_count >= expect_n, 2, "a check request")
    return b, b.requests[0]


def test_seed_escaped_header_form_sends_get_with_host(backend_factory, harness):
    _, req = request_head(backend_factory, harness,
                          r"    option httpchk GET /health HTTP/1.1\r\nHost:\ www.example.com")
    assert req.raw_head == (b"GET /health HTTP/1.1\r\nHost: www.example.com\r\n"
                            b"Connection: close")


def test_bare_option_httpchk_sends_options_slash_http10(backend_factory, harness):
    _, req = request_head(backend_factory, harness, "    option httpchk")
    assert req.raw_head == b"OPTIONS / HTTP/1.0\r\nConnection: close"


def test_option_httpchk_with_uri_only(backend_factory, harness):
    _, req = request_head(backend_factory, harness, "    option httpchk /ping")
    assert req.raw_head.split(b"\r\n")[0] == b"OPTIONS /ping HTTP/1.0"


def test_http11_check_without_configured_host_sends_the_server_address(backend_factory,
                                                                       harness):
    b, req = request_head(backend_factory, harness, "    option httpchk HEAD / HTTP/1.1")
    assert req.raw_head == ("HEAD / HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nConnection: close"
                            % b.port).encode()


def test_http_check_send_sets_method_uri_version_headers_and_body(backend_factory, harness):
    _, req = request_head(backend_factory, harness, """    option httpchk
    http-check send meth POST uri /status ver HTTP/1.1 hdr Host app.example hdr X-Check 1 body ping""")
    assert req.raw_head == (b"POST /status HTTP/1.1\r\nHost: app.example\r\nX-Check: 1\r\n"
                            b"Content-Length: 4\r\nConnection: close")
    assert req.body == b"ping"


def test_check_port_and_addr_redirect_the_probe(backend_factory, harness):
    b = backend_factory("s1")
    h = harness("""backend be
    option httpchk
    server s1 127.0.0.2:%d check inter 100ms addr 127.0.0.1 port %d
""" % (closed_port(), b.port))
    h.run_until(h.status_is("s1", "UP"), 2, "UP through addr/port")
    assert b.request_count >= 1


# ----------------------------------------------------------------- expect


def judged(backend_factory, harness, expect, reply):
    b = backend_factory("s1", lambda _b, _r: reply)
    h = harness("""backend be
    option httpchk GET /
%s
    server s1 %s check inter 100ms fall 1
""" % (expect, b.address))
    h.run_until(lambda: h.state("s1")["check_status"] != "INI", 2, "a result")
    return h.state("s1")


def test_default_expect_accepts_3xx(backend_factory, harness):
    st = judged(backend_factory, harness, "", Reply(302, headers=[("Location", "/x")]))
    assert (st["check_status"], st["check_code"], st["usable"]) == ("L7OK", 302, True)


def test_default_expect_rejects_4xx(backend_factory, harness):
    st = judged(backend_factory, harness, "", Reply(404))
    assert (st["check_status"], st["check_code"], st["usable"]) == ("L7STS", 404, False)


def test_expect_status_rejects_a_status_outside_its_list(backend_factory, harness):
    st = judged(backend_factory, harness, "    http-check expect status 200", Reply(302))
    assert (st["check_status"], st["usable"]) == ("L7STS", False)


def test_expect_status_accepts_a_range(backend_factory, harness):
    st = judged(backend_factory, harness, "    http-check expect status 200,400-404", Reply(404))
    assert (st["check_status"], st["usable"]) == ("L7OK", True)


def test_expect_rstatus_matches_the_code_as_text(backend_factory, harness):
    st = judged(backend_factory, harness, "    http-check expect rstatus ^5", Reply(503))
    assert st["check_status"] == "L7OK"


def test_expect_string_passes_when_the_body_contains_it(backend_factory, harness):
    st = judged(backend_factory, harness, "    http-check expect string ALIVE",
                Reply(200, body=b"status: ALIVE\n"))
    assert st["check_status"] == "L7OK"


def test_expect_string_fails_with_l7rsp_when_missing(backend_factory, harness):
    st = judged(backend_factory, harness, "    http-check expect string ALIVE",
                Reply(200, body=b"status: DEAD\n"))
    assert (st["check_status"], st["usable"]) == ("L7RSP", False)


def test_expect_string_reads_a_chunked_body(backend_factory, harness):
    st = judged(backend_factory, harness, "    http-check expect string ALIVE",
                Reply(200, body=b"xxxxxAL" + b"IVE", chunked=True, chunk_size=3))
    assert st["check_status"] == "L7OK"


def test_negated_expect_string_fails_when_the_body_contains_it(backend_factory, harness):
    st = judged(backend_factory, harness, "    http-check expect ! string maintenance",
                Reply(200, body=b"in maintenance"))
    assert st["check_status"] == "L7RSP"


def test_expect_string_judges_at_most_16k_of_a_large_body(backend_factory, harness):
    t0 = time.monotonic()
    st = judged(backend_factory, harness, "    http-check expect string NEEDLE",
                Reply(200, stream_len=4 * 1024 * 1024))
    assert st["check_status"] == "L7RSP"
    assert time.monotonic() - t0 < 2


def test_interim_100_response_is_skipped(backend_factory, harness):
    st = judged(backend_factory, harness, "", Reply(200, interim=[(100, [])]))
    assert (st["check_status"], st["check_code"]) == ("L7OK", 200)


def test_non_http_answer_is_l7rsp(backend_factory, harness):
    st = judged(backend_factory, harness, "", Reply(raw=b"SSH-2.0-OpenSSH\r\n\r\n"))
    assert st["check_status"] == "L7RSP"


def test_connection_closed_without_answer_is_l7rsp(backend_factory, harness):
    st = judged(backend_factory, harness, "", Reply(drop=True))
    assert st["check_status"] == "L7RSP"


# ----------------------------------------------------------------- timeouts


def test_without_timeout_check_inter_bounds_the_whole_check(backend_factory, harness):
    b = backend_factory("s1", lambda _b, _r: Reply(200, delay=1.0))
    h = harness("""backend be
    option httpchk
    server s1 %s check inter 200ms
""" % b.address)
    h.run_until(lambda: h.state("s1")["check_status"] != "INI", 3, "a result")
    st = h.state("s1")
    assert st["check_status"] == "L7TOUT"
    assert 200 <= st["check_duration"] <= 200 + TOLERANCE * 1000


def test_timeout_check_bounds_the_read_once_connected(backend_factory, harness):
    b = backend_factory("s1", lambda _b, _r: Reply(200, delay=1.0))
    h = harness("""backend be
    option httpchk
    timeout check 100ms
    server s1 %s check inter 2s
""" % b.address)
    h.run_until(lambda: h.state("s1")["check_status"] != "INI", 3, "a result")
    st = h.state("s1")
    assert st["check_status"] == "L7TOUT"
    assert 100 <= st["check_duration"] < 100 + TOLERANCE * 1000


def test_timeout_check_allows_a_slow_answer_longer_than_inter(backend_factory, harness):
    b = backend_factory("s1", lambda _b, _r: Reply(200, delay=0.3))
    h = harness("""backend be
    option httpchk
    timeout check 1s
    server s1 %s check inter 100ms
""" % b.address)
    h.run_until(lambda: h.state("s1")["check_status"] != "INI", 3, "a result")
    assert h.state("s1")["check_status"] == "L7OK"


# ----------------------------------------------------------------- scheduling


def test_one_probe_per_interval(backend_factory, harness):
    b = backend_factory("s1")
    h = harness("""backend be
    option httpchk
    server s1 %s check inter 100ms
""" % b.address)
    h.run_until(h.status_is("s1", "UP"), 2, "UP")
    n0 = b.request_count
    h.run_for(1.0)
    n = b.request_count - n0
    assert 6 <= n <= 11                    # 1 s / (100 ms + check time), never more than 10+1


def test_inter_when_up_fastinter_while_going_down_downinter_while_down(backend_factory,
                                                                         harness):
    flip = Flip(200)
    b = flip_backend(backend_factory, flip)
    h = harness("""backend be
    option httpchk
    server s1 %s check inter 700ms fastinter 50ms downinter 300ms rise 2 fall 3
""" % b.address)
    # The start state is "going down": the first probe comes at once, then a fully
    # UP server is checked every `inter`.
    h.run_until(h.status_is("s1", "UP"), 2, "UP")
    h.run_for(0.4)
    assert flip.count(200) == 1
    flip.set(500)
    h.run_until(h.status_is("s1", "DOWN"), 2, "DOWN")
    fails = [t for t, status in flip.served if status == 500]
    assert len(fails) == 3
    assert all(b - a < 0.05 + TOLERANCE / 2 for a, b in zip(fails, fails[1:]))   # fastinter
    n_down = flip.count(500)
    h.run_for(0.75)
    assert 1 <= flip.count(500) - n_down <= 3           # downinter: ~every 300 ms


def test_first_probes_are_spread_over_the_interval(backend_factory, harness):
    backends = [backend_factory("s%d" % i) for i in range(4)]
    h = harness("backend be\n    option httpchk\n" + "".join(
        "    server s%d %s check inter 400ms fall 1\n" % (i, b.address)
        for i, b in enumerate(backends)))
    h.run_until(lambda: all(b.request_count >= 1 for b in backends), 2, "one check each")
    firsts = sorted(b.connections[0].opened_at for b in backends)
    gaps = [b - a for a, b in zip(firsts, firsts[1:])]
    assert all(g >= 0.05 for g in gaps), gaps        # ~100 ms apart, not all at once


def test_server_without_check_is_usable_and_never_probed(backend_factory, harness):
    b = backend_factory("s1")
    h = harness("""backend be
    option httpchk
    server s1 %s
""" % b.address)
    h.run_for(0.3)
    st = h.state("s1")
    assert (st["status"], st["usable"], st["check_status"]) == ("no check", True, None)
    assert b.conn_count == 0
    assert h.checker.next_due() is None


def test_disabled_server_is_maint_and_never_probed(backend_factory, harness):
    b = backend_factory("s1")
    h = harness("""backend be
    option httpchk
    server s1 %s check inter 100ms disabled
""" % b.address)
    h.run_for(0.3)
    st = h.state("s1")
    assert (st["status"], st["usable"]) == ("MAINT", False)
    assert b.conn_count == 0


# ----------------------------------------------------------------- admin


def test_set_admin_maint_stops_checks_and_ready_restarts_them(backend_factory, harness):
    b = backend_factory("s1")
    h = harness("""backend be
    option httpchk
    server s1 %s check inter 100ms
""" % b.address)
    h.run_until(h.status_is("s1", "UP"), 2, "UP")
    st = h.checker.set_admin("be", "s1", "maint")
    assert (st["status"], st["usable"]) == ("MAINT", False)
    assert h.changes[-1][3]["status"] == "MAINT"
    n = b.request_count
    h.run_for(0.3)
    assert b.request_count == n
    st = h.checker.set_admin("be", "s1", "ready")
    assert (st["status"], st["usable"]) == ("UP 1/3", True)     # as at start
    h.run_until(lambda: b.request_count > n, 1, "a check right after leaving maint")
    assert any("is going DOWN for maintenance" in m for m in h.logs)


def test_set_admin_drain_keeps_checking_but_takes_no_new_traffic(backend_factory, harness):
    b = backend_factory("s1")
    h = harness("""backend be
    option httpchk
    server s1 %s check inter 100ms
""" % b.address)
    h.run_until(h.status_is("s1", "UP"), 2, "UP")
    st = h.checker.set_admin("be", "s1", "drain")
    assert (st["status"], st["usable"]) == ("DRAIN", False)
    n = b.request_count
    h.run_until(lambda: b.request_count > n, 1, "checks continue while draining")
    st = h.checker.set_admin("be", "s1", "ready")
    assert (st["status"], st["usable"]) == ("UP", True)
    assert [c[3]["status"] for c in h.changes] == ["DRAIN", "UP"]


def test_set_admin_on_a_server_without_check(harness):
    h = harness("""backend be
    server s1 127.0.0.1:%d
""" % closed_port())
    assert h.checker.set_admin("be", "s1", "drain")["usable"] is False
    assert h.checker.set_admin("be", "s1", "ready")["status"] == "no check"
    with pytest.raises(ValueError):
        h.checker.set_admin("be", "s1", "sleep")
    with pytest.raises(KeyError):
        h.checker.set_admin("be", "nope", "ready")


# ----------------------------------------------------------------- resources


def test_no_socket_is_left_open(backend_factory, harness):
    good = backend_factory("s1")
    slow = backend_factory("s2", lambda _b, _r: Reply(200, delay=0.5))
    dead = closed_port()
    ports = {good.port, slow.port, dead}
    baseline = client_sockets(ports)
    h = harness("""backend be
    option httpchk
    server s1 %s check inter 50ms
    server s2 %s check inter 100ms
    server s3 127.0.0.1:%d check inter 50ms
""" % (good.address, slow.address, dead))
    most = 0
    deadline = time.monotonic() + 3
    while not (h.state("s2")["check_status"] == "L7TOUT"
               and h.state("s3")["check_status"] == "L4CON" and good.request_count >= 5):
        assert time.monotonic() < deadline, "checks of every kind did not happen"
        h.turn()
        most = max(most, len(client_sockets(ports) - baseline))
    assert 1 <= most <= 3                  # never more than one probe per server
    h.close()
    assert client_sockets(ports) - baseline == set()


def test_a_forked_worker_drops_its_copies_of_probe_sockets(backend_factory, harness):
    slow = backend_factory("s1", lambda _b, _r: Reply(200, delay=1.0))
    h = harness("""backend be
    option httpchk
    timeout check 2s
    server s1 %s check inter 100ms
""" % slow.address)
    ports = {slow.port}
    baseline = client_sockets(ports)
    h.run_until(lambda: slow.request_count >= 1, 2, "a check in flight")
    assert len(client_sockets(ports) - baseline) == 1
    pid = os.fork()
    if pid == 0:
        status = 1
        try:
            h.checker.close_after_fork()
            status = 0 if client_sockets(ports) - baseline == set() else 3
        finally:
            os._exit(status)
    try:
        deadline = time.monotonic() + 5
        while True:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                break
            assert time.monotonic() < deadline, "forked child did not exit"
            h.turn()
        pid = None
        assert os.waitstatus_to_exitcode(status) == 0
        # The master's own probe is untouched by what the child did.
        assert len(client_sockets(ports) - baseline) == 1
    finally:
        if pid:
            os.kill(pid, 9)
            os.waitpid(pid, 0)


# ---------------------------------------------------------------- spread-checks

def test_spread_interval_moves_each_interval_by_up_to_the_percent():
    from proxy.health import spread_interval
    assert spread_interval(2.0, 0, 0.7) == 2.0
    assert spread_interval(2.0, 50, 0.0) == 3.0 and spread_interval(2.0, 50, 0.5) == 2.0
    assert abs(spread_interval(2.0, 50, 0.999999) - 1.0) < 1e-5


def test_spread_checks_spreads_the_intervals_and_max_spread_checks_the_first_ones(
        backend_factory):
    """Checks every 200ms with spread-checks 50: the gaps between one server's probes
    vary between 100 and 300 ms (not all equal, as without it); max-spread-checks 0s
    starts every server's first check at once instead of over the first interval."""
    servers = [backend_factory("s%d" % i) for i in range(4)]
    text = ("backend be\n    option httpchk GET /\n" + "".join(
        "    server s%d 127.0.0.1:%d check inter 200ms\n" % (i, b.port)
        for i, b in enumerate(servers)))
    h = Harness(text, header="global\n    spread-checks 50\n    max-spread-checks 0s\n"
                + HEADER)
    firsts = [hs.next_at for hs in h.checker.servers.values()]
    assert max(firsts) - min(firsts) < 0.05, "first checks not started together"
    gaps = []
    for _ in range(8):
        before = {k: hs.next_at for k, hs in h.checker.servers.items()}
        h.run_until(lambda: any(hs.next_at is not None and hs.next_at != before[k]
                                and hs.probe is None
                                for k, hs in h.checker.servers.items()), 3, "a probe")
        for k, hs in h.checker.servers.items():
            if hs.next_at is not None and hs.next_at != before[k] and hs.probe is None:
                gaps.append(hs.next_at - time.monotonic())
    assert gaps and all(0.05 <= g <= 0.31 for g in gaps), gaps
    assert max(gaps) - min(gaps) > 0.02, "no spread: %r" % gaps
