"""retries, retry-on and option redispatch (issue 4), proven on the wire."""

from support.backend import Reply
from support.client import HttpClient, get
from support.proxy import free_port


def _srv(st, name):
    return st["backends"]["be"]["servers"][name]


def test_refused_server_is_retried_then_answered_503(proxy_factory):
    kw = proxy_factory([("s1", free_port())], nbproc=1, backend_lines=["retries 2"])
    assert get(kw.port, "/").status == 503
    st = kw.wait_stats(lambda s: _srv(s, "s1")["econ"] >= 3, what="3 connection errors")
    assert (_srv(st, "s1")["econ"], _srv(st, "s1")["wretr"]) == (3, 2)


def test_retry_on_none_does_not_retry(proxy_factory):
    kw = proxy_factory([("s1", free_port())], nbproc=1, backend_lines=["retry-on none"])
    assert get(kw.port, "/").status == 503
    st = kw.wait_stats(lambda s: _srv(s, "s1")["econ"] >= 1, what="1 connection error")
    assert (_srv(st, "s1")["econ"], _srv(st, "s1")["wretr"]) == (1, 0)


def test_redispatch_sends_the_last_retry_to_another_server(backend_factory, proxy_factory):
    good = backend_factory("s2")
    kw = proxy_factory([("s1", free_port()), ("s2", good)], nbproc=1,
                       backend_lines=["option redispatch", "retries 2"])
    statuses = [get(kw.port, "/r%d" % i).status for i in range(4)]
    assert statuses == [200] * 4
    assert good.request_count == 4
    st = kw.wait_stats(lambda s: _srv(s, "s1")["wredis"] >= 2, what="redispatches")
    assert _srv(st, "s1")["wredis"] == 2          # the two requests round robin gave to s1


def test_retry_on_status_asks_another_server_for_an_idempotent_request(backend_factory,
                                                                       proxy_factory):
    sick = backend_factory("s1", lambda be, req: Reply(503, body=b"busy"))
    well = backend_factory("s2", lambda be, req: Reply(body=b"fine"))
    kw = proxy_factory([sick, well], nbproc=1,
                       backend_lines=["retry-on 503", "retries 1", "option redispatch"])
    for i in range(4):
        r = get(kw.port, "/g%d" % i)
        assert (r.status, r.body) == (200, b"fine")
    assert sick.request_count == 2               # asked once each time it was picked


def test_retry_on_status_never_repeats_a_post(backend_factory, proxy_factory):
    sick = backend_factory("s1", lambda be, req: Reply(503, body=b"busy"))
    kw = proxy_factory([sick], nbproc=1, backend_lines=["retry-on 503", "retries 3"])
    with HttpClient(kw.port) as c:
        assert c.request("POST", "/p", body=b"once").status == 503
    assert sick.request_count == 1


def test_retry_on_empty_response_retries_a_get_the_server_dropped(backend_factory, proxy_factory):
    seen = []

    def handler(be, req):
        seen.append(req.target)
        return Reply(drop=True) if len(seen) == 1 else Reply(body=b"second time")

    b = backend_factory("s1", handler)
    kw = proxy_factory([b], nbproc=1, backend_lines=["retry-on conn-failure empty-response"])
    r = get(kw.port, "/flaky")
    assert (r.status, r.body) == (200, b"second time")
    assert seen == ["/flaky", "/flaky"]


def test_without_empty_response_a_dropped_first_request_is_a_502(backend_factory, proxy_factory):
    b = backend_factory("s1", lambda be, req: Reply(drop=True))
    kw = proxy_factory([b], nbproc=1)
    assert get(kw.port, "/").status == 502
    assert b.request_count == 1


def test_retry_on_response_timeout_asks_again_after_timeout_server(backend_factory, proxy_factory):
    seen = []

    def handler(be, req):
        seen.append(req.target)
        return Reply(body=b"late" if len(seen) == 1 else b"on time", delay=2.0 if len(seen) == 1 else 0)

    b = backend_factory("s1", handler)
    kw = proxy_factory([b], nbproc=1, timeouts=("connect 2s", "client 5s", "server 500ms"),
                       backend_lines=["retry-on conn-failure response-timeout"])
    r = get(kw.port, "/slow-once", timeout=10)
    assert (r.status, r.body) == (200, b"on time")
    assert seen == ["/slow-once", "/slow-once"]
