/*
 * khttp: a strict HTTP/1.x head parser and message-body decoder (length or chunked).
 *
 * No allocation, no global state: the caller owns every buffer.  Results are
 * offsets into the caller's buffer.  A parse returns 0 (incomplete: call again
 * with more bytes), a negative KHTTP_E_* code, or R_END (> 0) with p->res filled.
 *
 * Contract shared with the pure-Python twin (_native/pure.py):
 *   - the answer is a function of buf[start:len] only; prev_len (the length of
 *     buf[start:] at the previous call that returned 0) only lets the search
 *     for the blank line skip bytes already searched;
 *   - a head that is incomplete reports only a bad method byte, a bare CR and
 *     the limits (line too long, head too large), and a complete head is judged
 *     in that order first, so every split of an input gives either 0 or the
 *     final answer;
 *   - a complete head reports the first error a left-to-right reader meets:
 *     limits, start line, then each header line (syntax, then its value's
 *     meaning), then whole-head framing rules.
 * Everything between the CDEF markers is also read by build.py as the cffi cdef.
 */
#ifndef KHTTP_H
#define KHTTP_H

#include <stddef.h>
#include <stdint.h>

/* CDEF BEGIN */
/* Result slots (p->res); the first KHTTP_NHOT are what the proxy reads for
 * every message. constants.py names them R_*. */
#define KHTTP_R_END 0
#define KHTTP_R_FLAGS 1
#define KHTTP_R_VERSION 2
#define KHTTP_R_METHOD 3
#define KHTTP_R_STATUS 4
#define KHTTP_R_BODY 5
#define KHTTP_R_BODY_LEN 6
#define KHTTP_R_PERSIST 7
#define KHTTP_R_VERDICT 8
#define KHTTP_R_METHOD_OFF 9
#define KHTTP_R_METHOD_LEN 10
#define KHTTP_R_TARGET_OFF 11
#define KHTTP_R_TARGET_LEN 12
#define KHTTP_R_REASON_OFF 13
#define KHTTP_R_REASON_LEN 14
#define KHTTP_R_CONTENT_LENGTH 15
#define KHTTP_R_NHEADERS 16
#define KHTTP_R_HOST_COUNT 17
#define KHTTP_R_CONN_OTHER_COUNT 18
#define KHTTP_R_RESERVED 19
#define KHTTP_NRES 20
#define KHTTP_NHOT 10

/* How a message body ends (res[KHTTP_R_BODY]). */
#define KHTTP_B_NONE 0
#define KHTTP_B_LENGTH 1
#define KHTTP_B_CHUNKED 2
#define KHTTP_B_CLOSE 3

#define KHTTP_E_METHOD -1
#define KHTTP_E_TARGET -2
#define KHTTP_E_VERSION -3
#define KHTTP_E_HEADER_NAME -4
#define KHTTP_E_SPACE_BEFORE_COLON -5
#define KHTTP_E_NO_COLON -6
#define KHTTP_E_HEADER_VALUE -7
#define KHTTP_E_OBS_FOLD -8
#define KHTTP_E_BARE_LF -9
#define KHTTP_E_BARE_CR -10
#define KHTTP_E_CONTENT_LENGTH -11
#define KHTTP_E_CL_CONFLICT -12
#define KHTTP_E_CL_TE -13
#define KHTTP_E_TE -14
#define KHTTP_E_TE_HTTP10 -15
#define KHTTP_E_LINE_TOO_LONG -16
#define KHTTP_E_HEAD_TOO_LARGE -17
#define KHTTP_E_TOO_MANY_HEADERS -18
#define KHTTP_E_STATUS_LINE -19
#define KHTTP_E_VERSION_UNSUPPORTED -20
#define KHTTP_E_CHUNK_SIZE -21
#define KHTTP_E_CHUNK_CRLF -22
#define KHTTP_E_CHUNK_EXT -23
#define KHTTP_E_TRAILER -24
#define KHTTP_E_CHUNK_LINE_TOO_LONG -25

#define KHTTP_F_CHUNKED 1
#define KHTTP_F_TE 2
#define KHTTP_F_CL 4
#define KHTTP_F_CONN_CLOSE 8
#define KHTTP_F_CONN_KEEPALIVE 16
#define KHTTP_F_CONN_UPGRADE 32
#define KHTTP_F_CONN_OTHER 64
#define KHTTP_F_HOP 128
#define KHTTP_F_EXPECT_CONTINUE 256
#define KHTTP_F_UPGRADE 512
#define KHTTP_F_AUTH_CONN 1024
#define KHTTP_F_PROXY_CONN 2048
#define KHTTP_F_KEEPALIVE_HDR 4096
#define KHTTP_F_NORMALIZE 8192   /* the request line is rewritten: HTTP/1.x>1, default port */

typedef struct khttp_parser {
    int64_t res[KHTTP_NRES]; /* R_* results of the last successful parse */
    int64_t *hdrs;        /* caller's array, 4 per header: name start, name end, value start, value end */
    int64_t max_headers;  /* capacity of hdrs, in headers */
    int64_t max_head;     /* bytes from start to the end of the blank line */
    int64_t max_line;     /* start line, CRLF included */
    int64_t nheaders;     /* headers of the last successful parse, 0 otherwise */
    int64_t line_off;     /* its start line (after skipped empty lines) */
    int64_t end;          /* its R_END; 0 when the last parse did not succeed */
    char *out;            /* caller's buffer for khttp_rewrite */
    int64_t out_cap;
} khttp_parser;

int64_t khttp_parse_request(khttp_parser *p, const char *buf, size_t len,
                            size_t start, size_t prev_len);
int64_t khttp_parse_response(khttp_parser *p, const char *buf, size_t len,
                             size_t start, size_t prev_len);
/* Start line + end-to-end header lines of the last parse into out; its length, or -1. */
int64_t khttp_strip_hop(const khttp_parser *p, const char *buf, size_t len,
                        int keep_upgrade, char *out, size_t out_cap);
/* strip_hop, then `tail` (the caller's own header lines and the empty line), then
 * buf[end of head .. len): the bytes to forward, in one copy into p->out; its
 * length, or -1 (p->out too small). Few arguments: it is called per response. */
int64_t khttp_rewrite(const khttp_parser *p, const char *buf, size_t len,
                      int keep_upgrade, const char *tail, size_t tail_len);

/* The last parse's headers as "name\0value\0name\0value..." into out (names and
 * values never contain NUL), for one bytes.split() in Python; its length, or -1. */
int64_t khttp_headers_join(const khttp_parser *p, const char *buf, size_t len,
                           char *out, size_t out_cap);

/* One message body, framed by its length or chunked (RFC 9112 §6.3, §7.1): a decoder
 * per connection side, started anew for each message. Nothing is buffered: any split
 * of the input gives the same answer, and feed never consumes past the body's end, so
 * the caller knows where the next message begins. */
typedef struct khttp_body {
    int64_t size;         /* length mode: body bytes left; chunked: the chunk size being
                           * read, then the data bytes left in the chunk */
    int64_t line_len;     /* bytes of the current chunk-size line */
    int64_t trailer_len;  /* bytes of the trailer section so far */
    int64_t max_line;     /* chunked limits (length mode has none) */
    int64_t max_trailers;
    int64_t nspans;       /* data spans written by the last feed */
    int32_t state;
    int32_t error;        /* sticky: once set, every feed returns it until the next start */
} khttp_body;

/* Set the chunked limits, then start_chunked. */
void khttp_body_init(khttp_body *d, int64_t max_line, int64_t max_trailers);
/* The next message's body is `length` bytes (Content-Length): 0 is done at once; a
 * negative length is a sticky KHTTP_E_CONTENT_LENGTH. */
void khttp_body_start_length(khttp_body *d, int64_t length);
/* The next message's body is chunked. */
void khttp_body_start_chunked(khttp_body *d);
/* Consume body bytes from buf[start:len]; bytes consumed (0 when start >= len or the
 * body is done) or KHTTP_E_* (chunked framing errors). When spans is not NULL, records
 * (offset, length) pairs of body data, at most max_spans of them, and stops early
 * rather than overflow: in chunked mode the chunk data without the framing, in length
 * mode the one span consumed. */
int64_t khttp_body_feed(khttp_body *d, const char *buf, size_t len, size_t start,
                        int64_t *spans, size_t max_spans);
/* khttp_body_feed without spans, the form the proxy calls per received piece: one
 * call says both how much was body and whether the body is complete, as bytes consumed
 * plus KHTTP_BODY_DONE when it is (consumed is below it: a buffer is smaller), or
 * KHTTP_E_*. A second call for the done flag costs as much as the feed from Python. */
#define KHTTP_BODY_DONE 0x4000000000000000
int64_t khttp_body_take(khttp_body *d, const char *buf, size_t len, size_t start);
int khttp_body_done(const khttp_body *d);
/* CDEF END */

#endif
