"""Server maxconn and the backend queue (issue 5): excess requests wait for a free
server up to `timeout queue`, then get 503; nothing exceeds maxconn on the wire."""

import threading
import time

from support.backend import Reply
from support.client import HttpClient, get


def _slow(seconds):
    return lambda be, req: Reply(body=b"done", delay=seconds if req.target.startswith("/slow") else 0)


def test_request_beyond_maxconn_waits_in_the_queue_then_is_served(backend_factory, proxy_factory):
    b = backend_factory("s1", _slow(0.6))
    kw = proxy_factory([b], nbproc=1, server_opts="maxconn 1",
                       defaults_lines=["timeout queue 5s"])
    results = {}

    def fetch(name):
        results[name] = get(kw.port, "/slow-" + name, timeout=10)

    threads = [threading.Thread(target=fetch, args=(n,)) for n in ("a", "b", "c")]
    started = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join(15)
    assert {n: r.status for n, r in results.items()} == {"a": 200, "b": 200, "c": 200}
    # One at a time: the three 0.6 s requests took at least ~1.8 s in all.
    assert time.monotonic() - started >= 1.6
    st = kw.wait_stats(lambda s: s["backends"]["be"]["req_tot"] >= 3, what="3 requests")
    assert st["backends"]["be"]["servers"]["s1"]["smax"] == 1
    assert st["backends"]["be"]["qmax"] >= 1


def test_queued_request_gets_503_after_timeout_queue(backend_factory, proxy_factory):
    b = backend_factory("s1", _slow(2.0))
    kw = proxy_factory([b], nbproc=1, server_opts="maxconn 1",
                       defaults_lines=["timeout queue 300ms"])
    with HttpClient(kw.port, timeout=10) as busy:
        busy.send_request("GET", "/slow-hold")
        b.wait_requests(1)
        started = time.monotonic()
        r = get(kw.port, "/queued", timeout=10)
        waited = time.monotonic() - started
        assert r.status == 503
        assert waited < 1.5, "503 came after %.2f s, not after timeout queue" % waited
        assert busy.read_response().status == 200
    assert [q.target for q in b.requests] == ["/slow-hold"], "the timed-out request reached the server"


def test_requests_go_to_a_server_with_room_before_queueing(backend_factory, proxy_factory):
    b1 = backend_factory("s1", _slow(1.0))
    b2 = backend_factory("s2", _slow(1.0))
    kw = proxy_factory([b1, b2], nbproc=1, server_opts="maxconn 1")
    with HttpClient(kw.port, timeout=10) as c1, HttpClient(kw.port, timeout=10) as c2:
        c1.send_request("GET", "/slow-1")
        c2.send_request("GET", "/slow-2")
        assert c1.read_response().status == 200 and c2.read_response().status == 200
    assert b1.request_count == 1 and b2.request_count == 1


def test_balance_source_sends_one_client_to_one_server(backend_factory, proxy_factory):
    bs = [backend_factory("s%d" % i) for i in (1, 2, 3)]
    kw = proxy_factory(bs, nbproc=2, backend_lines=["balance source"])
    for i in range(12):
        assert get(kw.port, "/n%d" % i).status == 200
    assert sorted(b.request_count for b in bs) == [0, 0, 12]


def test_balance_uri_keeps_each_uri_on_one_server(backend_factory, proxy_factory):
    bs = [backend_factory("s%d" % i) for i in (1, 2, 3)]
    kw = proxy_factory(bs, nbproc=2, backend_lines=["balance uri", "hash-type consistent"])
    uris = ["/item/%d" % i for i in range(10)]
    for _ in range(3):
        for u in uris:
            assert get(kw.port, u).status == 200
    for u in uris:
        owners = {b.name for b in bs for q in b.requests if q.target == u}
        assert len(owners) == 1, (u, owners)
    assert sum(1 for b in bs if b.request_count) >= 2, "every URI landed on one server"
