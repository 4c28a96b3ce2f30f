"""`keepwarm stats`: finding the instance, the JSON document, counters that match the traffic."""

import json
import os
import socket
import subprocess
import threading
import time

import msgpack
import pytest

from support.backend import Reply
from support.client import HttpClient, get
from support.proxy import REPO_ROOT, proxy_command, run_cli

COUNTERS = ["scur", "smax", "stot", "req_tot", "hrsp_1xx", "hrsp_2xx", "hrsp_3xx", "hrsp_4xx",
            "hrsp_5xx", "hrsp_other", "bin", "bout"]
BACKEND_EXTRA = ["conn_tot", "reuse", "idle_conn_cur", "replays"]
SERVER_EXTRA = BACKEND_EXTRA + ["status", "weight", "econ", "eresp"]


def test_stats_json_has_the_documented_fields(backends, proxy_factory):
    kw = proxy_factory(backends, nbproc=2)
    st = kw.stats()
    info = st["info"]
    for key in ("pid", "version", "parser", "uptime", "nbproc", "workers", "worker_restarts"):
        assert key in info, key
    assert info["parser"] in ("native", "python")
    assert info["nbproc"] == 2 and info["worker_restarts"] == 0
    for w in info["workers"]:
        assert set(w) >= {"slot", "pid", "restarts", "ready"}
    assert set(st["frontends"]["fe"]) >= set(COUNTERS)
    be = st["backends"]["be"]
    assert set(be) >= set(COUNTERS + BACKEND_EXTRA + ["servers"])
    assert set(be["servers"]) == {"s1", "s2"}
    for srv in be["servers"].values():
        assert set(srv) >= set(COUNTERS + SERVER_EXTRA)
        assert srv["status"] == "no check"     # no `check` keyword on these servers


def test_stats_counts_responses_by_class_and_bytes(backend_factory, proxy_factory):
    def handler(be, req):
        return Reply(int(req.target[1:]), body=b"x" * 10)

    b = backend_factory("s1", handler)
    kw = proxy_factory([b], nbproc=1)
    statuses = [200, 200, 201, 302, 404, 404, 404, 500]
    sent_bytes = 0
    got_bytes = 0
    with HttpClient(kw.port) as c:
        for code in statuses:
            head = b"GET /%d HTTP/1.1\r\nHost: t\r\n\r\n" % code
            c.send(head)
            sent_bytes += len(head)
            r = c.read_response()
            assert r.status == code
            got_bytes += len(r.raw_head) + 4 + r.body_len
    st = kw.wait_stats(lambda s: s["frontends"]["fe"]["req_tot"] >= len(statuses), what="8 requests")
    fe = st["frontends"]["fe"]
    srv = st["backends"]["be"]["servers"]["s1"]
    for counters in (fe, st["backends"]["be"], srv):
        assert (counters["hrsp_2xx"], counters["hrsp_3xx"], counters["hrsp_4xx"],
                counters["hrsp_5xx"]) == (3, 1, 3, 1)
        assert counters["req_tot"] == 8
    assert fe["bin"] >= sent_bytes and fe["bout"] >= got_bytes - 200   # heads may be rewritten
    assert srv["bin"] > 0 and srv["bout"] > 0


def test_stats_reports_current_sessions_and_idle_pooled_connections(backends, proxy_factory):
    kw = proxy_factory(backends, nbproc=1)
    with HttpClient(kw.port) as c1, HttpClient(kw.port) as c2:
        c1.request("GET", "/a")
        c2.request("GET", "/b")
        st = kw.wait_stats(lambda s: s["frontends"]["fe"]["scur"] == 2, what="scur 2")
        assert st["frontends"]["fe"]["smax"] >= 2
    st = kw.wait_stats(lambda s: s["frontends"]["fe"]["scur"] == 0, what="scur 0")
    open_server_conns = sum(len(b.open_connections()) for b in backends)
    pooled = st["backends"]["be"]["idle_conn_cur"]
    assert 1 <= pooled <= open_server_conns
    assert pooled == sum(s["idle_conn_cur"] for s in st["backends"]["be"]["servers"].values())


def test_stats_reads_the_socket_path_from_the_config(backends, proxy_factory):
    kw = proxy_factory(backends, nbproc=1)
    get(kw.port, "/")
    r = run_cli("stats", "-f", str(kw.cfg), "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["info"]["pid"] == kw.pid


def test_stats_without_arguments_uses_the_default_socket(tmp_path, backends, proxy_factory):
    # No `stats socket` in the config (like the seed's snippet): KEEPWARM_SOCKET names the default
    env = {"KEEPWARM_SOCKET": str(tmp_path / "default.sock")}
    kw = proxy_factory(backends, nbproc=1, sock=False, env=env)
    r = run_cli("stats", "--json", env=env)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["info"]["pid"] == kw.pid
    assert (tmp_path / "default.sock").exists()


def test_stats_table_names_frontend_backend_and_servers(backends, proxy_factory):
    kw = proxy_factory(backends, nbproc=1)
    get(kw.port, "/")
    r = run_cli("stats", "-s", kw.sock)
    assert r.returncode == 0, r.stderr
    for name in ("fe", "be", "s1", "s2"):
        assert name in r.stdout


def test_stats_without_a_running_instance_fails_with_one_line(tmp_path):
    r = run_cli("stats", "-s", str(tmp_path / "nobody.sock"), "--json")
    assert r.returncode == 1
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert "Traceback" not in r.stderr



def answer_once(path, answer):
    """A thread that accepts one connection at `path`, reads the request and sends
    `answer` then closes; answer None: close without reading, which resets."""
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.settimeout(10)
    srv.bind(path)
    srv.listen(1)

    def serve():
        try:
            conn, _ = srv.accept()
        except OSError:
            return
        with conn:
            conn.settimeout(5)
            if answer is None:
                time.sleep(0.3)          # the request sits unread, so closing resets
                return
            try:
                conn.recv(65536)
                conn.sendall(answer)
            except OSError:
                pass

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    return srv, t


def run_against(path, answer, *args):
    srv, t = answer_once(path, answer)
    try:
        return run_cli(*args, "-s", path)
    finally:
        t.join(10)
        srv.close()


@pytest.mark.parametrize("args", [["stats", "--json"], ["server", "disable", "be/s1"]],
                         ids=["stats", "server"])
def test_a_control_socket_that_resets_is_one_line(tmp_path, args):
    """Something listens at the socket path but resets the connection instead of
    answering: the command says so in one line, status 1."""
    path = str(tmp_path / "rude.sock")
    r = run_against(path, None, *args)
    assert r.returncode == 1
    assert r.stderr.startswith("keepwarm: lost the connection to keepwarm at %s: " % path), r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr


@pytest.mark.parametrize("answer, words", [
    (b"\xc1\xc1 garbage", "not msgpack"),
    (b"Unknown command.\n", "not keepwarm's statistics"),      # HAProxy's stats socket
    (msgpack.packb([1, 2]), "not keepwarm's statistics"),
    (msgpack.packb({"info": "x", "frontends": [1], "backends": 5}), "not keepwarm's statistics"),
    (msgpack.packb({"error": "unknown command"}), "unknown command"),
    (msgpack.packb({"info": {"pid": 1}, "frontends": {"f": {}},
                    "backends": {"b": {"servers": {"s": None}}}}), "cannot show"),
], ids=["garbage", "text", "list", "wrong types", "error", "odd shape"])
def test_stats_from_something_that_is_not_keepwarm_is_one_line(tmp_path, answer, words):
    path = str(tmp_path / "other.sock")
    r = run_against(path, answer, "stats")
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and words in r.stderr, r.stderr


def test_a_path_that_is_not_a_socket_is_named_as_such(tmp_path):
    for path in (tmp_path, tmp_path / "file"):
        if path != tmp_path:
            path.write_text("x")
        r = run_cli("stats", "-s", str(path))
        assert r.returncode == 1
        assert r.stderr.strip() == ("keepwarm: %s is not a socket (use -s with keepwarm's "
                                    "control socket)" % path)


@pytest.mark.parametrize("args, words", [
    (["server", "weight", "be/s1", ""], "a weight is 0..256"),
    (["server", "weight", "be/s1", "5\nshow stat"], "a weight is 0..256"),
    (["server", "disable", "be/s1 x"], "BACKEND/SERVER"),
], ids=["empty weight", "weight with a second line", "space in the name"])
def test_server_command_values_are_checked_before_sending(tmp_path, args, words):
    r = run_cli(*args, "-s", str(tmp_path / "nobody.sock"))
    assert r.returncode == 2 and words in r.stderr, r.stderr


def test_a_server_name_that_is_not_utf8_is_a_usage_error(tmp_path):
    r = subprocess.run(proxy_command("server", "disable", "be/s\udcff", "-s",
                                     str(tmp_path / "nobody.sock")),
                       cwd=str(REPO_ROOT), capture_output=True, timeout=15,
                       env=dict(os.environ, PYTHONIOENCODING="utf-8:surrogateescape"))
    assert r.returncode == 2 and b"BACKEND/SERVER" in r.stderr, r.stderr
    assert b"Traceback" not in r.stderr


def test_stats_values_this_version_cannot_show_are_one_line(tmp_path):
    answer = msgpack.packb({"info": {"uptime": float("inf"), "pid": 1}, "frontends": {},
                            "backends": {}})
    r = run_against(str(tmp_path / "odd.sock"), answer, "stats")
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
    assert "cannot show" in r.stderr and len(r.stderr.strip().splitlines()) == 1
