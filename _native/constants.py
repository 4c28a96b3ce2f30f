"""Result indexes, flags, method codes and error codes shared by both head parsers.

The numbers mirror the #defines in khttp.h; tests check that they agree.
"""

# Indexes into the list of NRESULTS ints a successful parse returns. The first
# NHOT are what the proxy reads for every message: Parser.result() gives those.
R_END = 0                # absolute offset just after the blank line that ends the head
R_FLAGS = 1              # F_* bits
R_VERSION = 2            # 10 or 11
R_METHOD = 3             # M_* code (0 for responses)
R_STATUS = 4             # responses; 0 for requests
R_BODY = 5               # B_*: how the body ends (a response's as if its request was not HEAD)
R_BODY_LEN = 6           # body bytes for B_LENGTH; 0 for B_NONE; -1 otherwise
R_PERSIST = 7            # 1: the connection may carry another message after this one
R_VERDICT = 8            # requests: 0, or the status to refuse the request with
R_METHOD_OFF = 9
NHOT = 10
R_METHOD_LEN = 10
R_TARGET_OFF = 11
R_TARGET_LEN = 12
R_REASON_OFF = 13
R_REASON_LEN = 14
R_CONTENT_LENGTH = 15    # -1 when absent
R_NHEADERS = 16
R_HOST_COUNT = 17
R_CONN_OTHER_COUNT = 18  # Connection tokens other than close / keep-alive / upgrade
R_RESERVED = 19
NRESULTS = 20

# R_BODY: how a message body ends (RFC 9112 §6.3).
B_NONE = 0               # no body at all
B_LENGTH = 1             # Content-Length bytes
B_CHUNKED = 2            # chunked transfer coding, ends with the last chunk and trailers
B_CLOSE = 3              # until the server closes (responses only)

# BodyDecoder.feed_rc() adds this to the bytes consumed when the body is complete
# (KHTTP_BODY_DONE); consumed is always below it.
BODY_DONE = 1 << 62

# Method codes (case-sensitive: "get" is M_OTHER, RFC 9110 §9.1).
M_GET = 1
M_HEAD = 2
M_POST = 3
M_PUT = 4
M_DELETE = 5
M_OPTIONS = 6
M_TRACE = 7
M_CONNECT = 8
M_PATCH = 9
M_OTHER = 15

METHOD_CODES = {
    b"GET": M_GET, b"HEAD": M_HEAD, b"POST": M_POST, b"PUT": M_PUT,
    b"DELETE": M_DELETE, b"OPTIONS": M_OPTIONS, b"TRACE": M_TRACE,
    b"CONNECT": M_CONNECT, b"PATCH": M_PATCH,
}

# R_FLAGS bits: framing facts recorded during the scan (HAProxy h1.c habit).
F_CHUNKED = 1            # Transfer-Encoding present and its last coding is chunked
F_TE = 2                 # Transfer-Encoding present
F_CL = 4                 # Content-Length present
F_CONN_CLOSE = 8         # Connection: close
F_CONN_KEEPALIVE = 16    # Connection: keep-alive
F_CONN_UPGRADE = 32      # Connection: upgrade
F_CONN_OTHER = 64        # Connection lists another token
F_HOP = 128              # a hop-by-hop header is present: rewrite the head before forwarding
F_EXPECT_CONTINUE = 256  # Expect: 100-continue
F_UPGRADE = 512          # Upgrade header present
F_AUTH_CONN = 1024       # NTLM / Negotiate authentication: the connection is bound to the client
F_PROXY_CONN = 2048      # Proxy-Connection present (not interpreted, only stripped)
F_KEEPALIVE_HDR = 4096   # Keep-Alive header present (a server's timeout=/max= hint)
F_NORMALIZE = 8192       # requests: the request line is forwarded rewritten (HTTP/1.x with x > 1
                         # as HTTP/1.1; an absolute-form target without its scheme's default
                         # port); always with F_HOP, which sends the head through strip_hop

# Error codes (negative return values).
E_METHOD = -1
E_TARGET = -2
E_VERSION = -3
E_HEADER_NAME = -4
E_SPACE_BEFORE_COLON = -5
E_NO_COLON = -6
E_HEADER_VALUE = -7
E_OBS_FOLD = -8
E_BARE_LF = -9
E_BARE_CR = -10
E_CONTENT_LENGTH = -11
E_CL_CONFLICT = -12
E_CL_TE = -13
E_TE = -14
E_TE_HTTP10 = -15
E_LINE_TOO_LONG = -16
E_HEAD_TOO_LARGE = -17
E_TOO_MANY_HEADERS = -18
E_STATUS_LINE = -19
E_VERSION_UNSUPPORTED = -20
E_CHUNK_SIZE = -21
E_CHUNK_CRLF = -22
E_CHUNK_EXT = -23
E_TRAILER = -24
E_CHUNK_LINE_TOO_LONG = -25

ERROR_NAMES = {
    E_METHOD: "invalid method",
    E_TARGET: "invalid request target",
    E_VERSION: "malformed HTTP version",
    E_HEADER_NAME: "invalid header name",
    E_SPACE_BEFORE_COLON: "whitespace between header name and colon",
    E_NO_COLON: "header line without colon",
    E_HEADER_VALUE: "control character in header value",
    E_OBS_FOLD: "obsolete line folding",
    E_BARE_LF: "bare LF line ending",
    E_BARE_CR: "bare CR",
    E_CONTENT_LENGTH: "invalid Content-Length",
    E_CL_CONFLICT: "conflicting Content-Length values",
    E_CL_TE: "both Content-Length and Transfer-Encoding",
    E_TE: "invalid Transfer-Encoding",
    E_TE_HTTP10: "Transfer-Encoding in an HTTP/1.0 request",
    E_LINE_TOO_LONG: "request line too long",
    E_HEAD_TOO_LARGE: "header section too large",
    E_TOO_MANY_HEADERS: "too many header fields",
    E_STATUS_LINE: "invalid status line",
    E_VERSION_UNSUPPORTED: "HTTP version not supported",
    E_CHUNK_SIZE: "invalid chunk size",
    E_CHUNK_CRLF: "missing CRLF in chunked framing",
    E_CHUNK_EXT: "invalid chunk extension",
    E_TRAILER: "invalid trailer section",
    E_CHUNK_LINE_TOO_LONG: "chunk size line too long",
}

# The status a server-side proxy answers a client for each request error
# (response errors become 502 in the proxy, whatever the code).
ERROR_STATUS = {code: 400 for code in ERROR_NAMES}
ERROR_STATUS[E_LINE_TOO_LONG] = 414       # RFC 9112 §3: request-line longer than the server allows
ERROR_STATUS[E_HEAD_TOO_LARGE] = 431      # RFC 6585 §5
ERROR_STATUS[E_TOO_MANY_HEADERS] = 431
ERROR_STATUS[E_VERSION_UNSUPPORTED] = 505  # RFC 9110 §15.6.6
