"""Decode a fuzz input the way fuzz_khttp.c does; write seeds; check the Python twin agrees.

    python3 bench/fuzz/fuzz_inputs.py seeds CORPUS_DIR   # seed corpus from the test tables
    python3 bench/fuzz/fuzz_inputs.py agree CORPUS_DIR   # C and pure agree on every file

Input layout: byte 0 = mode (mode % 3: 0 request, 1 response, 2 chunked; mode // 3
holds limit bits), byte 1 = split point, the rest is the message.
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


def answers(mod, blob):
    """Everything one implementation says about one fuzz input."""
    if len(blob) < 2:
        return None
    mode, cut, data = blob[0], blob[1], blob[2:]
    lim = mode // 3
    cut = cut % (len(data) + 1)
    if mode % 3 == 2:
        whole = feed_in_pieces(mod.ChunkedDecoder(**chunk_limits(lim)), data, [])
        split = feed_in_pieces(mod.ChunkedDecoder(**chunk_limits(lim)), data, [cut])
        return whole, split
    kind = "req" if mode % 3 == 0 else "resp"
    p = mod.Parser(**head_limits(lim))
    r = parse(p, kind, data)
    extra = None
    if isinstance(r, list):
        extra = (p.headers(data), p.strip_hop(data, keep_upgrade=bool(lim & 8)))
    return r, extra, parse_in_pieces(mod.Parser(**head_limits(lim)), kind, data, [cut])


def seeds(out_dir):
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
