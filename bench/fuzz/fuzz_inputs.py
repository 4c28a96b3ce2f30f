"""Decode a fuzz input the way fuzz_khttp.c does; write seeds; check the Python twin agrees.

    python3 bench/fuzz/fuzz_inputs.py seeds CORPUS_DIR   # seed corpus from the test tables
    python3 bench/fuzz/fuzz_inputs.py agree CORPUS_DIR   # C and pure agree on every file

Input layout: byte 0 = mode (mode % 3: 0 request, 1 response, 2 body; mode // 3
holds limit bits, and for a body bit 8 picks length mode, whose length is then the
next byte, see length_of), byte 1 = split point, the rest is the message.
"""

import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "tests"))

from _native import native, pure  # noqa: E402
from _native.testing import feed_in_pieces, parse, parse_in_pieces  # noqa: E402


def head_limits(lim):
    # As fuzz_khttp.c: small limits vary with the high bits, odd and even.
    return dict(max_headers=3 if lim & 1 else 8, max_head=39 + (lim >> 4) if lim & 2 else 4096,
                max_line=2 + 3 * (lim >> 4) if lim & 4 else 1024)


def chunk_limits(lim):
    return dict(max_line=8 if lim & 2 else 4096, max_trailers=12 if lim & 4 else 16384)


# As fuzz_khttp.c: a length byte below 240 is the length; above, one of these.
BIG_LENGTHS = [2 ** 31 - 1, 2 ** 31, 2 ** 32 - 1, 2 ** 32, 10 ** 18 - 1, 2 ** 63 - 1, -1, -2 ** 63]
LENGTH_MODE = 3 * 8 + 2  # a mode byte for length mode with the default limits


def length_of(v):
    return v if v < 240 else BIG_LENGTHS[(v - 240) % len(BIG_LENGTHS)]


def length_byte(length):
    """The byte for `length`; one that has none gets 239 (the seed still serves)."""
    if 0 <= length < 240:
        return length
    return 240 + BIG_LENGTHS.index(length) if length in BIG_LENGTHS else 239


def body_answers(mod, lim, data, cut, length=None):
    """Whole and split, on decoders started in length mode (length not None) or chunked;
    after a complete length body, the rest decoded as a chunked body by the same ones."""
    out = []
    a, b = mod.BodyDecoder(**chunk_limits(lim)), mod.BodyDecoder(**chunk_limits(lim))
    for d in (a, b):
        if length is not None:
            d.start_length(length)
    whole = feed_in_pieces(a, data, [])
    out.append((whole, feed_in_pieces(b, data, [cut]), a.done, b.done))
    if length is not None and whole[2] == 0 and a.done and whole[0] < len(data):
        rest = data[whole[0]:]
        a.start_chunked()
        b.start_chunked()
        out.append((feed_in_pieces(a, rest, []), feed_in_pieces(b, rest, [cut % (len(rest) + 1)]),
                    a.done, b.done))
    return out


def answers(mod, blob):
    """Everything one implementation says about one fuzz input."""
    if len(blob) < 2:
        return None
    mode, cut, data = blob[0], blob[1], blob[2:]
    lim = mode // 3
    if mode % 3 == 2 and lim & 8:
        if not data:
            return None
        length, data = length_of(data[0]), data[1:]
        return body_answers(mod, lim, data, cut % (len(data) + 1), length)
    cut = cut % (len(data) + 1)
    if mode % 3 == 2:
        return body_answers(mod, lim, data, cut)
    kind = "req" if mode % 3 == 0 else "resp"
    p = mod.Parser(**head_limits(lim))
    r = parse(p, kind, data)
    extra = None
    if isinstance(r, list):
        extra = (p.headers(data), p.strip_hop(data, keep_upgrade=bool(lim & 8)))
    return r, extra, parse_in_pieces(mod.Parser(**head_limits(lim)), kind, data, [cut])


def seeds(out_dir):
    from test_body_decoder import CASES as LENGTH
    from test_chunked_decoder import CASES as CHUNKED
    from test_parser_conformance import CASES as HEADS
    os.makedirs(out_dir, exist_ok=True)
    n = 0
    for case in HEADS:
        mode = 0 if case[1] == "req" else 1
        for cut in (0, len(case[2]) // 2):
            with open(os.path.join(out_dir, "head-%s-%d" % (case[0], cut)), "wb") as f:
                f.write(bytes([mode, cut % 256]) + case[2])
            n += 1
    for case in CHUNKED:
        with open(os.path.join(out_dir, "chunked-%s" % case[0]), "wb") as f:
            f.write(bytes([2, len(case[1]) // 2 % 256]) + case[1])
        n += 1
    for case in LENGTH:
        # the body, then a chunked one: the decoder's switch from one message to the next
        body = case[2] + b"3\r\nabc\r\n0\r\n\r\n"
        with open(os.path.join(out_dir, "length-%s" % case[0]), "wb") as f:
            f.write(bytes([LENGTH_MODE, len(body) // 2 % 256, length_byte(case[1])]) + body)
        n += 1
    with open(os.path.join(out_dir, "length-negative"), "wb") as f:
        f.write(bytes([LENGTH_MODE, 1, length_byte(-1)]) + b"abc")
    n += 1
    print("wrote %d seeds to %s" % (n, out_dir))


def agree(corpus_dir):
    checked = 0
    for name in sorted(os.listdir(corpus_dir)):
        with open(os.path.join(corpus_dir, name), "rb") as f:
            blob = f.read()
        a, b = answers(pure, blob), answers(native, blob)
        if a != b:
            print("DISAGREE %s: pure=%r native=%r" % (name, a, b))
            sys.exit(1)
        checked += 1
    print("C and pure-Python agree on all %d corpus inputs" % checked)


if __name__ == "__main__":
    {"seeds": seeds, "agree": agree}[sys.argv[1]](sys.argv[2])
