"""`errorfile CODE FILE`: a whole HTTP response keepwarm sends instead of its own page.

As HAProxy does, each file is read when the configuration is (so it is still
sent after a chroot, and a change to it needs a reload), checked to be a
valid HTTP/1 response that fits a buffer, and kept as the bytes HAProxy 2.6
puts on the wire for it (status line and body as written, header names in
lower case, no hop-by-hop headers); the connection closes after it.
An empty file (Debian's `errorfile 408 /dev/null`) means: close without a
response.
"""

from __future__ import annotations

import os
from typing import Optional

from _native.constants import B_CHUNKED, B_LENGTH, ERROR_NAMES, R_BODY, R_BODY_LEN, R_END
from _native.pure import Parser

# The statuses HAProxy 2.6 generates itself, so the ones an errorfile can replace.
CODES = frozenset((200, 400, 401, 403, 404, 405, 407, 408, 410, 413, 425, 429,
                   500, 501, 502, 503, 504))


class ErrorfileError(ValueError):
    pass


def read_errorfile(path: str, limit: int) -> bytes:
    """The response in `path`, checked; raise ErrorfileError saying what is wrong."""
    try:
        with open(path, "rb") as f:
            data = f.read(limit + 1)
    except OSError as exc:
        raise ErrorfileError("cannot read error file '%s': %s"
                             % (path, exc.strerror or exc)) from None
    if not data:
        return data
    if len(data) > limit:
        raise ErrorfileError("error file '%s' is larger than a buffer (%d bytes, "
                             "tune.bufsize - tune.maxrewrite)" % (path, limit))
    problem = response_problem(data)
    if problem:
        raise ErrorfileError("error file '%s' is not a valid HTTP response: %s"
                             % (path, problem))
    return as_sent(data)


HOP_BY_HOP = frozenset((b"connection", b"keep-alive", b"proxy-connection", b"te",
                        b"trailer", b"upgrade"))


def as_sent(data: bytes) -> bytes:
    """The response as HAProxy 2.6 sends an errorfile (seen on the wire): the status
    line as written, header names in lower case, hop-by-hop headers dropped (the
    connection closes after it anyway), the body as written."""
    parser = Parser()
    r = parser.parse_response(data)
    end = r[R_END]
    status_line = data[:data.index(b"\r\n")]
    lines = [status_line]
    for name, value in parser.headers(data):
        if name.lower() not in HOP_BY_HOP:
            lines.append(name.lower() + b": " + value)
    return b"\r\n".join(lines) + b"\r\n\r\n" + data[end:]


def response_problem(data: bytes) -> Optional[str]:
    """What makes `data` unfit to be sent as a whole HTTP/1 response (None: nothing)."""
    r = Parser().parse_response(data)
    if isinstance(r, int):
        if r == 0:
            return "the head does not end with an empty line (CRLF CRLF)"
        return ERROR_NAMES.get(r, "unparsable head")
    end, kind = r[R_END], r[R_BODY]
    body = len(data) - end
    if kind == B_LENGTH and body != r[R_BODY_LEN]:
        return ("Content-Length says %d body bytes, the file has %d after the head"
                % (r[R_BODY_LEN], body))
    if kind == B_CHUNKED:
        return "a chunked body cannot be sent verbatim; give a Content-Length"
    return None


def resolve(path: str, base: Optional[str]) -> str:
    """A relative path is relative to the directory keepwarm was started in (HAProxy's
    default), or to `base` when given."""
    if base and not os.path.isabs(path):
        return os.path.join(base, path)
    return path


# ------------------------------------------------------------------ http-error

REASONS = {200: b"OK", 400: b"Bad Request", 401: b"Unauthorized", 403: b"Forbidden",
           404: b"Not Found", 405: b"Method Not Allowed",
           407: b"Proxy Authentication Required", 408: b"Request Timeout", 410: b"Gone",
           413: b"Payload Too Large", 425: b"Too Early", 429: b"Too Many Requests",
           500: b"Internal Server Error", 501: b"Not Implemented", 502: b"Bad Gateway",
           503: b"Service Unavailable", 504: b"Gateway Timeout"}


def reply_page(status: int, ctype: Optional[bytes], body: bytes, headers=()) -> bytes:
    """An `http-error` reply as HAProxy 2.6.12 sends it (measured): the status line,
    the `hdr` headers (names in lower case), content-length, then content-type."""
    head = b"HTTP/1.1 %d %s\r\n" % (status, REASONS[status])
    head += b"".join(b"%s: %s\r\n" % (n.lower(), v) for n, v in headers)
    head += b"content-length: %d\r\n" % len(body)
    if body:
        head += b"content-type: %s\r\n" % ctype
    return head + b"\r\n" + body


class HttpError:
    """What an `http-error status N ...` line says: `page` (a whole response), `reset`
    (default-errorfiles: forget the proxy's page for N) or `group` (errorfiles NAME:
    take N from that http-errors section, once the file is read)."""

    def __init__(self, status, page=None, reset=False, group=None):
        self.status, self.page, self.reset, self.group = status, page, reset, group


def parse_http_error(args, limit: int, warn) -> HttpError:
    """`http-error status N [content-type T] [default-errorfiles | errorfile F |
    errorfiles NAME | file F | string S] [hdr NAME VALUE]*`; raise ErrorfileError."""
    if len(args) < 2 or args[0] != "status":
        raise ErrorfileError("'http-error' expects at least 'status <code>' as arguments")
    if not args[1].isdigit() or int(args[1]) not in CODES:
        raise ErrorfileError("http-error: status code '%s' not handled" % args[1])
    status = int(args[1])
    ctype, source, headers = None, None, []
    i = 2
    while i < len(args):
        opt = args[i]
        if opt == "default-errorfiles":
            source, i = (opt, None), i + 1
            continue
        if i + 1 >= len(args):
            raise ErrorfileError("http-error: '%s' expects an argument" % opt)
        val = args[i + 1]
        if opt == "content-type":
            ctype = val.encode()
        elif opt in ("errorfile", "errorfiles", "file", "string"):
            if source is not None:
                raise ErrorfileError("http-error: '%s' and '%s' cannot be used together"
                                     % (source[0], opt))
            source = (opt, val)
        elif opt == "hdr":
            if i + 2 >= len(args):
                raise ErrorfileError("http-error: 'hdr' expects a name and a value")
            if "%" in args[i + 2]:
                raise ErrorfileError("http-error: a log-format 'hdr' value is not supported "
                                     "by keepwarm (yet)")
            headers.append((val.encode(), args[i + 2].encode()))
            i += 1
        elif opt in ("lf-file", "lf-string"):
            raise ErrorfileError("http-error: '%s' is not supported by keepwarm (yet)" % opt)
        else:
            raise ErrorfileError("http-error: unknown argument '%s'" % opt)
        i += 2
    kind, val = source or (None, None)
    if kind == "default-errorfiles":
        return HttpError(status, reset=True)
    if kind == "errorfiles":
        return HttpError(status, group=val)
    if kind == "errorfile":
        return HttpError(status, page=read_errorfile(val, limit))
    body = val.encode() if kind == "string" else b""
    if kind == "file":
        try:
            with open(val, "rb") as f:
                body = f.read(limit + 1)
        except OSError as exc:
            raise ErrorfileError("http-error: cannot read file '%s': %s"
                                 % (val, exc.strerror or exc)) from None
    if body and ctype is None:
        raise ErrorfileError("http-error: a content type must be defined when a non-empty "
                             "payload is configured")
    if not body and ctype is not None:
        warn("content-type '%s' ignored by the http reply because neither errorfile nor "
             "payload defined" % ctype.decode())
    page = reply_page(status, ctype, body, headers)
    if len(page) > limit:
        raise ErrorfileError("http-error: the reply is larger than a buffer (%d bytes, "
                             "tune.bufsize - tune.maxrewrite)" % limit)
    return HttpError(status, page=page)
