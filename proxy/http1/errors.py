"""The small HTML error responses keepwarm sends on its own behalf, prebuilt as bytes.

Each status has two forms: one that closes the client connection and one that
keeps it (used only when the request was read completely, so the next request
on the connection still starts at a known byte).
"""

# The texts are the ones HAProxy 2.6 sends (measured: tests/corpus/06-error-pages.cfg),
# so that pages and monitoring that match on them keep working; the reason phrases
# are RFC 9110's where HAProxy's differ ("Bad request", "Request Time-out",
# "Gateway Time-out", 407 "Unauthorized"): docs/configuration.md §7.
REASONS = {
    400: ("Bad Request", "Your browser sent an invalid request."),
    401: ("Unauthorized", "You need a valid user and password to access this content."),
    403: ("Forbidden", "Request forbidden by administrative rules."),
    404: ("Not Found", "The resource could not be found."),
    405: ("Method Not Allowed", "A request was made of a resource using a request method "
                                "not supported by that resource"),
    407: ("Proxy Authentication Required",
          "You need a valid user and password to access this content."),
    408: ("Request Timeout", "Your browser didn't send a complete request in time."),
    410: ("Gone", "The resource is no longer available and will not be available again."),
    413: ("Payload Too Large", "The request entity exceeds the maximum allowed."),
    414: ("URI Too Long", "The request line is too long."),
    425: ("Too Early", "Your browser sent early data."),
    429: ("Too Many Requests", "You have sent too many requests in a given amount of time."),
    431: ("Request Header Fields Too Large", "The request header section is too large."),
    500: ("Internal Server Error", "An internal server error occurred."),
    501: ("Not Implemented", "The server does not support the functionality required to "
                             "fulfill the request."),
    502: ("Bad Gateway", "The server returned an invalid or incomplete response."),
    503: ("Service Unavailable", "No server is available to handle this request."),
    504: ("Gateway Timeout", "The server didn't respond in time."),
    505: ("HTTP Version Not Supported", "The HTTP version of the request is not supported."),
}

# Statuses after which the connection cannot be trusted: the request itself was
# malformed or incomplete, so we cannot know where the next one would start.
ALWAYS_CLOSE = frozenset((400, 408, 413, 414, 431, 501, 505))


def _build(status, close):
    reason, text = REASONS[status]
    body = ("<html><body><h1>%d %s</h1>\n%s\n</body></html>\n" % (status, reason, text)).encode()
    head = ("HTTP/1.1 %d %s\r\ncontent-length: %d\r\ncache-control: no-cache\r\n"
            "content-type: text/html\r\n" % (status, reason, len(body)))
    if close:
        head += "connection: close\r\n"
    return head.encode() + b"\r\n" + body


ERROR_CLOSE = {status: _build(status, True) for status in REASONS}
ERROR_KEEP = {status: _build(status, False) for status in REASONS}


def error_response(status, close=True):
    """Return the bytes of keepwarm's own response for `status`."""
    if close or status in ALWAYS_CLOSE:
        return ERROR_CLOSE[status]
    return ERROR_KEEP[status]

