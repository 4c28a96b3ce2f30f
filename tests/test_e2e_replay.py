"""The idle-close race and safe replay, end to end (issue 4, "The idle-close race").

A server may close an idle keep-alive connection at any moment, including the
instant the proxy sends a request on it. keepwarm must hide that from clients:
a pooled connection the kernel already knows is closed is never used, and a
replayable request (idempotent, whole body in hand) that meets a dead reused
connection before any response byte is replayed once on a fresh connection.
A request that cannot be replayed (a POST whose body was sent) gets a 502 and
is never silently sent twice.
"""

import random
import threading
import time

from support.backend import Reply
from support.checks import assert_html_error, run_parallel
from support.client import HttpClient, get


def nasty_handler(seed):
    """A backend that closes keep-alive connections at random moments, never announcing it.

    For each request, at random: close the connection just as the request
    arrives (only on a reused connection: a server never does that to a fresh
    one) -- the race itself; answer and then close silently; answer and then
    close if the next request does not come within a few milliseconds; or
    answer and keep the connection.
    """
    rng = random.Random(seed)
    lock = threading.Lock()

    def handler(be, req):
        with lock:
            x = rng.random()
            idle = rng.uniform(0.001, 0.03)
        body = req.target.encode()
        if req.seq > 1 and x < 0.10:
            return Reply(drop=True)
        if x < 0.30:
            head = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nX-Conn-Id: %s-%d\r\n\r\n" % (
                len(body), be.name.encode(), req.conn_id)
            return Reply(raw=head + body)          # answered, then closed without a word
        if x < 0.50:
            return Reply(body=body, idle_after=idle)
        return Reply(body=body)

    return handler


def test_10000_gets_against_a_backend_closing_idle_connections_at_random_see_no_error(
        backend_factory, proxy_factory, record_property):
    bs = [backend_factory("s1", nasty_handler(1)), backend_factory("s2", nasty_handler(2))]
    kw = proxy_factory(bs, nbproc=2)
    clients, per_client = 8, 1250

    def client(i):
        errors = []
        done = 0
        c = HttpClient(kw.port, timeout=10)
        try:
            for j in range(per_client):
                target = "/c%d/r%d" % (i, j)
                close = j % 7 == 6                   # some clients leave after their request
                headers = [("Connection", "close")] if close else []
                try:
                    r = c.request("GET", target, headers)
                    if r.status != 200 or r.body != target.encode():
                        errors.append((target, r.status, r.body[:100]))
                except (OSError, AssertionError) as exc:
                    errors.append((target, "exception", repr(exc)))
                    close = True
                done += 1
                if close:
                    c.close()
                    c.connect()
        finally:
            c.close()
        return done, errors

    t0 = time.monotonic()
    results = run_parallel(client, clients, timeout=120)
    elapsed = time.monotonic() - t0
    errors = [e for _, errs in results for e in errs]
    assert sum(d for d, _ in results) == clients * per_client
    assert not errors, "%d client-visible errors of %d requests, first ones: %r" % (
        len(errors), clients * per_client, errors[:5])
    st = kw.wait_stats(lambda s: s["frontends"]["fe"]["req_tot"] >= clients * per_client,
                       timeout=10, what="req_tot 10000")
    replays = st["backends"]["be"]["replays"]
    conns = sum(b.conn_count for b in bs)
    dropped = sum(1 for b in bs for c in b.connections if c.closed_by != "peer")
    record_property("replays", replays)
    record_property("backend_connections", conns)
    print("10000 GETs in %.1f s: %d backend connections (%d closed by the backend), %d replays"
          % (elapsed, conns, dropped, replays))
    assert st["frontends"]["fe"]["hrsp_2xx"] == clients * per_client
    assert st["frontends"]["fe"]["hrsp_5xx"] == 0
    assert replays > 0, "no replay happened: the backend was not nasty enough to test anything"
    assert not [e for b in bs for e in b.errors], [e for b in bs for e in b.errors][:5]


def _drop_reused(method):
    def handler(be, req):
        if req.method == method and req.seq > 1:
            return Reply(drop=True)    # the server closed the reused connection as the request came
        return Reply(body=req.body or b"")
    return handler


def test_post_with_body_on_a_dead_reused_connection_gets_502_and_reaches_the_backend_once(
        backend_factory, proxy_factory):
    b = backend_factory("s1", _drop_reused("POST"))
    kw = proxy_factory([b], nbproc=1)
    with HttpClient(kw.port) as c:
        assert c.request("GET", "/first").status == 200
        r = c.request("POST", "/order", body=b"item=1")
        assert_html_error(r, 502)
    assert [(q.method, q.target, q.body) for q in b.requests].count(("POST", "/order", b"item=1")) == 1
    st = kw.wait_stats(lambda s: s["frontends"]["fe"]["hrsp_5xx"] >= 1, what="hrsp_5xx 1")
    assert st["backends"]["be"]["replays"] == 0


def test_streamed_post_on_a_dead_reused_connection_gets_502_and_reaches_the_backend_once(
        backend_factory, proxy_factory):
    b = backend_factory("s1", _drop_reused("POST"))
    kw = proxy_factory([b], nbproc=1)
    with HttpClient(kw.port) as c:
        assert c.request("GET", "/first").status == 200
        c.send_request("POST", "/stream", body=iter([b"part1-", b"part2-", b"part3"]), chunked=True)
        r = c.read_response("POST")
        assert_html_error(r, 502)
    posts = [q for q in b.requests if q.method == "POST"]
    assert len(posts) <= 1, "the streamed POST reached the backend %d times" % len(posts)


def test_first_post_of_a_client_under_http_reuse_always_on_a_dead_pooled_connection_is_not_replayed(
        backend_factory, proxy_factory):
    b = backend_factory("s1", _drop_reused("POST"))
    kw = proxy_factory([b], nbproc=1, backend_lines=["http-reuse always"])
    assert get(kw.port, "/warm").status == 200          # leaves a pooled connection
    with HttpClient(kw.port) as c:
        r = c.request("POST", "/pay", [("Connection", "close")], body=b"amount=10")
    # "always" let the POST take the pooled connection; it died: 502, never a second send
    assert_html_error(r, 502)
    assert sum(1 for q in b.requests if q.target == "/pay") == 1


def test_put_with_its_whole_body_in_hand_is_replayed_once_on_a_fresh_connection(backend_factory,
                                                                                proxy_factory):
    # PUT is idempotent (RFC 9110 §9.2.2) and its body was still held: replayable.
    b = backend_factory("s1", _drop_reused("PUT"))
    kw = proxy_factory([b], nbproc=1)
    with HttpClient(kw.port) as c:
        assert c.request("GET", "/first").status == 200
        r = c.request("PUT", "/doc", body=b"content")
    assert r.status == 200 and r.body == b"content"
    assert r.conn_id == "s1-2"
    puts = [(q.conn_id, q.seq, q.body) for q in b.requests if q.method == "PUT"]
    assert puts == [(1, 2, b"content"), (2, 1, b"content")]
    st = kw.wait_stats(lambda s: s["backends"]["be"]["replays"] >= 1, what="replays 1")
    assert st["backends"]["be"]["replays"] == 1


def test_a_replay_is_tried_once_only(backend_factory, proxy_factory):
    # The server drops every /doomed request, even on a fresh connection: one
    # replay, then a 502, never a loop.
    def handler(be, req):
        return Reply(drop=True) if req.target == "/doomed" else None

    b = backend_factory("s1", handler)
    kw = proxy_factory([b], nbproc=1)
    with HttpClient(kw.port) as c:
        assert c.request("GET", "/first").status == 200
        r = c.request("GET", "/doomed")
    assert_html_error(r, 502)
    assert [q.target for q in b.requests].count("/doomed") == 2


def test_post_after_the_server_closed_the_idle_connection_is_sent_on_a_fresh_one(backend_factory,
                                                                                 proxy_factory):
    # The server closed the idle connection a while ago: the proxy already knows,
    # so even a non-replayable request is not lost -- it never uses that connection.
    b = backend_factory("s1", lambda be, req: Reply(body=req.body or b"", idle_after=0.1))
    kw = proxy_factory([b], nbproc=1)
    with HttpClient(kw.port) as c:
        assert c.request("GET", "/first").conn_id == "s1-1"
        b.wait_for(lambda be: be.connections[0].closed_at is not None, what="the idle close")
        kw.wait_stats(lambda s: s["backends"]["be"]["servers"]["s1"]["idle_conn_cur"] == 0,
                      what="the proxy to notice the close")
        r = c.request("POST", "/after-idle", body=b"x=1")
    assert r.status == 200 and r.body == b"x=1"
    assert r.conn_id == "s1-2"
    st = kw.stats()
    assert st["backends"]["be"]["replays"] == 0


def test_pooled_connection_closed_by_the_server_is_not_used_by_the_next_client(backend_factory,
                                                                               proxy_factory):
    b = backend_factory("s1", lambda be, req: Reply(body=req.body or b"", idle_after=0.1))
    kw = proxy_factory([b], nbproc=1, backend_lines=["http-reuse always"])
    assert get(kw.port, "/warm").conn_id == "s1-1"
    b.wait_for(lambda be: be.connections[0].closed_at is not None, what="the idle close")
    kw.wait_stats(lambda s: s["backends"]["be"]["servers"]["s1"]["idle_conn_cur"] == 0,
                  what="the proxy to evict the closed connection")
    with HttpClient(kw.port) as c:
        r = c.request("POST", "/new-client", [("Connection", "close")], body=b"y=2")
    assert r.status == 200 and r.conn_id == "s1-2"
