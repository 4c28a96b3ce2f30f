"""Message framing, connection persistence and reuse decisions (RFC 9110/9112), as pure functions.

Every function takes the parser's result list (see `_native.constants`, R_*) and
returns a decision; nothing here touches a socket, so each rule is tested alone.
"""

from _native.constants import (
    B_CHUNKED, B_CLOSE, B_LENGTH, B_NONE,
    F_CONN_CLOSE, F_CONN_KEEPALIVE, F_AUTH_CONN,
    M_GET, M_HEAD, M_PUT, M_DELETE, M_OPTIONS, M_TRACE,
    R_BODY, R_BODY_LEN, R_FLAGS, R_PERSIST, R_VERDICT, R_VERSION,
)

# How a message body ends (the parser's R_BODY).
BODY_NONE = B_NONE         # no body at all
BODY_LENGTH = B_LENGTH     # Content-Length bytes
BODY_CHUNKED = B_CHUNKED   # chunked transfer coding, ends with the last chunk and trailers
BODY_CLOSE = B_CLOSE       # read until the server closes (responses only)

# RFC 9110 §9.2.2: methods whose repetition has the same effect as one request.
IDEMPOTENT = frozenset((M_GET, M_HEAD, M_PUT, M_DELETE, M_OPTIONS, M_TRACE))

# `http-reuse` modes, as HAProxy names them.
REUSE_NEVER, REUSE_SAFE, REUSE_AGGRESSIVE, REUSE_ALWAYS = "never", "safe", "aggressive", "always"


def classify_request(r):
    """Everything the proxy decides from a request head: (status, body kind, body
    length, keep-alive).

      status     -- 0 if the request may be forwarded, else the HTTP status it
                    deserves (400: RFC 9112 §3.2's Host rules; 501: CONNECT);
      kind, len  -- RFC 9112 §6.3 for requests: chunked, Content-Length, or no body;
      keep-alive -- RFC 9112 §9.3: HTTP/1.1 persists unless "close" is listed,
                    HTTP/1.0 only with "keep-alive".

    The parser decides all four in its pass over the head (khttp.c `framing()`,
    the same in pure.py) and the session reads them straight from `r`; this is
    the readable form, for tools and tests.
    """
    return r[R_VERDICT], r[R_BODY], r[R_BODY_LEN], r[R_PERSIST] == 1


def classify_response(r, request_method):
    """(body kind, body length, keep-alive) of a response, given its request's method code.

    RFC 9112 §6.3: (1) HEAD responses, 1xx, 204 and 304 never carry a body,
    whatever they say; (4) Transfer-Encoding with chunked last is chunked, any
    other coding runs until close; then Content-Length; (8) with no framing at
    all the body runs until the server closes, which also ends persistence.
    The parser decides all but the HEAD rule (it does not know the request).
    """
    if request_method == M_HEAD:
        return BODY_NONE, 0, persists(r)
    return r[R_BODY], r[R_BODY_LEN], r[R_PERSIST] == 1


def persists(r):
    """RFC 9112 §9.3 from the Connection header and the version alone."""
    flags = r[R_FLAGS]
    if flags & F_CONN_CLOSE:
        return False
    return r[R_VERSION] == 11 or bool(flags & F_CONN_KEEPALIVE)


def is_replayable(method, body_kind, body_complete_in_hand):
    """May this request be sent again on another connection if the first one dies silently?

    keepwarm's rule (DESIGN.md §2): idempotent method, and either no body or the
    whole body still held in memory.
    """
    return method in IDEMPOTENT and (body_kind == BODY_NONE or body_complete_in_hand)


def connection_is_private(r):
    """NTLM/Negotiate authenticate the connection, not the request: never share it."""
    return bool(r[R_FLAGS] & F_AUTH_CONN)


# What a request may take from the idle pool.
REUSE_NONE = 0       # nothing: open a new connection
REUSE_PROVEN = 1     # only a connection that already carried a complete exchange
REUSE_ANY = 2        # any idle connection, warm (never used) ones included


def reuse_scope(mode, first_request, replayable):
    """Which idle connections may this request take? HAProxy's `http-reuse` table,
    with keepwarm's replay rule (DESIGN.md §2):

      never      -- none (a session still keeps its own connection between its requests);
      safe       -- later requests of a session: any; a first request: any if it is
                    replayable (a connection found dead before any response byte is
                    replayed on a fresh one), else none;
      aggressive -- as safe, and a non-replayable first request may use a proven one;
      always     -- any request, any idle connection.

    Warm connections (`pool-warm-conn`) have carried nothing yet, so they are
    "any" but not "proven".
    """
    if mode == REUSE_SAFE:
        return REUSE_ANY if (not first_request or replayable) else REUSE_NONE
    if mode == REUSE_ALWAYS:
        return REUSE_ANY
    if mode == REUSE_AGGRESSIVE:
        return REUSE_ANY if (not first_request or replayable) else REUSE_PROVEN
    return REUSE_NONE


def status_class(status):
    """Index of the hrsp_* counter: 1..5 for 1xx..5xx, 0 for anything else."""
    c = status // 100
    return c if 1 <= c <= 5 else 0


# status_class for every three-digit status, as one index on the hot path.
STATUS_CLASS = tuple(status_class(s) for s in range(1000))


def websocket_handshake_ok(headers, response):
    """A WebSocket handshake (Upgrade: websocket) is only valid with its key: a
    request carries Sec-WebSocket-Key of 24 characters (RFC 6455 §4.1: 16 bytes,
    base64), a 101 response Sec-WebSocket-Accept (§4.2.2). HAProxy 2.6 refuses a
    request without it (400) and a response without it (502); the accept value is
    checked by the client (HAProxy checks it only for keys it made itself).
    Other upgrades (h2c, ...) are not looked at. `headers`: (name, value) pairs."""
    websocket = False
    key = None
    want = b"sec-websocket-accept" if response else b"sec-websocket-key"
    for name, value in headers:
        lname = name.lower()
        if lname == b"upgrade" and b"websocket" in value.lower():
            websocket = True
        elif lname == want and key is None:
            key = value.strip()
    if not websocket:
        return True
    return key is not None and (response or len(key) == 24)


def keepalive_hint(value):
    """Parse a server's `Keep-Alive: timeout=N, max=M` (RFC 2068 §19.7.1, still sent by
    Apache and others): (timeout seconds or None, max requests or None). Unknown or
    malformed parameters are ignored, as the header is only advice."""
    timeout = maximum = None
    for part in value.split(b","):
        name, _, num = part.partition(b"=")
        name = name.strip().lower()
        num = num.strip()
        if not num.isdigit() or len(num) > 9:
            continue
        if name == b"timeout":
            timeout = int(num)
        elif name == b"max":
            maximum = int(num)
    return timeout, maximum


def idle_limit_from_hint(limit, hint_timeout):
    """How long an idle connection may be kept, given our own limit and the server's hint.

    Close a safety margin before the server would (a second, or half the hint when it
    is short), so that the server's close and our next request rarely cross.
    """
    if hint_timeout is None:
        return limit
    margin = 1.0 if hint_timeout >= 2 else hint_timeout / 2.0
    return min(limit, hint_timeout - margin)
