"""The harness's own arithmetic: wrk report parsing, per-run ratios, /proc reading."""

import os

from bench.e2e import procs, report, wrk

WRK_OUT = """Running 5s test @ http://127.0.0.1:8080/small
  1 threads and 64 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   725.03us  388.20us  15.01ms   93.13%
    Req/Sec    78.61k     4.13k   85.63k    74.00%
  Latency Distribution
     50%  690.00us
     75%  780.00us
     90%  850.00us
     99%    1.10s
  391245 requests in 5.00s, 122.53MB read
  Socket errors: connect 0, read 3, write 0, timeout 2
  Non-2xx or 3xx responses: 17
Requests/sec:  78240.12
Transfer/sec:     24.50MB
"""


def test_wrk_report_parses_rate_latency_and_errors():
    r = wrk.parse(WRK_OUT)
    assert r["requests"] == 391245
    assert r["rps"] == 78240.12
    assert abs(r["p50_ms"] - 0.69) < 1e-9
    assert r["p99_ms"] == 1100.0
    assert r["non_2xx_3xx"] == 17
    assert r["socket_errors"] == {"read": 3, "timeout": 2}
    assert r["bytes"] == int(122.53 * 1024 ** 2)


def test_ratios_divide_by_the_reference_of_the_same_run():
    runs = [{"run": i, "proxy": p, "mode": "close", "size": "100B", "rps": rps,
             "cpu_us_per_req": cpu}
            for i, (a, b) in enumerate([((100, 10), (50, 20)), ((200, 10), (100, 20))])
            for p, (rps, cpu) in (("ref", a), ("x", b))]
    x = [r for r in report.summarise(runs, "ref") if r["proxy"] == "x"][0]
    assert x["rps_ratio"]["median"] == 0.5 and x["rps_ratio"]["max"] == 0.5
    assert x["cpu_ratio"]["median"] == 2.0
    assert x["rps"]["min"] == 50 and x["rps"]["max"] == 100


def test_tree_cpu_counts_own_process():
    pids = procs.tree_pids(os.getpid())
    assert pids[0] == os.getpid()
    assert procs.tree_cpu_seconds(os.getpid()) > 0


def test_defer_variants_put_their_option_on_the_bind_line(tmp_path):
    from bench.e2e import servers

    class FakeBackend:
        port = 9

    texts = {}
    for name in ("keepwarm-defer", "haproxy-safe-defer", "nginx-defer", "keepwarm"):
        p = servers.make(name, tmp_path, FakeBackend())
        p.port = 8
        texts[p.name] = p.config().read_text()
    assert "bind 127.0.0.1:8 defer-accept\n" in texts["keepwarm-defer"]
    assert "bind 127.0.0.1:8 defer-accept\n" in texts["haproxy-safe-defer"]
    assert "listen 127.0.0.1:8 backlog=4096 reuseport deferred;" in texts["nginx-defer"]
    assert "bind 127.0.0.1:8\n" in texts["keepwarm"]
