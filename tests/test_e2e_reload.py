"""Reload on SIGHUP/SIGUSR2: the master reads its configuration again; new workers
serve new connections on the same listening sockets while the old ones finish
their streams; a configuration that does not load changes nothing."""

import contextlib
import os
import signal
import socket
import threading
import time

import pytest

from support.backend import Reply
from support.client import HttpClient
from support.proxy import alive, free_port, make_config, run_cli


def rewrite(kw, servers, nbproc):
    """Write a new configuration for the running proxy `kw` (same port, same socket)."""
    kw.cfg.write_text(make_config(port=kw.port, servers=servers, sock=kw.sock, nbproc=nbproc))


def wait_new_generation(kw, old_pids, n, timeout=10.0):
    """Stats (bounded poll) once `n` ready workers run and none of them is an old one."""
    def fresh(st):
        ws = st["info"]["workers"]
        return (len(ws) == n and all(w["ready"] and w["pid"] for w in ws)
                and not {w["pid"] for w in ws} & set(old_pids))
    return kw.wait_stats(fresh, timeout=timeout, what="%d new ready workers" % n)


def wait_gone(pids, timeout=5.0):
    deadline = time.monotonic() + timeout
    while any(alive(p) for p in pids):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)
    return True


def wait_stderr(kw, text, timeout=5.0):
    deadline = time.monotonic() + timeout
    while text not in kw.stderr_text():
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)
    return True


@pytest.mark.parametrize("sig", [signal.SIGHUP, signal.SIGUSR2], ids=["SIGHUP", "SIGUSR2"])
def test_reload_sends_new_requests_to_the_new_configuration(backend_factory, proxy_factory, sig):
    a, b = backend_factory("a"), backend_factory("b")
    kw = proxy_factory([a], nbproc=1)
    with HttpClient(kw.port) as c:
        assert c.request("GET", "/").body.startswith(b"hello from a")
        old = kw.worker_pids(kw.stats())
        rewrite(kw, [b], nbproc=2)
        kw.send_signal(sig)
        wait_new_generation(kw, old, 2)
        # The old worker closes this idle keep-alive connection as it stops.
        assert c.wait_closed(3), "the old worker kept an idle client connection"
    for _ in range(4):
        with HttpClient(kw.port) as c:
            assert c.request("GET", "/").body.startswith(b"hello from b")
    assert wait_gone(old), "the old worker did not exit after the reload"
    assert alive(kw.pid), "the master is not the same process"
    assert "reloaded" in kw.stderr_text()


def test_reload_lets_a_request_in_flight_finish_on_the_old_configuration(backend_factory,
                                                                        proxy_factory):
    a = backend_factory("a", lambda be, req: Reply(200, body=b"slow answer from a", delay=2.0))
    b = backend_factory("b")
    kw = proxy_factory([a], nbproc=1)
    old = kw.worker_pids(kw.stats())
    with HttpClient(kw.port, timeout=8) as c:
        c.send(b"GET /slow HTTP/1.1\r\nHost: t\r\n\r\n")
        a.wait_requests(1)
        rewrite(kw, [b], nbproc=1)
        kw.send_signal(signal.SIGHUP)
        st = wait_new_generation(kw, old, 1)
        # While it finishes, the old worker is listed apart, in JSON and in the table.
        assert [w["pid"] for w in st["info"]["old_workers"]] == old
        assert st["info"]["reloads"] == 1
        table = run_cli("stats", "-s", kw.sock)
        assert table.returncode == 0, table.stderr
        assert "old workers finishing their streams: %d" % old[0] in table.stdout, table.stdout
        r = c.read_response()
        assert r.status == 200 and r.body == b"slow answer from a"
        # A stopping worker tells the client not to send another request here.
        assert r.header("Connection") == "close"
        assert c.wait_closed(3)
    with HttpClient(kw.port) as c:
        assert c.request("GET", "/").body.startswith(b"hello from b")
    assert wait_gone(old)
    st = kw.wait_stats(lambda s: s["info"]["old_workers"] == [], what="no old worker listed")
    assert st["info"]["reloads"] == 1


def test_reload_with_a_broken_configuration_changes_nothing(backend_factory, proxy_factory):
    a = backend_factory("a")
    kw = proxy_factory([a], nbproc=1)
    old = kw.worker_pids(kw.stats())
    kw.cfg.write_text("frontend fe\n    bind 127.0.0.1:%d\n    default_backend nowhere\n" % kw.port)
    kw.send_signal(signal.SIGHUP)
    assert wait_stderr(kw, "reload failed"), kw.stderr_text()[-2000:]
    assert "still running the previous configuration" in kw.stderr_text()
    assert "Traceback" not in kw.stderr_text()
    with HttpClient(kw.port) as c:
        assert c.request("GET", "/").body.startswith(b"hello from a")
    assert kw.worker_pids(kw.stats()) == old


@pytest.mark.parametrize("bad", [
    "global\n    maxconn %s\n" % ("9" * 5000),          # past Python's 4300-digit limit
    ".if %s1\n.endif\n" % ("!" * 2000),                 # past its recursion limit
    ".if %s1%s\n.endif\n" % ("(" * 3000, ")" * 3000),
], ids=["5000 digits", "2000 negations", "3000 parentheses"])
def test_reload_with_a_pathological_file_changes_nothing(backend_factory, proxy_factory, bad):
    """These once escaped the parser as Python errors and took the master down with
    every worker: a reload must fail with one line and keep serving."""
    a = backend_factory("a")
    kw = proxy_factory([a], nbproc=1)
    old = kw.worker_pids(kw.stats())
    kw.cfg.write_text(bad + make_config(port=kw.port, servers=[a], sock=kw.sock, nbproc=2))
    kw.send_signal(signal.SIGHUP)
    if "!" * 2000 in bad:
        # An even run of negations is just true: that file is valid and reloads.
        wait_new_generation(kw, old, 2)
    else:
        assert wait_stderr(kw, "reload failed"), kw.stderr_text()[-2000:]
        assert kw.worker_pids(kw.stats()) == old
    assert "Traceback" not in kw.stderr_text()
    with HttpClient(kw.port) as c:
        assert c.request("GET", "/").body.startswith(b"hello from a")


def test_reload_to_a_port_already_taken_changes_nothing(backend_factory, proxy_factory):
    a = backend_factory("a")
    kw = proxy_factory([a], nbproc=1)
    old = kw.worker_pids(kw.stats())
    text = make_config(port=kw.port, servers=[a], sock=kw.sock, nbproc=1)
    kw.cfg.write_text(text + "\nfrontend fe2\n    bind 127.0.0.1:%d\n    default_backend be\n"
                      % a.port)                  # the backend's own port: bind fails
    kw.send_signal(signal.SIGHUP)
    assert wait_stderr(kw, "reload failed"), kw.stderr_text()[-2000:]
    assert "cannot bind" in kw.stderr_text()
    with HttpClient(kw.port) as c:
        assert c.request("GET", "/").body.startswith(b"hello from a")
    assert kw.worker_pids(kw.stats()) == old


def test_no_connection_is_refused_while_reloading(backend_factory, proxy_factory):
    a, b = backend_factory("a"), backend_factory("b")
    kw = proxy_factory([a], nbproc=2)
    old = kw.worker_pids(kw.stats())
    results, stop = [], threading.Event()

    def client_loop():
        deadline = time.monotonic() + 8
        while not stop.is_set() and time.monotonic() < deadline and len(results) < 2000:
            try:
                with HttpClient(kw.port, timeout=3) as c:
                    results.append(c.request("GET", "/", headers=[("Connection", "close")]).status)
            except Exception as exc:             # noqa: BLE001 - recorded, asserted below
                results.append(repr(exc))

    t = threading.Thread(target=client_loop)
    t.start()
    try:
        time.sleep(0.3)
        rewrite(kw, [b], nbproc=2)
        kw.send_signal(signal.SIGHUP)
        wait_new_generation(kw, old, 2)
        assert wait_gone(old)
        time.sleep(0.3)
    finally:
        stop.set()
        t.join(10)
    assert len(results) > 20
    assert [r for r in results if r != 200] == []


def test_idle_close_on_response_keeps_idle_connections_for_one_more_request(backend_factory,
                                                                          proxy_factory):
    """HAProxy's `option idle-close-on-response`: at a reload the old worker keeps an
    idle keep-alive connection, answers its next request with Connection: close on
    the old configuration, then closes it and exits."""
    a, b = backend_factory("a"), backend_factory("b")
    kw = proxy_factory([a], nbproc=1, frontend_lines=["option idle-close-on-response"])
    with HttpClient(kw.port) as c:
        assert c.request("GET", "/").body.startswith(b"hello from a")
        old = kw.worker_pids(kw.stats())
        kw.cfg.write_text(make_config(port=kw.port, servers=[b], sock=kw.sock, nbproc=1,
                                      frontend_lines=["option idle-close-on-response"]))
        kw.send_signal(signal.SIGHUP)
        wait_new_generation(kw, old, 1)
        assert not c.wait_closed(0.5), "the idle connection was closed at the reload"
        r = c.request("GET", "/")
        assert r.body.startswith(b"hello from a") and r.header("Connection") == "close"
        assert c.wait_closed(3)
    assert wait_gone(old), "the old worker did not exit after its last connection closed"
    with HttpClient(kw.port) as c:
        assert c.request("GET", "/").body.startswith(b"hello from b")


def test_keep_alive_clients_lose_nothing_across_reloads_with_idle_close_on_response(
        backend_factory, proxy_factory):
    """Keep-alive clients sending back to back through five reloads: every request
    gets its 200. (Without the option, as in HAProxy by default, a request sent on an
    idle connection just as the old worker closes it can be lost.)"""
    a = backend_factory("a")
    kw = proxy_factory([a], nbproc=2, frontend_lines=["option idle-close-on-response"])
    results, stop = [], threading.Event()

    def client_loop():
        deadline = time.monotonic() + 15
        c = None
        while not stop.is_set() and time.monotonic() < deadline and len(results) < 20000:
            try:
                if c is None:
                    c = HttpClient(kw.port, timeout=3)
                r = c.request("GET", "/")
                results.append(r.status)
                if r.header("Connection") == "close":
                    c.close()
                    c = None
            except Exception as exc:             # noqa: BLE001 - recorded, asserted below
                results.append(repr(exc))
                if c is not None:
                    c.close()
                c = None
        if c is not None:
            c.close()

    threads = [threading.Thread(target=client_loop) for _ in range(3)]
    for t in threads:
        t.start()
    try:
        for _ in range(5):
            time.sleep(0.3)
            old = kw.worker_pids(kw.stats())
            kw.send_signal(signal.SIGHUP)
            wait_new_generation(kw, old, 2)
        time.sleep(0.3)
    finally:
        stop.set()
        for t in threads:
            t.join(20)
    assert len(results) > 100
    assert [r for r in results if r != 200] == []


def test_two_reloads_in_a_row_while_an_old_worker_still_finishes_a_request(backend_factory,
                                                                            proxy_factory):
    a = backend_factory("a", lambda be, req: Reply(200, body=b"slow answer from a", delay=1.5))
    b, c3 = backend_factory("b"), backend_factory("c")
    kw = proxy_factory([a], nbproc=1)
    first = kw.worker_pids(kw.stats())
    with HttpClient(kw.port, timeout=6) as slow:
        slow.send(b"GET /slow HTTP/1.1\r\nHost: t\r\n\r\n")
        a.wait_requests(1)
        rewrite(kw, [b], nbproc=1)
        kw.send_signal(signal.SIGHUP)
        second = kw.worker_pids(wait_new_generation(kw, first, 1))
        rewrite(kw, [c3], nbproc=2)
        kw.send_signal(signal.SIGHUP)
        wait_new_generation(kw, first + second, 2)
        r = slow.read_response()
        assert r.status == 200 and r.body == b"slow answer from a"
    for _ in range(4):
        with HttpClient(kw.port) as c:
            assert c.request("GET", "/").body.startswith(b"hello from c")
    assert wait_gone(first + second)
    assert b.request_count == 0


def many_requests(port, n, results):
    for _ in range(n):
        try:
            with HttpClient(port, timeout=3) as c:
                results.append(c.request("GET", "/", headers=[("Connection", "close")]).status)
        except Exception as exc:                 # noqa: BLE001 - recorded, asserted by the caller
            results.append(repr(exc))


def test_fewer_workers_after_a_reload_reset_no_connection(backend_factory, proxy_factory):
    """nbproc 2 -> 1 while old workers still finish slow requests: the dropped slot's
    socket goes to the new worker, so nothing queued in it is reset."""
    a = backend_factory("a", lambda be, req: Reply(200, body=b"slow", delay=1.0)
                        if req.target == "/slow" else Reply(200, body=b"hello from a"))
    kw = proxy_factory([a], nbproc=2)
    old = kw.worker_pids(kw.stats())
    slow = [HttpClient(kw.port, timeout=5) for _ in range(6)]
    try:
        for c in slow:
            c.send(b"GET /slow HTTP/1.1\r\nHost: t\r\n\r\n")
        a.wait_requests(6)
        kw.cfg.write_text(make_config(port=kw.port, servers=[a], sock=kw.sock, nbproc=1))
        kw.send_signal(signal.SIGHUP)
        wait_new_generation(kw, old, 1)
        results = []
        many_requests(kw.port, 150, results)
        for c in slow:
            r = c.read_response()
            assert r.status == 200 and r.body == b"slow"
    finally:
        for c in slow:
            c.close()
    assert [r for r in results if r != 200] == []
    assert wait_gone(old)


def test_reload_of_a_hostname_bind_keeps_its_sockets(backend_factory, proxy_factory, tmp_path):
    """`bind localhost:P` listens on 127.0.0.1: the reload must find those sockets
    again (a new socket beside each old one would split the port's connections
    with sockets nobody accepts on while the old workers finish)."""
    a = backend_factory("a", lambda be, req: Reply(200, body=b"slow", delay=1.0)
                        if req.target == "/slow" else Reply(200, body=b"hello from a"))
    port = free_port()
    text = make_config(port=port, servers=[a], sock=tmp_path / "kw.sock", nbproc=2).replace(
        "bind 127.0.0.1:%d" % port, "bind localhost:%d" % port)
    kw = proxy_factory(config=text, bind_ports=[port], nbproc=2, sock=False,
                       env={"KEEPWARM_SOCKET": str(tmp_path / "kw.sock")})
    old = kw.worker_pids(kw.stats())
    slow = [HttpClient(port, timeout=5) for _ in range(6)]
    try:
        for c in slow:
            c.send(b"GET /slow HTTP/1.1\r\nHost: t\r\n\r\n")
        a.wait_requests(6)
        kw.send_signal(signal.SIGHUP)
        wait_new_generation(kw, old, 2)
        results = []
        many_requests(port, 150, results)
        for c in slow:
            assert c.read_response().status == 200
    finally:
        for c in slow:
            c.close()
    assert [r for r in results if r != 200] == []
    assert "reloaded" in kw.stderr_text()


def test_reload_of_a_config_with_the_same_bind_twice_starts_working_workers(backend_factory,
                                                                           proxy_factory, tmp_path):
    a = backend_factory("a")
    port = free_port()
    text = make_config(port=port, servers=[a], sock=tmp_path / "kw.sock", nbproc=1).replace(
        "    bind 127.0.0.1:%d\n" % port, "    bind 127.0.0.1:%d\n    bind 127.0.0.1:%d\n" % (port, port))
    kw = proxy_factory(config=text, bind_ports=[port], nbproc=1, sock=False,
                       env={"KEEPWARM_SOCKET": str(tmp_path / "kw.sock")})
    old = kw.worker_pids(kw.stats())
    kw.send_signal(signal.SIGHUP)
    st = wait_new_generation(kw, old, 1)
    new = kw.worker_pids(st)
    for _ in range(5):
        with HttpClient(port) as c:
            assert c.request("GET", "/").status == 200
    assert kw.worker_pids(kw.stats()) == new, "a new worker crashed and was restarted"
    assert "Traceback" not in kw.stderr_text()


def test_reload_with_an_unresolvable_server_name_changes_nothing(backend_factory, proxy_factory):
    a = backend_factory("a")
    kw = proxy_factory([a], nbproc=1)
    old = kw.worker_pids(kw.stats())
    text = make_config(port=kw.port, servers=[a], sock=kw.sock, nbproc=1)
    kw.cfg.write_text(text + "    server bad %s.example:80\n" % ("x" * 70))   # label > 63 bytes
    kw.send_signal(signal.SIGHUP)
    assert wait_stderr(kw, "reload failed"), kw.stderr_text()[-2000:]
    assert "Traceback" not in kw.stderr_text()
    with HttpClient(kw.port) as c:
        assert c.request("GET", "/").body.startswith(b"hello from a")
    assert kw.worker_pids(kw.stats()) == old and alive(kw.pid)


def test_a_burst_of_reload_signals_ends_with_one_working_generation(backend_factory,
                                                                     proxy_factory):
    a, b = backend_factory("a"), backend_factory("b")
    kw = proxy_factory([a], nbproc=2)
    old = kw.worker_pids(kw.stats())
    rewrite(kw, [b], nbproc=2)
    for _ in range(5):
        kw.send_signal(signal.SIGHUP)
    st = wait_new_generation(kw, old, 2)
    st = kw.wait_stats(lambda s: s["info"]["old_workers"] == [], timeout=10,
                       what="every old generation gone")
    assert 1 <= st["info"]["reloads"] <= 5
    for _ in range(4):
        with HttpClient(kw.port) as c:
            assert c.request("GET", "/").body.startswith(b"hello from b")
    assert wait_gone(old)
    # Only the master and the 2 current workers are left.
    assert sorted(kw.tree_pids()) == sorted([kw.pid] + kw.worker_pids(kw.stats()))


def test_health_checks_run_on_the_new_configuration_after_a_reload(backend_factory,
                                                                  proxy_factory):
    """The reload adds a server that is down: the new checks mark it DOWN and
    requests go only to the live one."""
    a = backend_factory("a")
    kw = proxy_factory([a], nbproc=1, server_opts="check inter 200ms")
    old = kw.worker_pids(kw.stats())
    dead = socket.socket()
    dead.bind(("127.0.0.1", 0))
    dead_port = dead.getsockname()[1]
    dead.close()                                   # nothing listens there
    kw.cfg.write_text(make_config(port=kw.port, servers=[a, ("gone", dead_port)], sock=kw.sock,
                                  nbproc=1, server_opts="check inter 200ms fall 2"))
    kw.send_signal(signal.SIGHUP)
    wait_new_generation(kw, old, 1)
    st = kw.wait_stats(lambda s: s["backends"]["be"]["servers"]["gone"]["status"] == "DOWN",
                       timeout=5, what="the new server checked DOWN")
    assert st["backends"]["be"]["servers"]["a"]["status"] == "UP"
    for _ in range(6):
        with HttpClient(kw.port) as c:
            assert c.request("GET", "/").status == 200


def test_worker_restarts_are_counted_across_reloads(backend_factory, proxy_factory):
    a = backend_factory("a")
    kw = proxy_factory([a], nbproc=1)
    old = kw.worker_pids(kw.stats())
    os.kill(old[0], signal.SIGKILL)
    st = kw.wait_stats(lambda s: s["info"]["worker_restarts"] == 1 and all(
        w["ready"] and w["pid"] not in old for w in s["info"]["workers"]), what="a restart")
    restarted = kw.worker_pids(st)
    kw.send_signal(signal.SIGHUP)
    st = wait_new_generation(kw, restarted, 1)
    assert st["info"]["reloads"] == 1
    assert st["info"]["worker_restarts"] == 1        # was reset to 0 by the reload
    assert st["info"]["workers"][0]["restarts"] == 0  # the new slot's own count




@contextlib.contextmanager
def old_worker_held(kw, old):
    """Reload with the (single) old worker held by SIGSTOP until the block ends, the
    new generation ready: the master's stop waits in its pipe, ahead of anything
    the block sends."""
    os.kill(old[0], signal.SIGSTOP)
    try:
        kw.send_signal(signal.SIGHUP)
        wait_new_generation(kw, old, 1)
        yield
    finally:
        os.kill(old[0], signal.SIGCONT)


def test_reload_answers_a_request_waiting_unread_on_an_idle_keepalive_connection(
        backend_factory, proxy_factory):
    """At a reload the old worker closes its idle keep-alive connections. One whose
    next request already waits in the kernel, unread, is not idle: the worker must
    read it and answer it (saying close), not close the connection under it, which
    loses the request (a reset, or a close with no answer). Under wrk -c32 that
    lost ~18 requests per reload, HAProxy ~1.

    The old worker is held (SIGSTOP) while the master tells it to stop and the
    request arrives, so it finds both waiting when it runs again, the stop first."""
    a = backend_factory("a")
    kw = proxy_factory([a], nbproc=1)
    with HttpClient(kw.port, timeout=5) as c:
        assert c.request("GET", "/1").status == 200
        old = kw.worker_pids(kw.stats())
        with old_worker_held(kw, old):
            c.send(b"GET /2 HTTP/1.1\r\nHost: t\r\n\r\n")
            time.sleep(0.2)                  # on loopback it is there long before
        r = c.read_response()
        assert r.status == 200 and r.body.startswith(b"hello from a")
        assert "close" in r.connection_tokens
        assert c.wait_closed(3)
    assert [x.target for x in a.requests] == ["/1", "/2"]
    assert wait_gone(old)


def test_reload_answers_a_request_sent_just_after_the_stop_on_an_idle_connection(
        backend_factory, proxy_factory):
    """A stopping worker closes an idle keep-alive connection only once it has been
    idle for a tick (250 ms) since the stop: a busy client's next request, sent the
    moment its previous answer arrived, is on its way when the stop begins, and a
    close would cross it (HAProxy closes at once and loses ~2 per reload under wrk
    -c32). Here it comes 50 ms after the old worker began to stop: it is answered,
    saying close."""
    a = backend_factory("a")
    kw = proxy_factory([a], nbproc=1)
    with HttpClient(kw.port, timeout=5) as c:
        assert c.request("GET", "/1").status == 200
        old = kw.worker_pids(kw.stats())
        with old_worker_held(kw, old):
            pass                             # it finds the stop waiting, and nothing else
        time.sleep(0.05)
        c.send(b"GET /2 HTTP/1.1\r\nHost: t\r\n\r\n")
        r = c.read_response()
        assert r.status == 200 and "close" in r.connection_tokens
        assert c.wait_closed(3)
    assert [x.target for x in a.requests] == ["/1", "/2"]
    assert wait_gone(old)
