"""The termination state of a stream (HAProxy's ``%ts``/``%tsc``): who ended it, and when.

Sans-IO: the stream records *what* ended it (a cause) and *where* it was (a
phase); this module turns that into HAProxy's letters, so operators who grep
for ``SD`` or ``cR`` find the same streams as on HAProxy (configuration
manual 8.5).

First character, the cause (``CAUSES``)::

    -   the stream ended normally
    C   the client aborted (closed or reset its connection)
    S   the server aborted, refused the connection, or sent an invalid reply;
        also "no server available" (a backend without a usable server)
    P   the proxy cut it: a deny/tarpit rule, a bad request, a response rule,
        an internal limit on the request
    L   the proxy answered locally (a redirect, ``http-request return``,
        ``monitor-uri``, the stats page)
    R   a resource ran out (memory, sockets, file descriptors, ports)
    I   an internal error (a bug): should never be seen
    D   the server went DOWN and the stream was killed (on-marked-down)
    U   a backup server came UP and the stream was killed (on-marked-up)
    K   killed by the administrator (``shutdown session``)
    c   the client timed out (``timeout client``, ``timeout http-request``)
    s   the server timed out (``timeout server``, ``timeout connect``,
        ``timeout queue``)

Second character, the phase (``PHASES``)::

    -   the stream had ended normally (only with cause '-')
    R   waiting for the client's request (or rejected on it, before a server)
    Q   waiting in a queue for a server slot
    C   waiting for the connection to the server
    H   waiting for the server's response headers, or processing them
    D   transferring the body
    L   the proxy was sending the last data to the client (the server was done)
    T   the request was tarpitted

Cases recorded from HAProxy 2.6.12 (tests/fixtures/haproxy_httplog.json):
a normal end ``--``; ``http-request deny`` ``PR``; a malformed request
``PR``; a backend without servers ``SC``; ``timeout server`` before the
response headers ``sH``; the client resetting during the body ``CD``.
The others follow the manual's section 8.5.

The third and fourth characters of ``%tsc`` are the persistence cookie's
states; keepwarm has no cookie persistence yet, so they are ``--`` as in
HAProxy for a backend without ``cookie``.
"""

from __future__ import annotations

from typing import Optional

CAUSES = {
    None: "-", "client_abort": "C", "server_abort": "S", "proxy": "P", "local": "L",
    "resource": "R", "internal": "I", "down": "D", "up": "U", "killed": "K",
    "client_timeout": "c", "server_timeout": "s",
}
PHASES = {
    None: "-", "request": "R", "queue": "Q", "connect": "C", "headers": "H", "data": "D",
    "last": "L", "tarpit": "T",
}

# Named ways a stream ends -> (cause, phase): what the wiring reports.
EVENTS = {
    "normal": (None, None),
    "client_abort_request": ("client_abort", "request"),     # CR: closed mid-request
    "client_timeout_request": ("client_timeout", "request"),  # cR: 408
    "bad_request": ("proxy", "request"),                      # PR: 400
    "denied": ("proxy", "request"),                           # PR: http-request deny
    "tarpit": ("proxy", "tarpit"),                            # PT
    "redirect": ("local", "request"),                         # LR
    "local_reply": ("local", "request"),                      # LR: return, monitor-uri
    "queue_timeout": ("server_timeout", "queue"),             # sQ: 503
    "client_abort_queue": ("client_abort", "queue"),          # CQ
    "no_server": ("server_abort", "connect"),                 # SC: 503, no server
    "connect_refused": ("server_abort", "connect"),           # SC: 503
    "connect_timeout": ("server_timeout", "connect"),         # sC: 503
    "client_abort_connect": ("client_abort", "connect"),      # CC
    "server_timeout_headers": ("server_timeout", "headers"),  # sH: 504
    "server_abort_headers": ("server_abort", "headers"),      # SH: 502
    "bad_response": ("proxy", "headers"),                     # PH: 502
    "response_denied": ("proxy", "headers"),                  # PH: http-response deny
    "client_abort_headers": ("client_abort", "headers"),      # CH
    "client_abort_data": ("client_abort", "data"),            # CD
    "client_timeout_data": ("client_timeout", "data"),        # cD
    "server_abort_data": ("server_abort", "data"),            # SD
    "server_timeout_data": ("server_timeout", "data"),        # sD
    "client_timeout_last": ("client_timeout", "last"),        # cL
    "client_abort_last": ("client_abort", "last"),            # CL
    "server_down": ("down", "data"),                          # DD
    "killed": ("killed", "data"),                             # KD
}


def state(cause: Optional[str], phase: Optional[str]) -> str:
    """``%ts``: the two letters for a cause and a phase (names of CAUSES/PHASES).

    A normal end (no cause) is ``--`` whatever the phase, as HAProxy logs it.
    """
    try:
        first = CAUSES[cause]
        second = PHASES[phase] if cause is not None else "-"
    except KeyError as exc:
        raise ValueError("unknown termination cause or phase: %s" % exc) from None
    return first + second


def state_of(event: str) -> str:
    """``%ts`` for one of the named EVENTS."""
    cause, phase = EVENTS[event]
    return state(cause, phase)


def with_cookies(ts: str, cookie: str = "-", set_cookie: str = "-") -> str:
    """``%tsc``: ``%ts`` plus the persistence cookie's two states ('-': none)."""
    return ts + cookie + set_cookie
