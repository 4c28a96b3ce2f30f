"""Error mapping: the client always gets a well-formed response (or a clean close), never a hang."""

import time

import pytest

from support.backend import Reply
from support.checks import assert_html_error
from support.client import ClosedError, HttpClient
from support.proxy import free_port


def test_refused_server_gets_503(proxy_factory):
    kw = proxy_factory([("dead", free_port())], nbproc=1)
    with HttpClient(kw.port) as c:
        r = c.request("GET", "/")
    assert_html_error(r, 503)


def test_garbage_from_server_gets_502(backend_factory, proxy_factory):
    b = backend_factory("s1", lambda be, req: Reply(raw=b"THIS IS NOT HTTP\r\n\r\n"))
    kw = proxy_factory([b], nbproc=1)
    with HttpClient(kw.port) as c:
        r = c.request("GET", "/")
    assert_html_error(r, 502)


def test_server_closing_before_any_response_byte_gets_502(backend_factory, proxy_factory):
    b = backend_factory("s1", lambda be, req: Reply(drop=True))
    kw = proxy_factory([b], nbproc=1)
    with HttpClient(kw.port) as c:
        r = c.request("GET", "/")
    assert_html_error(r, 502)


def test_server_closing_mid_body_closes_client_without_hang(backend_factory, proxy_factory):
    # Content-Length promises more than is sent: the head is already relayed,
    # so the only honest signal left for the client is a close.
    b = backend_factory("s1", lambda be, req: Reply(
        raw=b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\nonly this much"))
    kw = proxy_factory([b], nbproc=1)
    with HttpClient(kw.port, timeout=3) as c:
        c.send_request("GET", "/")
        with pytest.raises(ClosedError):   # a socket.timeout here would mean a hang
            c.read_response()


def test_server_timeout_gets_504(backend_factory, proxy_factory):
    b = backend_factory("s1", lambda be, req: Reply(body=b"late", delay=10))
    kw = proxy_factory([b], nbproc=1, timeouts=("connect 2s", "client 5s", "server 500ms"))
    t0 = time.monotonic()
    with HttpClient(kw.port) as c:
        r = c.request("GET", "/")
    waited = time.monotonic() - t0
    assert_html_error(r, 504)
    assert 0.4 <= waited <= 1.5, "504 after %.2f s with timeout server 500ms" % waited


def test_slow_server_within_timeout_server_is_not_cut_by_timeout_connect(backend_factory,
                                                                         proxy_factory):
    # timeout connect covers the handshake only; the wait for the answer is timeout server's
    b = backend_factory("s1", lambda be, req: Reply(body=b"slow but fine", delay=1.0))
    kw = proxy_factory([b], nbproc=1, timeouts=("connect 300ms", "client 5s", "server 5s"))
    with HttpClient(kw.port) as c:
        r = c.request("GET", "/")
    assert r.status == 200 and r.body == b"slow but fine"


def test_unparsable_request_gets_400_and_close(backends, proxy_factory):
    kw = proxy_factory(backends, nbproc=1)
    with HttpClient(kw.port) as c:
        c.send(b"THIS IS NOT A REQUEST\r\n\r\n")
        r = c.read_response()
        assert_html_error(r, 400)
        assert "close" in r.connection_tokens
        assert c.wait_closed(2)
    assert sum(b.request_count for b in backends) == 0


def test_tls_to_the_http_port_gets_400_at_once(backends, proxy_factory):
    """A TLS ClientHello (https:// to an http port) never completes an HTTP head: it
    gets its 400 from the first byte, not after `timeout http-request` (30 s here)."""
    kw = proxy_factory(backends, nbproc=1, defaults_lines=["timeout http-request 30s"])
    hello = bytes.fromhex("160301020001000001fc0303") + bytes(range(32))
    with HttpClient(kw.port, timeout=5) as c:
        c.send(hello)
        r = c.read_response()
        assert_html_error(r, 400)
        assert c.wait_closed(5)
    assert sum(b.request_count for b in backends) == 0


def test_request_with_both_content_length_and_chunked_gets_400(backends, proxy_factory):
    # RFC 9112 §6.1: a proxy must not forward such a message as is (smuggling)
    kw = proxy_factory(backends, nbproc=1)
    with HttpClient(kw.port) as c:
        c.send(b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n"
               b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
        r = c.read_response("POST")
        assert_html_error(r, 400)
        assert c.wait_closed(2)
    assert sum(b.request_count for b in backends) == 0


def test_errors_are_counted_in_stats(backend_factory, proxy_factory):
    b = backend_factory("s1", lambda be, req: Reply(raw=b"garbage\r\n\r\n"))
    kw = proxy_factory([b], nbproc=1)
    with HttpClient(kw.port) as c:
        assert c.request("GET", "/").status == 502
    st = kw.wait_stats(lambda s: s["frontends"]["fe"]["hrsp_5xx"] >= 1, what="hrsp_5xx 1")
    assert st["frontends"]["fe"]["hrsp_5xx"] == 1
    assert st["backends"]["be"]["servers"]["s1"]["eresp"] >= 1


def test_proxy_keeps_serving_after_errors(backend_factory, proxy_factory):
    def handler(be, req):
        return Reply(raw=b"junk\r\n\r\n") if req.target == "/bad" else None

    b = backend_factory("s1", handler)
    kw = proxy_factory([b], nbproc=1)
    for _ in range(5):
        with HttpClient(kw.port) as c:
            assert c.request("GET", "/bad").status == 502
    with HttpClient(kw.port) as c:
        assert c.request("GET", "/good").status == 200


def test_error_response_says_close_exactly_when_the_proxy_closes(backend_factory, proxy_factory):
    def handler(be, req):
        return Reply(raw=b"junk\r\n\r\n") if req.target == "/bad" else None

    b = backend_factory("s1", handler)
    kw = proxy_factory([b], nbproc=1)
    with HttpClient(kw.port) as c:
        r = c.request("GET", "/bad")
        assert r.status == 502
        if "close" in r.connection_tokens:
            assert c.wait_closed(2), "said Connection: close but kept the connection open"
        else:
            assert c.request("GET", "/good").status == 200, "closed without saying so"


def full_listener():
    """A listening socket whose accept queue is full: further connects to it hang
    (the kernel drops their SYNs), which is a connect timeout on loopback."""
    import socket
    lst = socket.socket()
    lst.bind(("127.0.0.1", 0))
    lst.listen(0)
    fillers = []
    for _ in range(4):
        s = socket.socket()
        s.setblocking(False)
        s.connect_ex(lst.getsockname())
        fillers.append(s)
    time.sleep(0.1)
    return lst, fillers


def test_timeout_connect_while_a_request_body_streams_is_a_503(proxy_factory):
    """The server never completes the handshake while the client is still sending
    its body: `timeout connect` is the stream's, whatever the client is doing; it
    gets 503 (HAProxy's answer to a connect timeout), not a 408."""
    lst, fillers = full_listener()
    try:
        kw = proxy_factory([("hung", "127.0.0.1:%d" % lst.getsockname()[1])], nbproc=1,
                           timeouts=("connect 300ms", "client 5s", "server 5s"),
                           backend_lines=["retries 0"])
        with HttpClient(kw.port, timeout=5) as c:
            c.send(b"POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n" + b"x" * 10)
            started = time.monotonic()
            r = c.read_response()
            waited = time.monotonic() - started
        assert_html_error(r, 503)
        assert waited < 3, "the 503 came after %.2f s" % waited
    finally:
        for s in fillers:
            s.close()
        lst.close()
