"""`http-request use-service prometheus-exporter` and the HTML stats page (issue 18),
end to end on 127.0.0.1: counters from every worker, HAProxy's metric families
(recorded from HAProxy 2.6.12 by tests/fixtures/record_prometheus.py), `?scope=`,
`promtool check metrics`, the page behind `stats auth`, its `;csv` export."""

import base64
import json
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from support.client import HttpClient
from support.proxy import free_port

FIXTURE = Path(__file__).parent / "fixtures" / "haproxy_prometheus.json"


def site(port, backend_port, sock):
    """The configuration both HAProxy (recorder) and keepwarm run."""
    return (("global\n    nbthread 2\n" + ("    stats socket %s\n" % sock if sock else "")) +
            "defaults\n    mode http\n    timeout connect 2s\n    timeout client 5s\n"
            "    timeout server 5s\n"
            "frontend fe\n    bind 127.0.0.1:%d\n"
            "    http-request use-service prometheus-exporter if { path /metrics }\n"
            "    stats enable\n    stats uri /stats\n    stats auth admin:s3cret\n"
            "    stats refresh 10s\n"
            "    default_backend app\n"
            "backend app\n    server s1 127.0.0.1:%d\n" % (port, backend_port))


def families(text):
    """{family: [type, sorted label names]} of a Prometheus text body."""
    types = dict(re.findall(r"^# TYPE (\S+) (\S+)$", text, re.M))
    labels = {}
    for name, lab in re.findall(r"^([a-z_]+)\{([^}]*)\} ", text, re.M):
        labels.setdefault(name, set()).update(re.findall(r'(\w+)="', lab))
    return {name: [typ, sorted(labels.get(name, ()))] for name, typ in types.items()}


def metric(text, name, **labels):
    want = ",".join('%s="%s"' % kv for kv in sorted(labels.items()))
    for line in text.splitlines():
        if line.startswith(name + "{"):
            got = ",".join(sorted(line[len(name) + 1:line.index("}")].split(",")))
            if got == want:
                return float(line.rsplit(" ", 1)[1])
    return None


@pytest.fixture
def running(backend_factory, proxy_factory, tmp_path):
    be = backend_factory("app")
    port = free_port()
    proxy_factory(config=site(port, be.port, tmp_path / "kw0" / "stats.sock"),
                  bind_ports=[port], nbproc=2)
    return port, be


def fetch(port, path, headers=()):
    with HttpClient(port) as c:
        return c.request("GET", path, list(headers))


def scrape(port, want_requests, path="/metrics"):
    """/metrics once the counters of `want_requests` requests have reached it (the
    workers report every 250 ms, the master sends the report every second)."""
    deadline = time.monotonic() + 8
    while True:
        r = fetch(port, path)
        text = r.body.decode()
        got = metric(text, "haproxy_frontend_http_requests_total", proxy="fe") or 0
        if got >= want_requests or time.monotonic() > deadline:
            return r, text
        time.sleep(0.3)


def test_metrics_count_every_workers_requests_with_haproxys_families(running):
    port, be = running
    for _ in range(10):                       # new connections: both workers serve some
        assert fetch(port, "/x").status == 200
    r, text = scrape(port, 10)
    assert r.status == 200
    assert r.header("content-type") == "text/plain; version=0.0.4"
    assert metric(text, "haproxy_frontend_http_requests_total", proxy="fe") >= 10
    assert metric(text, "haproxy_backend_http_responses_total", proxy="app", code="2xx") >= 10
    assert metric(text, "haproxy_server_status", proxy="app", server="s1", state="UP") == 1
    assert metric(text, "haproxy_server_connection_attempts_total", proxy="app",
                  server="s1") >= 1
    assert metric(text, "keepwarm_server_new_connections_total", proxy="app", server="s1",
                  reason="empty") is not None
    haproxy = json.loads(FIXTURE.read_text())["families"]
    ours = families(text)
    for name, (typ, labels) in ours.items():
        if name.startswith("haproxy_"):
            assert haproxy.get(name) == [typ, labels], name


def test_scope_limits_the_output(running):
    port, _ = running
    text = fetch(port, "/metrics?scope=server").body.decode()
    assert "haproxy_server_status" in text and "haproxy_frontend_" not in text
    assert "haproxy_process_" not in text
    both = fetch(port, "/metrics?scope=frontend&scope=global").body.decode()
    assert "haproxy_frontend_status" in both and "haproxy_process_uptime_seconds" in both
    assert "haproxy_backend_" not in both
    assert fetch(port, "/metrics?scope=").body == b""


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool not installed")
def test_promtool_accepts_the_output(running, tmp_path):
    port, _ = running
    body = fetch(port, "/metrics").body
    out = subprocess.run(["promtool", "check", "metrics"], input=body, capture_output=True,
                         timeout=30)
    assert out.returncode == 0, out.stdout + out.stderr


def test_the_stats_page_asks_for_its_user_then_shows_every_proxy(running):
    port, be = running
    for _ in range(3):
        fetch(port, "/x")
    r = fetch(port, "/stats")
    assert r.status == 401
    assert r.header("www-authenticate") == 'Basic realm="HAProxy Statistics"'
    bad = "Basic " + base64.b64encode(b"admin:wrong").decode()
    assert fetch(port, "/stats", [("Authorization", bad)]).status == 401
    good = "Basic " + base64.b64encode(b"admin:s3cret").decode()
    deadline = time.monotonic() + 8
    while True:
        r = fetch(port, "/stats", [("Authorization", good)])
        page = r.body.decode()
        if ">3<" in page or time.monotonic() > deadline:
            break
        time.sleep(0.3)
    assert r.status == 200 and r.header("content-type") == "text/html"
    assert '<meta http-equiv="refresh" content="10">' in page
    for text in (">fe<", ">app<", ">s1<", "Frontend", "Backend"):
        assert text in page, text
    assert "<script" not in page
    csv = fetch(port, "/stats;csv", [("Authorization", good)])
    assert csv.status == 200 and csv.body.startswith(b"# pxname,svname,")
    js = fetch(port, "/stats;json", [("Authorization", good)])
    assert js.status == 200 and js.header("content-type") == "application/json"
    assert json.loads(js.body)[0][0]["value"] == {"type": "str", "value": "fe"}
    assert be.request_count >= 3          # the page itself never reached the server
    assert all(req.target == "/x" for req in be.requests)


def test_stats_admin_changes_servers_from_the_page(backend_factory, proxy_factory, tmp_path):
    s1 = backend_factory("s1")
    s2 = backend_factory("s2")
    port = free_port()
    sock = tmp_path / "kw0" / "stats.sock"
    text = ("global\n    nbthread 2\n    stats socket %s\n" % sock +
            "defaults\n    mode http\n    timeout connect 2s\n    timeout client 5s\n"
            "    timeout server 5s\n"
            "frontend fe\n    bind 127.0.0.1:%d\n    stats uri /stats\n"
            "    stats admin if { req.hdr(x-admin) -m str yes }\n"
            "    default_backend app\n"
            "backend app\n    server s1 127.0.0.1:%d\n    server s2 127.0.0.1:%d\n"
            % (port, s1.port, s2.port))
    kw = proxy_factory(config=text, bind_ports=[port], nbproc=2)
    plain = fetch(port, "/stats").body.decode()
    assert "<form" not in plain                          # COND false: read only
    page = fetch(port, "/stats", [("X-Admin", "yes")]).body.decode()
    assert '<form method="post" action="/stats">' in page and 'name="s" value="s1"' in page
    form = b"s=s1&action=maint&b=%233"                    # b=#3: the backend's id
    with HttpClient(port) as c:
        r = c.request("POST", "/stats", [("X-Admin", "yes"),
                                         ("Content-Type", "application/x-www-form-urlencoded")],
                      body=form)
    assert r.status == 303 and r.header("location") == "/stats;st=DONE"
    kw.wait_stats(lambda st: st["backends"]["app"]["servers"]["s1"]["status"] == "MAINT",
                  what="s1 in maintenance from the page")
    served = {fetch(port, "/").body.split()[2] for _ in range(10)}
    assert served == {b"s2"}
    with HttpClient(port) as c:                          # without the condition: no change
        r = c.request("POST", "/stats", [("Content-Type", "application/x-www-form-urlencoded")],
                      body=b"s=s2&action=maint&b=app")
    assert r.status == 200
    assert kw.stats()["backends"]["app"]["servers"]["s2"]["status"] != "MAINT"


def test_rates_reach_show_stat_the_page_and_metrics(running):
    port, _ = running
    with HttpClient(port) as c:
        deadline = time.monotonic() + 2.5
        while time.monotonic() < deadline:        # keep-alive load for ~2.5 s
            c.request("GET", "/x")
    text = fetch(port, "/metrics").body.decode()
    assert metric(text, "haproxy_frontend_http_requests_rate_max", proxy="fe") > 0
    assert metric(text, "haproxy_frontend_max_session_rate", proxy="fe") >= 0


def test_stats_scope_limits_the_exports_and_the_admin_form_too(backend_factory, proxy_factory,
                                                               tmp_path):
    s1 = backend_factory("s1")
    port = free_port()
    sock = tmp_path / "kw0" / "stats.sock"
    text = ("global\n    nbthread 1\n    stats socket %s\n" % sock +
            "defaults\n    mode http\n    timeout connect 2s\n    timeout client 5s\n"
            "    timeout server 5s\n"
            "frontend fe\n    bind 127.0.0.1:%d\n    stats uri /stats\n    stats scope fe\n"
            "    stats admin if TRUE\n    default_backend app\n"
            "backend app\n    server s1 127.0.0.1:%d\n" % (port, s1.port))
    kw = proxy_factory(config=text, bind_ports=[port], nbproc=1)
    csv = fetch(port, "/stats;csv").body.decode().splitlines()
    assert [ln.split(",")[0] for ln in csv[1:] if ln] == ["fe"]      # not app
    rows = json.loads(fetch(port, "/stats;json").body)
    assert {r[0]["value"]["value"] for r in rows} == {"fe"}
    with HttpClient(port) as c:
        r = c.request("POST", "/stats", [("Content-Type", "application/x-www-form-urlencoded")],
                      body=b"s=s1&action=maint&b=app")
    assert r.header("location") == "/stats;st=NONE"
    time.sleep(0.5)
    assert kw.stats()["backends"]["app"]["servers"]["s1"]["status"] != "MAINT"
