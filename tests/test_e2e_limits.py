"""Limits and timeouts end to end (issue 4, "Timeouts and limits"), and keepwarm's error pages.

Limits as in HAProxy's defaults: a request line over 8 KiB -> 414, a header
section over 16 KiB -> 431, more than 101 header fields (HAProxy's
tune.http.maxhdr) -> 431; nothing of such a request reaches the backend.
Timeouts: `timeout http-request` bounds a trickled head (slowloris) with a 408;
an idle keep-alive client is closed silently after `timeout http-keep-alive`;
a client that stalls inside its request body is cut after `timeout client`.
"""

import select
import socket
import time

import pytest

from support.backend import Reply
from support.checks import assert_html_error
from support.client import HttpClient
from support.proxy import free_port


def assert_refused_unforwarded(kw, backend, wire, status):
    with HttpClient(kw.port, timeout=3) as c:
        c.send(wire)
        r = c.read_response()
        assert_html_error(r, status)
        assert "close" in r.connection_tokens
        assert c.wait_closed(2)
    assert backend.conn_count == 0, "the refused request reached the backend"


# ------------------------------------------------------------------ sizes

def test_request_line_over_8_kib_gets_414_and_close(backend_factory, proxy_factory):
    b = backend_factory("s1")
    kw = proxy_factory([b], nbproc=1)
    target = b"/" + b"a" * 9000
    assert_refused_unforwarded(kw, b, b"GET %s HTTP/1.1\r\nHost: t\r\n\r\n" % target, 414)


def test_request_line_just_under_8_kib_is_forwarded(backend_factory, proxy_factory):
    b = backend_factory("s1")
    kw = proxy_factory([b], nbproc=1)
    target = "/" + "a" * 8000          # 8016-byte request line with its CRLF
    with HttpClient(kw.port) as c:
        assert c.request("GET", target).status == 200
    assert b.requests[0].target == target


def test_header_section_over_16_kib_gets_431_and_close(backend_factory, proxy_factory):
    b = backend_factory("s1")
    kw = proxy_factory([b], nbproc=1)
    headers = b"".join(b"X-Big-%d: %s\r\n" % (i, b"v" * 1000) for i in range(20))   # ~20 KiB
    assert_refused_unforwarded(kw, b, b"GET / HTTP/1.1\r\nHost: t\r\n" + headers + b"\r\n", 431)


def test_header_section_under_16_kib_is_forwarded(backend_factory, proxy_factory):
    b = backend_factory("s1")
    kw = proxy_factory([b], nbproc=1)
    headers = [("X-Big-%d" % i, "v" * 1000) for i in range(14)]                     # ~14 KiB
    with HttpClient(kw.port) as c:
        assert c.request("GET", "/", headers).status == 200
    assert len(b.requests[0].headers) == 15


def test_150_header_fields_get_431_and_close(backend_factory, proxy_factory):
    b = backend_factory("s1")
    kw = proxy_factory([b], nbproc=1)
    headers = b"".join(b"X-H%d: v\r\n" % i for i in range(150))
    assert_refused_unforwarded(kw, b, b"GET / HTTP/1.1\r\nHost: t\r\n" + headers + b"\r\n", 431)


def test_header_field_count_limit_is_haproxys_101(backend_factory, proxy_factory):
    # HAProxy's tune.http.maxhdr defaults to 101 header fields per message.
    b = backend_factory("s1")
    kw = proxy_factory([b], nbproc=1)
    with HttpClient(kw.port) as c:
        r = c.request("GET", "/101", [("X-H%d" % i, "v") for i in range(100)])   # + Host = 101
        assert r.status == 200, "101 header fields refused with %d" % r.status
    with HttpClient(kw.port, timeout=3) as c:
        c.send_request("GET", "/102", [("X-H%d" % i, "v") for i in range(101)])  # + Host = 102
        r = c.read_response()
        assert_html_error(r, 431)
        assert c.wait_closed(2)
    assert [q.target for q in b.requests] == ["/101"]


# ------------------------------------------------------------------ timeouts

def trickle_until_answered(sock, data, interval):
    """Send ``data`` one byte per ``interval`` until the proxy answers or closes.

    The pause between bytes is a bounded wait for the answer itself. Returns
    (seconds from the first byte to the answer or None, bytes sent).
    """
    t0 = None
    for i in range(len(data)):
        try:
            sock.sendall(data[i:i + 1])
        except (BrokenPipeError, ConnectionResetError):
            return (time.monotonic() - t0 if t0 else None), i
        if t0 is None:
            t0 = time.monotonic()
        readable, _, _ = select.select([sock], [], [], interval)
        if readable:
            return time.monotonic() - t0, i + 1
    return None, len(data)


def test_head_trickled_byte_by_byte_gets_408_after_timeout_http_request(backend_factory,
                                                                        proxy_factory):
    b = backend_factory("s1")
    kw = proxy_factory([b], nbproc=1, defaults_lines=["timeout http-request 1s"],
                       timeouts=("connect 2s", "client 10s", "server 10s"))
    head = b"GET /slowloris HTTP/1.1\r\nHost: t\r\nX-Padding: " + b"p" * 100 + b"\r\n\r\n"
    with HttpClient(kw.port, timeout=5) as c:
        waited, sent = trickle_until_answered(c.sock, head, 0.2)
        assert waited is not None, "the whole head was trickled (%d bytes) with no answer" % sent
        assert sent < len(head)
        r = c.read_response()
        assert_html_error(r, 408)
        assert "close" in r.connection_tokens
        assert c.wait_closed(2)
    assert 0.9 <= waited <= 1.75, "408 after %.2f s with timeout http-request 1s" % waited
    assert b.conn_count == 0


def test_connection_that_sends_nothing_gets_408_after_timeout_http_request(backend_factory,
                                                                          proxy_factory):
    b = backend_factory("s1")
    kw = proxy_factory([b], nbproc=1, defaults_lines=["timeout http-request 500ms"])
    with HttpClient(kw.port, timeout=5) as c:
        t0 = time.monotonic()
        r = c.read_response()
        waited = time.monotonic() - t0
        assert_html_error(r, 408)
        assert c.wait_closed(2)
    assert 0.4 <= waited <= 1.25, "408 after %.2f s with timeout http-request 500ms" % waited
    assert b.conn_count == 0


def test_http_ignore_probes_closes_a_silent_connection_without_408_and_counts_nothing(
        backend_factory, proxy_factory):
    b = backend_factory("s1")
    kw = proxy_factory([b], nbproc=1,
                       defaults_lines=["timeout http-request 500ms", "option http-ignore-probes"])
    with HttpClient(kw.port, timeout=5) as c:
        t0 = time.monotonic()
        assert c.wait_closed(3), "a silent connection still open after 3 s"   # bytes would raise
        waited = time.monotonic() - t0
    assert 0.4 <= waited <= 1.25, "closed after %.2f s with timeout http-request 500ms" % waited
    # A connection that sent part of a head is no probe: it still gets its 408.
    with HttpClient(kw.port, timeout=5) as c:
        c.send(b"GET / HTTP/1.1\r\n")
        assert_html_error(c.read_response(), 408)
    st = kw.wait_stats(lambda s: s["frontends"]["fe"]["hrsp_4xx"] >= 1, what="the 408 counted")
    fe = st["frontends"]["fe"]
    assert (fe["hrsp_4xx"], fe["req_tot"]) == (1, 1), "the ignored probe was counted"
    assert b.conn_count == 0


def test_idle_keep_alive_client_is_closed_silently_after_timeout_http_keep_alive(backend_factory,
                                                                                 proxy_factory):
    b = backend_factory("s1")
    kw = proxy_factory([b], nbproc=1,
                       defaults_lines=["timeout http-keep-alive 500ms", "timeout http-request 5s"])
    with HttpClient(kw.port) as c:
        assert c.request("GET", "/").status == 200
        t0 = time.monotonic()
        assert c.wait_closed(3), "idle keep-alive client still open after 3 s"   # no bytes: no 408
        idle = time.monotonic() - t0
    assert 0.4 <= idle <= 1.25, "closed after %.2f s idle with timeout http-keep-alive 500ms" % idle


def test_a_client_whose_requests_were_answered_503_is_closed_silently_when_idle(backend_factory,
                                                                               proxy_factory):
    """Its requests never reached a server (the only one is disabled), but they were
    requests: going idle afterwards gets no 408 "never sent a complete request"."""
    b = backend_factory("s1")
    kw = proxy_factory([b], nbproc=1, server_opts="disabled",
                       defaults_lines=["timeout http-keep-alive 500ms", "timeout http-request 5s"])
    with HttpClient(kw.port) as c:
        assert c.request("GET", "/").status == 503
        assert c.wait_closed(3), "idle keep-alive client still open after 3 s"   # no bytes: no 408
    st = kw.wait_stats(lambda s: s["frontends"]["fe"]["scur"] == 0, what="closed")
    assert st["frontends"]["fe"]["hrsp_4xx"] == 0


def test_idle_wait_between_requests_is_bounded_by_http_keep_alive_not_http_request(
        backend_factory, proxy_factory):
    b = backend_factory("s1")
    kw = proxy_factory([b], nbproc=1,
                       defaults_lines=["timeout http-keep-alive 1s", "timeout http-request 200ms"])
    with HttpClient(kw.port) as c:
        assert c.request("GET", "/").status == 200
        assert not c.wait_closed(0.6), "closed after timeout http-request while idle between requests"
        assert c.request("GET", "/again").status == 200     # still usable
        t0 = time.monotonic()
        assert c.wait_closed(3)
    assert time.monotonic() - t0 >= 0.75


@pytest.mark.parametrize("second_write", [False, True], ids=["stall-after-head", "stall-mid-body"])
def test_client_stalling_inside_its_body_is_closed_after_timeout_client(backend_factory,
                                                                        proxy_factory, second_write):
    # HAProxy: while the body is awaited, `timeout client` runs on the client side
    # (and `timeout server` on the server side); the shorter one wins here.
    b = backend_factory("s1")
    kw = proxy_factory([b], nbproc=1, defaults_lines=["timeout http-request 10s"],
                       timeouts=("connect 2s", "client 1s", "server 6s"))
    with HttpClient(kw.port, timeout=5) as c:
        c.send(b"POST /upload HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\n" + b"x" * 10)
        if second_write:
            b.wait_for(lambda be: be.conn_count == 1, what="the proxy to connect")
            c.send(b"y" * 10)
        t0 = time.monotonic()
        got = bytearray()
        c.sock.settimeout(5)
        try:
            while True:
                data = c.sock.recv(65536)
                if not data:
                    break
                got += data
        except ConnectionResetError:
            pass
        except socket.timeout:
            raise AssertionError("stalled client still open 5 s after its last byte "
                                 "(timeout client 1s); got %r" % bytes(got[:200]))
        waited = time.monotonic() - t0
    if got:
        assert got.startswith(b"HTTP/1.1 408 "), "unexpected answer to a stalled body: %r" % got[:200]
    assert 0.8 <= waited <= 2.0, "stalled client closed after %.2f s with timeout client 1s" % waited
    b.wait_for(lambda be: be.connections and be.connections[0].closed_at is not None, timeout=3,
               what="the proxy to close the server side of the abandoned request")
    assert b.request_count == 0, "an incomplete request was completed towards the backend"


# ------------------------------------------------------------------ error pages


def _trigger_400(kw, c):
    c.send(b"NOT A REQUEST\r\n\r\n")


def _trigger_408(kw, c):
    c.send(b"GET / HTTP/1.1\r\nHo")


def _trigger_414(kw, c):
    c.send(b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: t\r\n\r\n")


def _trigger_431(kw, c):
    c.send(b"GET / HTTP/1.1\r\nHost: t\r\n" + b"".join(b"X-H%d: v\r\n" % i for i in range(150)) + b"\r\n")


def _trigger_get(kw, c):
    c.send_request("GET", "/")


ERRORS = {
    # status: (trigger, backend handler or "dead", extra proxy_factory kwargs)
    400: (_trigger_400, None, {}),
    408: (_trigger_408, None, {"defaults_lines": ["timeout http-request 300ms"]}),
    414: (_trigger_414, None, {}),
    431: (_trigger_431, None, {}),
    502: (_trigger_get, lambda be, req: Reply(raw=b"garbage\r\n\r\n"), {}),
    503: (_trigger_get, "dead", {}),
    504: (_trigger_get, lambda be, req: Reply(body=b"late", delay=3),
          {"timeouts": ("connect 2s", "client 5s", "server 300ms")}),
}


@pytest.mark.parametrize("status", sorted(ERRORS))
def test_error_response_is_small_html_says_close_when_closing_and_is_counted(
        status, backend_factory, proxy_factory):
    trigger, handler, kwargs = ERRORS[status]
    if handler == "dead":
        servers = [("dead", free_port())]
    else:
        servers = [backend_factory("s1", handler)]
    kw = proxy_factory(servers, nbproc=1, **kwargs)
    with HttpClient(kw.port, timeout=4) as c:
        trigger(kw, c)
        r = c.read_response()
        assert_html_error(r, status)
        assert r.version == "HTTP/1.1"
        assert r.header("Content-Length") == str(len(r.body))
        if status < 500:
            assert "close" in r.connection_tokens, "%d must close the connection" % status
        if "close" in r.connection_tokens:
            assert c.wait_closed(2), "%d said Connection: close but the connection stayed open" % status
        else:
            assert not c.wait_closed(0.2), "%d closed without saying Connection: close" % status
    field = "hrsp_%dxx" % (status // 100)
    st = kw.wait_stats(lambda s: s["frontends"]["fe"][field] >= 1, what="%s 1" % field)
    fe = st["frontends"]["fe"]
    assert fe[field] == 1
    assert fe["hrsp_2xx"] == 0
