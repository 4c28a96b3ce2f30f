"""Connection modes as HAProxy combines them: http-keep-alive (default), http-server-close, httpclose."""

import pytest

from support.client import HttpClient


def _two_requests(kw):
    with HttpClient(kw.port) as c:
        first = c.request("GET", "/one")
        second = c.request("GET", "/two")
    return first, second


def test_default_keep_alive_sends_no_connection_header_and_reuses_the_server_connection(
        backend_factory, proxy_factory):
    b = backend_factory("s1")
    kw = proxy_factory([b], nbproc=1)
    first, second = _two_requests(kw)
    assert first.status == second.status == 200
    assert b.conn_count == 1
    assert all(r.header("Connection") is None for r in b.requests)


@pytest.mark.parametrize("section", ["frontend_lines", "backend_lines"])
def test_http_server_close_tells_the_server_and_keeps_the_client(section, backend_factory,
                                                                  proxy_factory):
    b = backend_factory("s1")
    kw = proxy_factory([b], nbproc=1, **{section: ["option http-server-close"]})
    with HttpClient(kw.port) as c:
        first = c.request("GET", "/one")
        second = c.request("GET", "/two")        # same client connection: it stayed open
    assert first.status == second.status == 200
    assert [r.header("Connection") for r in b.requests] == ["close", "close"]
    assert b.conn_count == 2


def test_httpclose_closes_the_client_connection_after_the_response(backend_factory, proxy_factory):
    b = backend_factory("s1")
    kw = proxy_factory([b], nbproc=1, backend_lines=["option httpclose"])
    with HttpClient(kw.port) as c:
        r = c.request("GET", "/one")
        assert r.status == 200
        assert (r.header("Connection") or "").lower() == "close"
        assert c.wait_closed(3), "client connection left open under option httpclose"
    assert b.requests[0].header("Connection") == "close"


def test_empty_lines_before_a_request_line_are_not_forwarded(backend_factory, proxy_factory):
    # RFC 9112 §2.2: a server SHOULD ignore at least one empty line before the request line.
    b = backend_factory("s1")
    kw = proxy_factory([b], nbproc=1)
    with HttpClient(kw.port) as c:
        c.send(b"\r\n\r\nGET /lead HTTP/1.1\r\nHost: x\r\n\r\n")
        assert c.read_response().status == 200
    assert [r.target for r in b.requests] == ["/lead"]
    assert not b.errors
