"""What the proxy decides from a head (RFC 9112 §3.2, §6.3, §9.3), decided by the parser.

Both parsers fill R_VERDICT, R_BODY, R_BODY_LEN and R_PERSIST in their pass over
the head; `proxy.http1.rules.classify_request/classify_response` read them (and add
HEAD's rule, which needs the request). Every case runs on both implementations.
"""

import pytest

from _native import constants as K
from _native.testing import IMPLEMENTATIONS
from proxy.http1.rules import (
    BODY_CHUNKED, BODY_CLOSE, BODY_LENGTH, BODY_NONE, STATUS_CLASS, classify_request,
    classify_response, status_class, websocket_handshake_ok,
)


def head(*lines):
    return b"".join(x + b"\r\n" for x in lines) + b"\r\n"


H = b"Host: a"

# (id, head, (status, body kind, body length, keep-alive))
REQUESTS = [
    ("get_11", head(b"GET / HTTP/1.1", H), (0, BODY_NONE, 0, True)),
    ("get_10", head(b"GET / HTTP/1.0"), (0, BODY_NONE, 0, False)),
    ("get_10_keepalive", head(b"GET / HTTP/1.0", b"Connection: keep-alive"), (0, BODY_NONE, 0, True)),
    ("get_11_close", head(b"GET / HTTP/1.1", H, b"Connection: close"), (0, BODY_NONE, 0, False)),
    ("close_wins_over_keepalive", head(b"GET / HTTP/1.1", H, b"Connection: keep-alive, close"),
     (0, BODY_NONE, 0, False)),
    ("post_length", head(b"POST / HTTP/1.1", H, b"Content-Length: 12"), (0, BODY_LENGTH, 12, True)),
    ("post_length_zero_is_no_body", head(b"POST / HTTP/1.1", H, b"Content-Length: 0"),
     (0, BODY_NONE, 0, True)),
    ("post_chunked", head(b"POST / HTTP/1.1", H, b"Transfer-Encoding: chunked"),
     (0, BODY_CHUNKED, -1, True)),
    ("missing_host_11_is_400", head(b"GET / HTTP/1.1"), (400, BODY_NONE, 0, True)),
    ("missing_host_10_is_fine", head(b"GET / HTTP/1.0"), (0, BODY_NONE, 0, False)),
    ("two_hosts_is_400", head(b"GET / HTTP/1.0", H, H), (400, BODY_NONE, 0, False)),
    ("connect_is_501", head(b"CONNECT a:443 HTTP/1.1", H), (501, BODY_NONE, 0, True)),
    ("host_rule_before_connect", head(b"CONNECT a:443 HTTP/1.1"), (400, BODY_NONE, 0, True)),
]

OK = b"HTTP/1.1 200 OK"

# (id, head, request method, (body kind, body length, keep-alive))
RESPONSES = [
    ("length", head(OK, b"Content-Length: 5"), K.M_GET, (BODY_LENGTH, 5, True)),
    ("length_zero", head(OK, b"Content-Length: 0"), K.M_GET, (BODY_NONE, 0, True)),
    ("chunked", head(OK, b"Transfer-Encoding: chunked"), K.M_GET, (BODY_CHUNKED, -1, True)),
    ("other_coding_runs_until_close", head(OK, b"Transfer-Encoding: gzip"), K.M_GET,
     (BODY_CLOSE, -1, False)),
    ("no_framing_runs_until_close", head(OK), K.M_GET, (BODY_CLOSE, -1, False)),
    ("204_has_no_body", head(b"HTTP/1.1 204 No Content", b"Content-Length: 5"), K.M_GET,
     (BODY_NONE, 0, True)),
    ("304_has_no_body", head(b"HTTP/1.1 304 Not Modified", b"Content-Length: 5"), K.M_GET,
     (BODY_NONE, 0, True)),
    ("1xx_has_no_body", head(b"HTTP/1.1 100 Continue"), K.M_POST, (BODY_NONE, 0, True)),
    ("head_has_no_body", head(OK, b"Content-Length: 5"), K.M_HEAD, (BODY_NONE, 0, True)),
    ("head_without_framing_still_persists", head(OK), K.M_HEAD, (BODY_NONE, 0, True)),
    ("head_with_close", head(OK, b"Connection: close"), K.M_HEAD, (BODY_NONE, 0, False)),
    ("http10_response", head(b"HTTP/1.0 200 OK", b"Content-Length: 5"), K.M_GET,
     (BODY_LENGTH, 5, False)),
    ("http10_keepalive_response", head(b"HTTP/1.0 200 OK", b"Connection: keep-alive",
                                       b"Content-Length: 5"), K.M_GET, (BODY_LENGTH, 5, True)),
    ("close_response", head(OK, b"Connection: close", b"Content-Length: 5"), K.M_GET,
     (BODY_LENGTH, 5, False)),
    ("gzip_then_chunked", head(OK, b"Transfer-Encoding: gzip, chunked"), K.M_GET,
     (BODY_CHUNKED, -1, True)),
    ("http10_close_response", head(b"HTTP/1.0 200 OK", b"Connection: close", b"Content-Length: 5"),
     K.M_GET, (BODY_LENGTH, 5, False)),
    ("head_http10_without_keepalive", head(b"HTTP/1.0 200 OK"), K.M_HEAD, (BODY_NONE, 0, False)),
    ("101_switching", head(b"HTTP/1.1 101 Switching Protocols", b"Connection: upgrade",
                           b"Upgrade: websocket"), K.M_GET, (BODY_NONE, 0, True)),
]


def impls():
    return [pytest.param(mod, id=name, marks=[] if mod is not None else
                         [pytest.mark.skip(reason="C module not built")])
            for name, mod in IMPLEMENTATIONS.items()]


@pytest.fixture(params=impls())
def impl(request):
    return request.param


@pytest.mark.parametrize("data,expected", [c[1:] for c in REQUESTS], ids=[c[0] for c in REQUESTS])
def test_request_framing_and_verdict(impl, data, expected):
    p = impl.Parser()
    assert p.request_rc(data, len(data), 0, 0) > 0
    assert classify_request(p.result()) == expected
    assert classify_request(p.parse_request(data)) == expected


@pytest.mark.parametrize("data,method,expected", [c[1:] for c in RESPONSES],
                         ids=[c[0] for c in RESPONSES])
def test_response_framing(impl, data, method, expected):
    p = impl.Parser()
    assert p.response_rc(data, len(data), 0, 0) > 0
    assert classify_response(p.result(), method) == expected
    r = p.parse_response(data)
    assert classify_response(r, method) == expected
    assert r[K.R_VERDICT] == 0


def test_c_header_and_python_constants_agree():
    native = IMPLEMENTATIONS.get("native")
    if native is None:
        pytest.skip("C module not built")
    lib = native.lib
    assert lib.KHTTP_NRES == K.NRESULTS and lib.KHTTP_NHOT == K.NHOT
    names = [n for n in dir(K) if n.startswith(("F_", "E_", "R_", "B_"))]
    assert len([n for n in names if n.startswith("R_")]) == K.NRESULTS
    for name in names:
        assert getattr(lib, "KHTTP_" + name) == getattr(K, name), name


def test_the_session_reads_only_hot_slots_from_result():
    """Parser.result() is the first NHOT slots: a slot the session reads from it
    must be among them (the URI for `balance uri` comes from result_all())."""
    import workers.h1_back as back
    import workers.h1_front as front
    import workers.stream as stream
    used = {n for m in (front, back, stream) for n in dir(m) if n.startswith("R_")}
    assert "R_END" in used
    cold = [n for n in used if getattr(K, n) >= K.NHOT and n not in ("R_TARGET_OFF", "R_TARGET_LEN")]
    assert cold == []


# ---------------------------------------------------------------- WebSocket handshake

KEY = (b"Sec-WebSocket-Key", b"dGhlIHNhbXBsZSBub25jZQ==")
WS = (b"Upgrade", b"websocket")


@pytest.mark.parametrize("headers,response,ok", [
    ([WS, KEY], False, True),
    ([(b"upgrade", b"WebSocket"), (b"sec-websocket-key", b" dGhlIHNhbXBsZSBub25jZQ== ")], False, True),
    ([WS], False, False),                                        # no key
    ([WS, (b"Sec-WebSocket-Key", b"short")], False, False),      # not 16 bytes in base64
    ([(b"Upgrade", b"h2c")], False, True),                       # not WebSocket: not looked at
    ([WS, (b"Sec-WebSocket-Accept", b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")], True, True),
    ([WS], True, False),                                         # 101 without the accept
    ([WS, KEY], True, False),                                    # a key is no accept
    ([(b"Upgrade", b"h2c")], True, True),
])
def test_websocket_handshake_needs_its_key_and_its_accept(headers, response, ok):
    assert websocket_handshake_ok(headers, response) is ok


def test_status_class_table_matches_the_function():
    assert all(STATUS_CLASS[s] == status_class(s) for s in range(1000))
    assert (STATUS_CLASS[99], STATUS_CLASS[101], STATUS_CLASS[599], STATUS_CLASS[600]) == (0, 1, 5, 0)
