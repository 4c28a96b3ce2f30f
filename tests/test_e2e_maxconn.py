"""maxconn: excess client connections wait in the accept backlog and are served once
load drops; nothing crashes (issue 4, "Timeouts and limits")."""

from support.client import HttpClient


def test_connections_beyond_maxconn_wait_in_the_backlog_then_are_served(backend_factory,
                                                                        proxy_factory):
    b = backend_factory("s1")
    kw = proxy_factory([b], nbproc=1, global_lines=["maxconn 2"])
    first, second = HttpClient(kw.port), HttpClient(kw.port)
    third = HttpClient(kw.port, timeout=10)
    try:
        assert first.request("GET", "/1").status == 200
        assert second.request("GET", "/2").status == 200
        third.send_request("GET", "/3")          # connected by the kernel, not accepted
        b.wait_for(lambda be: be.request_count >= 2, timeout=2, what="two requests")
        # Proving an absence takes a bounded wait: the third must not arrive.
        try:
            b.wait_for(lambda be: be.request_count >= 3, timeout=0.7, what="a third request")
        except AssertionError:
            pass
        assert b.request_count == 2, "a third connection was served beyond maxconn 2"
        first.close()                             # load drops: the third gets its turn
        assert third.read_response().status == 200
        assert b.request_count == 3
    finally:
        for c in (first, second, third):
            c.close()
    st = kw.wait_stats(lambda s: s["frontends"]["fe"]["stot"] >= 3, what="3 sessions")
    assert st["frontends"]["fe"]["smax"] == 2
