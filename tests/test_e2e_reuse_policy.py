"""Server connection reuse policy on the wire (issue 4, "Connection handling").

Every backend response carries ``X-Conn-Id: <server>-<n>`` (the n-th TCP
connection that server accepted), so each test reads off which server
connection carried which request, as HAProxy's own reuse regression tests do.

HAProxy's `http-reuse` (configuration manual, 2.6):
  never      -- idle connections are never shared between sessions (HAProxy
                marks every connection private: it dies with its session);
  safe       -- the first request of a session goes on its own connection, later
                ones may use idle connections of others; keepwarm's extension
                (DESIGN.md §2): a replayable first request may use a proven one;
  aggressive -- first requests only on connections already reused at least
                once ("proving that the server correctly supports reuse");
  always     -- any request may use any idle connection.
`pool-max-conn`, `max-reuse` (a connection carries at most max-reuse + 1
requests: 0 disables keep-alive), `pool-purge-delay`; a connection that an
NTLM/Negotiate challenge made private is never given to another client, and
its session keeps using it (HAProxy: SESS_FL_PREFER_LAST).
"""

import time

import pytest

from support.backend import Reply
from support.client import HttpClient, get


def echo(be, req):
    if req.target == "/close-me":
        return Reply(body=b"bye", close=True)
    if req.target.startswith("/warm"):
        # Held a moment, so that the clients warming the pool overlap: each needs
        # a connection of its own (a finished one goes to the pool for anyone).
        return Reply(body=req.target.encode(), delay=0.2)
    return Reply(body=req.target.encode())


def warm(kw, n, uses):
    """Leave ``n`` idle server connections in the pool, each having carried ``uses`` requests.

    The ``n`` clients send each round of requests together, so ``n`` connections
    are busy at once. The last request of each client says ``Connection: close``,
    so its server connection is back in the pool before the client has read the
    response. Returns the X-Conn-Id values of those connections.
    """
    assert uses >= 2 or n == 1, "two 1-use pooled connections cannot be built this way"
    clients = [HttpClient(kw.port) for _ in range(n)]
    ids = set()
    try:
        for i in range(uses):
            last = [("Connection", "close")] if i == uses - 1 else []
            for c in clients:
                c.send_request("GET", "/warm-last" if last else "/warm", last)
            for c in clients:
                ids.add(c.read_response().conn_id)
    finally:
        for c in clients:
            c.close()
    assert len(ids) == n, "warming made %s, expected %d distinct connections" % (ids, n)
    return ids


MODES = ["never", "safe", "aggressive", "always"]

# scenario -> {mode: does the request reuse a warm connection?}
EXPECT = {
    # first request of a new client, a GET (replayable)
    "first-get": {"never": False, "safe": True, "aggressive": True, "always": True},
    # first request of a new client, a POST (not replayable)
    "first-post": {"never": False, "safe": False, "aggressive": True, "always": True},
    # a later POST of a session whose own server connection was closed by the server
    "later-post": {"never": False, "safe": True, "aggressive": True, "always": True},
}


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("scenario", sorted(EXPECT))
def test_http_reuse_mode_decides_which_requests_take_pooled_connections(
        scenario, mode, backend_factory, proxy_factory):
    b = backend_factory("s1", echo)
    kw = proxy_factory([b], nbproc=1, backend_lines=["http-reuse %s" % mode])
    if scenario == "first-get":
        pooled = warm(kw, 1, uses=2)
        r = get(kw.port, "/first")
    elif scenario == "first-post":
        pooled = warm(kw, 1, uses=2)
        with HttpClient(kw.port) as c:
            r = c.request("POST", "/first", [("Connection", "close")], body=b"p=1")
    else:
        pooled = warm(kw, 2, uses=2)
        with HttpClient(kw.port) as c:
            assert c.request("POST", "/close-me", body=b"p=1").status == 200
            r = c.request("POST", "/second", body=b"p=2")
    assert r.status == 200
    reused = r.conn_id in pooled
    assert reused == EXPECT[scenario][mode], (
        "http-reuse %s, %s: went on %s, pooled were %s" % (mode, scenario, r.conn_id, sorted(pooled)))


@pytest.mark.parametrize("mode,reuses", [("aggressive", False), ("always", True)])
def test_first_post_takes_a_connection_never_reused_only_under_always(mode, reuses, backend_factory,
                                                                      proxy_factory):
    # The pooled connection carried one request and was never reused: HAProxy's
    # "aggressive" does not trust it with a first request yet; "always" does.
    b = backend_factory("s1", echo)
    kw = proxy_factory([b], nbproc=1, backend_lines=["http-reuse %s" % mode])
    pooled = warm(kw, 1, uses=1)
    with HttpClient(kw.port) as c:
        r = c.request("POST", "/first", [("Connection", "close")], body=b"p=1")
    assert r.status == 200
    assert (r.conn_id in pooled) == reuses, "http-reuse %s: POST went on %s, pooled %s" % (
        mode, r.conn_id, pooled)


def test_never_gives_each_client_connection_its_own_server_connection(backend_factory,
                                                                      proxy_factory):
    b = backend_factory("s1", echo)
    kw = proxy_factory([b], nbproc=1, backend_lines=["http-reuse never"])
    a, bb = HttpClient(kw.port), HttpClient(kw.port)
    try:
        ids_a = [a.request("GET", "/a%d" % i).conn_id for i in range(3)]
        ids_b = [bb.request("GET", "/b%d" % i).conn_id for i in range(3)]
        ids_a += [a.request("GET", "/a-again").conn_id]
    finally:
        a.close()
        bb.close()
    assert len(set(ids_a)) == 1 and len(set(ids_b)) == 1, (ids_a, ids_b)
    assert ids_a[0] != ids_b[0]
    later = [get(kw.port, "/c%d" % i).conn_id for i in range(3)]
    assert not set(later) & (set(ids_a) | set(ids_b)), later
    assert len(set(later)) == 3, "sequential clients shared a connection under never: %s" % later


def test_never_closes_the_server_connection_when_its_client_leaves(backend_factory, proxy_factory):
    # HAProxy makes every connection of a "never" backend private: nobody else
    # may use it, so keeping it idle after its session is gone only wastes it.
    b = backend_factory("s1", echo)
    kw = proxy_factory([b], nbproc=1, backend_lines=["http-reuse never"])
    with HttpClient(kw.port) as c:
        assert c.request("GET", "/1").conn_id == "s1-1"
        assert c.request("GET", "/2", [("Connection", "close")]).conn_id == "s1-1"
    b.wait_for(lambda be: be.connections[0].closed_at is not None, timeout=3,
               what="the proxy to close the server connection of a finished 'never' session")
    assert b.connections[0].closed_by == "peer"


def test_pool_max_conn_1_keeps_one_idle_connection_and_closes_the_others(backend_factory,
                                                                         proxy_factory):
    b = backend_factory("s1", echo)
    kw = proxy_factory([b], nbproc=1, server_opts="pool-max-conn 1")
    clients = [HttpClient(kw.port) for _ in range(3)]
    try:
        for c in clients:
            c.send_request("GET", "/warm-hold")     # held 0.2 s: three connections at once
        ids = [c.read_response().conn_id for c in clients]
        assert len(set(ids)) == 3, ids
        for c in clients:
            c.request("GET", "/leave", [("Connection", "close")])
    finally:
        for c in clients:
            c.close()
    b.wait_for(lambda be: sum(1 for x in be.connections if x.closed_at is not None) >= 2, timeout=3,
               what="two of three idle connections closed")
    # The one kept is whichever of the three finished first.
    kept = [x.conn_id for x in b.open_connections()]
    assert len(kept) == 1 and b.conn_count == 3, "open after pool-max-conn 1: %s" % kept
    assert all(x.closed_by == "peer" for x in b.connections if x.closed_at is not None)
    st = kw.wait_stats(lambda s: s["backends"]["be"]["servers"]["s1"]["idle_conn_cur"] == 1,
                       what="idle_conn_cur 1")
    assert st["backends"]["be"]["servers"]["s1"]["idle_conn_cur"] == 1
    assert get(kw.port, "/next").conn_id == "s1-%d" % kept[0]


def test_pool_max_conn_0_keeps_no_idle_connection(backend_factory, proxy_factory):
    b = backend_factory("s1", echo)
    kw = proxy_factory([b], nbproc=1, server_opts="pool-max-conn 0")
    ids = [get(kw.port, "/%d" % i).conn_id for i in range(3)]
    assert ids == ["s1-1", "s1-2", "s1-3"]
    b.wait_for(lambda be: not be.open_connections(), timeout=3, what="every connection closed")


@pytest.mark.parametrize("max_reuse,expected", [
    (0, [1, 2, 3, 4, 5, 6]),
    (1, [1, 1, 2, 2, 3, 3]),
    (2, [1, 1, 1, 2, 2, 2]),
])
def test_max_reuse_n_lets_a_connection_carry_n_plus_1_requests(max_reuse, expected, backend_factory,
                                                              proxy_factory):
    b = backend_factory("s1", echo)
    kw = proxy_factory([b], nbproc=1, server_opts="max-reuse %d" % max_reuse)
    with HttpClient(kw.port) as c:
        ids = [c.request("GET", "/%d" % i).conn_id for i in range(6)]
    assert ids == ["s1-%d" % n for n in expected]
    first = b.connections[0]
    b.wait_for(lambda be: first.closed_at is not None, timeout=3, what="connection 1 closed")
    assert first.closed_by == "peer" and first.requests == max_reuse + 1


def test_max_reuse_counts_requests_of_different_clients_on_a_pooled_connection(backend_factory,
                                                                              proxy_factory):
    b = backend_factory("s1", echo)
    kw = proxy_factory([b], nbproc=1, server_opts="max-reuse 2")
    ids = [get(kw.port, "/%d" % i).conn_id for i in range(6)]
    assert ids == ["s1-1"] * 3 + ["s1-2"] * 3


def test_pool_purge_delay_closes_an_idle_pooled_connection(backend_factory, proxy_factory):
    b = backend_factory("s1", echo)
    kw = proxy_factory([b], nbproc=1, server_opts="pool-purge-delay 1s")
    assert get(kw.port, "/").conn_id == "s1-1"
    t0 = time.monotonic()
    b.wait_for(lambda be: be.connections[0].closed_at is not None, timeout=5,
               what="the idle pooled connection to be purged")
    idle = b.connections[0].closed_at - t0
    assert b.connections[0].closed_by == "peer"
    assert 0.5 <= idle <= 2.5, "purged after %.2f s with pool-purge-delay 1s" % idle
    assert get(kw.port, "/again").conn_id == "s1-2"


def test_without_purge_an_idle_pooled_connection_stays_open(backend_factory, proxy_factory):
    b = backend_factory("s1", echo)
    kw = proxy_factory([b], nbproc=1, server_opts="pool-purge-delay 10s")
    assert get(kw.port, "/").conn_id == "s1-1"
    with pytest.raises(AssertionError):
        b.wait_for(lambda be: be.connections[0].closed_at is not None, timeout=1.5)
    assert get(kw.port, "/again").conn_id == "s1-1"


# ------------------------------------------------------------------ NTLM

NTLM_NEGOTIATE = "NTLM TlRMTVNTUAABAAAAB4IIogAAAAAAAAAAAAAAAAAAAAAKAGFKAAAADw=="
NTLM_AUTHENTICATE = "NTLM TlRMTVNTUAADAAAAGAAYAEAAAAAYABgAWAAAAAAAAAAAAAAAAAAAAA=="


def ntlm_backend_handler():
    """A server with connection-bound authentication: the challenge and the
    authenticated state belong to the TCP connection that saw them."""
    challenged, authenticated = set(), set()

    def handler(be, req):
        key = (be.name, req.conn_id)
        auth = req.header("Authorization", "")
        if auth.startswith("NTLM TlRMTVNTUAAB"):
            challenged.add(key)
            return Reply(401, headers=[("WWW-Authenticate", "NTLM TlRMTVNTUAACAAAADAAMADgAAAA=")])
        if auth.startswith("NTLM TlRMTVNTUAAD"):
            if key not in challenged:
                return Reply(401, headers=[("WWW-Authenticate", "NTLM")], body=b"no challenge here")
            authenticated.add(key)
            return Reply(body=b"welcome alice")
        if key in authenticated:
            return Reply(body=b"alice's data")
        return Reply(body=b"anonymous")

    return handler


@pytest.mark.parametrize("mode,nservers", [("safe", 1), ("always", 1), ("safe", 2), ("always", 2)])
def test_ntlm_authenticated_connection_stays_with_its_client_and_no_one_else_gets_it(
        mode, nservers, backend_factory, proxy_factory):
    handler = ntlm_backend_handler()
    bs = [backend_factory("s%d" % (i + 1), handler) for i in range(nservers)]
    kw = proxy_factory(bs, nbproc=1, backend_lines=["http-reuse %s" % mode])
    others = []
    alice = HttpClient(kw.port)
    bob = HttpClient(kw.port)
    try:
        r = alice.request("GET", "/login", [("Authorization", NTLM_NEGOTIATE)])
        assert r.status == 401
        private = r.conn_id
        others.append(bob.request("GET", "/bob1"))
        r = alice.request("GET", "/login", [("Authorization", NTLM_AUTHENTICATE)])
        assert (r.status, r.conn_id, r.body) == (200, private, b"welcome alice"), \
            "the NTLM handshake left its connection %s: %s %s %r" % (private, r.status, r.conn_id, r.body)
        others.append(get(kw.port, "/carol"))
        others.append(bob.request("GET", "/bob2"))
        for i in range(3):
            r = alice.request("GET", "/mail%d" % i)
            assert (r.conn_id, r.body) == (private, b"alice's data"), (i, r.conn_id, r.body)
            others.append(bob.request("GET", "/bob-more%d" % i))
    finally:
        alice.close()
        bob.close()
    name = private.rsplit("-", 1)[0]
    srv = [b for b in bs if b.name == name][0]
    conn = srv.connections[int(private.rsplit("-", 1)[1]) - 1]
    srv.wait_for(lambda be: conn.closed_at is not None, timeout=3,
                 what="alice's private connection to close when she leaves")
    assert conn.closed_by == "peer"
    others += [get(kw.port, "/dave%d" % i) for i in range(3)]
    leaked = [(r.conn_id, r.body) for r in others if r.conn_id == private or r.body != b"anonymous"]
    assert not leaked, "another client got alice's connection: %r" % leaked
