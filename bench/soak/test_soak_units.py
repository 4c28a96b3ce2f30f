"""The soak harness's own logic, without sockets: parsing, verdicts, percentiles, the table.

Run with `python3 -m pytest bench/soak -q` (not part of the main suite's testpaths)."""

from bench.soak import backend, cases, clients, hostile, proxies, report, slowloris

PROC_NET_TCP = """\
  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 111 1
   1: 0100007F:C350 0100007F:1F90 01 00000000:00000000 00:00000000 00000000  1000        0 222 1
   2: 0100007F:1F90 0100007F:C350 01 00000000:00000000 00:00000000 00000000  1000        0 333 1
"""


def test_proc_net_tcp_rows_give_ports_state_and_inode():
    rows = proxies.parse_proc_net_tcp(PROC_NET_TCP)
    assert rows == [(8080, 0, "0A", 111), (50000, 8080, "01", 222), (8080, 50000, "01", 333)]


def test_percentile_is_nearest_rank():
    xs = list(range(1, 101))
    assert slowloris.percentile(xs, 50) == 50
    assert slowloris.percentile(xs, 99) == 99
    assert slowloris.percentile(xs, 100) == 100
    assert slowloris.percentile([7.0], 99) == 7.0
    assert slowloris.percentile([], 50) is None


def test_status_line_is_read_or_refused():
    assert clients.status_of(b"HTTP/1.1 400 Bad Request\r\n\r\n") == 400
    assert clients.status_of(b"\x15\x03\x03\x00\x02") is None


def test_backend_reads_a_list_of_equal_lengths_as_one_and_refuses_the_rest():
    assert backend.content_length(["5, 5"]) == 5
    assert backend.content_length(["5", "5"]) == 5
    assert backend.content_length(["5, 6"]) is None
    assert backend.content_length(["-5"]) is None
    assert backend.content_length(["abc"]) is None


def test_backend_refuses_a_head_with_bare_line_ends():
    assert backend.parse_head(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")[:2] == ("GET", "/")
    assert backend.parse_head(b"GET / HTTP/1.1\r\nHost: x\nX: y\r\n\r\n") is None


def _rec(verdict, forwarded=0):
    return {"verdict": verdict, "forwarded": forwarded, "smuggled_seen": 0, "alive_after": True}


def test_verdicts_agree_on_outcome_and_say_when_codes_differ():
    assert hostile.agree(_rec("400"), _rec("400")) == "yes"
    assert hostile.agree(_rec("431"), _rec("400")) == "yes, codes differ"
    assert hostile.agree(_rec("reset"), _rec("closed")) == "yes"
    assert hostile.agree(_rec("400"), _rec("200", forwarded=1)) == "NO"
    assert hostile.agree(_rec("timeout"), _rec("400")) == "NO"


def test_case_names_are_unique_and_the_content_length_list_is_among_them():
    names = [c[0] for c in cases.CASES]
    assert len(names) == len(set(names))
    assert cases.CL_LIST in names
    assert all(isinstance(c[1], bytes) and c[2] in ("", "shut", "slow-wait") for c in cases.CASES)


RESULT = {
    "args": {"reloads": 2, "slow": 500, "busy": "cpu", "requests": 100},
    "results": {
        "reload": {
            "keepwarm": {"reloads": 2, "duration_s": 30, "requests": 1000, "per_reload": 1.5,
                         "errors": {"read": 3, "non_2xx": 0, "total": 3},
                         "before": {"procs": 3, "fds": 50}, "after": {"procs": 3, "fds": 51}},
            "haproxy": {"error": "RuntimeError: not listening\nmore"},
        },
        "kill9": {"keepwarm": {"kills": 1, "duration_s": 20, "per_kill": 4.0,
                               "errors": {"read": 4, "non_2xx": 0, "total": 4},
                               "events": [{"forked_ms": 5.0, "ready_ms": None}]},
                  "haproxy": {"na": "threads"}},
        "idle": {"keepwarm": {"300": {"opened": 300, "failures": {}, "before": {"fds": 20},
                                      "marks": [{"t_s": 1, "server_conns": 300, "fds": 620}],
                                      "reuse_ok": 100, "reuse_sample": 100}}},
        "hostile": {"keepwarm": {cases.CL_LIST: dict(_rec("200", 1), backend_cl=[[
                        "Content-Length: 5"]])},
                    "haproxy": {cases.CL_LIST: dict(_rec("200", 1), backend_cl=[[
                        "content-length: 5"]])}},
    },
}


def test_the_table_has_one_row_per_figure_and_shows_failures_and_gaps():
    rows = report.rows(RESULT)
    assert all(len(r) == len(report.HEADER) for r in rows)
    by_figure = {r[1]: r for r in rows}
    assert by_figure["errors per reload"][2:4] == ("1.5", "FAILED: RuntimeError: not listening")
    assert by_figure["errors per kill"][3] == "n/a: threads"
    replacement = by_figure["replacement forked / ready ms (median, max)"]
    assert replacement[2] == "5 / ? (max 5 / ?), 1 not ready"
    assert by_figure["server conns at 1 s"][2:4] == ("300", "—")
    assert by_figure[cases.CL_LIST][4] == "yes"
    assert by_figure[cases.CL_LIST + ": backend received"][2] == "Content-Length: 5"
    text = report.table(rows)
    lines = text.splitlines()
    assert len(lines) == len(rows) + 2
    assert len({len(line) for line in lines}) == 1  # padded: every line as wide
