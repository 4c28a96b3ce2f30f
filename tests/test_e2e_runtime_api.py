"""The runtime API's commands that change things (issue 18), over the real socket,
taking effect in every worker: frontends disabled and enabled, a server moved to
another address, its sessions shut down, its checks stopped and resumed,
counters cleared. Replies are HAProxy 2.6.12's texts (recorded with socat)."""

import socket
import time

from proxy.control import request_text
from support.backend import Reply
from support.client import HttpClient, get


def status(kw, name):
    return kw.stats()["backends"]["be"]["servers"][name]["status"]


def test_disable_frontend_stops_accepting_and_enable_resumes(backend_factory, proxy_factory):
    kw = proxy_factory([backend_factory("s1")], nbproc=2)
    assert request_text(kw.sock, "disable frontend fe") == "\n"
    assert request_text(kw.sock, "disable frontend fe") == "All sockets are already disabled.\n\n"
    assert request_text(kw.sock, "disable frontend nope") == "No such frontend.\n\n"
    kw.wait_stats(lambda st: st["frontends"]["fe"]["status"] == "STOP", what="STOP")
    assert ",STOP," in request_text(kw.sock, "show stat -1 1 -1")
    with socket.create_connection(("127.0.0.1", kw.port), timeout=5) as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        s.settimeout(1.0)
        try:
            got = s.recv(100)
        except socket.timeout:
            got = None                          # waiting in the backlog: nobody accepts
        assert got is None
        assert request_text(kw.sock, "enable frontend fe") == "\n"
        s.settimeout(5)
        assert s.recv(100).startswith(b"HTTP/1.1 200")     # taken once enabled again


def test_set_server_addr_moves_new_requests_in_every_worker(backend_factory, proxy_factory):
    old, new = backend_factory("old"), backend_factory("new")
    kw = proxy_factory([("s1", old)], nbproc=2)
    assert get(kw.port, "/").body.startswith(b"hello from old")
    reply = request_text(kw.sock, "set server be/s1 addr 127.0.0.1 port %d" % new.port)
    assert reply == "port changed from '%d' to '%d' by 'stats socket command'\n\n" % (
        old.port, new.port)
    assert request_text(kw.sock, "set server be/s1 addr 127.0.0.1 port %d" % new.port) == \
        "no need to change the addr by 'stats socket command'\n\n"
    assert request_text(kw.sock, "set server be/s1 addr bogus") == \
        "Invalid addr 'bogus' by 'stats socket command'\n\n"
    served = set()
    for _ in range(10):                           # new connections: both workers
        served.add(get(kw.port, "/").body.split()[2])
    assert served == {b"new"}


def test_shutdown_sessions_cuts_the_exchanges_on_a_server(backend_factory, proxy_factory):
    slow = backend_factory("s1", lambda be, req: Reply(body=b"x", delay=3.0))
    kw = proxy_factory([slow], nbproc=1)
    with socket.create_connection(("127.0.0.1", kw.port), timeout=5) as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        deadline = time.monotonic() + 5
        while slow.request_count == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        t0 = time.monotonic()
        assert request_text(kw.sock, "shutdown sessions server be/s1") == "\n"
        got = b""
        try:
            for _ in range(10):
                chunk = s.recv(4096)
                if not chunk:
                    break
                got += chunk
        except ConnectionResetError:
            pass
        assert time.monotonic() - t0 < 2.5 and not got.endswith(b"x")
    assert request_text(kw.sock, "shutdown sessions server be/nope") == "No such server.\n\n"


def test_disable_health_ignores_a_failing_check_until_enabled(backend_factory, proxy_factory):
    sick = backend_factory("s1", lambda be, req: Reply(status=500, body=b"no"))
    kw = proxy_factory([sick], nbproc=1, server_opts="check inter 100ms rise 1 fall 1",
                       backend_lines=["option httpchk GET /health"])
    kw.wait_stats(lambda st: st["backends"]["be"]["servers"]["s1"]["status"] == "DOWN",
                  what="DOWN")
    assert request_text(kw.sock, "disable health be/s1") == "\n"
    kw.wait_stats(lambda st: st["backends"]["be"]["servers"]["s1"]["status"] == "no check",
                  what="unchecked")
    assert get(kw.port, "/").status == 500        # in rotation again: its answer goes through
    assert request_text(kw.sock, "enable health be/s1") == "\n"
    kw.wait_stats(lambda st: st["backends"]["be"]["servers"]["s1"]["status"] == "DOWN",
                  what="DOWN again")


def test_clear_counters_all_starts_the_totals_again(backend_factory, proxy_factory):
    kw = proxy_factory([backend_factory("s1")], nbproc=2)
    for _ in range(5):
        assert get(kw.port, "/").status == 200
    kw.wait_stats(lambda st: st["frontends"]["fe"]["req_tot"] >= 5, what="5 requests")
    assert request_text(kw.sock, "clear counters all") == "\n"
    kw.wait_stats(lambda st: st["frontends"]["fe"]["req_tot"] == 0, what="cleared")
    assert get(kw.port, "/").status == 200
    kw.wait_stats(lambda st: st["frontends"]["fe"]["req_tot"] == 1, what="counting again")


def test_show_errors_keeps_the_last_refused_request_of_each_frontend(backend_factory,
                                                                     proxy_factory):
    kw = proxy_factory([backend_factory("s1")], nbproc=2)
    assert request_text(kw.sock, "show errors").startswith("Total events captured on [")
    with socket.create_connection(("127.0.0.1", kw.port), timeout=5) as s:
        s.sendall(b"GET /\x01bad HTTP/1.1\r\nHost: x\r\n\r\n")
        assert s.recv(100).startswith(b"HTTP/1.1 400")
    deadline = time.monotonic() + 5
    text = ""
    while "invalid request" not in text and time.monotonic() < deadline:
        text = request_text(kw.sock, "show errors")
        time.sleep(0.1)
    assert ": 1\n" in text.splitlines()[0] + "\n"
    assert "] frontend fe (#2): invalid request" in text
    assert "  00000  GET /\\x01bad HTTP/1.1\\r\\n" in text
    assert "src 127.0.0.1:" in text


def test_show_sess_lists_the_connections_of_every_worker(backend_factory, proxy_factory):
    kw = proxy_factory([backend_factory("s1")], nbproc=2)
    clients = []
    try:
        for _ in range(10):                     # idle keep-alive clients, spread by the kernel
            c = HttpClient(kw.port)
            c.__enter__()
            assert c.request("GET", "/").status == 200
            clients.append(c)
        text = request_text(kw.sock, "show sess")
        lines = [ln for ln in text.splitlines() if ln]
        assert len(lines) == 10 and text.endswith("\n\n"), text
        assert all(" proto=tcpv4 src=127.0.0.1:" in ln and " fe=fe " in ln for ln in lines)
        assert len({ln.rsplit("pid=", 1)[1].split()[0] for ln in lines}) == 2   # both workers
    finally:
        for c in clients:
            c.__exit__(None, None, None)


def test_show_sess_survives_the_clients_eof_as_socat_sends_it(backend_factory, proxy_factory):
    """`echo "show sess" | socat - UNIX:SOCK`: the client half-closes at once; the
    reply, which comes when the workers answered, still reaches it (found in review)."""
    kw = proxy_factory([backend_factory("s1")], nbproc=2)
    with HttpClient(kw.port) as c:
        assert c.request("GET", "/").status == 200
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(5)
            s.connect(kw.sock)
            s.sendall(b"show sess\n")
            s.shutdown(socket.SHUT_WR)
            got = b""
            for _ in range(100):
                chunk = s.recv(65536)
                if not chunk:
                    break
                got += chunk
    lines = [ln for ln in got.decode().splitlines() if ln]
    assert len(lines) == 1 and " fe=fe " in lines[0], got


def test_show_sess_in_prompt_mode_then_the_next_line(backend_factory, proxy_factory):
    kw = proxy_factory([backend_factory("s1")], nbproc=2)
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(5)
        s.connect(kw.sock)
        s.sendall(b"prompt\nshow sess\nget weight be/s1\n")   # three lines in one write
        got = b""
        deadline = time.monotonic() + 5
        while got.count(b"> ") < 3 and time.monotonic() < deadline:
            got += s.recv(65536)
        assert got.endswith(b"1 (initial 1)\n\n> "), got
        s.sendall(b"quit\n")
