"""Body decoder, length mode and the switch between modes: both implementations, every split, agreement.

The chunked machine itself is held to its table in test_chunked_decoder.py.
"""

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from _native import constants as K
from _native.testing import IMPLEMENTATIONS, feed_in_pieces

pure = IMPLEMENTATIONS["pure"]
native = IMPLEMENTATIONS["native"]
INT64_MAX = 2 ** 63 - 1
CL_MAX = 10 ** 18 - 1  # the largest Content-Length the parser accepts

# (id, length, bytes after the head, (consumed, body data, done))
CASES = [
    ("zero", 0, b"", (0, b"", True)),
    ("zero_then_next_message", 0, b"GET / HTTP/1.1\r\n", (0, b"", True)),
    ("one_byte", 1, b"x", (1, b"x", True)),
    ("exact", 5, b"hello", (5, b"hello", True)),
    ("stops_at_end_of_body", 5, b"helloHTTP/1.1 200 OK\r\n", (5, b"hello", True)),
    ("incomplete", 10, b"hello", (5, b"hello", False)),
    ("nothing_yet", 10, b"", (0, b"", False)),
    ("crlf_and_chunked_framing_are_data", 9, b"0\r\n\r\nabcd", (9, b"0\r\n\r\nabcd", True)),
    ("any_byte_is_data", 256, bytes(range(256)), (256, bytes(range(256)), True)),
    ("largest_content_length", CL_MAX, b"abc", (3, b"abc", False)),
    ("int64_max", INT64_MAX, b"abc", (3, b"abc", False)),
]
IDS = [c[0] for c in CASES]


@pytest.fixture(params=[pytest.param(m, id=n, marks=[] if m else [pytest.mark.skip(reason="C module not built")])
                        for n, m in IMPLEMENTATIONS.items()])
def impl(request):
    return request.param


def length_decoder(impl, length, **kwargs):
    d = impl.BodyDecoder(**kwargs)
    d.start_length(length)
    return d


def check(d, answer, expected):
    consumed, data, err = answer
    assert err == 0, K.ERROR_NAMES.get(err, err)
    assert (consumed, data, d.done) == expected


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_length_case_fed_whole(impl, case):
    _, length, body, expected = case
    d = length_decoder(impl, length)
    check(d, feed_in_pieces(d, body, []), expected)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_length_case_split_at_every_byte(impl, case):
    _, length, body, expected = case
    for cut in range(len(body) + 1):
        d = length_decoder(impl, length)
        check(d, feed_in_pieces(d, body, [cut]), expected)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_length_case_fed_byte_by_byte(impl, case):
    _, length, body, expected = case
    d = length_decoder(impl, length)
    check(d, feed_in_pieces(d, body, range(len(body))), expected)


def rc_parts(rc):
    """feed_rc's answer as (consumed, done), or the error."""
    if rc < 0:
        return rc
    return rc & ~K.BODY_DONE, bool(rc & K.BODY_DONE)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_length_case_feed_and_feed_rc_count_as_feed_spans(impl, case):
    _, length, body, (consumed, _, done) = case
    for cut in range(len(body) + 1):
        a, b = length_decoder(impl, length), length_decoder(impl, length)
        na = a.feed(body[:cut])
        na += a.feed(body, na)
        nb, done_b = rc_parts(b.feed_rc(body, cut, 0))
        if not done_b:
            n2, done_b = rc_parts(b.feed_rc(body, len(body), nb))
            nb += n2
        assert (na, a.done) == (nb, done_b) == (consumed, done)
        assert b.done == done


def test_feed_rc_adds_body_done_on_the_call_that_completes_the_body(impl):
    d = length_decoder(impl, 6)
    assert d.feed_rc(b"abcd", 4, 0) == 4
    assert d.feed_rc(b"xxefNEXT", 8, 2) == 2 + K.BODY_DONE
    assert d.feed_rc(b"NEXT", 4, 0) == K.BODY_DONE       # already complete: nothing taken
    d.start_length(0)
    assert d.feed_rc(b"", 0, 0) == K.BODY_DONE
    d.start_chunked()
    body = b"3\r\nabc\r\n0\r\n\r\nNEXT"
    assert d.feed_rc(body, 9, 0) == 9
    assert d.feed_rc(body, len(body), 9) == 4 + K.BODY_DONE
    d.start_chunked()
    assert d.feed_rc(b"zz", 2, 0) == K.E_CHUNK_SIZE        # errors as feed says them
    d.start_length(-1)
    assert d.feed_rc(b"a", 1, 0) == K.E_CONTENT_LENGTH


def test_feed_rc_reads_only_the_length_it_is_given(impl):
    d = length_decoder(impl, 10)
    assert d.feed_rc(b"abcdefgh", 3, 1) == 2
    assert not d.done


@pytest.mark.skipif(native is None, reason="C module not built")
def test_body_done_matches_the_c_header():
    assert native.lib.KHTTP_BODY_DONE == K.BODY_DONE
    assert K.BODY_DONE > 2 ** 48  # far above any buffer length


def test_zero_length_is_done_before_any_byte(impl):
    d = length_decoder(impl, 0)
    assert d.done
    assert d.feed(b"") == 0 and d.feed(b"next") == 0
    assert d.feed_spans(b"next") == (0, [])


def test_feed_never_consumes_past_the_body(impl):
    d = length_decoder(impl, 4)
    assert d.feed(b"ab") == 2 and not d.done
    assert d.feed(b"xxcdNEXT", 2) == 2 and d.done
    assert d.feed(b"NEXT") == 0 and d.done


def test_huge_length_counts_down_without_overflow(impl):
    d = length_decoder(impl, INT64_MAX)
    piece = b"x" * 65536
    for _ in range(100):
        assert d.feed(piece) == len(piece)
    assert not d.done


def test_large_length_completes_in_big_reads(impl):
    d = length_decoder(impl, 3 * 65536 + 7)
    piece = b"y" * 65536
    assert [d.feed(piece) for _ in range(4)] == [65536, 65536, 65536, 7]
    assert d.done


def test_length_above_int64_is_refused_at_start(impl):
    d = impl.BodyDecoder()
    with pytest.raises(OverflowError):
        d.start_length(INT64_MAX + 1)


def test_negative_length_is_a_sticky_error_until_the_next_start(impl):
    d = length_decoder(impl, -1)
    assert not d.done
    assert d.feed(b"abc") == K.E_CONTENT_LENGTH
    assert d.feed_spans(b"abc") == (K.E_CONTENT_LENGTH, [])
    d.start_length(3)
    assert d.feed(b"abc") == 3 and d.done


def test_length_spans_are_the_consumed_bytes_at_their_offset(impl):
    d = length_decoder(impl, 6)
    assert d.feed_spans(b"HEADbody", 4) == (4, [(4, 4)])
    assert d.feed_spans(b"HEADbodyabNEXT", 8) == (2, [(8, 2)])
    assert d.done


def test_length_mode_ignores_the_chunked_limits(impl):
    d = length_decoder(impl, 100, max_line=1, max_trailers=1)
    assert d.feed(b"\r\n" * 50) == 100 and d.done


def test_length_mode_accepts_bytearray_and_memoryview(impl):
    for data in (bytearray(b"abcdef"), memoryview(b"abcdef")):
        d = length_decoder(impl, 4)
        assert d.feed(data, 1) == 4 and d.done


def test_new_decoder_is_in_chunked_mode(impl):
    d = impl.BodyDecoder()
    assert not d.done
    assert d.feed(b"zz") == K.E_CHUNK_SIZE


def test_start_clears_the_previous_message_whatever_its_mode(impl):
    d = impl.BodyDecoder()
    assert d.feed(b"5\r\nhel") == 6                     # chunked, mid-chunk
    d.start_length(3)
    assert d.feed(b"5\r\nhello") == 3 and d.done          # length: framing bytes are data
    d.start_chunked()
    assert d.feed(b"zz") == K.E_CHUNK_SIZE                # an error...
    d.start_length(2)
    assert d.feed(b"ok") == 2 and d.done                  # ...cleared by the next start
    d.start_length(10)
    assert d.feed(b"abc") == 3
    d.reset()                                             # ChunkedDecoder's spelling
    assert d.feed_spans(b"2\r\nhi\r\n0\r\n\r\n") == (12, [(3, 2)]) and d.done


def test_chunked_decoder_is_the_body_decoder(impl):
    assert impl.ChunkedDecoder is impl.BodyDecoder


def test_pipelined_messages_are_found_from_what_feed_consumed(impl):
    # Three bodies back to back in one buffer: length, chunked, zero length, length.
    bodies = [(5, b"hello"), (None, b"3\r\nabc\r\n0\r\n\r\n"), (0, b""), (2, b"ok")]
    buf = b"".join(b for _, b in bodies) + b"REST"
    d = impl.BodyDecoder()
    pos = 0
    for length, body in bodies:
        if length is None:
            d.start_chunked()
        else:
            d.start_length(length)
        n = d.feed(buf, pos)
        assert n == len(body) and d.done
        pos += n
    assert buf[pos:] == b"REST"


# --- C against the twin -----------------------------------------------------------

def run_script(impl, script, data):
    """Feed `data` through a script of (mode, arg, cuts) messages on one decoder; everything
    it says: per message (consumed, body data, error) and done."""
    d = impl.BodyDecoder(max_line=8, max_trailers=16)
    out = []
    pos = 0
    for mode, arg, cuts in script:
        if mode == "length":
            d.start_length(arg)
        else:
            d.start_chunked()
        view = data[pos:]
        answer = feed_in_pieces(d, view, cuts)
        out.append((answer, d.done))
        if answer[2]:
            break
        pos += answer[0]
    return out


@st.composite
def scripts(draw):
    """A run of messages, length or chunked, with a body byte string that may end anywhere."""
    script = []
    parts = []
    for _ in range(draw(st.integers(1, 4))):
        if draw(st.booleans()):
            length = draw(st.sampled_from([0, 1, 2, 5, 17, 100, CL_MAX, INT64_MAX, -1]))
            script.append(("length", length, draw(st.lists(st.integers(0, 40), max_size=3).map(sorted))))
            parts.append(draw(st.binary(max_size=min(max(length, 0) + 3, 40))))
        else:
            script.append(("chunked", None, draw(st.lists(st.integers(0, 40), max_size=3).map(sorted))))
            chunk = draw(st.binary(min_size=1, max_size=12))
            parts.append(b"%x\r\n" % len(chunk) + chunk + b"\r\n"
                         + draw(st.sampled_from([b"0\r\n\r\n", b"0\r\nX: y\r\n\r\n", b"0\r\n", b"zz"])))
    return script, b"".join(parts)


@pytest.mark.skipif(native is None, reason="C module not built")
@settings(max_examples=400, deadline=None)
@given(case=scripts())
def test_generated_message_runs_agree_between_implementations(case):
    script, data = case
    assert run_script(native, script, data) == run_script(pure, script, data)


@pytest.mark.skipif(native is None, reason="C module not built")
def test_random_length_feeds_agree_with_each_other_and_with_counting():
    rng = random.Random(13)
    for _ in range(2000):
        length = rng.choice([0, 1, rng.randrange(1, 70000), CL_MAX, INT64_MAX])
        a, b = length_decoder(pure, length), length_decoder(native, length)
        left = length
        for _ in range(rng.randrange(1, 6)):
            data = bytes(rng.randrange(0, 20000))
            start = rng.randrange(0, len(data) + 2)
            expect = min(max(len(data) - start, 0), left)
            form = rng.randrange(3)
            if form == 0:
                ra, rb = a.feed(data, start), b.feed(data, start)
            elif form == 1:
                ra, rb = a.feed_rc(data, len(data), start), b.feed_rc(data, len(data), start)
                assert ra == rb
                ra, rb = rc_parts(ra)[0], rc_parts(rb)[0]
            else:
                ra, rb = a.feed_spans(data, start), b.feed_spans(data, start)
                assert ra[1] == ([(start, expect)] if expect else [])
                ra, rb = ra[0], rb[0]
            assert ra == rb == expect
            left -= expect
            assert a.done == b.done == (left == 0)
