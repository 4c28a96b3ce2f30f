"""Closing idle server connections before the server does: Keep-Alive hints, pool-idle-timeout,
and the counters that say why a request did not reuse a connection (issue 4)."""

import time

from support.backend import Reply
from support.client import HttpClient, get


def _hinted(hint):
    return lambda be, req: Reply(headers=[("Keep-Alive", hint)], body=b"ok")


def test_keepalive_timeout_hint_closes_the_idle_connection_before_the_server_would(
        backend_factory, proxy_factory):
    # The server says it keeps idle connections 2 s: keepwarm must close first (~1 s).
    b = backend_factory("s1", _hinted("timeout=2, max=100"))
    kw = proxy_factory([b], nbproc=1)
    assert get(kw.port, "/").status == 200
    started = time.monotonic()
    b.wait_for(lambda be: all(c.closed_at is not None for c in be.connections), timeout=5,
               what="the proxy to close its idle connection")
    rec = b.connections[0]
    assert rec.closed_by == "peer", rec
    waited = rec.closed_at - started
    assert waited < 2.0, "closed after %.2f s: not before the server's 2 s" % waited
    st = kw.wait_stats(lambda s: s["backends"]["be"]["servers"]["s1"]["idle_purged"] >= 1,
                       what="idle_purged counted")
    assert st["backends"]["be"]["servers"]["s1"]["idle_srv_closed"] == 0


def test_keepalive_max_hint_stops_reuse_when_the_server_budget_is_spent(backend_factory,
                                                                       proxy_factory):
    # max=1: the server accepts no request after this one on the connection.
    b = backend_factory("s1", _hinted("timeout=30, max=1"))
    kw = proxy_factory([b], nbproc=1)
    for i in range(3):
        assert get(kw.port, "/r%d" % i).status == 200
    assert b.conn_count == 3, "a connection was reused past the server's max"


def test_pool_idle_timeout_caps_idle_time_for_servers_without_a_hint(backend_factory,
                                                                     proxy_factory):
    b = backend_factory("s1")
    kw = proxy_factory([b], nbproc=1, server_opts="pool-idle-timeout 500ms")
    assert get(kw.port, "/").status == 200
    started = time.monotonic()
    b.wait_for(lambda be: all(c.closed_at is not None for c in be.connections), timeout=5,
               what="the proxy to close its idle connection")
    assert b.connections[0].closed_by == "peer"
    assert b.connections[0].closed_at - started < 2.0


def test_stats_say_why_requests_did_not_reuse(backend_factory, proxy_factory):
    b = backend_factory("s1")
    kw = proxy_factory([b], nbproc=1)
    with HttpClient(kw.port) as c:
        assert c.request("POST", "/p", body=b"x").status == 200   # first, not replayable
    assert get(kw.port, "/g").status == 200                        # reuses the pooled one
    st = kw.wait_stats(lambda s: s["backends"]["be"]["servers"]["s1"]["req_tot"] >= 2,
                       what="2 requests")
    srv = st["backends"]["be"]["servers"]["s1"]
    assert (srv["conn_tot"], srv["reuse"], srv["nreuse_first"], srv["nreuse_empty"]) == (1, 1, 1, 0)


def test_stats_count_idle_connections_the_server_closed(backend_factory, proxy_factory):
    # The backend closes connections idle for 300 ms; the proxy must notice, count it,
    # and open a new connection for the next request instead of failing.
    b = backend_factory("s1", idle_timeout=0.3)
    kw = proxy_factory([b], nbproc=1)
    assert get(kw.port, "/a").status == 200
    b.wait_for(lambda be: be.connections[0].closed_at is not None, timeout=5,
               what="the backend to close its idle connection")
    st = kw.wait_stats(lambda s: s["backends"]["be"]["servers"]["s1"]["idle_srv_closed"] >= 1,
                       what="idle_srv_closed counted")
    assert st["backends"]["be"]["servers"]["s1"]["idle_conn_cur"] == 0
    assert get(kw.port, "/b").status == 200
    assert b.conn_count == 2
