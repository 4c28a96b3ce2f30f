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


TWO_FRONTENDS = """\
global
    nbproc {nbproc}
    stats socket {sock}
    maxconn 100
defaults
    mode http
    timeout connect 2s
    timeout client 5s
    timeout server 5s
frontend small
    bind 127.0.0.1:{small}
    maxconn {small_max}
    default_backend be
frontend big
    bind 127.0.0.1:{big}
    default_backend be
backend be
    server s1 127.0.0.1:{be}
"""


def two_frontends(proxy_factory, tmp_path, b, nbproc, small_max):
    from support.proxy import free_port
    small, big = free_port(), free_port()
    # proxy_factory's first instance lives in tmp_path/kw0 and asks stats there.
    text = TWO_FRONTENDS.format(nbproc=nbproc, sock=tmp_path / "kw0" / "stats.sock", small=small,
                                big=big, small_max=small_max, be=b.port)
    return proxy_factory(config=text, bind_ports=[small, big], nbproc=nbproc), small, big


def test_a_frontend_at_its_maxconn_waits_while_another_serves(backend_factory, proxy_factory,
                                                              tmp_path):
    """Each frontend's own maxconn holds, not only the sum of all: `small` (maxconn 2)
    had 6 connections at once while `big` had room."""
    b = backend_factory("s1")
    kw, small, big = two_frontends(proxy_factory, tmp_path, b, 1, 2)
    held = [HttpClient(small, timeout=10) for _ in range(4)]
    try:
        for c in held[:2]:
            assert c.request("GET", "/").status == 200       # kept alive: 2 sessions
        for c in held[2:]:
            c.send_request("GET", "/")                       # queued by the kernel
        with HttpClient(big) as c:                           # the other frontend has room
            assert c.request("GET", "/").status == 200
        st = kw.wait_stats(lambda s: s["frontends"]["big"]["req_tot"] >= 1, what="big counted")
        assert st["frontends"]["small"]["scur"] == 2 and st["frontends"]["small"]["req_tot"] == 2
        held[0].close()
        held[1].close()                                      # room again: the others go in
        for c in held[2:]:
            assert c.read_response().status == 200
    finally:
        for c in held:
            c.close()
    st = kw.wait_stats(lambda s: s["frontends"]["small"]["req_tot"] >= 4, what="4 requests")
    assert st["frontends"]["small"]["smax"] == 2


def test_a_frontend_maxconn_is_shared_exactly_between_workers(backend_factory, proxy_factory,
                                                              tmp_path):
    """maxconn 3 over 2 workers is 2 + 1, not 2 + 2 (as server maxconn is shared)."""
    b = backend_factory("s1")
    kw, small, big = two_frontends(proxy_factory, tmp_path, b, 2, 3)
    held = []
    try:
        for _ in range(12):
            c = HttpClient(small, timeout=10)
            c.send_request("GET", "/")
            held.append(c)
        # Every worker is at its share; the kernel holds the rest.
        kw.wait_stats(lambda s: s["frontends"]["small"]["req_tot"] >= 3, what="3 served")
        try:
            kw.wait_stats(lambda s: s["frontends"]["small"]["scur"] > 3, timeout=1.0,
                          what="more than 3 sessions")
        except AssertionError:
            pass
        assert kw.stats()["frontends"]["small"]["scur"] <= 3
    finally:
        for c in held:
            c.close()
