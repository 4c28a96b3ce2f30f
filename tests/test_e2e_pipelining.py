"""Pipelining end to end (issue 4, "Pipelining"; RFC 9112 §9.3.2).

Requests that arrive together are forwarded one at a time and answered in
order; what follows a request that ends the connection (`Connection: close`,
an HTTP/1.0 request without keep-alive, a refused request) is never forwarded.
"""

import socket
import threading
import time

from support.backend import Reply
from support.checks import assert_html_error
from support.client import HttpClient, encode_chunked


def echo_target(delay_for=None):
    def handler(be, req):
        delay = 0.2 if delay_for and req.target in delay_for else 0
        return Reply(body=req.target.encode() + b"|" + (req.body or b""), delay=delay)
    return handler


def test_requests_sent_in_one_write_are_forwarded_and_answered_in_order(backend_factory,
                                                                        proxy_factory):
    # The first request is slow: a proxy answering out of order would be caught.
    bs = [backend_factory("s1", echo_target({"/p0"})), backend_factory("s2", echo_target({"/p0"}))]
    kw = proxy_factory(bs, nbproc=1)
    targets = ["/p%d" % i for i in range(10)]
    with HttpClient(kw.port) as c:
        c.send(b"".join(b"GET %s HTTP/1.1\r\nHost: t\r\n\r\n" % t.encode() for t in targets))
        bodies = [c.read_response().body for _ in targets]
        assert bodies == [t.encode() + b"|" for t in targets]
        assert c.request("GET", "/after").status == 200
    order = targets + ["/after"]
    for b in bs:       # each server got its share in client order, one at a time
        got = [q.target for q in b.requests]
        assert got == sorted(got, key=order.index), (b.name, got)
    assert sorted(q.target for b in bs for q in b.requests) == sorted(order)


def test_pipelined_request_after_connection_close_is_not_forwarded(backend_factory, proxy_factory):
    b = backend_factory("s1", echo_target())
    kw = proxy_factory([b], nbproc=1)
    with HttpClient(kw.port, timeout=3) as c:
        c.send(b"GET /last HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
               b"GET /never HTTP/1.1\r\nHost: t\r\n\r\n"
               b"POST /never-either HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\nabc")
        r = c.read_response()
        assert r.status == 200 and r.body == b"/last|"
        assert "close" in r.connection_tokens
        assert c.wait_closed(2), "more was answered after Connection: close"
    assert [q.target for q in b.requests] == ["/last"]


def test_pipelined_request_after_an_http10_request_without_keep_alive_is_not_forwarded(
        backend_factory, proxy_factory):
    b = backend_factory("s1", echo_target())
    kw = proxy_factory([b], nbproc=1)
    with HttpClient(kw.port, timeout=3) as c:
        c.send(b"GET /old HTTP/1.0\r\n\r\nGET /never HTTP/1.1\r\nHost: t\r\n\r\n")
        r = c.read_response()
        assert r.status == 200 and r.body == b"/old|"
        assert c.wait_closed(2)
    assert [q.target for q in b.requests] == ["/old"]


def test_pipelined_requests_with_length_and_chunked_bodies_are_answered_in_order(backend_factory,
                                                                                proxy_factory):
    b = backend_factory("s1", echo_target({"/a"}))
    kw = proxy_factory([b], nbproc=1)
    wire = (b"POST /a HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nfirst"
            b"GET /b HTTP/1.1\r\nHost: t\r\n\r\n"
            b"POST /c HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
            + encode_chunked([b"sec", b"ond"]) +
            b"PUT /d HTTP/1.1\r\nHost: t\r\nContent-Length: 2000\r\n\r\n" + b"z" * 2000 +
            b"POST /e HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n")
    expect = [b"/a|first", b"/b|", b"/c|second", b"/d|" + b"z" * 2000, b"/e|"]
    with HttpClient(kw.port) as c:
        c.send(wire)
        assert [c.read_response("POST").body for _ in expect] == expect
        assert c.request("GET", "/after").status == 200
    assert [(q.target, q.body) for q in b.requests] == [
        ("/a", b"first"), ("/b", b""), ("/c", b"second"), ("/d", b"z" * 2000), ("/e", b""),
        ("/after", b"")]
    assert {q.conn_id for q in b.requests} == {1}


def test_pipeline_split_mid_request_across_writes_is_answered_in_order(backend_factory,
                                                                       proxy_factory):
    b = backend_factory("s1", echo_target({"/x"}))
    kw = proxy_factory([b], nbproc=1)
    with HttpClient(kw.port) as c:
        c.send(b"GET /x HTTP/1.1\r\nHost: t\r\n\r\nPOST /y HTTP/1.1\r\nHost: t\r\nContent-Le")
        first = c.read_response()
        c.send(b"ngth: 4\r\n\r\nbodyGET /z HTTP/1.1\r\nHost: t\r\n\r\n")
        assert [first.body, c.read_response("POST").body, c.read_response().body] == \
            [b"/x|", b"/y|body", b"/z|"]


def test_3000_pipelined_requests_larger_than_the_proxys_hold_buffer_are_all_answered(
        backend_factory, proxy_factory):
    # ~100 KiB of requests in flight: the proxy must stop reading and resume,
    # never drop or reorder. The sender runs in its own thread so that neither
    # side's buffers can deadlock the test.
    b = backend_factory("s1", echo_target())
    kw = proxy_factory([b], nbproc=1)
    n = 3000
    wire = b"".join(b"GET /q%d HTTP/1.1\r\nHost: t\r\n\r\n" % i for i in range(n))
    with HttpClient(kw.port, timeout=20) as c:
        failure = []

        def send():
            try:
                c.send(wire)
            except OSError as exc:
                failure.append(exc)

        sender = threading.Thread(target=send, daemon=True)
        sender.start()
        bodies = [c.read_response().body for _ in range(n)]
        sender.join(10)
        assert not sender.is_alive() and not failure, failure
    assert bodies == [b"/q%d|" % i for i in range(n)]
    assert b.request_count == n


def test_a_refused_request_in_a_pipeline_ends_it_after_the_earlier_answers(backend_factory,
                                                                           proxy_factory):
    b = backend_factory("s1", echo_target())
    kw = proxy_factory([b], nbproc=1)
    with HttpClient(kw.port, timeout=3) as c:
        c.send(b"GET /ok HTTP/1.1\r\nHost: t\r\n\r\n"
               b"GET /bad HTTP/1.1\r\nHost: t\r\nHost: u\r\n\r\n"
               b"GET /never HTTP/1.1\r\nHost: t\r\n\r\n")
        assert c.read_response().body == b"/ok|"
        r = c.read_response()
        assert_html_error(r, 400)
        assert c.wait_closed(2)
    assert [q.target for q in b.requests] == ["/ok"]


def test_a_client_that_half_closes_after_its_pipeline_gets_every_answer(backend_factory,
                                                                        proxy_factory):
    """`printf 'GET...GET...' | nc -N`: the requests, then shutdown(SHUT_WR). Every
    complete request is answered in order, the last answer says close, then the
    connection closes (only the first used to be answered)."""
    b = backend_factory("s1", echo_target({"/p0"}))
    kw = proxy_factory([b], nbproc=1)
    targets = ["/p%d" % i for i in range(20)]
    with HttpClient(kw.port) as c:
        c.send(b"".join(b"GET %s HTTP/1.1\r\nHost: t\r\n\r\n" % t.encode() for t in targets))
        c.sock.shutdown(socket.SHUT_WR)
        answers = [c.read_response() for _ in targets]
        assert [r.body for r in answers] == [t.encode() + b"|" for t in targets]
        assert [r.header("Connection") for r in answers[:-1]] == [None] * (len(targets) - 1)
        assert answers[-1].header("Connection") == "close"
        assert c.wait_closed(3)
    assert [q.target for q in b.requests] == targets


def test_a_half_close_in_the_middle_of_a_pipelined_head_ends_after_the_complete_ones(
        backend_factory, proxy_factory):
    b = backend_factory("s1", echo_target({"/a"}))
    kw = proxy_factory([b], nbproc=1)
    with HttpClient(kw.port) as c:
        c.send(b"GET /a HTTP/1.1\r\nHost: t\r\n\r\nGET /b HTTP/1.1\r\nHost: t\r\n\r\nGET /c HTT")
        c.sock.shutdown(socket.SHUT_WR)
        assert c.read_response().body == b"/a|"
        assert c.read_response().body == b"/b|"
        assert c.wait_closed(3)          # the unfinished third head is dropped
    assert [q.target for q in b.requests] == ["/a", "/b"]


def test_thousands_of_pipelined_requests_answered_at_once_do_not_crash_the_worker(
        backend_factory, proxy_factory):
    """Answers made on the spot (503: the only server is disabled) used to nest a call
    chain per pipelined request, and a RecursionError took the worker down at ~250."""
    b = backend_factory("s1")
    kw = proxy_factory([b], nbproc=1, server_opts="disabled")
    n = 1500
    with HttpClient(kw.port, timeout=10) as c:
        c.send(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n" * n)
        statuses = [c.read_response().status for _ in range(n)]
        assert statuses == [503] * n
        assert c.request("GET", "/after").status == 503     # the connection still works
    st = kw.wait_stats(lambda s: s["frontends"]["fe"]["req_tot"] >= n + 1, what="all counted")
    assert st["info"]["worker_restarts"] == 0
    assert "internal error" not in kw.stderr_text()


def test_a_body_cut_by_a_half_close_is_never_forwarded(backend_factory, proxy_factory):
    b = backend_factory("s1", echo_target())
    kw = proxy_factory([b], nbproc=1)
    with HttpClient(kw.port) as c:
        c.send(b"GET /a HTTP/1.1\r\nHost: t\r\n\r\n"
               b"POST /b HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\nabc")
        c.sock.shutdown(socket.SHUT_WR)
        assert c.read_response().body == b"/a|"
        assert c.wait_closed(2), "the session waited for a body that cannot come"
    assert [q.target for q in b.requests] == ["/a"]
    st = kw.wait_stats(lambda s: s["frontends"]["fe"]["cli_abrt"] >= 1, what="cli_abrt")
    assert st["frontends"]["fe"]["scur"] == 0


def test_a_half_close_does_not_cut_the_answer_still_on_its_way(backend_factory, proxy_factory):
    """The answer before the cut request is about as big as the socket buffers
    between proxy and client (a few MB on loopback), and the client reads late: the
    proxy holds the answer's end when the server is done with it, and that end must
    arrive before the connection closes. Sizes sweep the window where it happens on
    this machine (2.99-3.01 MB answers lost their last 2-20 KB before the fix)."""
    tail = b"POST /x HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\nabc"   # cut short
    sizes = range(2_800_000, 3_200_000, 10_000)
    b = backend_factory("s1", lambda be, req: Reply(200, body=b"s" * int(req.target[1:])))
    kw = proxy_factory([b], nbproc=1)
    short = []
    for size in sizes:
        c = HttpClient(kw.port, timeout=10, connect=False)
        c.sock = socket.socket()
        c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        c.sock.settimeout(10)
        try:
            c.sock.connect(("127.0.0.1", kw.port))
            c.send(b"GET /%d HTTP/1.1\r\nHost: t\r\n\r\n" % size + tail)
            c.sock.shutdown(socket.SHUT_WR)
            time.sleep(0.1)
            try:
                r = c.read_response(sink=lambda piece: None)
                if r.body_len != size:
                    short.append((size, r.body_len))
            except (OSError, AssertionError) as exc:
                short.append((size, repr(exc)[:80]))
        finally:
            c.close()
    assert short == []
