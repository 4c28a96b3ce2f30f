"""The C parser and body decoder (_native._khttp) behind the same classes as pure.py."""

from functools import partial

from ._khttp import ffi, lib
from .constants import NHOT, NRESULTS

_parse_request = lib.khttp_parse_request
_parse_response = lib.khttp_parse_response
_strip_hop = lib.khttp_strip_hop
_rewrite = lib.khttp_rewrite
_headers_join = lib.khttp_headers_join
_body_feed = lib.khttp_body_feed
_body_take = lib.khttp_body_take
_unpack = ffi.unpack
_from_buffer = ffi.from_buffer
_NULL = ffi.NULL
_MAX_SPANS = 64
REWRITE_EXTRA = 65536 + 1024


class Parser:
    """Parse HTTP/1.x request and response heads; remember the last one's headers."""

    __slots__ = ("max_headers", "max_head", "max_line", "_p", "_res", "_hdrs", "_out", "_rw",
                 "request_rc", "response_rc", "result", "result_all", "rewrite_rc", "rewritten")

    def __init__(self, max_headers=101, max_head=16384, max_line=8192):
        if max_headers < 0 or max_head < 1 or max_line < 1:
            raise ValueError("parser limits must be positive")
        self.max_headers = max_headers
        self.max_head = max_head
        self.max_line = max_line
        p = self._p = ffi.new("khttp_parser *")
        self._hdrs = ffi.new("int64_t[]", 4 * max_headers + 4)
        p.hdrs = self._hdrs
        p.max_headers = max_headers
        p.max_head = max_head
        p.max_line = max_line
        self._res = p.res
        self._out = ffi.new("char[]", max_head)
        # rewrite(): a head plus what followed it in one read (a recv is at most 64 KiB).
        self._rw = ffi.new("char[]", max_head + REWRITE_EXTRA)
        p.out = self._rw
        p.out_cap = max_head + REWRITE_EXTRA
        # The hot-path forms, for callers that pass bytes. They are partials of the
        # C functions, so no Python frame runs between the caller and C:
        #   request_rc(data, len(data), start, prev_len) -> 0 (incomplete), E_* (< 0)
        #   or > 0, then result() -> the first NHOT R_* slots (all the proxy reads
        #   for every message), result_all() -> every slot;
        #   rewrite_rc(data, len(data), keep_upgrade, tail, len(tail)) -> n, then
        #   rewritten(n) -> what rewrite(data, tail, keep_upgrade) returns; n < 0:
        #   the bytes do not fit, call rewrite().
        self.request_rc = partial(_parse_request, p)
        self.response_rc = partial(_parse_response, p)
        self.result = partial(_unpack, self._res, NHOT)
        self.result_all = partial(_unpack, self._res, NRESULTS)   # all NRESULTS slots
        self.rewrite_rc = partial(_rewrite, p)
        self.rewritten = partial(_unpack, self._rw)

    def parse_request(self, data, start=0, prev_len=0):
        try:
            rc = _parse_request(self._p, data, len(data), start, prev_len)
        except TypeError:
            rc = _parse_request(self._p, _from_buffer(data), len(data), start, prev_len)
        if rc > 0:
            return _unpack(self._res, NRESULTS)
        return rc

    def parse_response(self, data, start=0, prev_len=0):
        try:
            rc = _parse_response(self._p, data, len(data), start, prev_len)
        except TypeError:
            rc = _parse_response(self._p, _from_buffer(data), len(data), start, prev_len)
        if rc > 0:
            return _unpack(self._res, NRESULTS)
        return rc

    def headers(self, data):
        """[(name, value)] of the last successful parse, name as sent, value trimmed."""
        if type(data) is not bytes:
            data = bytes(data)
        if not self._p.nheaders:
            return []
        n = _headers_join(self._p, data, len(data), self._out, self.max_head)
        if n < 0:
            raise ValueError("headers() needs the buffer of the last successful parse")
        s = _unpack(self._out, n).split(b"\0")
        return list(zip(s[0::2], s[1::2]))

    def strip_hop(self, data, keep_upgrade=False):
        """The last head's start line and end-to-end header lines, without the final CRLF."""
        if type(data) is not bytes:
            data = bytes(data)
        n = _strip_hop(self._p, data, len(data), 1 if keep_upgrade else 0,
                       self._out, self.max_head)
        if n < 0:
            raise ValueError("strip_hop() needs a successful parse first")
        return _unpack(self._out, n)


    def rewrite(self, data, tail, keep_upgrade=False):
        """strip_hop(data) + tail + data[end of head:], built in one copy: the bytes to
        forward when hop-by-hop headers must go (`tail` ends the head)."""
        if type(data) is not bytes:
            data = bytes(data)
        n = _rewrite(self._p, data, len(data), 1 if keep_upgrade else 0, tail, len(tail))
        if n < 0:
            return self.strip_hop(data, keep_upgrade) + tail + data[self._p.end:]
        return _unpack(self._rw, n)


class BodyDecoder:
    """Find the end of one message body, by its length or chunked (RFC 9112 §6.3, §7.1), any split.

    Started per message with start_length(n) or start_chunked(); a new decoder is
    in chunked mode. The hot-path forms are C-level partials (no Python frame):
    start_length(n), start_chunked(), and for bytes feed_rc(data, len(data), start)
    -> what feed(data, start) returns, plus BODY_DONE when the body is complete
    (one call instead of feed() and done)."""

    __slots__ = ("max_line", "max_trailers", "_d", "_spans",
                 "start_length", "start_chunked", "reset", "feed_rc")

    def __init__(self, max_line=4096, max_trailers=16384):
        if max_line < 1 or max_trailers < 1:
            raise ValueError("decoder limits must be positive")
        self.max_line = max_line
        self.max_trailers = max_trailers
        d = self._d = ffi.new("khttp_body *")
        self._spans = None
        lib.khttp_body_init(d, max_line, max_trailers)
        self.start_length = partial(lib.khttp_body_start_length, d)
        self.start_chunked = self.reset = partial(lib.khttp_body_start_chunked, d)
        self.feed_rc = partial(_body_take, d)

    @property
    def done(self):
        return self._d.state == 20  # S_DONE

    def feed(self, data, start=0):
        """Consume body bytes from data[start:]; bytes consumed or a negative E_*."""
        try:
            return _body_feed(self._d, data, len(data), start, _NULL, 0)
        except TypeError:
            return _body_feed(self._d, _from_buffer(data), len(data), start, _NULL, 0)

    def feed_spans(self, data, start=0):
        """Like feed, also returning [(offset, length)] of the body data bytes."""
        if type(data) is not bytes:
            data = bytes(data)
        if self._spans is None:
            self._spans = ffi.new("int64_t[]", 2 * _MAX_SPANS)
        spans = []
        total = 0
        n = len(data)
        pos = start
        d = self._d
        while True:
            rc = _body_feed(d, data, n, pos, self._spans, _MAX_SPANS)
            if rc < 0:
                return rc, []
            k = d.nspans
            if k:
                flat = _unpack(self._spans, 2 * k)
                spans.extend(zip(flat[0::2], flat[1::2]))
            total += rc
            pos += rc
            if k < _MAX_SPANS or pos >= n or d.state == 20:
                return total, spans


ChunkedDecoder = BodyDecoder  # its first name; reset() is start_chunked()
