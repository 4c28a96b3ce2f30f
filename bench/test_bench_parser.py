"""Head parser speed: keepwarm (C and pure) vs httptools (llhttp) vs h11, same information out.

    python3 -m pytest bench/test_bench_parser.py --benchmark-only --benchmark-group-by=param:head

Every contender produces, per head: method (or status), target, version, the framing
facts (Content-Length, chunked, Connection close / keep-alive) and the headers
(offsets for ours; httptools and h11 only hand out Python bytes).  keepwarm's
"+headers" rows also build the Python [(name, value)] list, as httptools and h11 do.
"""

import os
import sys
from functools import partial

import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from _native import constants as K  # noqa: E402
from _native.testing import IMPLEMENTATIONS  # noqa: E402

try:
    import httptools
except ImportError:  # bench-only dependency
    httptools = None
try:
    import h11
except ImportError:  # bench-only dependency
    h11 = None

BROWSER = (
    b"GET /static/app/main.3f9a1c.js?v=20240611 HTTP/1.1\r\n"
    b"Host: www.example.com\r\n"
    b"Connection: keep-alive\r\n"
    b"sec-ch-ua: \"Chromium\";v=\"125\", \"Not.A/Brand\";v=\"24\"\r\n"
    b"sec-ch-ua-mobile: ?0\r\n"
    b"User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    b"Chrome/125.0.0.0 Safari/537.36\r\n"
    b"sec-ch-ua-platform: \"Linux\"\r\n"
    b"Accept: */*\r\n"
    b"Sec-Fetch-Site: same-origin\r\n"
    b"Sec-Fetch-Mode: no-cors\r\n"
    b"Referer: https://www.example.com/products/index.html\r\n"
    b"Accept-Encoding: gzip, deflate, br, zstd\r\n"
    b"Accept-Language: en-US,en;q=0.9,fr;q=0.8\r\n"
    b"Cookie: session=8f2b1c9d0e; theme=dark\r\n"
    b"\r\n"
)
CURL = b"GET / HTTP/1.1\r\nHost: localhost:8080\r\nUser-Agent: curl/8.5.0\r\nAccept: */*\r\n\r\n"
RESPONSE = (
    b"HTTP/1.1 200 OK\r\n"
    b"Server: nginx/1.24.0\r\n"
    b"Date: Tue, 11 Jun 2024 10:00:00 GMT\r\n"
    b"Content-Type: text/html; charset=utf-8\r\n"
    b"Content-Length: 612\r\n"
    b"Last-Modified: Mon, 10 Jun 2024 08:00:00 GMT\r\n"
    b"Connection: keep-alive\r\n"
    b"ETag: \"6666c0a0-264\"\r\n"
    b"Accept-Ranges: bytes\r\n"
    b"\r\n"
)
HEADS = {"browser": BROWSER, "curl": CURL, "response": RESPONSE}
IS_REQUEST = {"browser": True, "curl": True, "response": False}


def framing_from_headers(headers):
    """The framing facts a proxy needs, from a list of (name, value) Python bytes."""
    cl = -1
    chunked = close = keepalive = False
    for name, value in headers:
        name = name.lower()
        if name == b"content-length":
            cl = int(value)
        elif name == b"transfer-encoding":
            chunked = value.lower().rstrip().endswith(b"chunked")
        elif name == b"connection":
            for tok in value.lower().split(b","):
                tok = tok.strip()
                close |= tok == b"close"
                keepalive |= tok == b"keep-alive"
    return cl, chunked, close, keepalive


def test_heads_are_the_advertised_shapes():
    assert 450 <= len(BROWSER) <= 700 and BROWSER.count(b"\r\n") - 2 == 13
    assert len(CURL) < 100


# --- keepwarm -------------------------------------------------------------------

def keepwarm_case(mod, head, with_headers):
    p = mod.Parser()
    data = HEADS[head]
    parse = p.parse_request if IS_REQUEST[head] else p.parse_response
    if with_headers:
        def run():
            r = parse(data)
            return r, p.headers(data)
    else:
        def run():
            return parse(data)
    return run


@pytest.mark.parametrize("head", list(HEADS))
@pytest.mark.parametrize("impl", ["native", "pure"])
@pytest.mark.parametrize("with_headers", [False, True], ids=["offsets", "+headers"])
def test_keepwarm(benchmark, head, impl, with_headers):
    mod = IMPLEMENTATIONS[impl]
    if mod is None:
        pytest.skip("C module not built")
    benchmark.group = head
    benchmark.name = "keepwarm-%s %s" % (impl, "+headers" if with_headers else "offsets")
    run = keepwarm_case(mod, head, with_headers)
    r = benchmark(run)
    res = r[0] if with_headers else r
    assert res[K.R_END] == len(HEADS[head])
    if head == "response":
        assert res[K.R_CONTENT_LENGTH] == 612 and res[K.R_FLAGS] & K.F_CONN_KEEPALIVE


# --- httptools (llhttp) -----------------------------------------------------------

class _Collector:
    __slots__ = ("url", "headers", "done", "status")

    def __init__(self):
        self.url = None
        self.headers = []
        self.done = False

    def on_url(self, url):
        self.url = url

    def on_status(self, status):
        self.status = status

    def on_header(self, name, value):
        self.headers.append((name, value))

    def on_headers_complete(self):
        self.done = True


@pytest.mark.skipif(httptools is None, reason="httptools not installed (bench-only dependency)")
@pytest.mark.parametrize("head", list(HEADS))
def test_httptools(benchmark, head):
    benchmark.group = head
    benchmark.name = "httptools"
    data = HEADS[head]
    if IS_REQUEST[head]:
        c = _Collector()
        parser = httptools.HttpRequestParser(c)  # reused: a GET without body completes

        def run():
            c.headers = []
            parser.feed_data(data)
            return (parser.get_method(), c.url, parser.get_http_version(),
                    framing_from_headers(c.headers), c.headers)
        r = benchmark(run)
        assert r[0] == b"GET"
    else:
        # A response with a body leaves llhttp waiting for it: a fresh parser per
        # head, made outside the timed part.
        def setup():
            c = _Collector()
            return (c, httptools.HttpResponseParser(c)), {}

        def run(c, parser):
            parser.feed_data(data)
            return (parser.get_status_code(), parser.get_http_version(),
                    framing_from_headers(c.headers), c.headers)
        r = benchmark.pedantic(run, setup=setup, rounds=20000, warmup_rounds=100)
        assert r[0] == 200 and r[2][0] == 612


# --- h11 ------------------------------------------------------------------------

@pytest.mark.skipif(h11 is None, reason="h11 not installed (bench-only dependency)")
@pytest.mark.parametrize("head", list(HEADS))
def test_h11(benchmark, head):
    benchmark.group = head
    benchmark.name = "h11"
    data = HEADS[head]
    if IS_REQUEST[head]:
        def setup():
            return (h11.Connection(h11.SERVER),), {}

        def run(conn):
            conn.receive_data(data)
            ev = conn.next_event()
            return ev.method, ev.target, ev.http_version, framing_from_headers(ev.headers), ev.headers
    else:
        def setup():
            conn = h11.Connection(h11.CLIENT)
            conn.send(h11.Request(method="GET", target="/", headers=[("Host", "a")]))
            conn.send(h11.EndOfMessage())
            return (conn,), {}

        def run(conn):
            conn.receive_data(data)
            ev = conn.next_event()
            return ev.status_code, ev.http_version, framing_from_headers(ev.headers), ev.headers
    r = benchmark.pedantic(run, setup=setup, rounds=20000, warmup_rounds=100)
    assert r[0] in (b"GET", 200)


# --- body decoder ---------------------------------------------------------------
#
# One 16 KiB body arriving in 4 reads of 4 KiB, as the session relays it: per read,
# how much is body and whether it is complete. "python-count" is the Content-Length
# counting the session did in Python (forward_request_body) before the decoder; the
# decoder rows do the same with feed() + done (the ChunkedDecoder calls the session
# made for chunked bodies) or with the one-call feed_rc(). Divide by 4 for one read.

BODY_LEN = 16384
LENGTH_PIECES = [b"x" * 4096] * 4
CHUNKED_BODY = b"".join(b"%x\r\n" % 4090 + b"y" * 4090 + b"\r\n" for _ in range(4)) + b"0\r\n\r\n"
CHUNKED_PIECES = [CHUNKED_BODY[i:i + len(CHUNKED_BODY) // 4 + 1]
                  for i in range(0, len(CHUNKED_BODY), len(CHUNKED_BODY) // 4 + 1)]


class _Counting:
    __slots__ = ("req_left", "inbuf")


def python_count_case():
    s = _Counting()

    def run():
        s.req_left = BODY_LEN
        for data in LENGTH_PIECES:
            left = s.req_left
            if len(data) >= left:
                if len(data) > left:
                    s.inbuf = data[left:]
                    data = data[:left]
                done = True
            else:
                s.req_left = left - len(data)
                done = False
        return done
    return run


def decoder_case(mod, framing, form):
    d = mod.BodyDecoder()
    start = d.start_chunked if framing == "chunked" else partial(d.start_length, BODY_LEN)
    pieces = CHUNKED_PIECES if framing == "chunked" else LENGTH_PIECES
    if form == "feed":
        feed = d.feed

        def run():
            start()
            for data in pieces:
                n = feed(data, 0)
                done = d.done
                if n != len(data):
                    data = data[:n]
            return done
    else:
        feed_rc = d.feed_rc
        done_bit = K.BODY_DONE

        def run():
            start()
            for data in pieces:
                rc = feed_rc(data, len(data), 0)
                done = rc >= done_bit
                if done and rc - done_bit != len(data):
                    data = data[:rc - done_bit]
            return done
    return run


@pytest.mark.parametrize("framing", ["length", "chunked"])
@pytest.mark.parametrize("impl, form", [("native", "feed_rc"), ("native", "feed"),
                                        ("pure", "feed_rc"), ("pure", "feed"), ("python", "count")])
def test_body_16k_in_4_reads(benchmark, framing, impl, form):
    benchmark.group = "body %s 16 KiB / 4 reads" % framing
    if impl == "python":
        if framing == "chunked":
            pytest.skip("Python counting is for Content-Length bodies")
        benchmark.name = "python-count"
        run = python_count_case()
    else:
        mod = IMPLEMENTATIONS[impl]
        if mod is None:
            pytest.skip("C module not built")
        benchmark.name = "keepwarm-%s %s" % (impl, form)
        run = decoder_case(mod, framing, form)
    assert benchmark(run) is True
