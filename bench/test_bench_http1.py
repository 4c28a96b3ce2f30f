"""The sans-IO HTTP/1 layer per request: each rule alone, then the session's whole decision sequence.

    python3 -m pytest bench/test_bench_http1.py --benchmark-only --benchmark-group-by=group

Rules (`proxy.http1.rules`, `proxy.http1.rewrite`) are timed on real parser results for
a typical request and response, as the session calls them.  "decisions" is what the
session does per exchange before any byte moves: parse the request head, classify it,
choose the bytes to forward (the original head, or `strip_hop()` plus the end line),
parse the response head, classify it, choose again; with the C and the pure parser.
"""

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from _native.constants import (  # noqa: E402
    F_HOP, M_GET, R_BODY, R_BODY_LEN, R_END, R_FLAGS, R_METHOD, R_METHOD_OFF, R_PERSIST,
    R_VERDICT, R_VERSION,
)
from _native.testing import IMPLEMENTATIONS  # noqa: E402
from proxy.http1.rewrite import ADD, DEL, SET, apply_rules  # noqa: E402
from proxy.http1.rules import (  # noqa: E402
    BODY_CLOSE, BODY_LENGTH, BODY_NONE, IDEMPOTENT, REUSE_ANY, REUSE_SAFE,
    classify_request, classify_response, is_replayable, keepalive_hint, reuse_scope,
)

# A browser request and an nginx response: both carry "Connection: keep-alive",
# a hop-by-hop header, so the session rebuilds both heads with strip_hop().
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
NGINX_RESPONSE = (
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
# wrk-like request and a bare HTTP/1.1 response: no hop-by-hop header, the
# session forwards both heads as received (the fast path).
CURL = b"GET / HTTP/1.1\r\nHost: localhost:8080\r\nUser-Agent: curl/8.5.0\r\nAccept: */*\r\n\r\n"
SMALL_RESPONSE = (
    b"HTTP/1.1 200 OK\r\n"
    b"Content-Type: text/plain\r\n"
    b"Content-Length: 100\r\n"
    b"\r\n"
)
EXCHANGES = {"browser": (BROWSER, NGINX_RESPONSE), "curl": (CURL, SMALL_RESPONSE)}

END = b"\r\n"
END_CLOSE = b"Connection: close\r\n" + END
END_KEEPALIVE_10 = b"Connection: keep-alive\r\n" + END

# Two header rules, as `http-request set-header` / `http-request del-header` give them.
TWO_RULES = ((SET, "X-Forwarded-Proto", "https"), (DEL, "Cookie", None))


def native_or_skip():
    mod = IMPLEMENTATIONS["native"]
    if mod is None:
        pytest.skip("C module not built (python3 _native/build.py)")
    return mod


def test_exchanges_take_the_paths_they_are_named_for():
    p = IMPLEMENTATIONS["pure"].Parser()
    assert p.parse_request(BROWSER)[R_FLAGS] & F_HOP
    assert p.parse_response(NGINX_RESPONSE)[R_FLAGS] & F_HOP
    assert not p.parse_request(CURL)[R_FLAGS] & F_HOP
    assert not p.parse_response(SMALL_RESPONSE)[R_FLAGS] & F_HOP


# --- each rule alone ----------------------------------------------------------------

def test_classify_request(benchmark):
    r = native_or_skip().Parser().parse_request(BROWSER)
    benchmark.group = "rules"
    assert benchmark(classify_request, r) == (0, BODY_NONE, 0, True)


def test_classify_response(benchmark):
    r = native_or_skip().Parser().parse_response(NGINX_RESPONSE)
    benchmark.group = "rules"
    assert benchmark(classify_response, r, M_GET) == (BODY_LENGTH, 612, True)


def test_reuse_scope(benchmark):
    benchmark.group = "rules"
    # A session's first request, replayable, under the default http-reuse safe.
    assert benchmark(reuse_scope, REUSE_SAFE, True, True) == REUSE_ANY


def test_is_replayable(benchmark):
    benchmark.group = "rules"
    assert benchmark(is_replayable, M_GET, BODY_NONE, True) is True


def test_keepalive_hint(benchmark):
    benchmark.group = "rules"
    assert benchmark(keepalive_hint, b"timeout=5, max=100") == (5, 100)


def test_apply_rules_with_two_rules(benchmark):
    p = native_or_skip().Parser()
    p.parse_request(BROWSER)
    head = p.strip_hop(BROWSER)
    benchmark.group = "rules"
    out = benchmark(apply_rules, head, TWO_RULES)
    assert b"X-Forwarded-Proto: https\r\n" in out and b"Cookie:" not in out


def test_apply_rules_add_only(benchmark):
    # The cheapest edit (add-header): no line is scanned, only appended.
    p = native_or_skip().Parser()
    p.parse_request(BROWSER)
    head = p.strip_hop(BROWSER)
    benchmark.group = "rules"
    out = benchmark(apply_rules, head, ((ADD, "X-A", "1"), (ADD, "X-B", "2")))
    assert out.endswith(b"X-A: 1\r\nX-B: 2\r\n")


# --- the session's per-exchange decisions -------------------------------------------

def decisions(parser, request, response):
    """What Session.on_head_data and on_response_head_data decide on their fast path
    (default config: keep-alive both sides, no header rules), without the I/O: the
    parse partials, the parser's decision slots read straight from result(), and
    one rewrite_rc() for a whole response that must lose hop-by-hop headers."""
    if parser.request_rc(request, len(request), 0, 0) <= 0:
        return None
    r = parser.result()
    if r[R_VERDICT]:
        return None
    end = r[R_END]
    method = r[R_METHOD]
    version = r[R_VERSION]
    kind = r[R_BODY]
    keepalive = r[R_PERSIST]
    if r[R_FLAGS] & F_HOP or version == 10:
        head = parser.strip_hop(request) + (END_KEEPALIVE_10 if version == 10 else END)
    elif r[R_METHOD_OFF]:
        head = request[r[R_METHOD_OFF]:end]
    elif end == len(request):
        head = request
    else:
        head = request[:end]
    replay = head if method in IDEMPOTENT and kind == BODY_NONE else None
    scope = reuse_scope(REUSE_SAFE, True, replay is not None)

    if parser.response_rc(response, len(response), 0, 0) <= 0:
        return None
    s = parser.result()
    rkind, rlength, server_ka = s[R_BODY], s[R_BODY_LEN], s[R_PERSIST]
    client_ka = keepalive and rkind != BODY_CLOSE
    end = s[R_END]
    if s[R_FLAGS] & F_HOP or not client_ka or version == 10:
        tail = END_CLOSE if not client_ka else END_KEEPALIVE_10 if version == 10 else END
        n = parser.rewrite_rc(response, len(response), 0, tail, len(tail))
        out = parser.rewritten(n)
    else:
        out = response
    return head, scope, out, rkind, rlength, server_ka


@pytest.mark.parametrize("exchange", list(EXCHANGES))
@pytest.mark.parametrize("impl", ["native", "pure"])
def test_decisions_per_exchange(benchmark, impl, exchange):
    mod = IMPLEMENTATIONS[impl]
    if mod is None:
        pytest.skip("C module not built")
    request, response = EXCHANGES[exchange]
    parser = mod.Parser(max_headers=101, max_head=16384, max_line=8192)   # the worker's limits
    benchmark.group = "decisions"
    benchmark.name = "decisions %s %s" % (exchange, impl)
    head, scope, rhead, rkind, rlength, server_ka = benchmark(decisions, parser, request, response)
    assert scope == REUSE_ANY and rkind == BODY_LENGTH and server_ka
    if exchange == "browser":
        assert b"Connection" not in head and b"Connection" not in rhead
        assert head.endswith(b"\r\n\r\n") and rhead.endswith(b"\r\n\r\n")
    else:
        assert head is request and rhead is response and rlength == 100
