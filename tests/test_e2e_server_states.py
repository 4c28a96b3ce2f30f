"""Server states beyond UP/DOWN (issue 5): backups, slowstart, on-marked-down,
passive health (observe/error-limit/on-error) and run-time weights."""

import time

from proxy.control import request_text
from support.backend import Reply
from support.client import HttpClient, get


def _wait_status(kw, name, prefix, timeout=5):
    return kw.wait_stats(lambda s: s["backends"]["be"]["servers"][name]["status"].startswith(prefix),
                         what="%s %s" % (name, prefix), timeout=timeout)


def test_backup_server_serves_only_while_no_active_server_is_up(backend_factory, proxy_factory):
    active = backend_factory("s1")
    backup = backend_factory("s2")
    kw = proxy_factory([active, backup], nbproc=1,
                       server_opts={"s1": "check inter 100ms fall 1 rise 1", "s2": "backup"})
    for i in range(4):
        assert get(kw.port, "/a%d" % i).status == 200
    assert (active.request_count, backup.request_count) == (4, 0)
    request_text(kw.sock, "disable server be/s1")
    _wait_status(kw, "s1", "MAINT")
    for i in range(3):
        assert get(kw.port, "/b%d" % i).status == 200
    assert backup.request_count == 3


def test_set_weight_changes_the_share_at_run_time(backend_factory, proxy_factory):
    b1, b2 = backend_factory("s1"), backend_factory("s2")
    kw = proxy_factory([b1, b2], nbproc=1)
    assert request_text(kw.sock, "set weight be/s2 0").strip() == ""
    kw.wait_stats(lambda s: s["backends"]["be"]["servers"]["s2"]["weight"] == 0, what="weight 0")
    for i in range(6):
        assert get(kw.port, "/w%d" % i).status == 200
    assert (b1.request_count, b2.request_count) == (6, 0)
    assert "between 0 and 256" in request_text(kw.sock, "set weight be/s2 999")


def test_on_marked_down_shutdown_sessions_cuts_streams_in_flight(backend_factory, proxy_factory):
    healthy = {"ok": True}

    def handler(be, req):
        if req.target == "/health":
            return Reply(200 if healthy["ok"] else 500, body=b"h")
        return Reply(body=b"slow", delay=3.0)

    b = backend_factory("s1", handler)
    kw = proxy_factory([b], nbproc=1, backend_lines=["option httpchk GET /health"],
                       server_opts="check inter 100ms fall 1 rise 1 on-marked-down shutdown-sessions")
    with HttpClient(kw.port, timeout=10) as c:
        c.send_request("GET", "/slow")
        b.wait_for(lambda be: any(r.target == "/slow" for r in be.requests), timeout=5,
                   what="/slow to arrive")
        started = time.monotonic()
        healthy["ok"] = False
        assert c.wait_closed(5), "the session survived its server going DOWN"
        assert time.monotonic() - started < 2.5


def test_observe_layer7_marks_a_failing_server_down_from_live_traffic(backend_factory,
                                                                      proxy_factory):
    # Checks pass (health is fine) but real requests get 500s: passive health notices.
    b1 = backend_factory("s1", lambda be, req: Reply(200 if req.target == "/health" else 500))
    b2 = backend_factory("s2")
    kw = proxy_factory([b1, b2], nbproc=1, backend_lines=["option httpchk GET /health"],
                       server_opts="check inter 10s observe layer7 error-limit 3 on-error mark-down")
    statuses = [get(kw.port, "/x%d" % i).status for i in range(6)]
    assert statuses.count(500) == 3
    _wait_status(kw, "s1", "DOWN")
    assert [get(kw.port, "/y%d" % i).status for i in range(4)] == [200] * 4
    st = kw.stats()
    assert st["backends"]["be"]["servers"]["s1"]["check_status"] == "HANA"


def test_slowstart_ramps_a_returning_server_up(backend_factory, proxy_factory):
    healthy = {"ok": True}
    b1 = backend_factory("s1", lambda be, req: Reply(200 if healthy["ok"] or req.target != "/health"
                                                      else 500))
    b2 = backend_factory("s2")
    kw = proxy_factory([b1, b2], nbproc=1, backend_lines=["option httpchk GET /health"],
                       server_opts={"s1": "check inter 100ms fall 1 rise 1 slowstart 4s weight 16",
                                    "s2": "weight 16"})
    healthy["ok"] = False
    _wait_status(kw, "s1", "DOWN")
    healthy["ok"] = True
    _wait_status(kw, "s1", "UP")
    before = b1.request_count
    for i in range(32):
        assert get(kw.port, "/s%d" % i).status == 200
    early = b1.request_count - before
    # Just back, s1 weighs about 1/16 of its 16 (then grows): far fewer than half.
    assert early <= 8, "s1 got %d of 32 requests right after coming back" % early


def test_keepwarm_server_command_drains_disables_and_enables(backend_factory, proxy_factory):
    from support.proxy import run_cli
    b1, b2 = backend_factory("s1"), backend_factory("s2")
    kw = proxy_factory([b1, b2], nbproc=1)
    sock = str(kw.sock)
    for action, status in (("drain", "DRAIN"), ("disable", "MAINT"), ("enable", "no check")):
        res = run_cli("server", action, "be/s1", "-s", sock)
        assert res.returncode == 0, res.stderr
        _wait_status(kw, "s1", status)
    res = run_cli("server", "weight", "be/s1", "25", "-s", sock)
    assert res.returncode == 0, res.stderr
    kw.wait_stats(lambda s: s["backends"]["be"]["servers"]["s1"]["weight"] == 25, what="weight 25")


def test_keepwarm_server_command_reports_an_unknown_server_in_one_line(backend_factory,
                                                                      proxy_factory):
    from support.proxy import run_cli
    kw = proxy_factory([backend_factory("s1")], nbproc=1)
    res = run_cli("server", "disable", "be/nope", "-s", str(kw.sock))
    assert res.returncode == 1
    assert res.stderr.strip().count("\n") == 0 and "No such server" in res.stderr
    assert run_cli("server", "weight", "be/s1", "-s", str(kw.sock)).returncode == 2
