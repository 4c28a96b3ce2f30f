"""Helpers the parser tests, the fuzz loop and the benchmarks share (not used by the proxy)."""

from . import pure

try:
    from . import native
except ImportError:  # the C module is not built: tests of it are skipped
    native = None

IMPLEMENTATIONS = {"pure": pure, "native": native}


def parse(parser, kind, data, start=0, prev_len=0):
    if kind == "req":
        return parser.parse_request(data, start, prev_len)
    return parser.parse_response(data, start, prev_len)


def parse_in_pieces(parser, kind, data, cuts, start=0):
    """Feed data[start:] growing through the cut offsets, as a socket would deliver it.

    Returns the first non-zero answer (or the last 0), checking on the way that
    every earlier answer was 0: a split must never change the answer.
    """
    prev = 0
    for cut in list(cuts) + [len(data)]:
        piece = data[:cut]
        if cut < start:
            continue
        r = parse(parser, kind, piece, start, prev)
        if r != 0:
            return r
        prev = len(piece) - start
    return 0


def split_answers(parser_cls, kind, data, kwargs=None):
    """Yield (cut, answer) for the whole input fed in two pieces cut at every byte."""
    kwargs = kwargs or {}
    for cut in range(0, len(data) + 1):
        p = parser_cls(**kwargs)
        yield cut, parse_in_pieces(p, kind, data, [cut]), p


def feed_in_pieces(decoder, data, cuts):
    """Feed a chunked body through the cut offsets: (consumed, data bytes, 0) or (-1, b"", error)."""
    consumed = 0
    out = []
    for cut in list(cuts) + [len(data)]:
        if cut < consumed:
            continue
        piece = data[:cut]
        n, spans = decoder.feed_spans(piece, consumed)
        if n < 0:
            return -1, b"", n
        out.extend(piece[o:o + ln] for o, ln in spans)
        consumed += n
        if decoder.done:
            break
    return consumed, b"".join(out), 0
