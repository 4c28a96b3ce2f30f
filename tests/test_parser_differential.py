"""C parser and pure-Python twin agree on every input: corpus and generated heads, every split."""

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from _native import constants as K
from _native.testing import IMPLEMENTATIONS, feed_in_pieces, parse, parse_in_pieces

from test_parser_conformance import CASES

pure = IMPLEMENTATIONS["pure"]
native = IMPLEMENTATIONS["native"]
pytestmark = pytest.mark.skipif(native is None, reason="C module not built")

NAMES = [b"Host", b"Content-Length", b"Transfer-Encoding", b"Connection", b"Proxy-Connection",
         b"Keep-Alive", b"TE", b"Trailer", b"Upgrade", b"Expect", b"Authorization",
         b"WWW-Authenticate", b"Proxy-Authenticate", b"X-Foo", b"Accept", b"close", b"x-bar"]
VALUES = [b"", b"0", b"5", b"42", b"5, 5", b"5,6", b"-1", b"0x5", b"999999999999999999",
          b"1000000000000000000", b"chunked", b"gzip, chunked", b"chunked, gzip", b"Chunked",
          b"chunked, chunked", b" , chunked", b"close", b"keep-alive", b"Upgrade", b"close, X-Foo",
          b"x-bar, keep-alive", b"100-continue", b"NTLM abc", b"Negotiate", b"Basic x, NTLM",
          b"websocket", b"a\tb", b"caf\xc3\xa9", b"  v  ", b"example.com"]
START_LINES = {
    "req": [b"GET / HTTP/1.1"] * 4 + [b"POST /x?y HTTP/1.0", b"get * HTTP/1.1", b"OPTIONS * HTTP/1.2",
                                      b"CONNECT a:443 HTTP/1.1", b"GET / HTTP/2.0", b"GET  / HTTP/1.1", b""],
    "resp": [b"HTTP/1.1 200 OK"] * 4 + [b"HTTP/1.0 204", b"HTTP/1.1 101 Switching", b"HTTP/1.1 99 X",
                                       b"HTTP/2 200 OK", b"HTTP/1.1 200 "],
}
NOISE = b"\r\n\t :,;\"\x00\x7f\x80\xffaZ09-=/"


def any_case_names():
    return st.sampled_from(NAMES).flatmap(
        lambda n: st.lists(st.booleans(), min_size=len(n), max_size=len(n)).map(
            lambda ups: bytes(c ^ 32 if u and chr(c).isalpha() else c for c, u in zip(n, ups))))


@st.composite
def heads(draw):
    """(kind, head): mostly valid, framing headers in odd combinations, some byte noise."""
    kind = draw(st.sampled_from(["req", "resp"]))
    out = [draw(st.sampled_from([b""] * 6 + [b"\r\n", b"\n"])) if kind == "req" else b""]
    out.append(draw(st.sampled_from(START_LINES[kind]))
               + draw(st.sampled_from([b"\r\n"] * 12 + [b"\n", b"\r"])))
    for _ in range(draw(st.integers(0, 8))):
        name = draw(any_case_names())
        sep = draw(st.sampled_from([b": "] * 8 + [b":", b": \t", b" : ", b":  "]))
        value = draw(st.sampled_from(VALUES + [None]))
        if value is None:
            value = draw(st.binary(max_size=12))
        eol = draw(st.sampled_from([b"\r\n"] * 20 + [b"\n", b"\r\n ", b"  \r\n"]))
        out.append(name + sep + value + eol)
    out.append(draw(st.sampled_from([b"\r\n"] * 12 + [b"\n", b"\r", b""])))
    data = bytearray(b"".join(out))
    for _ in range(draw(st.sampled_from([0] * 6 + [1, 2, 3]))):  # mutations
        if not data:
            break
        i = draw(st.integers(0, len(data) - 1))
        op = draw(st.integers(0, 2))
        c = draw(st.sampled_from(NOISE))
        if op == 0:
            data[i] = c
        elif op == 1:
            data.insert(i, c)
        else:
            del data[i]
    data += draw(st.sampled_from([b"", b"body", b"GET / HTTP/1.1\r\n\r\n"]))
    return kind, bytes(data)


LIMITS = st.sampled_from([{}, {}, {}, dict(max_headers=2), dict(max_head=48), dict(max_line=20),
                          dict(max_line=30, max_head=40, max_headers=3)])


def assert_agree(kind, data, kwargs):
    a = pure.Parser(**kwargs)
    b = native.Parser(**kwargs)
    ra = parse(a, kind, data)
    rb = parse(b, kind, data)
    assert ra == rb
    if isinstance(ra, list):
        assert a.headers(data) == b.headers(data)
        assert a.strip_hop(data) == b.strip_hop(data)
        assert a.strip_hop(data, keep_upgrade=True) == b.strip_hop(data, keep_upgrade=True)
        assert a.headers(bytearray(data)) == a.headers(data)
    else:
        assert a.headers(data) == b.headers(data) == []
    return ra


def assert_agree_at_every_split(kind, data, kwargs):
    whole = assert_agree(kind, data, kwargs)
    a = pure.Parser(**kwargs)
    b = native.Parser(**kwargs)
    for cut in range(len(data) + 1):
        ra = parse_in_pieces(a, kind, data, [cut])
        assert ra == parse_in_pieces(b, kind, data, [cut]), cut
        assert ra == whole, cut
        # and without the prev_len hint: the answer for a prefix never depends on it
        assert parse(a, kind, data[:cut]) == parse(b, kind, data[:cut]), cut


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_corpus_case_agrees_at_every_split(case):
    kwargs = case[4] if len(case) > 4 else {}
    assert_agree_at_every_split(case[1], case[2], kwargs)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(head=heads(), kwargs=LIMITS)
def test_generated_heads_agree_at_every_split(head, kwargs):
    assert_agree_at_every_split(head[0], head[1], kwargs)


@settings(max_examples=500, deadline=None)
@given(data=st.binary(max_size=64), kind=st.sampled_from(["req", "resp"]))
def test_random_bytes_agree(data, kind):
    assert_agree(kind, data + b"\r\n\r\n", {})
    assert_agree(kind, data, {})


@settings(max_examples=200, deadline=None)
@given(head=heads(), start=st.integers(0, 6))
def test_generated_heads_agree_at_an_offset(head, start):
    a, b = pure.Parser(), native.Parser()
    assert parse(a, head[0], head[1], start) == parse(b, head[0], head[1], start)


BODIES = [b"", b"hello", b"hello world, and more", b"5\r\nhello\r\n0\r\n\r\n",
          b"0\r\n\r\nGET / HTTP/1.1\r\n\r\n", b"2\r\nhi\r\n0\r\nX: y\r\n\r\nrest", b"5\r\nhelloX"]


def message(mod, kind, data, cuts):
    """What the proxy reads of one message: the head, then the body its framing announces,
    with the decoder started from R_BODY / R_BODY_LEN as the session starts it."""
    r = parse(mod.Parser(), kind, data)
    if not isinstance(r, list) or r[K.R_BODY] not in (K.B_LENGTH, K.B_CHUNKED):
        return r, None
    d = mod.BodyDecoder()
    if r[K.R_BODY] == K.B_LENGTH:
        d.start_length(r[K.R_BODY_LEN])
    else:
        d.start_chunked()
    end = r[K.R_END]
    return r, feed_in_pieces(d, data[end:], [c - end for c in cuts if c >= end]), d.done


@st.composite
def framed_heads(draw):
    """(kind, head) with a body: Content-Length (up to the largest accepted) or chunked."""
    kind = draw(st.sampled_from(["req", "resp"]))
    line = b"POST /u HTTP/1.1\r\nHost: a\r\n" if kind == "req" else b"HTTP/1.1 200 OK\r\n"
    lengths = (0, 1, 5, 11, 21, 10 ** 18 - 1)
    framing = draw(st.sampled_from([b"Transfer-Encoding: chunked", b"Transfer-Encoding: gzip, chunked",
                                    b"Content-Length: 5, 5"] + [b"Content-Length: %d" % n for n in lengths]))
    return kind, line + framing + b"\r\n\r\n"


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(head=st.one_of(framed_heads(), framed_heads(), framed_heads(), heads()),
       body=st.sampled_from(BODIES) | st.binary(max_size=24), cut=st.integers(0, 400))
def test_generated_messages_head_and_body_agree(head, body, cut):
    kind, data = head
    data += body
    cuts = [min(cut, len(data))]
    assert message(pure, kind, data, cuts) == message(native, kind, data, cuts)


def test_bytearray_and_memoryview_accepted_like_bytes():
    data = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"
    for mod in (pure, native):
        p = mod.Parser()
        whole = p.parse_request(data)
        assert p.parse_request(bytearray(data)) == whole
        assert p.parse_request(memoryview(data)) == whole
        assert p.headers(memoryview(data)) == [(b"Host", b"a")]
        assert p.strip_hop(bytearray(data)) == b"GET / HTTP/1.1\r\nHost: a\r\n"


def test_results_are_plain_ints():
    data = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n"
    r = native.Parser().parse_response(data)
    assert all(type(v) is int for v in r) and r[K.R_CONTENT_LENGTH] == 2


@pytest.mark.parametrize("value, ok", [
    (b"9" * 5000, False),                    # int() refuses strings past 4300 digits
    (b"0" * 4999 + b"2", True),              # leading zeros: the value is 2
    (b"0" * 30 + b"999999999999999999", True),
    (b"1" + b"0" * 18, False),               # 10^18: the limit
    (b"2, " + b"0" * 5000 + b"2", True),     # a list of equal values
], ids=["5000 nines", "4999 zeros and 2", "30 zeros and 18 nines", "10^18", "list"])
def test_long_content_length_values_agree(value, ok):
    """A request or response with a Content-Length of thousands of digits got a 400 from
    C and an exception (a crashed worker) from the pure parser."""
    for kind, head in (("req", b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: %s\r\n\r\n"),
                       ("resp", b"HTTP/1.1 200 OK\r\nContent-Length: %s\r\n\r\n")):
        data = head % value
        results = {name: parse(mod.Parser(), kind, data) for name, mod in
                   IMPLEMENTATIONS.items()}
        assert len(set(map(repr, results.values()))) == 1, results
        assert isinstance(results["pure"], list) is ok, results


TLS_CLIENT_HELLO = bytes.fromhex("160301020001000001fc0303") + bytes(range(32)) + b"\x00\x20"


@pytest.mark.parametrize("data, err", [
    (TLS_CLIENT_HELLO, K.E_METHOD),
    (b"G\x01T / HTTP/1.1\r\nHost: h\r\n\r\n", K.E_METHOD),
    (b"GET\x00/ HTTP/1.1\r\n", K.E_METHOD),
    (b"\r\n\r\n\x00GET / HTTP/1.1\r\n\r\n", K.E_METHOD),
    (b"\r\x00GET / HTTP/1.1\r\n\r\n", K.E_BARE_CR),
    (b"\nGET / HTTP/1.1\r\n\r\n", K.E_BARE_LF),
], ids=["TLS ClientHello", "control byte", "NUL after method", "NUL after empty lines",
        "bare CR", "bare LF"])
def test_junk_is_answered_from_the_first_bad_byte(data, err):
    """A request whose method cannot be one is refused as soon as the bad byte is
    there, not when a head that never comes is complete (timeout http-request),
    with the verdict the whole input gets, by both parsers."""
    bad = next(i for i in range(len(data)) if parse(pure.Parser(), "req", data[:i + 1]) != 0)
    for mod in (pure, native):
        assert parse(mod.Parser(), "req", data[:bad]) == 0
        for cut in range(bad + 1, len(data) + 1):
            assert parse(mod.Parser(), "req", data[:cut]) == err, (mod, cut)
    assert_agree_at_every_split("req", data, {})


def test_a_method_as_long_as_a_line_is_left_to_the_line_limit():
    data = b"G" * 64 + b"\x01 / HTTP/1.1\r\n\r\n"
    for mod in (pure, native):
        assert parse(mod.Parser(max_line=64), "req", data) == K.E_LINE_TOO_LONG
        assert parse(mod.Parser(max_line=65), "req", data) == K.E_METHOD
    assert_agree_at_every_split("req", data, {"max_line": 64})


def test_a_method_longer_than_the_head_limit_is_left_to_it():
    """Found by the fuzzer: with max_head below max_line, a bad byte past max_head
    must not turn the whole head's answer into E_METHOD when its prefixes already
    got E_HEAD_TOO_LARGE."""
    data = b"1" * 128 + b"\n\rX\n\r\xffP\r\n\r\n"
    for mod in (pure, native):
        assert parse(mod.Parser(max_head=40), "req", data) == K.E_HEAD_TOO_LARGE
        assert parse(mod.Parser(max_head=40), "req", data[:48]) == K.E_HEAD_TOO_LARGE
        assert parse(mod.Parser(max_head=200), "req", data) == K.E_METHOD
    assert_agree_at_every_split("req", data, {"max_head": 40})


def test_short_inputs_with_small_limits_answer_every_prefix_as_the_whole():
    """Every request of up to 5 bytes over CR, LF, a method byte, a space and a
    control byte, under odd and tiny limits: C and Python agree, and each prefix gets
    0 or the whole input's answer (a review found a CR last before max_head
    answered E_BARE_CR whole but E_HEAD_TOO_LARGE as a prefix)."""
    import itertools
    limits = [dict(max_head=3), dict(max_head=1), dict(max_head=5, max_line=2),
              dict(max_line=3), dict(max_head=2, max_line=3)]
    alphabet = [b"\r", b"\n", b"G", b" ", b"\x01"]
    for kwargs in limits:
        pp, nn = pure.Parser(**kwargs), native.Parser(**kwargs)
        for size in range(1, 6):
            for combo in itertools.product(alphabet, repeat=size):
                data = b"".join(combo)
                whole = parse(pp, "req", data)
                assert whole == parse(nn, "req", data), (data, kwargs)
                for cut in range(1, len(data)):
                    r = parse(pp, "req", data[:cut])
                    assert r == 0 or r == whole, (data, cut, kwargs, r, whole)


@pytest.mark.parametrize("kind", ["req", "resp"])
def test_bare_cr_after_the_start_line_with_small_limits_answers_every_prefix_as_the_whole(kind):
    """A bare CR is answered as soon as the byte after it is there (issue 12), before
    the size limits but only where a byte-by-byte reader meets it first: every tail of
    up to 4 bytes over CR, LF, a name byte, a colon and a control byte after a start
    line, under limits that end around it: C and Python agree, and each prefix (fed
    with the prev_len hint or without) gets 0 or the whole input's answer."""
    import itertools
    start = b"GET / HTTP/1.1\r\n" if kind == "req" else b"HTTP/1.1 200 OK\r\n"
    n = len(start)
    limits = [dict(max_head=n + k) for k in (1, 2, 3, 4)] + [dict(max_line=n - 2), dict(max_line=n),
                                                           dict(max_line=n + 1, max_head=n + 2)]
    alphabet = [b"\r", b"\n", b"a", b":", b"\x01"]
    for kwargs in limits:
        pp, nn = pure.Parser(**kwargs), native.Parser(**kwargs)
        for size in range(1, 5):
            for combo in itertools.product(alphabet, repeat=size):
                data = start + b"".join(combo)
                whole = parse(pp, kind, data)
                assert whole == parse(nn, kind, data), (data, kwargs)
                prev = 0
                for cut in range(1, len(data)):
                    r = parse(pp, kind, data[:cut])
                    assert r == 0 or r == whole, (data, cut, kwargs, r, whole)
                    r = parse(nn, kind, data[:cut], 0, prev)
                    assert r == 0 or r == whole, (data, cut, kwargs, r, whole)
                    prev = cut if r == 0 else 0
