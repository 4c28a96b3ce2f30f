"""Parser.headers() and Parser.strip_hop(): what the proxy forwards, on both implementations."""

import pytest

from _native import constants as K
from _native.testing import IMPLEMENTATIONS


@pytest.fixture(params=[pytest.param(m, id=n, marks=[] if m else [pytest.mark.skip(reason="C module not built")])
                        for n, m in IMPLEMENTATIONS.items()])
def impl(request):
    return request.param


def head(*lines):
    return b"".join(x + b"\r\n" for x in lines) + b"\r\n"


def test_headers_returns_names_as_sent_and_values_trimmed(impl):
    data = head(b"GET / HTTP/1.1", b"Host:  example.com \t", b"x-EMPTY:", b"X-Tab: a\tb ")
    p = impl.Parser()
    assert p.parse_request(data)[K.R_NHEADERS] == 3
    assert p.headers(data) == [(b"Host", b"example.com"), (b"x-EMPTY", b""), (b"X-Tab", b"a\tb")]


def test_headers_after_a_failed_parse_is_empty(impl):
    p = impl.Parser()
    good = head(b"GET / HTTP/1.1", b"Host: a")
    assert p.parse_request(good) != 0
    assert p.parse_request(b"GET / HTTP/1.1\r\nHost: a\r\n") == 0
    assert p.headers(good) == []
    with pytest.raises(ValueError):
        p.strip_hop(good)


def test_strip_hop_removes_hop_by_hop_headers_and_final_crlf(impl):
    data = head(b"GET / HTTP/1.1", b"Host: a", b"Connection: keep-alive", b"Keep-Alive: timeout=5",
                b"Proxy-Connection: keep-alive", b"TE: trailers", b"Trailer: X-Sum", b"Upgrade: h2c",
                b"Accept: */*")
    p = impl.Parser()
    r = p.parse_request(data)
    assert r[K.R_FLAGS] & K.F_HOP
    assert p.strip_hop(data) == b"GET / HTTP/1.1\r\nHost: a\r\nAccept: */*\r\n"


def test_strip_hop_removes_headers_named_by_connection_case_insensitively(impl):
    data = head(b"GET / HTTP/1.1", b"Host: a", b"Connection: X-Secret,  x-other ", b"x-secret: 1",
                b"X-OTHER: 2", b"X-Kept: 3", b"connection: X-Third", b"X-Third: 4")
    p = impl.Parser()
    assert p.parse_request(data)[K.R_CONN_OTHER_COUNT] == 3
    assert p.strip_hop(data) == b"GET / HTTP/1.1\r\nHost: a\r\nX-Kept: 3\r\n"


def test_strip_hop_never_removes_framing_headers_named_by_connection(impl):
    # "Connection: Content-Length" must not make the proxy forward a body without framing.
    data = head(b"POST / HTTP/1.1", b"Host: a", b"Connection: Content-Length, Host, Transfer-Encoding",
                b"Content-Length: 3") + b"abc"
    p = impl.Parser()
    assert p.parse_request(data)[K.R_CONTENT_LENGTH] == 3
    assert p.strip_hop(data) == b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n"


def test_strip_hop_keep_upgrade_keeps_upgrade_even_when_connection_names_it(impl):
    data = head(b"GET /chat HTTP/1.1", b"Host: a", b"Connection: Upgrade", b"Upgrade: websocket",
                b"Sec-WebSocket-Key: k")
    p = impl.Parser()
    p.parse_request(data)
    assert p.strip_hop(data, keep_upgrade=True) == (
        b"GET /chat HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nSec-WebSocket-Key: k\r\n")
    assert p.strip_hop(data) == b"GET /chat HTTP/1.1\r\nHost: a\r\nSec-WebSocket-Key: k\r\n"


def test_strip_hop_drops_leading_empty_lines_and_keeps_start_line_only_when_no_headers(impl):
    data = b"\r\n\r\n" + head(b"GET / HTTP/1.0")
    p = impl.Parser()
    p.parse_request(data)
    assert p.strip_hop(data) == b"GET / HTTP/1.0\r\n"


def test_strip_hop_of_a_response_at_an_offset(impl):
    first = head(b"HTTP/1.1 100 Continue")
    data = first + head(b"HTTP/1.1 200 OK", b"Connection: close", b"Content-Length: 0")
    p = impl.Parser()
    r = p.parse_response(data, len(first))
    assert r[K.R_END] == len(data) and r[K.R_FLAGS] & K.F_CONN_CLOSE
    assert p.strip_hop(data) == b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n"
    assert p.headers(data) == [(b"Connection", b"close"), (b"Content-Length", b"0")]


def test_strip_hop_without_hop_headers_is_the_head_minus_final_crlf(impl):
    data = head(b"GET /a HTTP/1.1", b"Host: a", b"User-Agent: x", b"Accept: */*")
    p = impl.Parser()
    p.parse_request(data)
    assert p.strip_hop(data) == data[:-2]


REWRITE_CASES = [
    head(b"HTTP/1.1 200 OK", b"Connection: keep-alive", b"Content-Length: 5") + b"hello",
    head(b"HTTP/1.1 200 OK", b"Keep-Alive: timeout=5", b"Content-Length: 0"),
    head(b"HTTP/1.1 204 No Content", b"Connection: x", b"X: dropped", b"Y: kept") + b"next",
]


@pytest.mark.parametrize("data", REWRITE_CASES)
@pytest.mark.parametrize("tail", [b"\r\n", b"Connection: close\r\n\r\n"])
def test_rewrite_is_strip_hop_then_tail_then_what_followed_the_head(impl, data, tail):
    p = impl.Parser()
    r = p.parse_response(data)
    assert r[K.R_END] > 0
    assert p.rewrite(data, tail) == p.strip_hop(data) + tail + data[r[K.R_END]:]


def test_rewrite_of_a_body_larger_than_its_buffer_falls_back_to_joining(impl):
    data = head(b"HTTP/1.1 200 OK", b"Connection: keep-alive", b"Content-Length: 200000") + b"x" * 200000
    p = impl.Parser()
    r = p.parse_response(data)
    assert p.rewrite(data, b"\r\n") == p.strip_hop(data) + b"\r\n" + data[r[K.R_END]:]


@pytest.mark.parametrize("data", [head(b"GET /x HTTP/1.1", b"Host: a"), b"GET / HTTP/1.1\r\nHo",
                                  b"GET / HTTP/1.1\r\nHost : a\r\n\r\n"])
def test_rc_form_gives_the_same_answers_as_parse_request(impl, data):
    p, q = impl.Parser(), impl.Parser()
    rc = p.request_rc(data, len(data), 0, 0)
    expected = q.parse_request(data)
    if expected.__class__ is int:
        assert rc == expected
    else:
        assert rc > 0 and p.result() == expected[:K.NHOT] and p.result_all() == expected


def test_rc_form_of_responses(impl):
    data = head(b"HTTP/1.1 200 OK", b"Content-Length: 0")
    p = impl.Parser()
    assert p.response_rc(data, len(data), 0, 0) > 0
    expected = impl.Parser().parse_response(data)
    assert p.result() == expected[:K.NHOT] and p.result_all() == expected


@pytest.mark.parametrize("tail", [b"\r\n", b"Connection: close\r\n\r\n"])
def test_rc_form_of_rewrite_gives_what_rewrite_gives(impl, tail):
    data = head(b"HTTP/1.1 200 OK", b"Connection: keep-alive, X-A", b"X-A: 1", b"Content-Length: 3") + b"abc"
    p = impl.Parser()
    assert p.parse_response(data) != 0
    n = p.rewrite_rc(data, len(data), 0, tail, len(tail))
    assert n > 0 and p.rewritten(n) == p.rewrite(data, tail)
    assert p.rewritten(n) == b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n" + tail + b"abc"


def test_strip_hop_with_more_connection_headers_than_the_c_parser_notes(impl):
    """Past 32 Connection headers the C parser stops noting them and looks at every
    header line instead: the answer must not change (and matches the twin)."""
    lines = [b"HTTP/1.1 200 OK"] + [b"Connection: x-%d" % i for i in range(40)]
    lines += [b"X-39: dropped", b"X-1: dropped", b"X-Kept: yes", b"Content-Length: 0"]
    data = head(*lines)
    p = impl.Parser(max_headers=101)
    assert p.parse_response(data) != 0
    assert p.strip_hop(data) == b"HTTP/1.1 200 OK\r\nX-Kept: yes\r\nContent-Length: 0\r\n"


# RFC 9112 §6.3 (5): a Content-Length list of one value, or the field repeated with it,
# is forwarded as one field (as HAProxy does): the first, the value alone when it was a
# list; later ones go. (id, kind, head lines after the start line, stripped lines.)
CL_NORMALIZED = [
    ("list", [b"Host: a", b"Content-Length: 5, 5", b"X: y"], [b"Host: a", b"Content-Length: 5", b"X: y"]),
    ("list_no_space", [b"Host: a", b"content-length:5,5,5"], [b"Host: a", b"content-length: 5"]),
    ("list_ows_and_zeros", [b"Host: a", b"Content-Length:\t05 ,5 \t"], [b"Host: a", b"Content-Length: 5"]),
    ("repeat", [b"Host: a", b"Content-Length: 5", b"X: y", b"Content-Length: 5"],
     [b"Host: a", b"Content-Length: 5", b"X: y"]),
    ("repeat_kept_as_sent", [b"Host: a", b"CONTENT-LENGTH:  05", b"Content-Length: 5"],
     [b"Host: a", b"CONTENT-LENGTH:  05"]),
    ("repeat_of_a_list", [b"Host: a", b"Content-Length: 5", b"Content-Length: 5,5", b"X: y"],
     [b"Host: a", b"Content-Length: 5", b"X: y"]),
    ("list_then_repeat", [b"Host: a", b"Content-Length: 5,5", b"Content-Length: 5"],
     [b"Host: a", b"Content-Length: 5"]),
    ("named_by_connection", [b"Host: a", b"Connection: content-length", b"Content-Length: 5, 5"],
     [b"Host: a", b"Content-Length: 5"]),
    ("zero_list", [b"Host: a", b"Content-Length: 0, 00"], [b"Host: a", b"Content-Length: 0"]),
    ("largest", [b"Host: a", b"Content-Length: 999999999999999999,999999999999999999"],
     [b"Host: a", b"Content-Length: 999999999999999999"]),
]


@pytest.mark.parametrize("kind", ["req", "resp"])
@pytest.mark.parametrize("lines, stripped", [c[1:] for c in CL_NORMALIZED], ids=[c[0] for c in CL_NORMALIZED])
def test_a_content_length_list_or_repeat_is_forwarded_as_one_field(impl, kind, lines, stripped):
    start = b"POST / HTTP/1.1" if kind == "req" else b"HTTP/1.1 200 OK"
    data = head(start, *lines) + b"hello"
    p = impl.Parser()
    r = p.parse_request(data) if kind == "req" else p.parse_response(data)
    assert r[K.R_FLAGS] & K.F_HOP, "the head would be forwarded untouched"
    assert p.strip_hop(data) == head(start, *stripped)[:-2]
    assert p.rewrite(data, b"\r\n") == head(start, *stripped) + b"hello"
    n = p.rewrite_rc(data, len(data), 0, b"\r\n", 2)
    assert p.rewritten(n) == head(start, *stripped) + b"hello"


@pytest.mark.parametrize("value", [b"5", b"005", b"  5 "])
def test_a_single_content_length_leaves_the_head_untouched(impl, value):
    # The fast path: no F_HOP, the bytes go as received (leading zeros too, as HAProxy does).
    data = head(b"POST / HTTP/1.1", b"Host: a", b"Content-Length: " + value) + b"hello"
    p = impl.Parser()
    r = p.parse_request(data)
    assert r[K.R_FLAGS] == K.F_CL and r[K.R_CONTENT_LENGTH] == 5
    assert p.strip_hop(data) == data[:r[K.R_END] - 2]
