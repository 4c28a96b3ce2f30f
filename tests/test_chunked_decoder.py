"""Chunked body decoder: conformance table on both implementations, every split, and agreement."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from _native import constants as K
from _native.testing import IMPLEMENTATIONS, feed_in_pieces

pure = IMPLEMENTATIONS["pure"]
native = IMPLEMENTATIONS["native"]

# (id, body bytes, expected) with expected = (consumed, data) for a complete body,
# or an error code; optional decoder kwargs.
CASES = [
    ("last_chunk_only", b"0\r\n\r\n", (5, b"")),
    ("one_chunk", b"5\r\nhello\r\n0\r\n\r\n", (15, b"hello")),
    ("two_chunks", b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n", (20, b"abcde")),
    ("stops_at_end_of_body", b"1\r\na\r\n0\r\n\r\nHTTP/1.1 200 OK\r\n", (11, b"a")),
    ("hex_upper_and_lower", b"A\r\n0123456789\r\na\r\nabcdefghij\r\n0\r\n\r\n", (35, b"0123456789abcdefghij")),
    ("leading_zeros", b"0005\r\nhello\r\n000\r\n\r\n", (20, b"hello")),
    ("data_with_crlf_inside", b"4\r\n\r\n\r\n\r\n0\r\n\r\n", (14, b"\r\n\r\n")),
    ("extension_name", b"5;foo\r\nhello\r\n0\r\n\r\n", (19, b"hello")),
    ("extension_token_value", b"5;foo=bar;baz\r\nhello\r\n0;last\r\n\r\n", (32, b"hello")),
    ("extension_quoted_value", b'5;a="b \\"c\\" ;d"\r\nhello\r\n0\r\n\r\n', (30, b"hello")),
    ("extension_bws", b"5 ; a = b \t;c\r\nhello\r\n0\r\n\r\n", (27, b"hello")),
    ("trailer_fields", b"0\r\nX-Sum: abc\r\nX-Other:\r\n\r\n", (27, b"")),
    ("trailer_obs_text", b"1\r\nz\r\n0\r\nX: caf\xc3\xa9\r\n\r\n", (21, b"z")),
    ("largest_size_accepted_prefix", b"fffffffffffffff\r\nab", (19, b"ab")),  # incomplete, no error
    ("err_size_not_hex", b"x\r\n", K.E_CHUNK_SIZE),
    ("err_size_empty", b"\r\n", K.E_CHUNK_SIZE),
    ("err_size_negative", b"-5\r\n", K.E_CHUNK_SIZE),
    ("err_size_plus", b"+5\r\n", K.E_CHUNK_SIZE),
    ("err_size_0x_prefix", b"0x5\r\nhello\r\n", K.E_CHUNK_SIZE),
    ("err_size_trailing_space", b"5 \r\nhello\r\n", K.E_CHUNK_SIZE),
    ("err_size_leading_space", b" 5\r\nhello\r\n", K.E_CHUNK_SIZE),
    ("err_size_overflow_2_60", b"1000000000000000\r\n", K.E_CHUNK_SIZE),
    ("err_size_overflow_2_64", b"10000000000000000\r\n", K.E_CHUNK_SIZE),
    ("err_size_bare_lf", b"5\nhello\r\n", K.E_CHUNK_CRLF),
    ("err_size_bare_cr", b"5\rhello\r\n", K.E_CHUNK_CRLF),
    ("err_data_not_followed_by_crlf", b"5\r\nhelloX\r\n", K.E_CHUNK_CRLF),
    ("err_data_followed_by_lf_only", b"5\r\nhello\n0\r\n\r\n", K.E_CHUNK_CRLF),
    ("err_data_followed_by_cr_only", b"5\r\nhello\rX", K.E_CHUNK_CRLF),
    ("err_data_longer_than_size", b"3\r\nhello\r\n0\r\n\r\n", K.E_CHUNK_CRLF),
    ("err_ext_empty", b"5;\r\nhello\r\n", K.E_CHUNK_EXT),
    ("err_ext_no_name", b"5;=x\r\nhello\r\n", K.E_CHUNK_EXT),
    ("err_ext_value_missing", b"5;a=\r\nhello\r\n", K.E_CHUNK_EXT),
    ("err_ext_unterminated_quote", b'5;a="x\r\nhello\r\n', K.E_CHUNK_EXT),
    ("err_ext_ctl", b"5;a=\x01\r\nhello\r\n", K.E_CHUNK_EXT),
    ("err_ext_two_words", b"5;a b\r\nhello\r\n", K.E_CHUNK_EXT),
    ("err_ext_nul_in_quotes", b'5;a="\x00"\r\nhello\r\n', K.E_CHUNK_EXT),
    ("err_trailer_obs_fold", b"0\r\nX: a\r\n b\r\n\r\n", K.E_TRAILER),
    ("err_trailer_leading_space", b"0\r\n X: v\r\n\r\n", K.E_TRAILER),
    ("err_trailer_no_colon", b"0\r\nX v\r\n\r\n", K.E_TRAILER),
    ("err_trailer_space_before_colon", b"0\r\nX : v\r\n\r\n", K.E_TRAILER),
    ("err_trailer_ctl_value", b"0\r\nX: a\x00\r\n\r\n", K.E_TRAILER),
    ("err_trailer_bare_lf", b"0\r\nX: v\n\r\n", K.E_TRAILER),
    ("err_final_bare_lf", b"0\r\n\n", K.E_TRAILER),
    ("err_final_cr_without_lf", b"0\r\n\rX", K.E_CHUNK_CRLF),
    ("err_size_line_too_long", b"00000000005\r\nhello\r\n", K.E_CHUNK_LINE_TOO_LONG, dict(max_line=8)),
    ("size_line_at_limit", b"000005\r\nhello\r\n0\r\n\r\n", (20, b"hello"), dict(max_line=8)),
    ("err_ext_makes_line_too_long", b"5;" + b"a" * 100 + b"\r\nhello\r\n", K.E_CHUNK_LINE_TOO_LONG, dict(max_line=64)),
    ("err_trailers_too_large", b"0\r\nX: " + b"v" * 20 + b"\r\n\r\n", K.E_TRAILER, dict(max_trailers=16)),
]
IDS = [c[0] for c in CASES]


@pytest.fixture(params=[pytest.param(m, id=n, marks=[] if m else [pytest.mark.skip(reason="C module not built")])
                        for n, m in IMPLEMENTATIONS.items()])
def impl(request):
    return request.param


def _case(case):
    return case[1], case[2], (case[3] if len(case) > 3 else {})


def check(answer, expected, decoder, body):
    consumed, data, err = answer
    if isinstance(expected, int):
        assert err == expected, (K.ERROR_NAMES.get(err, err), K.ERROR_NAMES[expected])
        return
    assert err == 0, K.ERROR_NAMES.get(err, err)
    assert (consumed, data) == expected
    complete = not body.startswith(b"fffffffffffffff")
    assert decoder.done == complete


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_chunked_case_fed_whole(impl, case):
    body, expected, kwargs = _case(case)
    d = impl.ChunkedDecoder(**kwargs)
    check(feed_in_pieces(d, body, []), expected, d, body)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_chunked_case_split_at_every_byte(impl, case):
    body, expected, kwargs = _case(case)
    for cut in range(len(body) + 1):
        d = impl.ChunkedDecoder(**kwargs)
        check(feed_in_pieces(d, body, [cut]), expected, d, body)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_chunked_case_fed_byte_by_byte(impl, case):
    body, expected, kwargs = _case(case)
    d = impl.ChunkedDecoder(**kwargs)
    check(feed_in_pieces(d, body, range(len(body))), expected, d, body)


def test_feed_consumes_all_given_bytes_until_done(impl):
    body = b"5\r\nhello\r\n0\r\n\r\nNEXT"
    d = impl.ChunkedDecoder()
    assert d.feed(body[:7]) == 7 and not d.done
    assert d.feed(body, 7) == len(body) - 7 - 4 and d.done
    assert d.feed(body, len(body) - 4) == 0  # never past the end of the body


def test_error_is_sticky_until_reset(impl):
    d = impl.ChunkedDecoder()
    assert d.feed(b"zz\r\n") == K.E_CHUNK_SIZE
    assert d.feed(b"0\r\n\r\n") == K.E_CHUNK_SIZE
    d.reset()
    assert d.feed(b"0\r\n\r\n") == 5 and d.done


def test_reset_reuses_decoder_for_next_message(impl):
    d = impl.ChunkedDecoder()
    assert d.feed(b"0\r\n\r\n") == 5 and d.done
    d.reset()
    assert not d.done
    assert d.feed_spans(b"2\r\nhi\r\n0\r\n\r\n") == (12, [(3, 2)])


def test_feed_at_offset_reports_absolute_spans(impl):
    data = b"HEAD" + b"3\r\nabc\r\n0\r\n\r\n"
    d = impl.ChunkedDecoder()
    assert d.feed_spans(data, 4) == (13, [(7, 3)])


def test_many_small_chunks_report_every_span(impl):
    body = b"1\r\nx\r\n" * 200 + b"0\r\n\r\n"
    d = impl.ChunkedDecoder()
    n, spans = d.feed_spans(body)
    assert n == len(body) and d.done
    assert len(spans) == 200 and all(body[o:o + ln] == b"x" for o, ln in spans)


@st.composite
def bodies(draw):
    """Chunked bodies, mostly valid, with extensions, trailers and a little noise."""
    parts = []
    for _ in range(draw(st.integers(0, 4))):
        data = draw(st.binary(min_size=1, max_size=20))
        size = draw(st.sampled_from(["%x", "%X", "0%x", "%02x"])) % len(data)
        ext = draw(st.sampled_from([b"", b"", b";a", b";a=b", b';q="x y"', b" ;z", b";"]))
        parts.append(size.encode() + ext + b"\r\n" + data + b"\r\n")
    parts.append(b"0" + draw(st.sampled_from([b"", b";end"])) + b"\r\n")
    for _ in range(draw(st.integers(0, 2))):
        parts.append(draw(st.sampled_from([b"X-T: v\r\n", b"Y:\r\n", b"Z : v\r\n", b" fold\r\n"])))
    parts.append(b"\r\n")
    body = bytearray(b"".join(parts))
    for _ in range(draw(st.sampled_from([0, 0, 0, 1, 2]))):
        i = draw(st.integers(0, len(body) - 1))
        body[i] = draw(st.sampled_from(b"\r\n;\"\\ \x00g0aF-"))
    return bytes(body) + draw(st.sampled_from([b"", b"after"]))


@pytest.mark.skipif(native is None, reason="C module not built")
@settings(max_examples=300, deadline=None)
@given(body=bodies(), cuts=st.lists(st.integers(0, 200), max_size=4), limits=st.sampled_from(
    [{}, {}, dict(max_line=6), dict(max_trailers=10)]))
def test_generated_bodies_agree_between_implementations_at_any_split(body, cuts, limits):
    cuts = sorted(c for c in cuts if c <= len(body))
    whole = feed_in_pieces(pure.ChunkedDecoder(**limits), body, [])
    a = pure.ChunkedDecoder(**limits)
    b = native.ChunkedDecoder(**limits)
    ra = feed_in_pieces(a, body, cuts)
    assert ra == feed_in_pieces(b, body, cuts) == whole
    assert a.done == b.done
