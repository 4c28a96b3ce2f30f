"""pool-warm-conn: idle server connections opened before any client asks (issue 5, DESIGN.md §2)."""

from support.client import HttpClient, get


def test_warm_connections_are_open_before_the_first_request_and_the_first_request_opens_none(
        backend_factory, proxy_factory):
    b = backend_factory("s1")
    kw = proxy_factory([b], nbproc=2, server_opts="pool-warm-conn 2")
    b.wait_for(lambda be: be.conn_count >= 4, timeout=5, what="4 warm connections")
    assert b.request_count == 0
    assert get(kw.port, "/first").status == 200
    assert b.conn_count == 4, "the first client request opened a connection"
    st = kw.wait_stats(lambda s: s["backends"]["be"]["servers"]["s1"]["warm_used"] >= 1,
                       what="warm_used")
    srv = st["backends"]["be"]["servers"]["s1"]
    assert srv["warm_opened"] >= 4 and srv["conn_tot"] == srv["warm_opened"]


def test_warm_pool_is_refilled_after_use(backend_factory, proxy_factory):
    b = backend_factory("s1")
    kw = proxy_factory([b], nbproc=1, server_opts="pool-warm-conn 2")
    b.wait_for(lambda be: be.conn_count >= 2, timeout=5, what="2 warm connections")
    # Two clients at once take both warm connections; the pool opens more behind them.
    with HttpClient(kw.port) as c1, HttpClient(kw.port) as c2:
        c1.send_request("GET", "/a")
        c2.send_request("GET", "/b")
        assert c1.read_response().status == 200
        assert c2.read_response().status == 200
    b.wait_for(lambda be: len(be.open_connections()) >= 2, timeout=5,
               what="the warm pool refilled")


def test_a_non_replayable_first_request_does_not_take_a_warm_connection(backend_factory,
                                                                       proxy_factory):
    b = backend_factory("s1")
    kw = proxy_factory([b], nbproc=1, server_opts="pool-warm-conn 1")
    b.wait_for(lambda be: be.conn_count >= 1, timeout=5, what="1 warm connection")
    with HttpClient(kw.port) as c:
        assert c.request("POST", "/p", body=b"data").status == 200
    assert b.requests[0].conn_id != 1, "a POST went out on a never-proven warm connection"


def test_warm_connections_are_not_opened_to_a_server_that_is_down(backend_factory, proxy_factory):
    from support.proxy import free_port
    dead = free_port()
    b = backend_factory("s1")
    kw = proxy_factory([("s1", b), ("s2", dead)], nbproc=1,
                       server_opts={"s1": "pool-warm-conn 1 check inter 100ms",
                                    "s2": "pool-warm-conn 3 check inter 100ms fall 1"})
    kw.wait_stats(lambda s: s["backends"]["be"]["servers"]["s2"]["status"].startswith("DOWN"),
                  what="s2 DOWN")
    first = kw.stats()
    before = first["backends"]["be"]["servers"]["s2"]["warm_opened"]
    # Several refill ticks (250 ms each) later, nothing more was opened to s2.
    later = kw.wait_stats(lambda s: s["info"]["uptime"] >= first["info"]["uptime"] + 1.5,
                          what="1.5 s of refill ticks")
    assert later["backends"]["be"]["servers"]["s2"]["warm_opened"] == before, \
        "warm connections kept being opened to a DOWN server"
    assert later["backends"]["be"]["servers"]["s1"]["idle_conn_cur"] == 1
