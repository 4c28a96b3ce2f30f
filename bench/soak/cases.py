"""Malformed and hostile requests for the soak run: framing, smuggling and parser-limit cases.

Each case is (name, bytes, how): `how` is "" (send, read until close or
silence), "shut" (send, then half-close) or "slow-wait" (send, expect to wait:
the proxy may hold the request open). Taken from the soak scripts behind
issue 12 (/work/shared/soak/t4_badinput.py).
"""

CRLF = b"\r\n"
CL_LIST = "Content-Length: 5, 5"  # the case whose forwarded head the report shows


def req(lines, body=b""):
    """A request from its head lines (CRLF-joined, blank line added) and body."""
    return CRLF.join(lines) + CRLF + CRLF + body


def _post(*fields, body=b""):
    return req([b"POST / HTTP/1.1", b"Host: x", *fields], body)


def _get(*fields, target=b"/", version=b"HTTP/1.1", method=b"GET"):
    return req([method + b" " + target + b" " + version, *fields])


_CHUNKED = b"Transfer-Encoding: chunked"
_SMUG_CHUNK = b"5\r\nsmug!\r\n0\r\n\r\n"
_BIG = b"a" * (70 * 1024)

CASES = [
    ("header line 70 KiB", _get(b"Host: x", b"X-Big: " + _BIG), ""),
    ("head 100 KiB in 1000 headers",
     _get(b"Host: x", *[b"X-H%d: %s" % (i, b"v" * 100) for i in range(1000)]), ""),
    ("10,000 small headers", _get(b"Host: x", *[b"X%d: 1" % i for i in range(10000)]), ""),
    ("URI 100 KiB", _get(b"Host: x", target=b"/" + b"u" * 100000), ""),
    ("NUL in header value", _get(b"Host: x", b"X-A: a\x00b"), ""),
    ("NUL in request line", _get(b"Host: x", target=b"/a\x00b"), ""),
    ("bare CR in header value", _get(b"Host: x", b"X-A: a\rb"), ""),
    ("bare CR as line end", b"GET / HTTP/1.1\rHost: x\r\r", ""),
    ("bare LF line ends", b"GET / HTTP/1.1\nHost: x\n\n", ""),
    ("space before colon", _get(b"Host: x", b"X-A : b"), ""),
    ("space in header name", _get(b"Host: x", b"Bad Name: b"), ""),
    ("obs-fold continuation", _get(b"Host: x", b"X-A: b", b" folded"), ""),
    ("invalid method chars G@T", _get(b"Host: x", method=b"G@T"), ""),
    ("version HTTP/2.0", _get(b"Host: x", version=b"HTTP/2.0"), ""),
    ("version HTTP/1.x", _get(b"Host: x", version=b"HTTP/1.x"), ""),
    ("TLS ClientHello bytes", bytes.fromhex("16030100a5010000a10303") + b"\x00" * 160, ""),
    ("missing Host (1.1)", _get(), ""),
    ("two Host headers", _get(b"Host: a", b"Host: b"), ""),
    ("negative Content-Length", _post(b"Content-Length: -5", body=b"hello"), ""),
    ("Content-Length abc", _post(b"Content-Length: abc", body=b"hello"), ""),
    ("Content-Length 2^70", _post(b"Content-Length: 1180591620717411303424", body=b"hello"), ""),
    ("two different Content-Length",
     _post(b"Content-Length: 5", b"Content-Length: 6", body=b"hello!"), ""),
    (CL_LIST, _post(b"Content-Length: 5, 5", body=b"hello"), ""),
    ("Content-Length 5 twice", _post(b"Content-Length: 5", b"Content-Length: 5", body=b"hello"),
     ""),
    ("smuggle CL+TE", _post(b"Content-Length: 44", _CHUNKED,
                            body=b"0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n"), ""),
    ("smuggle TE+CL (TE first)", _post(_CHUNKED, b"Content-Length: 3", body=_SMUG_CHUNK), ""),
    ("TE: xchunked", _post(b"Transfer-Encoding: xchunked", body=_SMUG_CHUNK), ""),
    ("TE: chunked, identity", _post(b"Transfer-Encoding: chunked, identity", body=_SMUG_CHUNK),
     ""),
    ("TE twice (chunked + identity)",
     _post(_CHUNKED, b"Transfer-Encoding: identity", body=_SMUG_CHUNK), ""),
    ("TE with vtab obfuscation", _post(b"Transfer-Encoding:\x0bchunked", body=_SMUG_CHUNK), ""),
    ("TE in HTTP/1.0",
     req([b"POST / HTTP/1.0", b"Host: x", _CHUNKED], _SMUG_CHUNK), ""),
    ("invalid chunk size zz", _post(_CHUNKED, body=b"zz\r\nhello\r\n0\r\n\r\n"), ""),
    ("huge chunk size 20 x F", _post(_CHUNKED, body=b"F" * 20 + b"\r\nhello\r\n0\r\n\r\n"), ""),
    ("chunk size 0x5", _post(_CHUNKED, body=b"0x5\r\nhello\r\n0\r\n\r\n"), ""),
    ("chunk size -5", _post(_CHUNKED, body=b"-5\r\nhello\r\n0\r\n\r\n"), ""),
    ("chunk missing CRLF after data", _post(_CHUNKED, body=b"5\r\nhelloXX0\r\n\r\n"), ""),
    ("chunk extension 100 KiB",
     _post(_CHUNKED, body=b"5;" + b"e" * 100000 + b"\r\nhello\r\n0\r\n\r\n"), ""),
    ("trailers 100 KiB",
     _post(_CHUNKED, body=b"5\r\nhello\r\n0\r\nX-T: " + b"t" * 100000 + b"\r\n\r\n"), ""),
    ("leading empty lines", b"\r\n\r\n" + _get(b"Host: x"), ""),
    ("absolute-form URI", _get(b"Host: x", target=b"http://x/"), ""),
    ("URI without slash", _get(b"Host: x", target=b"foo"), ""),
    ("high-bit bytes in value", _get(b"Host: x", b"X-U: \xc3\xa9\xff"), ""),
    ("half-close after full request", _get(b"Host: x"), "shut"),
    ("half-close mid-head", b"GET / HTTP/1.1\r\nHost: x\r\n", "shut"),
    ("CL body shorter, then half-close", _post(b"Content-Length: 100", body=b"short"), "shut"),
    ("Expect 100-continue, no body",
     _post(b"Expect: 100-continue", b"Content-Length: 10"), "slow-wait"),
]
