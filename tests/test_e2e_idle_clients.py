"""Idle keep-alive clients pin no server connection (issue 12, item 2).

A server connection a session has finished with goes to the server's idle pool,
also when its client keeps the connection open for a next request, and the pool
keeps only what the traffic needs (HAProxy's srv_add_to_idle_list and its purge
task: idle + used connections within the most seen in use, half the surplus
closed every pool-purge-delay, and each idle one closed after pool-purge-delay
unused). A soak test found 1,000 silent clients holding 1,000 server connections
for as long as they stayed; HAProxy held 4, then 0.
"""

from support.backend import Reply
from support.client import HttpClient


def hold_or_echo(be, req):
    if req.target.startswith("/hold"):
        return Reply(body=b"held", delay=0.3)     # keeps its server connection busy a moment
    return Reply(body=req.target.encode())


def open_clients(n, port):
    clients = []
    try:
        for _ in range(n):
            clients.append(HttpClient(port, timeout=5))
    except BaseException:
        for c in clients:
            c.close()
        raise
    return clients


def test_silent_keepalive_clients_one_after_another_share_one_server_connection(
        backend_factory, proxy_factory):
    b = backend_factory("s1", hold_or_echo)
    kw = proxy_factory([b], nbproc=1)
    clients = open_clients(40, kw.port)
    try:
        for i, c in enumerate(clients):
            r = c.request("GET", "/c%d" % i)        # one request each, then silence
            assert r.status == 200 and "close" not in r.connection_tokens
        # Each session gave its connection back when its answer ended: the next
        # client's first GET took it (a replayable first request may).
        assert b.conn_count == 1, "%d server connections for 40 sequential clients" % b.conn_count
        assert len(b.open_connections()) == 1
        st = kw.wait_stats(lambda s: s["backends"]["be"]["servers"]["s1"]["req_tot"] == 40,
                           what="40 requests counted")
        assert st["backends"]["be"]["servers"]["s1"]["idle_conn_cur"] == 1
        # The clients' own connections are all still open and usable.
        assert all(c.request("GET", "/again").status == 200 for c in clients[:3])
    finally:
        for c in clients:
            c.close()


def test_silent_keepalive_clients_leave_no_server_connection_past_pool_purge_delay(
        backend_factory, proxy_factory):
    b = backend_factory("s1", hold_or_echo)
    kw = proxy_factory([b], nbproc=1, server_opts="pool-purge-delay 1s")
    clients = open_clients(20, kw.port)
    try:
        for i, c in enumerate(clients):
            c.send_request("GET", "/hold%d" % i)    # 20 server connections busy at once
        assert [c.read_response().status for c in clients] == [200] * 20
        assert b.conn_count == 20
        # Silence: every one of them is idle, none is pinned by its client.
        b.wait_for(lambda be: not be.open_connections(), timeout=4,
                   what="the idle server connections of 20 silent clients closed")
        assert all(x.closed_by == "peer" for x in b.connections)
        st = kw.wait_stats(lambda s: s["backends"]["be"]["servers"]["s1"]["idle_conn_cur"] == 0,
                           what="idle_conn_cur 0")
        assert st["backends"]["be"]["servers"]["s1"]["idle_purged"] >= 20
        # The clients did not notice: their next request opens what it needs.
        assert clients[0].request("GET", "/later").status == 200
    finally:
        for c in clients:
            c.close()


def test_a_private_connection_stays_with_its_silent_client(backend_factory, proxy_factory):
    # NTLM authenticates the connection: it is never given to the pool, and the
    # client's next request goes on it (HAProxy: private connections stay with
    # their session, whatever the pool does).
    def ntlm(be, req):
        return Reply(status=401, headers=[("WWW-Authenticate", "NTLM")], body=b"who?")

    b = backend_factory("s1", ntlm)
    kw = proxy_factory([b], nbproc=1, server_opts="pool-purge-delay 1s")
    with HttpClient(kw.port, timeout=5) as c, HttpClient(kw.port, timeout=5) as other:
        first = c.request("GET", "/a")
        assert first.status == 401
        assert other.request("GET", "/b").conn_id != first.conn_id
        assert c.request("GET", "/c").conn_id == first.conn_id
        # Counted among the idle connections while its client is silent.
        st = kw.wait_stats(lambda s: s["backends"]["be"]["servers"]["s1"]["req_tot"] == 3,
                           what="3 requests counted")
        assert st["backends"]["be"]["servers"]["s1"]["idle_conn_cur"] == 2
