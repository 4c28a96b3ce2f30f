"""Client-side keep-alive rules (RFC 9112 §9.3) and pipelining, end to end."""

import time

from support.backend import Reply
from support.client import HttpClient


def echo_target(be, req):
    return Reply(body=req.target.encode())


def test_http11_client_connection_persists_by_default(backends, proxy_factory):
    kw = proxy_factory(backends, nbproc=1)
    with HttpClient(kw.port) as c:
        for i in range(3):
            r = c.request("GET", "/%d" % i)
            assert r.status == 200
            assert "close" not in r.connection_tokens
        assert not c.wait_closed(0.3)


def test_http11_connection_close_is_honoured(backends, proxy_factory):
    kw = proxy_factory(backends, nbproc=1)
    with HttpClient(kw.port) as c:
        r = c.request("GET", "/", [("Connection", "close")])
        assert r.status == 200
        assert "close" in r.connection_tokens
        assert c.wait_closed(2)


def test_http10_client_without_keepalive_is_closed(backends, proxy_factory):
    kw = proxy_factory(backends, nbproc=1)
    with HttpClient(kw.port) as c:
        r = c.request("GET", "/", version="HTTP/1.0")
        assert r.status == 200
        assert c.wait_closed(2)


def test_http10_client_asking_keepalive_is_kept_open(backends, proxy_factory):
    kw = proxy_factory(backends, nbproc=1)
    with HttpClient(kw.port) as c:
        for i in range(3):
            r = c.request("GET", "/%d" % i, [("Connection", "keep-alive")], version="HTTP/1.0")
            assert r.status == 200
            assert r.framing == "length", "a 1.0 client cannot read chunked"
            assert "keep-alive" in r.connection_tokens
        assert not c.wait_closed(0.3)


def test_idle_client_is_closed_after_http_keep_alive_timeout(backends, proxy_factory):
    kw = proxy_factory(backends, nbproc=1, defaults_lines=["timeout http-keep-alive 300ms"])
    with HttpClient(kw.port) as c:
        assert c.request("GET", "/").status == 200
        t0 = time.monotonic()
        assert c.wait_closed(3), "idle client still open after 3 s"
        idle = time.monotonic() - t0
    assert 0.2 <= idle <= 2.0, "closed after %.2f s of idleness, want ~0.3 s" % idle


def test_pipelined_requests_are_answered_in_order(backend_factory, proxy_factory):
    def handler(be, req):
        # the first one is slow, so an out-of-order proxy would be caught
        return Reply(body=req.target.encode(), delay=0.3 if req.target == "/p0" else 0)

    bs = [backend_factory("s1", handler), backend_factory("s2", handler)]
    kw = proxy_factory(bs, nbproc=1)
    targets = ["/p%d" % i for i in range(6)]
    with HttpClient(kw.port) as c:
        c.send(b"".join(b"GET %s HTTP/1.1\r\nHost: t\r\n\r\n" % t.encode() for t in targets))
        bodies = [c.read_response().body.decode() for _ in targets]
        assert bodies == targets
        assert c.request("GET", "/after").status == 200


def test_pipelined_requests_with_bodies_are_answered_in_order(backend_factory, proxy_factory):
    b = backend_factory("s1", lambda be, req: Reply(body=req.body))
    kw = proxy_factory([b], nbproc=1)
    payloads = [b"first", b"second" * 100, b"third"]
    wire = b"".join(b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n\r\n%s" % (len(p), p)
                    for p in payloads)
    with HttpClient(kw.port) as c:
        c.send(wire)
        assert [c.read_response("POST").body for _ in payloads] == payloads
