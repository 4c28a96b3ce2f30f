"""Pure-Python twin of khttp.c: the same head parser and chunked decoder, same answers.

Every rule here has its twin in khttp.c, in the same order, so that both give the
same result (and the same *first* error) for every input; see khttp.h for the
contract.  Fast paths use regular expressions that only accept what the exact
byte-by-byte scan accepts; anything else falls through to that scan, which picks
the error.
"""

import re

from .constants import (
    BODY_DONE,
    E_BARE_CR, E_BARE_LF, E_CHUNK_CRLF, E_CHUNK_EXT, E_CHUNK_LINE_TOO_LONG,
    E_CHUNK_SIZE, E_CL_CONFLICT, E_CL_TE, E_CONTENT_LENGTH, E_HEAD_TOO_LARGE,
    E_HEADER_NAME, E_HEADER_VALUE, E_LINE_TOO_LONG, E_METHOD, E_NO_COLON,
    E_OBS_FOLD, E_SPACE_BEFORE_COLON, E_STATUS_LINE, E_TARGET, E_TE,
    E_TE_HTTP10, E_TOO_MANY_HEADERS, E_TRAILER, E_VERSION, E_VERSION_UNSUPPORTED,
    F_AUTH_CONN, F_CHUNKED, F_CL, F_CONN_CLOSE, F_CONN_KEEPALIVE, F_CONN_OTHER,
    F_CONN_UPGRADE, F_EXPECT_CONTINUE, F_HOP, F_KEEPALIVE_HDR, F_NORMALIZE, F_PROXY_CONN, F_TE,
    F_UPGRADE,
    METHOD_CODES, M_CONNECT, M_OPTIONS, M_OTHER, NHOT,
    B_CHUNKED, B_CLOSE, B_LENGTH, B_NONE,
    R_BODY, R_BODY_LEN, R_CONN_OTHER_COUNT, R_CONTENT_LENGTH, R_END, R_FLAGS, R_HOST_COUNT,
    R_METHOD, R_METHOD_LEN, R_METHOD_OFF, R_NHEADERS, R_PERSIST, R_REASON_LEN, R_REASON_OFF,
    R_STATUS, R_TARGET_LEN, R_TARGET_OFF, R_VERDICT, R_VERSION, NRESULTS,
)

CR, LF, SP, HTAB, COLON = 13, 10, 32, 9, 58

_TCHAR_STR = b"!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
TCHAR = frozenset(_TCHAR_STR)
_TCHAR_CLASS = rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]"
# field-value bytes (RFC 9110 §5.5): HTAB, SP, VCHAR, obs-text.
VALUE_CHAR = frozenset([HTAB] + list(range(0x20, 0x7F)) + list(range(0x80, 0x100)))
# request-target bytes: visible ASCII only (no CTL, SP, DEL or 8-bit bytes).
TARGET_CHAR = frozenset(range(0x21, 0x7F))
HEX = {c: int(chr(c), 16) for c in b"0123456789abcdefABCDEF"}

_REQ_LINE = re.compile(
    _TCHAR_CLASS + rb"+ ([\x21-\x7e]+) HTTP/1\.([0-9])\r\n")
_STATUS_LINE = re.compile(
    rb"HTTP/1\.([0-9]) ([1-9][0-9][0-9])(?: ([\t\x20-\x7e\x80-\xff]*))?\r\n")
_HEADER_LINE = re.compile(
    b"(" + _TCHAR_CLASS + rb"+):[ \t]*([\t\x20-\x7e\x80-\xff]*)\r\n")

CL_LIMIT = 10 ** 18          # Content-Length values must be below this
CHUNK_SIZE_SHIFT_LIMIT = 56  # chunk sizes must stay below 2**60

# Header kinds the scan records facts for (names compared case-insensitively).
K_CL, K_TE_ENC, K_CONNECTION, K_PROXY_CONN, K_HOP, K_UPGRADE, K_HOST, K_EXPECT, \
    K_AUTHORIZATION, K_AUTHENTICATE, K_KEEPALIVE = range(1, 12)
KINDS = {
    b"content-length": K_CL,
    b"transfer-encoding": K_TE_ENC,
    b"connection": K_CONNECTION,
    b"proxy-connection": K_PROXY_CONN,
    b"keep-alive": K_KEEPALIVE,
    b"te": K_HOP,
    b"trailer": K_HOP,
    b"upgrade": K_UPGRADE,
    b"host": K_HOST,
    b"expect": K_EXPECT,
    b"authorization": K_AUTHORIZATION,
    b"www-authenticate": K_AUTHENTICATE,
    b"proxy-authenticate": K_AUTHENTICATE,
}
HOP_NAMES = frozenset([b"connection", b"keep-alive", b"proxy-connection", b"te",
                       b"trailer", b"upgrade"])
# Never removed even when Connection names them: dropping them would change the
# framing the proxy already decided on (a known hop-by-hop abuse).
NEVER_DROP = frozenset([b"host", b"content-length", b"transfer-encoding"])


def _limit_error(line_bad, head_bad, ls, start, max_line, max_head):
    """The limit that a byte-by-byte reader would hit first (ties: the line)."""
    if line_bad and head_bad:
        return E_LINE_TOO_LONG if ls + max_line <= start + max_head else E_HEAD_TOO_LARGE
    if line_bad:
        return E_LINE_TOO_LONG
    if head_bad:
        return E_HEAD_TOO_LARGE
    return 0


def _method_verdict(data, ls, n, lim):
    """C's method_verdict(): the request_line() verdict on the method from the bytes
    there are, so junk (a TLS ClientHello) is answered before its head completes;
    0 when there is none yet, or when the bad byte is at or past `lim` (the first
    byte that breaks max_line or max_head: the limits answer)."""
    lim = min(lim, n)
    i = ls
    while i < lim and data[i] in TCHAR:
        i += 1
    if i >= lim:                # still in the token, or past a limit (empty lines)
        return 0
    c = data[i]
    if i > ls:
        return 0 if c == SP else E_METHOD
    if c == LF:
        return E_BARE_LF
    if c == CR:                 # CRLF pairs were skipped: CR then anything is bare
        return E_BARE_CR if i + 1 < lim else 0
    return E_METHOD


_SCHEME = re.compile(rb"[A-Za-z][A-Za-z0-9+\-.]*://")
_AUTHORITY = re.compile(rb"[^/]+:[0-9]+\Z")


def _target_form_ok(target, method):
    """C's target_form_ok(): RFC 9112 §3.2's forms, each for the methods that may use
    it: origin-form but for CONNECT, authority-form (host ":" port) for CONNECT only,
    "*" for OPTIONS only, absolute-form (scheme "://", as HAProxy requires) but for
    CONNECT. Anything else ("foo") would reach the server as a target it must guess at."""
    if method == M_CONNECT:
        return _AUTHORITY.match(target) is not None
    c = target[0]
    if c == 47:     # '/'
        return True
    if c == 42:     # '*'
        return target == b"*" and method == M_OPTIONS
    return _SCHEME.match(target) is not None


_REGNAME = re.compile(rb"(?:[A-Za-z0-9\-._~!$&'()*+,;=]|%[0-9A-Fa-f]{2})*")
_IP_LITERAL = re.compile(rb"\[[0-9A-Fa-f:.]+\]")
_AUTH_END = re.compile(rb"[/?#]")


def split_host(value):
    """C's split_host(): (host, port) of uri-host [":" port] (RFC 9112 §3.2, RFC
    3986 §3.2.2-3), port None when absent or empty; None when the syntax is not
    that or the port is above 65535."""
    m = (_IP_LITERAL if value[:1] == b"[" else _REGNAME).match(value)
    if m is None:
        return None
    host, rest = value[:m.end()], value[m.end():]
    if not rest:
        return host, None
    if rest[:1] != b":" or not (rest[1:].isdigit() or rest == b":"):
        return None
    port = int(rest[1:]) if len(rest) > 1 else None
    if port is not None and port > 65535:
        return None
    return host, port


def authority(target):
    """C's authority(): (start, end, default port or None) of an absolute-form
    target's authority (RFC 3986 §3.2: after "scheme://", up to '/', '?', '#' or
    the end, userinfo left out)."""
    s = target.index(b":")
    default = {b"http": 80, b"https": 443}.get(target[:s].lower())
    a = s + 3
    m = _AUTH_END.search(target, a)
    e = m.start() if m else len(target)
    at = target.rfind(b"@", a, e)
    return (at + 1 if at >= 0 else a), e, default


def authority_vs_host(target, host_value):
    """C's authority_vs_host(): -1 when an absolute-form target's authority is not
    the Host's (userinfo aside, a missing port being the scheme's default), 1 when
    they agree and the target names its scheme's default port, else 0."""
    a, e, default = authority(target)
    mine, theirs = split_host(target[a:e]), split_host(host_value)
    if mine is None or theirs is None or mine[0].lower() != theirs[0].lower():
        return -1
    mport = default if mine[1] is None else mine[1]
    if mport != (default if theirs[1] is None else theirs[1]):
        return -1
    return 1 if mine[1] is not None and mine[1] == default else 0


def normalized_line(data, res, line_off):
    """C's normalized_line(): F_NORMALIZE's request line: the method, the target
    without its scheme's default port, HTTP/1.1 (HTTP/1.0 stays), CRLF."""
    toff, tlen = res[R_TARGET_OFF], res[R_TARGET_LEN]
    target = data[toff:toff + tlen]
    if target[:1] not in (b"/", b"*"):
        a, e, default = authority(target)
        hp = split_host(target[a:e])
        if hp is not None and hp[1] is not None and hp[1] == default:
            target = target[:a + len(hp[0])] + target[e:]
    version = b" HTTP/1.0\r\n" if res[R_VERSION] == 10 else b" HTTP/1.1\r\n"
    return data[line_off:toff] + target + version


def _host_verdict(data, res, flags, host_value):
    """C's host_verdict(): 400 for a Host value that is not host[:port] (RFC 9112
    §3.2's MUST, stricter than HAProxy 2.6) or an absolute-form target whose
    authority differs from it (as HAProxy 2.6); F_NORMALIZE when the target's
    default port is to be dropped."""
    if split_host(host_value) is None:
        res[R_VERDICT] = 400
        return flags
    toff = res[R_TARGET_OFF]
    if data[toff] in b"/*":
        return flags
    same = authority_vs_host(data[toff:toff + res[R_TARGET_LEN]], host_value)
    if same < 0:
        res[R_VERDICT] = 400
    elif same:
        flags |= F_NORMALIZE | F_HOP
    return flags


def _bare_cr_verdict(data, frm, to, ls, start, max_line, max_head):
    """C's bare_cr_verdict(): E_BARE_CR for the first CR in data[frm:to] followed by
    anything but LF (RFC 9112 §2.2), as soon as the byte after it is there, unless a
    byte-by-byte reader would meet it only past max_line (start line without LF) or
    max_head: the limits answer then, as for a prefix. Else 0."""
    while True:
        if frm + 1 >= to:
            return 0
        j = data.find(b"\r", frm, to - 1)
        if j < 0:
            return 0
        if data[j + 1] != LF:
            break
        frm = j + 2
    lim = start + max_head
    if ls + max_line < lim and data.find(b"\n", ls, min(j, ls + max_line)) < 0:
        lim = ls + max_line
    return E_BARE_CR if j + 1 < lim else 0


def _request_line(data, ls):
    """Exact scan of a request line -> (err, mlen, toff, tlen, version, next)."""
    pos = ls
    while data[pos] in TCHAR:
        pos += 1
    if pos == ls:
        c = data[pos]
        if c == LF:
            return E_BARE_LF, 0, 0, 0, 0, 0
        if c == CR:
            return E_BARE_CR, 0, 0, 0, 0, 0
        return E_METHOD, 0, 0, 0, 0, 0
    if data[pos] != SP:
        return E_METHOD, 0, 0, 0, 0, 0
    mlen = pos - ls
    pos += 1
    toff = pos
    while data[pos] in TARGET_CHAR:
        pos += 1
    c = data[pos]
    if c != SP:
        if pos > toff and (c == CR or c == LF):
            return E_VERSION, 0, 0, 0, 0, 0
        return E_TARGET, 0, 0, 0, 0, 0
    if pos == toff:
        return E_TARGET, 0, 0, 0, 0, 0
    tlen = pos - toff
    pos += 1
    err, major, minor, pos = _version(data, pos, E_VERSION)
    if err:
        return err, 0, 0, 0, 0, 0
    c = data[pos]
    if c == CR:
        if data[pos + 1] != LF:
            return E_BARE_CR, 0, 0, 0, 0, 0
    elif c == LF:
        return E_BARE_LF, 0, 0, 0, 0, 0
    else:
        return E_VERSION, 0, 0, 0, 0, 0
    if major != 1:
        return E_VERSION_UNSUPPORTED, 0, 0, 0, 0, 0
    # The target's form is judged once the version says it is HTTP/1's grammar.
    if not _target_form_ok(data[toff:toff + tlen], METHOD_CODES.get(data[ls:ls + mlen], M_OTHER)):
        return E_TARGET, 0, 0, 0, 0, 0
    # RFC 9110 §2.5: 1.x > 1 is handled (and forwarded) as 1.1; 12 says "rewrite".
    return 0, mlen, toff, tlen, (10 if minor == 0 else 11 if minor == 1 else 12), pos + 2


def _version(data, pos, err):
    """Match HTTP/DIGIT.DIGIT byte by byte; the line's LF always stops a mismatch."""
    for i, want in enumerate(b"HTTP/"):
        if data[pos + i] != want:
            return err, 0, 0, 0
    major = data[pos + 5] - 48
    if not 0 <= major <= 9 or data[pos + 6] != 46:
        return err, 0, 0, 0
    minor = data[pos + 7] - 48
    if not 0 <= minor <= 9:
        return err, 0, 0, 0
    return 0, major, minor, pos + 8


def _status_line(data, ls):
    """Exact scan of a status line -> (err, version, status, roff, rlen, next)."""
    err, major, minor, pos = _version(data, ls, E_STATUS_LINE)
    if err:
        return err, 0, 0, 0, 0, 0
    if data[pos] != SP:
        return E_STATUS_LINE, 0, 0, 0, 0, 0
    pos += 1
    d1 = data[pos]
    if not 49 <= d1 <= 57:
        return E_STATUS_LINE, 0, 0, 0, 0, 0
    d2 = data[pos + 1]
    if not 48 <= d2 <= 57:
        return E_STATUS_LINE, 0, 0, 0, 0, 0
    d3 = data[pos + 2]
    if not 48 <= d3 <= 57:
        return E_STATUS_LINE, 0, 0, 0, 0, 0
    status = (d1 - 48) * 100 + (d2 - 48) * 10 + d3 - 48
    pos += 3
    c = data[pos]
    if c == SP:
        pos += 1
        roff = pos
        while data[pos] in VALUE_CHAR:
            pos += 1
        c = data[pos]
    else:
        roff = pos
    if c == CR:
        if data[pos + 1] != LF:
            return E_BARE_CR, 0, 0, 0, 0, 0
    elif c == LF:
        return E_BARE_LF, 0, 0, 0, 0, 0
    else:
        return E_STATUS_LINE, 0, 0, 0, 0, 0
    if major != 1:
        return E_VERSION_UNSUPPORTED, 0, 0, 0, 0, 0
    return 0, (10 if minor == 0 else 11), status, roff, pos - roff, pos + 2


def _header_line_error(data, pos):
    """Exact scan of a header line known to be invalid -> its error code."""
    c = data[pos]
    if c == SP or c == HTAB:
        return E_OBS_FOLD
    q = pos
    while data[q] in TCHAR:
        q += 1
    c = data[q]
    if c == COLON:
        if q == pos:
            return E_HEADER_NAME
    else:
        if q > pos and (c == SP or c == HTAB):
            return E_SPACE_BEFORE_COLON
        if c == CR:
            if data[q + 1] != LF:
                return E_BARE_CR
            return E_NO_COLON if q > pos else E_HEADER_NAME
        if c == LF:
            return E_BARE_LF
        return E_HEADER_NAME
    q += 1
    while data[q] in VALUE_CHAR:
        q += 1
    c = data[q]
    if c == CR:
        if data[q + 1] != LF:
            return E_BARE_CR
        raise AssertionError("header line is valid")  # pragma: no cover
    if c == LF:
        return E_BARE_LF
    return E_HEADER_VALUE


def _trim(b):
    return b.strip(b" \t")


def _is_token(b):
    return bool(b) and all(c in TCHAR for c in b)


def _auth_is_conn_bound(value):
    # NTLM and Negotiate authenticate the TCP connection, not the request.
    for elem in value.split(b","):
        scheme = _trim(elem)
        for i, c in enumerate(scheme):
            if c == SP or c == HTAB:
                scheme = scheme[:i]
                break
        scheme = scheme.lower()
        if scheme == b"ntlm" or scheme == b"negotiate":
            return True
    return False


def _framing(res, flags, cl, host, is_request):
    """R_PERSIST, R_BODY, R_BODY_LEN and R_VERDICT, as khttp.c's framing() decides them."""
    persist = 1 if not flags & F_CONN_CLOSE and (res[R_VERSION] == 11
                                                  or flags & F_CONN_KEEPALIVE) else 0
    if is_request:
        if flags & F_CHUNKED:
            body, length = B_CHUNKED, -1
        elif cl > 0:
            body, length = B_LENGTH, cl
        else:
            body, length = B_NONE, 0
        if host != 1 and (host > 1 or res[R_VERSION] == 11):
            res[R_VERDICT] = 400
        elif res[R_METHOD] == M_CONNECT:
            res[R_VERDICT] = 501
    else:
        status = res[R_STATUS]
        if status < 200 or status == 204 or status == 304:
            body, length = B_NONE, 0
        elif flags & F_TE:
            body, length = (B_CHUNKED if flags & F_CHUNKED else B_CLOSE), -1
        elif cl > 0:
            body, length = B_LENGTH, cl
        elif cl == 0:
            body, length = B_NONE, 0
        else:
            body, length = B_CLOSE, -1
        if body == B_CLOSE:
            persist = 0
    res[R_BODY] = body
    res[R_BODY_LEN] = length
    res[R_PERSIST] = persist


class Parser:
    """Parse HTTP/1.x request and response heads; remember the last one's headers."""

    __slots__ = ("max_headers", "max_head", "max_line", "_hdrs", "_res", "_line_off",
                 "_end", "_cl", "_last", "_rewritten")

    def __init__(self, max_headers=101, max_head=16384, max_line=8192):
        if max_headers < 0 or max_head < 1 or max_line < 1:
            raise ValueError("parser limits must be positive")
        self.max_headers = max_headers
        self.max_head = max_head
        self.max_line = max_line
        self._hdrs = []
        self._res = [0] * NRESULTS
        self._line_off = 0
        self._end = 0

    def request_rc(self, data, length, start, prev_len):
        """The C twin's hot-path form: 0, E_* or 1; then result() gives the R_* list."""
        return self._rc(self._parse(data, start, prev_len, True))

    def response_rc(self, data, length, start, prev_len):
        return self._rc(self._parse(data, start, prev_len, False))

    def _rc(self, r):
        if r.__class__ is int:
            return r
        self._last = r
        return 1

    def result(self):
        return self._last[:NHOT]

    def result_all(self):
        return self._last

    def rewrite_rc(self, data, length, keep_upgrade, tail, tail_len):
        """The C twin's hot-path form of rewrite: a length, then rewritten(n) the bytes."""
        self._rewritten = self.rewrite(data, tail, keep_upgrade)
        return len(self._rewritten)

    def rewritten(self, n):
        return self._rewritten

    def parse_request(self, data, start=0, prev_len=0):
        return self._parse(data, start, prev_len, True)

    def parse_response(self, data, start=0, prev_len=0):
        return self._parse(data, start, prev_len, False)

    def _parse(self, data, start, prev_len, is_request):
        if type(data) is not bytes:
            data = bytes(data)
        self._end = 0
        self._hdrs = []
        n = len(data)
        ls = start
        if is_request:
            # RFC 9112 §2.2: ignore empty lines (CRLF) before the request-line.
            while data.startswith(b"\r\n", ls):
                ls += 2
        s = start + prev_len - 2
        if s < ls:
            s = ls
        i = data.find(b"\n\r\n", s)
        j = data.find(b"\n\n", s)
        max_line = self.max_line
        max_head = self.max_head
        m = None
        if is_request:
            m = _REQ_LINE.match(data, ls)      # a match means a valid method
            if m is None:
                err = _method_verdict(data, ls, n, min(ls + max_line, start + max_head))
                if err:
                    return err
        if i < 0 and j < 0:
            # Bytes searched at the previous call had no bare CR (but maybe a CR last).
            err = _bare_cr_verdict(data, max(ls, start + prev_len - 1), n, ls, start,
                                   max_line, max_head)
            if err:
                return err
            line_bad = n - ls >= max_line and data.find(b"\n", ls, ls + max_line) < 0
            return _limit_error(line_bad, n - start >= max_head, ls, start,
                                max_line, max_head)
        end = i + 3 if (j < 0 or 0 <= i < j) else j + 2
        r = self._complete(data, start, ls, end, m, is_request)
        if r.__class__ is int:
            # A head that parses has no bare CR: only a failure needs the search.
            return _bare_cr_verdict(data, ls, end, ls, start, max_line, max_head) or r
        return r

    def _complete(self, data, start, ls, end, m, is_request):
        """C's complete_head(): the limits, the start line, each header line, then the
        rules over the whole head; the R_* list or the first error met. `m` is the
        request line's match, or None."""
        max_line = self.max_line
        max_head = self.max_head
        err = _limit_error(data.find(b"\n", ls) - ls >= max_line, end - start > max_head,
                           ls, start, max_line, max_head)
        if err:
            return err

        res = [0] * NRESULTS
        res[R_END] = end
        res[R_CONTENT_LENGTH] = -1
        if is_request:
            if m is not None:
                toff = m.start(1)
                mlen = toff - 1 - ls
                method = METHOD_CODES.get(data[ls:toff - 1], M_OTHER)
                if (data[toff] != 47 or method == M_CONNECT) \
                        and not _target_form_ok(m.group(1), method):
                    return E_TARGET
                res[R_METHOD_OFF] = ls
                res[R_METHOD_LEN] = mlen
                res[R_TARGET_OFF] = toff
                res[R_TARGET_LEN] = m.end(1) - toff
                minor = m.group(2)
                res[R_VERSION] = 10 if minor == b"0" else 11
                line_flags = F_NORMALIZE | F_HOP if minor > b"1" else 0
                pos = m.end()
            else:
                err, mlen, toff, tlen, version, pos = _request_line(data, ls)
                if err:
                    return err
                line_flags = F_NORMALIZE | F_HOP if version > 11 else 0
                version = min(version, 11)
                res[R_METHOD_OFF] = ls
                res[R_METHOD_LEN] = mlen
                res[R_TARGET_OFF] = toff
                res[R_TARGET_LEN] = tlen
                res[R_VERSION] = version
                method = METHOD_CODES.get(data[ls:ls + mlen], M_OTHER)
            res[R_METHOD] = method
        else:
            m = _STATUS_LINE.match(data, ls)
            if m is not None:
                res[R_VERSION] = 10 if m.group(1) == b"0" else 11
                res[R_STATUS] = int(m.group(2))
                if m.group(3) is None:
                    res[R_REASON_OFF] = m.end(2)
                else:
                    res[R_REASON_OFF] = m.start(3)
                    res[R_REASON_LEN] = m.end(3) - m.start(3)
                pos = m.end()
            else:
                err, version, status, roff, rlen, pos = _status_line(data, ls)
                if err:
                    return err
                res[R_VERSION] = version
                res[R_STATUS] = status
                res[R_REASON_OFF] = roff
                res[R_REASON_LEN] = rlen

        hdrs = []
        max_headers = self.max_headers
        flags = line_flags if is_request else 0
        host_value = None
        cl = -1
        host = 0
        other = 0
        te_codings = 0
        chunked_seen = False
        last_chunked = False
        match = _HEADER_LINE.match
        while True:
            if data.startswith(b"\r\n", pos):
                end = pos + 2
                break
            if len(hdrs) == max_headers:
                return E_TOO_MANY_HEADERS
            m = match(data, pos)
            if m is None:
                return _header_line_error(data, pos)
            vo = m.start(2)
            value = m.group(2).rstrip(b" \t")
            hdrs.append((pos, m.end(1) - pos, vo, len(value)))
            pos = m.end()
            kind = KINDS.get(m.group(1).lower())
            if kind is None:
                continue
            if kind == K_CL:
                # RFC 9110 §8.6: a list of identical values may be taken as one, and
                # RFC 9112 §6.3 (5) then has it forwarded as one: F_HOP sends the
                # head through strip_hop, which writes a single Content-Length.
                if cl >= 0:
                    flags |= F_HOP      # a repeated field
                flags |= F_CL
                elems = value.split(b",")
                if len(elems) > 1:
                    flags |= F_HOP      # a list
                for elem in elems:
                    elem = _trim(elem)
                    if not elem.isdigit():
                        return E_CONTENT_LENGTH
                    # Leading zeros are allowed (as in C); past 18 significant digits the
                    # value is over the limit, and int() would refuse 4300 of them.
                    elem = elem.lstrip(b"0") or b"0"
                    if len(elem) > 18:
                        return E_CONTENT_LENGTH
                    v = int(elem)
                    if v >= CL_LIMIT:
                        return E_CONTENT_LENGTH
                    if cl < 0:
                        cl = v
                    elif v != cl:
                        return E_CL_CONFLICT
            elif kind == K_TE_ENC:
                flags |= F_TE
                for elem in value.split(b","):
                    elem = _trim(elem)
                    if not elem:
                        continue  # RFC 9110 §5.6.1: empty list elements are ignored
                    if not _is_token(elem):
                        return E_TE
                    te_codings += 1
                    if elem.lower() == b"chunked":
                        if chunked_seen:  # RFC 9112 §6.1: chunked at most once
                            return E_TE
                        chunked_seen = last_chunked = True
                    else:
                        last_chunked = False
            elif kind == K_CONNECTION:
                flags |= F_HOP
                for elem in value.split(b","):
                    elem = _trim(elem).lower()
                    if elem == b"close":
                        flags |= F_CONN_CLOSE
                    elif elem == b"keep-alive":
                        flags |= F_CONN_KEEPALIVE
                    elif elem == b"upgrade":
                        flags |= F_CONN_UPGRADE
                    elif elem:
                        flags |= F_CONN_OTHER
                        other += 1
            elif kind == K_HOST:
                host += 1
                host_value = value
            elif kind == K_HOP:
                flags |= F_HOP
            elif kind == K_KEEPALIVE:
                flags |= F_HOP | F_KEEPALIVE_HDR
            elif kind == K_UPGRADE:
                flags |= F_HOP | F_UPGRADE
            elif kind == K_PROXY_CONN:
                flags |= F_HOP | F_PROXY_CONN
            elif kind == K_EXPECT:
                if value.lower() == b"100-continue":
                    flags |= F_EXPECT_CONTINUE
            elif kind == K_AUTHORIZATION:
                if is_request and _auth_is_conn_bound(value):
                    flags |= F_AUTH_CONN
            elif kind == K_AUTHENTICATE:
                if not is_request and _auth_is_conn_bound(value):
                    flags |= F_AUTH_CONN

        if flags & F_TE:
            # RFC 9112 §6.1 / §6.3: both framings at once is how requests get smuggled.
            if flags & F_CL:
                return E_CL_TE
            if is_request and res[R_VERSION] == 10:
                return E_TE_HTTP10
            if te_codings == 0:
                return E_TE
            if last_chunked:
                flags |= F_CHUNKED
            elif is_request:  # RFC 9112 §6.3 (4): a request's final coding must be chunked
                return E_TE
        res[R_END] = end
        res[R_CONTENT_LENGTH] = cl
        res[R_FLAGS] = flags
        _framing(res, flags, cl, host, is_request)
        if is_request and host == 1 and not res[R_VERDICT]:
            res[R_FLAGS] = flags = _host_verdict(data, res, flags, host_value)
        res[R_NHEADERS] = len(hdrs)
        res[R_HOST_COUNT] = host
        res[R_CONN_OTHER_COUNT] = other
        self._hdrs = hdrs
        self._res = res
        self._line_off = ls
        self._end = end
        self._cl = cl
        return res

    def headers(self, data):
        """[(name, value)] of the last successful parse, name as sent, value trimmed."""
        if type(data) is not bytes:
            data = bytes(data)
        return [(data[no:no + nl], data[vo:vo + vl]) for no, nl, vo, vl in self._hdrs]

    def rewrite(self, data, tail, keep_upgrade=False):
        """strip_hop(data) + tail + data[end of head:], as the C parser builds it."""
        if type(data) is not bytes:
            data = bytes(data)
        return self.strip_hop(data, keep_upgrade) + tail + data[self._end:]

    def strip_hop(self, data, keep_upgrade=False):
        """The last head's start line and end-to-end header lines, without the final CRLF."""
        if not self._end:
            raise ValueError("strip_hop() needs a successful parse first")
        if type(data) is not bytes:
            data = bytes(data)
        hdrs = self._hdrs
        drop = set(HOP_NAMES)
        for no, nl, vo, vl in hdrs:
            if data[no:no + nl].lower() == b"connection":
                for elem in data[vo:vo + vl].split(b","):
                    drop.add(_trim(elem).lower())
        drop -= NEVER_DROP
        if keep_upgrade:
            drop.discard(b"upgrade")
        first = hdrs[0][0] if hdrs else self._end - 2
        if self._res[R_FLAGS] & F_NORMALIZE:
            out = [normalized_line(data, self._res, self._line_off)]
        else:
            out = [data[self._line_off:first]]
        cl_seen = False
        for idx, (no, nl, vo, vl) in enumerate(hdrs):
            name = data[no:no + nl].lower()
            if name == b"content-length":
                # RFC 9112 §6.3 (5): a list or a repeat of one value is forwarded as a
                # single field, as HAProxy does: the first, with the value alone when
                # it was a list; later ones go.
                if cl_seen:
                    continue
                cl_seen = True
                if b"," in data[vo:vo + vl]:
                    out.append(data[no:no + nl] + b": %d\r\n" % self._cl)
                    continue
            elif name in drop:
                continue
            line_end = hdrs[idx + 1][0] if idx + 1 < len(hdrs) else self._end - 2
            out.append(data[no:line_end])
        return b"".join(out)


# Body decoder states (same numbers as khttp.c): the chunked machine, S_DONE, and
# S_LENGTH, where _size counts the body bytes left.
(S_SIZE_START, S_SIZE, S_SIZE_WS, S_EXT_NAME_START, S_EXT_NAME, S_EXT_AFTER_NAME,
 S_EXT_VAL_START, S_EXT_TOKEN, S_EXT_QUOTED, S_EXT_QUOTED_ESC, S_EXT_AFTER_VAL,
 S_SIZE_LF, S_DATA, S_DATA_CR, S_DATA_LF, S_TRAILER_START, S_FINAL_LF, S_TR_NAME,
 S_TR_VALUE, S_TR_LF, S_DONE, S_LENGTH) = range(22)
INT64_MAX = 2 ** 63 - 1
_SIZE_LINE_STATES = frozenset(range(S_SIZE_START, S_SIZE_LF + 1))
_TRAILER_STATES = frozenset(range(S_TRAILER_START, S_TR_LF + 1))
# quoted-string text (RFC 9110 §5.6.4): HTAB, SP, VCHAR except " and \, obs-text.
QDTEXT = frozenset([HTAB, SP, 0x21] + list(range(0x23, 0x5C)) + list(range(0x5D, 0x7F))
                   + list(range(0x80, 0x100)))
QPAIR = frozenset([HTAB, SP] + list(range(0x21, 0x7F)) + list(range(0x80, 0x100)))


class BodyDecoder:
    """Find the end of one message body, by its length or chunked (RFC 9112 §6.3, §7.1), any split.

    Started per message with start_length(n) or start_chunked(); a new decoder is
    in chunked mode."""

    __slots__ = ("max_line", "max_trailers", "_state", "_size", "_line_len",
                 "_trailer_len", "_error")

    def __init__(self, max_line=4096, max_trailers=16384):
        if max_line < 1 or max_trailers < 1:
            raise ValueError("decoder limits must be positive")
        self.max_line = max_line
        self.max_trailers = max_trailers
        self.start_chunked()

    def start_chunked(self):
        self._state = S_SIZE_START
        self._size = 0
        self._line_len = 0
        self._trailer_len = 0
        self._error = 0

    reset = start_chunked  # ChunkedDecoder's spelling

    def start_length(self, length):
        if not -INT64_MAX - 1 <= length <= INT64_MAX:
            raise OverflowError("int too big to convert")  # as cffi says for an int64_t
        self.start_chunked()
        if length < 0:  # the parser never gives one: a caller's bug, said on the first feed
            self._state = S_LENGTH
            self._error = E_CONTENT_LENGTH
            return
        self._size = length
        self._state = S_LENGTH if length else S_DONE

    @property
    def done(self):
        return self._state == S_DONE

    def feed(self, data, start=0):
        """Consume body bytes from data[start:]; bytes consumed or a negative E_*."""
        if self._state == S_LENGTH and not self._error:
            n = len(data) - start
            if n <= 0:
                return 0
            left = self._size
            if n >= left:
                self._state = S_DONE
                self._size = 0
                return left
            self._size = left - n
            return n
        return self._feed(data, start, None)

    def feed_rc(self, data, n, start):
        """feed(data[:n], start), plus BODY_DONE when the body is complete: the C
        module's hot-path form, same answer."""
        if n != len(data):
            data = data[:n]
        rc = self.feed(data, start)
        if rc >= 0 and self._state == S_DONE:
            return rc + BODY_DONE
        return rc

    def feed_spans(self, data, start=0):
        """Like feed, also returning [(offset, length)] of the body data bytes."""
        spans = []
        n = self._feed(data, start, spans)
        return n, (spans if n >= 0 else [])

    def _feed(self, data, start, spans):
        if self._error:
            return self._error
        if type(data) is not bytes:
            data = bytes(data)
        n = len(data)
        pos = start
        state = self._state
        if state == S_LENGTH:  # RFC 9112 §6.3 (6): exactly Content-Length bytes
            if pos >= n:
                return 0
            take = min(n - pos, self._size)
            if spans is not None:
                spans.append((pos, take))
            self._size -= take
            if not self._size:
                self._state = S_DONE
            return take
        size = self._size
        line_len = self._line_len
        trailer_len = self._trailer_len
        max_line = self.max_line
        max_trailers = self.max_trailers
        err = 0
        while pos < n and state != S_DONE:
            if state == S_DATA:
                take = n - pos
                if take > size:
                    take = size
                if spans is not None:
                    spans.append((pos, take))
                pos += take
                size -= take
                if size == 0:
                    state = S_DATA_CR
                continue
            c = data[pos]
            if state <= S_SIZE_LF:
                line_len += 1
                if line_len > max_line:
                    err = E_CHUNK_LINE_TOO_LONG
                    break
            elif state >= S_TRAILER_START:
                trailer_len += 1
                if trailer_len > max_trailers:
                    err = E_TRAILER
                    break
            pos += 1
            if state == S_SIZE_START or state == S_SIZE:
                d = HEX.get(c)
                if d is not None:
                    if size >> CHUNK_SIZE_SHIFT_LIMIT:
                        err = E_CHUNK_SIZE
                        break
                    size = (size << 4) | d
                    state = S_SIZE
                elif state == S_SIZE_START:
                    err = E_CHUNK_SIZE
                    break
                elif c == CR:
                    state = S_SIZE_LF
                elif c == 59:  # ';'
                    state = S_EXT_NAME_START
                elif c == SP or c == HTAB:
                    state = S_SIZE_WS  # BWS before ';' (RFC 9112 §7.1.1)
                elif c == LF:
                    err = E_CHUNK_CRLF
                    break
                else:
                    err = E_CHUNK_SIZE
                    break
            elif state == S_SIZE_WS:
                if c == 59:
                    state = S_EXT_NAME_START
                elif c != SP and c != HTAB:
                    err = E_CHUNK_SIZE
                    break
            elif state == S_EXT_NAME_START:
                if c in TCHAR:
                    state = S_EXT_NAME
                elif c != SP and c != HTAB:
                    err = E_CHUNK_EXT
                    break
            elif state == S_EXT_NAME or state == S_EXT_AFTER_NAME:
                if c in TCHAR and state == S_EXT_NAME:
                    pass
                elif c == SP or c == HTAB:
                    state = S_EXT_AFTER_NAME
                elif c == 61:  # '='
                    state = S_EXT_VAL_START
                elif c == 59:
                    state = S_EXT_NAME_START
                elif c == CR:
                    state = S_SIZE_LF
                else:
                    err = E_CHUNK_EXT
                    break
            elif state == S_EXT_VAL_START:
                if c == 34:  # '"'
                    state = S_EXT_QUOTED
                elif c in TCHAR:
                    state = S_EXT_TOKEN
                elif c != SP and c != HTAB:
                    err = E_CHUNK_EXT
                    break
            elif state == S_EXT_TOKEN or state == S_EXT_AFTER_VAL:
                if c in TCHAR and state == S_EXT_TOKEN:
                    pass
                elif c == SP or c == HTAB:
                    state = S_EXT_AFTER_VAL
                elif c == 59:
                    state = S_EXT_NAME_START
                elif c == CR:
                    state = S_SIZE_LF
                else:
                    err = E_CHUNK_EXT
                    break
            elif state == S_EXT_QUOTED:
                if c == 34:
                    state = S_EXT_AFTER_VAL
                elif c == 92:  # '\\'
                    state = S_EXT_QUOTED_ESC
                elif c not in QDTEXT:
                    err = E_CHUNK_EXT
                    break
            elif state == S_EXT_QUOTED_ESC:
                if c in QPAIR:
                    state = S_EXT_QUOTED
                else:
                    err = E_CHUNK_EXT
                    break
            elif state == S_SIZE_LF:
                if c != LF:
                    err = E_CHUNK_CRLF
                    break
                line_len = 0
                state = S_DATA if size else S_TRAILER_START
            elif state == S_DATA_CR:
                if c != CR:
                    err = E_CHUNK_CRLF
                    break
                state = S_DATA_LF
            elif state == S_DATA_LF:
                if c != LF:
                    err = E_CHUNK_CRLF
                    break
                state = S_SIZE_START
            elif state == S_TRAILER_START:
                if c == CR:
                    state = S_FINAL_LF
                elif c in TCHAR:
                    state = S_TR_NAME
                else:
                    err = E_TRAILER  # includes obs-fold and bare LF
                    break
            elif state == S_FINAL_LF:
                if c != LF:
                    err = E_CHUNK_CRLF
                    break
                state = S_DONE
            elif state == S_TR_NAME:
                if c == COLON:
                    state = S_TR_VALUE
                elif c not in TCHAR:
                    err = E_TRAILER
                    break
            elif state == S_TR_VALUE:
                if c == CR:
                    state = S_TR_LF
                elif c not in VALUE_CHAR:
                    err = E_TRAILER
                    break
            else:  # S_TR_LF
                if c != LF:
                    err = E_TRAILER
                    break
                state = S_TRAILER_START
        if err:
            self._error = err
            return err
        self._state = state
        self._size = size
        self._line_len = line_len
        self._trailer_len = trailer_len
        return pos - start


ChunkedDecoder = BodyDecoder  # its first name; reset() is start_chunked()
