"""option forwardfor and http-request/http-response header rules through the proxy (issue 4)."""

from support.backend import Reply
from support.client import HttpClient


def test_option_forwardfor_adds_the_client_address(backend_factory, proxy_factory):
    b = backend_factory("s1")
    kw = proxy_factory([b], nbproc=1, backend_lines=["option forwardfor"])
    with HttpClient(kw.port) as c:
        assert c.request("GET", "/", [("X-Forwarded-For", "192.0.2.1")]).status == 200
    # HAProxy appends its own line after any the client sent.
    values = [v for k, v in b.requests[0].headers if k.lower() == "x-forwarded-for"]
    assert values == ["192.0.2.1", "127.0.0.1"]


def test_option_forwardfor_except_loopback_adds_nothing(backend_factory, proxy_factory):
    b = backend_factory("s1")
    kw = proxy_factory([b], nbproc=1, frontend_lines=["option forwardfor except 127.0.0.0/8"])
    with HttpClient(kw.port) as c:
        assert c.request("GET", "/").status == 200
    assert b.requests[0].header("X-Forwarded-For") is None


def test_http_request_rules_edit_what_the_server_sees(backend_factory, proxy_factory):
    b = backend_factory("s1")
    kw = proxy_factory([b], nbproc=1,
                       frontend_lines=["http-request set-header X-Env prod",
                                       "http-request del-header X-Secret"],
                       backend_lines=["http-request add-header X-Backend be"])
    with HttpClient(kw.port) as c:
        assert c.request("GET", "/", [("X-Secret", "s3"), ("X-Env", "dev")]).status == 200
    req = b.requests[0]
    assert req.header("X-Secret") is None
    assert req.header("X-Env") == "prod"
    assert req.header("X-Backend") == "be"


def test_http_response_rules_edit_what_the_client_sees(backend_factory, proxy_factory):
    b = backend_factory("s1", lambda be, req: Reply(headers=[("Server", "secret/1.0"),
                                                             ("X-Powered-By", "php")],
                                                    body=b"ok"))
    kw = proxy_factory([b], nbproc=1,
                       backend_lines=["http-response del-header X-Powered-By",
                                      "http-response set-header Server keepwarm"])
    with HttpClient(kw.port) as c:
        r = c.request("GET", "/")
        r2 = c.request("GET", "/again")          # the connection stays usable
    assert r.status == 200 and r.body == b"ok" and r2.status == 200
    assert r.header("X-Powered-By") is None
    assert r.header("Server") == "keepwarm"


def test_bad_chunk_size_in_the_first_read_gets_a_clean_502(backend_factory, proxy_factory):
    # Head and a broken chunk arrive together: nothing went to the client yet.
    raw = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nxx\r\n0\r\n\r\n"
    b = backend_factory("s1", lambda be, req: Reply(raw=raw))
    kw = proxy_factory([b], nbproc=1)
    with HttpClient(kw.port) as c:
        r = c.request("GET", "/")
    assert r.status == 502
    st = kw.wait_stats(lambda s: s["frontends"]["fe"]["hrsp_5xx"] >= 1, what="502 counted")
    assert st["frontends"]["fe"]["hrsp_2xx"] == 0
