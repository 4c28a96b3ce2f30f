"""Server-side connection reuse, proven on the wire (X-Conn-Id) and in stats (issue 2, "Done when")."""

from support.backend import Reply
from support.checks import run_parallel, sum_servers
from support.client import HttpClient, get


def test_1000_keepalive_requests_over_10_connections_open_at_most_5_percent_server_connections(
        backends, proxy_factory, record_property):
    kw = proxy_factory(backends, nbproc=2)
    before = kw.stats()

    def client(i):
        statuses = []
        with HttpClient(kw.port) as c:
            for j in range(100):
                statuses.append(c.request("GET", "/c%d/r%d" % (i, j)).status)
        return statuses

    results = run_parallel(client, 10, timeout=60)
    assert all(s == 200 for r in results for s in r)
    assert sum(len(r) for r in results) == 1000
    requests = sum(b.request_count for b in backends)
    conns = sum(b.conn_count for b in backends)
    record_property("backend_connections_for_1000_keepalive_requests", conns)
    print("1000 keep-alive requests -> %d backend connections" % conns)
    assert requests == 1000
    assert conns <= 50, "backends accepted %d connections for 1000 requests" % conns

    st = kw.wait_stats(lambda s: s["backends"]["be"]["req_tot"] >= 1000, what="req_tot 1000")
    be = st["backends"]["be"]
    fe = st["frontends"]["fe"]
    assert be["req_tot"] == 1000
    assert be["conn_tot"] == conns
    assert fe["req_tot"] == 1000
    assert fe["stot"] - before["frontends"]["fe"]["stot"] == 10
    assert fe["hrsp_2xx"] == 1000
    for b in backends:
        srv = be["servers"][b.name]
        assert (srv["req_tot"], srv["conn_tot"]) == (b.request_count, b.conn_count), b.name
    assert be["reuse"] == 1000 - conns


def test_300_close_requests_on_new_client_connections_reuse_server_connections(
        backends, proxy_factory, record_property):
    kw = proxy_factory(backends, nbproc=2)
    for i in range(300):
        r = get(kw.port, "/n%d" % i)
        assert r.status == 200, i
    conns = sum(b.conn_count for b in backends)
    record_property("backend_connections_for_300_close_requests", conns)
    print("300 Connection: close requests -> %d backend connections (HAProxy 2.6 safe: 300)" % conns)
    assert sum(b.request_count for b in backends) == 300
    assert conns <= 30, "backends accepted %d connections for 300 one-request clients" % conns
    st = kw.wait_stats(lambda s: s["backends"]["be"]["req_tot"] >= 300, what="req_tot 300")
    assert st["backends"]["be"]["conn_tot"] == conns
    assert sum_servers(st, "conn_tot") == conns


def test_requests_on_one_client_connection_reuse_one_server_connection(backend_factory,
                                                                        proxy_factory):
    b = backend_factory("s1")
    kw = proxy_factory([b], nbproc=1)
    with HttpClient(kw.port) as c:
        ids = [c.request("GET", "/%d" % i).conn_id for i in range(20)]
    assert ids == ["s1-1"] * 20
    assert b.conn_count == 1


def test_idempotent_first_request_of_new_client_reuses_pooled_server_connection(backend_factory,
                                                                                proxy_factory):
    b = backend_factory("s1")
    kw = proxy_factory([b], nbproc=1)
    ids = [get(kw.port, "/%d" % i).conn_id for i in range(10)]
    assert ids == ["s1-1"] * 10
    assert b.conn_count == 1


def test_post_as_first_request_does_not_take_pooled_server_connection(backend_factory,
                                                                      proxy_factory):
    # http-reuse safe: a request that cannot be replayed opens its own connection
    b = backend_factory("s1")
    kw = proxy_factory([b], nbproc=1)
    assert get(kw.port, "/warm").conn_id == "s1-1"
    b.wait_for(lambda be: len(be.open_connections()) == 1, what="pooled connection open")
    with HttpClient(kw.port) as c:
        r = c.request("POST", "/form", [("Connection", "close")], body=b"a=1")
    assert r.status == 200
    assert r.conn_id != "s1-1"
    assert b.conn_count == 2


def test_get_on_dead_pooled_connection_is_replayed_on_a_fresh_one(backend_factory, proxy_factory):
    # The backend answers the first request of each connection and silently
    # drops any later one: the pooled connection "turns out dead" before any
    # response byte, so a replayable request must be replayed, once.
    def handler(be, req):
        return Reply(drop=True) if req.seq > 1 else None

    b = backend_factory("s1", handler)
    kw = proxy_factory([b], nbproc=1)
    assert get(kw.port, "/one").status == 200
    r = get(kw.port, "/two")
    assert r.status == 200
    assert r.conn_id == "s1-2"
    assert [(q.conn_id, q.target) for q in b.requests] == [(1, "/one"), (1, "/two"), (2, "/two")]
    st = kw.wait_stats(lambda s: s["backends"]["be"]["replays"] >= 1, what="replays 1")
    assert st["backends"]["be"]["replays"] == 1
    assert st["backends"]["be"]["servers"]["s1"]["replays"] == 1


def test_post_on_dead_reused_connection_is_not_replayed(backend_factory, proxy_factory):
    def handler(be, req):
        return Reply(drop=True) if req.seq > 1 else None

    b = backend_factory("s1", handler)
    kw = proxy_factory([b], nbproc=1)
    with HttpClient(kw.port) as c:
        assert c.request("GET", "/first").status == 200
        r = c.request("POST", "/second", body=b"x=1")
    assert r.status == 502
    assert [q.target for q in b.requests].count("/second") == 1


def test_round_robin_honours_server_weights(backend_factory, proxy_factory):
    heavy, light = backend_factory("heavy"), backend_factory("light")
    kw = proxy_factory([heavy, light], nbproc=1, server_opts={"heavy": "weight 3", "light": "weight 1"})
    with HttpClient(kw.port) as c:
        for i in range(400):
            assert c.request("GET", "/%d" % i).status == 200
    assert (heavy.request_count, light.request_count) == (300, 100)
