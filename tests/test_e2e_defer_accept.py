"""`bind ... defer-accept`: connections reach the worker with their request, and
the worker reads it at once instead of waiting for the selector to say so.

A client that asked to close is then never registered in the selector: these
tests drive that path through every way a close-mode exchange can end."""

import signal
import socket
import time

import pytest

from support.backend import Reply
from support.client import HttpClient, get
from support.proxy import make_config

REQ_CLOSE = b"GET /a HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
SILENT_WINDOW_S = 0.7      # the kernel takes a silent connection after ~1 s (TCP_DEFER_ACCEPT 1)


def fresh_stats(kw, backends):
    """Stats that count every request the backends have seen, so also every
    connection accepted before those requests (workers push counters every 250 ms)."""
    n = sum(b.request_count for b in backends)
    return kw.wait_stats(lambda s: s["frontends"]["fe"]["req_tot"] >= n,
                         what="%d requests counted" % n)


def silent_connection_is_a_session(kw, backends):
    """Whether a connection that sends nothing becomes a session at once: open one,
    make a request on another, and count the frontend's sessions once that request
    is counted (one more: deferred; two: taken at once). Then the silent one sends
    a request and must be served. Tried again when a run is slower than the
    kernel's ~1 s deferral window."""
    for _ in range(3):
        assert get(kw.port, "/").status == 200
        stot = fresh_stats(kw, backends)["frontends"]["fe"]["stot"]
        silent = socket.create_connection(("127.0.0.1", kw.port), timeout=5)
        t0 = time.monotonic()
        try:
            assert get(kw.port, "/").status == 200
            new = fresh_stats(kw, backends)["frontends"]["fe"]["stot"] - stot
            if time.monotonic() - t0 > SILENT_WINDOW_S:
                continue
            assert new in (1, 2)
            silent.sendall(REQ_CLOSE)
            c = HttpClient(kw.port, connect=False)
            c.sock = silent
            r = c.read_response()
            assert r.status == 200 and r.body.startswith(b"hello from")
            assert c.wait_closed(timeout=5)
            return new == 2
        finally:
            silent.close()
    pytest.fail("three tries each took more than %.1fs" % SILENT_WINDOW_S)


@pytest.mark.parametrize("defer", [True, False], ids=["defer-accept", "plain"])
def test_a_deferred_connection_is_accepted_once_it_talks(backends, proxy_factory, defer):
    kw = proxy_factory(backends, nbproc=1, bind_opts="defer-accept" if defer else "")
    assert silent_connection_is_a_session(kw, backends) is not defer


def test_reload_turns_defer_accept_on_and_off_on_the_sockets_it_keeps(backends, proxy_factory):
    kw = proxy_factory(backends, nbproc=1)
    assert silent_connection_is_a_session(kw, backends)
    for defer in (True, False):
        old = kw.worker_pids(kw.stats())
        kw.cfg.write_text(make_config(port=kw.port, servers=backends, sock=kw.sock, nbproc=1,
                                      bind_opts="defer-accept" if defer else ""))
        kw.send_signal(signal.SIGHUP)
        kw.wait_stats(lambda s: not s["info"].get("old_workers") and all(
            w["ready"] and w["pid"] and w["pid"] not in old for w in s["info"]["workers"]),
            timeout=10, what="only the new worker")
        assert silent_connection_is_a_session(kw, backends) is not defer


def test_a_failed_reload_leaves_defer_accept_as_it_was(backends, proxy_factory):
    kw = proxy_factory(backends, nbproc=1, bind_opts="defer-accept")
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen(1)
    try:
        # The bind that stays loses its option, but a second frontend's port is taken:
        # the reload fails, after the kept socket was found.
        text = make_config(port=kw.port, servers=backends, sock=kw.sock, nbproc=1)
        text += ("\nfrontend fe2\n    bind 127.0.0.1:%d\n    default_backend be\n"
                 % taken.getsockname()[1])
        kw.cfg.write_text(text)
        kw.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 10
        while "reload failed" not in kw.stderr_text():
            assert time.monotonic() < deadline, kw.stderr_text()
            time.sleep(0.05)
    finally:
        taken.close()
    assert silent_connection_is_a_session(kw, backends) is False


def test_close_mode_requests_reuse_server_connections(backend_factory, proxy_factory):
    b = backend_factory("s1")
    kw = proxy_factory([b], nbproc=1, bind_opts="defer-accept")
    for i in range(20):
        with HttpClient(kw.port) as c:
            c.send(REQ_CLOSE)
            r = c.read_response()
            assert r.status == 200 and r.header("Connection") == "close"
            assert c.wait_closed(timeout=5)
    assert b.request_count == 20
    assert b.conn_count == 1


def test_keep_alive_client_on_a_deferred_bind(backends, proxy_factory):
    kw = proxy_factory(backends, nbproc=1, bind_opts="defer-accept")
    stot = kw.stats()["frontends"]["fe"]["stot"]
    with HttpClient(kw.port) as c:
        for i in range(5):
            r = c.request("GET", "/%d" % i)
            assert r.status == 200 and r.header("Connection") != "close"
    st = kw.wait_stats(lambda s: s["frontends"]["fe"]["req_tot"] >= 5, what="5 requests")
    assert st["frontends"]["fe"]["stot"] == stot + 1


def test_bytes_after_a_close_request_are_drained_not_reset(backends, proxy_factory):
    kw = proxy_factory(backends, nbproc=1, bind_opts="defer-accept")
    with HttpClient(kw.port) as c:
        # A second request behind the one that asks to close: it is never answered,
        # and the first response must arrive whole (closing with unread input would reset).
        c.send(REQ_CLOSE + b"GET /b HTTP/1.1\r\nHost: t\r\n\r\n")
        r = c.read_response()
        assert r.status == 200 and r.body.startswith(b"hello from")
        c.sock.shutdown(socket.SHUT_WR)
        assert c.wait_closed(timeout=5)


def test_request_body_that_arrives_later(backend_factory, proxy_factory):
    b = backend_factory("s1")
    kw = proxy_factory([b], nbproc=1, bind_opts="defer-accept")
    with HttpClient(kw.port) as c:
        c.send(b"POST /up HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\nConnection: close\r\n"
               b"\r\n01234")
        time.sleep(0.2)
        c.send(b"56789")
        assert c.read_response().status == 200
    b.wait_requests(1)
    assert b.requests[0].body == b"0123456789"


def test_large_response_to_a_slow_close_client(backend_factory, proxy_factory):
    size = 4 * 1024 * 1024
    b = backend_factory("s1", lambda be, req: Reply(200, stream_len=size))
    kw = proxy_factory([b], nbproc=1, bind_opts="defer-accept")
    with HttpClient(kw.port, timeout=10) as c:
        c.send(REQ_CLOSE)
        time.sleep(0.3)          # the proxy fills the socket and must wait for us to read
        r = c.read_response(sink=lambda piece: None)
        assert r.status == 200 and r.body_len == size
        assert c.wait_closed(timeout=5)


def test_client_gone_before_its_response(backend_factory, proxy_factory):
    b = backend_factory("s1", lambda be, req: Reply(200, body=b"late", delay=0.3))
    kw = proxy_factory([b], nbproc=1, bind_opts="defer-accept")
    for _ in range(3):
        s = socket.create_connection(("127.0.0.1", kw.port), timeout=5)
        s.sendall(REQ_CLOSE)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        s.close()                # a reset, while the proxy waits for the server
    b.wait_requests(3)
    time.sleep(0.5)              # the late responses go to closed clients
    r = get(kw.port, "/")
    assert r.status == 200 and r.body == b"late"
    st = kw.wait_stats(lambda s: s["frontends"]["fe"]["scur"] == 0, what="no session left")
    assert st["info"]["worker_restarts"] == 0
