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
