/*
 * khttp.c: strict HTTP/1.x head parser and message-body decoder (see khttp.h).
 *
 * Every rule has its twin in _native/pure.py, in the same order; the two must
 * give the same answer for every input (tests/test_parser_differential.py).
 *
 * Bounds: a complete head ends with an LF at end-1, and every scanning loop
 * below stops at LF (LF is in none of the byte classes), so no read goes past
 * the LF that ends the line being scanned.
 */
#include <string.h>

#include "khttp.h"

/* Short names for the result slots and body kinds of khttp.h. */
enum {
    R_END = KHTTP_R_END,
    R_FLAGS = KHTTP_R_FLAGS,
    R_VERSION = KHTTP_R_VERSION,
    R_METHOD = KHTTP_R_METHOD,
    R_STATUS = KHTTP_R_STATUS,
    R_BODY = KHTTP_R_BODY,
    R_BODY_LEN = KHTTP_R_BODY_LEN,
    R_PERSIST = KHTTP_R_PERSIST,
    R_VERDICT = KHTTP_R_VERDICT,
    R_METHOD_OFF = KHTTP_R_METHOD_OFF,
    R_METHOD_LEN = KHTTP_R_METHOD_LEN,
    R_TARGET_OFF = KHTTP_R_TARGET_OFF,
    R_TARGET_LEN = KHTTP_R_TARGET_LEN,
    R_REASON_OFF = KHTTP_R_REASON_OFF,
    R_REASON_LEN = KHTTP_R_REASON_LEN,
    R_CONTENT_LENGTH = KHTTP_R_CONTENT_LENGTH,
    R_NHEADERS = KHTTP_R_NHEADERS,
    R_HOST_COUNT = KHTTP_R_HOST_COUNT,
    R_CONN_OTHER_COUNT = KHTTP_R_CONN_OTHER_COUNT,
    R_RESERVED = KHTTP_R_RESERVED,
};
enum { B_NONE = KHTTP_B_NONE, B_LENGTH = KHTTP_B_LENGTH, B_CHUNKED = KHTTP_B_CHUNKED,
       B_CLOSE = KHTTP_B_CLOSE };

enum { M_GET = 1, M_HEAD, M_POST, M_PUT, M_DELETE, M_OPTIONS, M_TRACE, M_CONNECT,
       M_PATCH, M_OTHER = 15 };

#define CL_LIMIT 1000000000000000000LL /* Content-Length must be below 10^18 */
#define CHUNK_SIZE_SHIFT_LIMIT 56      /* chunk sizes stay below 2^60 */

/* Byte classes, bit per class. */
#define C_TCHAR 1   /* token (RFC 9110 §5.6.2) */
#define C_VALUE 2   /* field-value byte: HTAB, SP, VCHAR, obs-text (RFC 9110 §5.5) */
#define C_TARGET 4  /* request-target byte: visible ASCII */
#define C_QDTEXT 8  /* quoted-string text (RFC 9110 §5.6.4) */
#define C_QPAIR 16  /* byte allowed after a backslash in a quoted-string */

/* Byte classes (generated once from the RFC grammar; see pure.py's sets). */
static const unsigned char cls[256] = {
    0, 0, 0, 0, 0, 0, 0, 0, 0, 26, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    26, 31, 22, 31, 31, 31, 31, 31, 30, 30, 31, 31, 30, 31, 31, 30,
    31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 30, 30, 30, 30, 30, 30,
    30, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31,
    31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 30, 22, 30, 31, 31,
    31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31,
    31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 30, 31, 30, 31, 0,
    26, 26, 26, 26, 26, 26, 26, 26, 26, 26, 26, 26, 26, 26, 26, 26,
    26, 26, 26, 26, 26, 26, 26, 26, 26, 26, 26, 26, 26, 26, 26, 26,
    26, 26, 26, 26, 26, 26, 26, 26, 26, 26, 26, 26, 26, 26, 26, 26,
    26, 26, 26, 26, 26, 26, 26, 26, 26, 26, 26, 26, 26, 26, 26, 26,
    26, 26, 26, 26, 26, 26, 26, 26, 26, 26, 26, 26, 26, 26, 26, 26,
    26, 26, 26, 26, 26, 26, 26, 26, 26, 26, 26, 26, 26, 26, 26, 26,
    26, 26, 26, 26, 26, 26, 26, 26, 26, 26, 26, 26, 26, 26, 26, 26,
    26, 26, 26, 26, 26, 26, 26, 26, 26, 26, 26, 26, 26, 26, 26, 26,
};

static const unsigned char lower[256] = {
    0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15,
    16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31,
    32, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 45, 46, 47,
    48, 49, 50, 51, 52, 53, 54, 55, 56, 57, 58, 59, 60, 61, 62, 63,
    64, 97, 98, 99, 100, 101, 102, 103, 104, 105, 106, 107, 108, 109, 110, 111,
    112, 113, 114, 115, 116, 117, 118, 119, 120, 121, 122, 91, 92, 93, 94, 95,
    96, 97, 98, 99, 100, 101, 102, 103, 104, 105, 106, 107, 108, 109, 110, 111,
    112, 113, 114, 115, 116, 117, 118, 119, 120, 121, 122, 123, 124, 125, 126, 127,
    128, 129, 130, 131, 132, 133, 134, 135, 136, 137, 138, 139, 140, 141, 142, 143,
    144, 145, 146, 147, 148, 149, 150, 151, 152, 153, 154, 155, 156, 157, 158, 159,
    160, 161, 162, 163, 164, 165, 166, 167, 168, 169, 170, 171, 172, 173, 174, 175,
    176, 177, 178, 179, 180, 181, 182, 183, 184, 185, 186, 187, 188, 189, 190, 191,
    192, 193, 194, 195, 196, 197, 198, 199, 200, 201, 202, 203, 204, 205, 206, 207,
    208, 209, 210, 211, 212, 213, 214, 215, 216, 217, 218, 219, 220, 221, 222, 223,
    224, 225, 226, 227, 228, 229, 230, 231, 232, 233, 234, 235, 236, 237, 238, 239,
    240, 241, 242, 243, 244, 245, 246, 247, 248, 249, 250, 251, 252, 253, 254, 255,
};

static const signed char hexval[256] = {
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    0, 1, 2, 3, 4, 5, 6, 7, 8, 9, -1, -1, -1, -1, -1, -1,
    -1, 10, 11, 12, 13, 14, 15, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, 10, 11, 12, 13, 14, 15, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
};

#define IS(c, k) (cls[(unsigned char)(c)] & (k))
#define OWS(c) ((c) == ' ' || (c) == '\t')

/* Case-insensitive compare of s[0:n] with a lowercase literal of length n. */
static inline int ieq(const unsigned char *s, const char *lit, int64_t n)
{
    int64_t i;
    for (i = 0; i < n; i++)
        if (lower[s[i]] != (unsigned char)lit[i])
            return 0;
    return 1;
}

/* Trim OWS from both ends of [*a, *e). */
static inline void trim(const unsigned char *b, int64_t *a, int64_t *e)
{
    while (*a < *e && OWS(b[*a]))
        (*a)++;
    while (*e > *a && OWS(b[*e - 1]))
        (*e)--;
}

/* End of the list element starting at a, within [a, e): the next comma or e. */
static inline int64_t elem_end(const unsigned char *b, int64_t a, int64_t e)
{
    const void *c = memchr(b + a, ',', (size_t)(e - a));
    return c ? (const unsigned char *)c - b : e;
}

enum {
    K_OTHER, K_CL, K_TE_ENC, K_CONNECTION, K_PROXY_CONN, K_HOP, K_UPGRADE, K_HOST,
    K_EXPECT, K_AUTHORIZATION, K_AUTHENTICATE, K_KEEPALIVE
};

static int header_kind(const unsigned char *n, int64_t len)
{
    switch (len) {
    case 2:
        return ieq(n, "te", 2) ? K_HOP : K_OTHER;
    case 4:
        return ieq(n, "host", 4) ? K_HOST : K_OTHER;
    case 6:
        return ieq(n, "expect", 6) ? K_EXPECT : K_OTHER;
    case 7:
        if (ieq(n, "trailer", 7))
            return K_HOP;
        return ieq(n, "upgrade", 7) ? K_UPGRADE : K_OTHER;
    case 10:
        if (ieq(n, "connection", 10))
            return K_CONNECTION;
        return ieq(n, "keep-alive", 10) ? K_KEEPALIVE : K_OTHER;
    case 13:
        return ieq(n, "authorization", 13) ? K_AUTHORIZATION : K_OTHER;
    case 14:
        return ieq(n, "content-length", 14) ? K_CL : K_OTHER;
    case 16:
        if (ieq(n, "proxy-connection", 16))
            return K_PROXY_CONN;
        return ieq(n, "www-authenticate", 16) ? K_AUTHENTICATE : K_OTHER;
    case 17:
        return ieq(n, "transfer-encoding", 17) ? K_TE_ENC : K_OTHER;
    case 18:
        return ieq(n, "proxy-authenticate", 18) ? K_AUTHENTICATE : K_OTHER;
    }
    return K_OTHER;
}

static int method_code(const unsigned char *m, int64_t len)
{
    switch (len) {
    case 3:
        if (!memcmp(m, "GET", 3)) return M_GET;
        if (!memcmp(m, "PUT", 3)) return M_PUT;
        break;
    case 4:
        if (!memcmp(m, "HEAD", 4)) return M_HEAD;
        if (!memcmp(m, "POST", 4)) return M_POST;
        break;
    case 5:
        if (!memcmp(m, "TRACE", 5)) return M_TRACE;
        if (!memcmp(m, "PATCH", 5)) return M_PATCH;
        break;
    case 6:
        if (!memcmp(m, "DELETE", 6)) return M_DELETE;
        break;
    case 7:
        if (!memcmp(m, "OPTIONS", 7)) return M_OPTIONS;
        if (!memcmp(m, "CONNECT", 7)) return M_CONNECT;
        break;
    }
    return M_OTHER;
}

/* The limit that a byte-by-byte reader would hit first (ties: the line). */
static int64_t limit_error(int line_bad, int head_bad, int64_t ls, int64_t start,
                           int64_t max_line, int64_t max_head)
{
    if (line_bad && head_bad)
        return ls + max_line <= start + max_head ? KHTTP_E_LINE_TOO_LONG
                                                 : KHTTP_E_HEAD_TOO_LARGE;
    if (line_bad)
        return KHTTP_E_LINE_TOO_LONG;
    if (head_bad)
        return KHTTP_E_HEAD_TOO_LARGE;
    return 0;
}

/* HTTP/DIGIT.DIGIT at b[*pos]; the line's LF always stops a mismatch. */
static int version(const unsigned char *b, int64_t *pos, int *major, int *minor)
{
    const unsigned char *v = b + *pos;
    if (v[0] != 'H' || v[1] != 'T' || v[2] != 'T' || v[3] != 'P' || v[4] != '/')
        return 0;
    if (v[5] < '0' || v[5] > '9' || v[6] != '.')
        return 0;
    if (v[7] < '0' || v[7] > '9')
        return 0;
    *major = v[5] - '0';
    *minor = v[7] - '0';
    *pos += 8;
    return 1;
}

/* CRLF at b[pos]: 0, or the error for what stands there instead. */
static inline int64_t line_end(const unsigned char *b, int64_t pos, int64_t other)
{
    if (b[pos] == '\r')
        return b[pos + 1] == '\n' ? 0 : KHTTP_E_BARE_CR;
    if (b[pos] == '\n')
        return KHTTP_E_BARE_LF;
    return other;
}

/* The verdict on a request's method from the bytes there are, before its head is
 * complete: a byte that cannot be in a method (a TLS ClientHello, binary junk) is
 * answered at once, not at `timeout http-request`. 0: none (yet). It is the verdict
 * request_line() would give, and a whole head gets it before the size limits, so
 * every prefix of a head is answered as the whole head is. A bad byte past either
 * limit (`lim`: the first byte that would break max_line or max_head) is left to
 * the limits, which a prefix ending before it would already have hit. */
static int64_t method_verdict(const unsigned char *b, int64_t ls, int64_t n, int64_t lim)
{
    int64_t i = ls;
    if (lim > n)
        lim = n;
    while (i < lim && IS(b[i], C_TCHAR))
        i++;
    if (i >= lim)               /* still in the token, or past a limit (empty lines) */
        return 0;
    if (i > ls)
        return b[i] == ' ' ? 0 : KHTTP_E_METHOD;
    if (b[i] == '\n')
        return KHTTP_E_BARE_LF;
    if (b[i] == '\r')           /* CRLF pairs were skipped: CR then anything is bare */
        return i + 1 < lim ? KHTTP_E_BARE_CR : 0;
    return KHTTP_E_METHOD;
}

/* E_BARE_CR for the first CR in b[from, to) followed by anything but LF (RFC 9112
 * §2.2), else 0. It is answered as soon as the byte after the CR is there, head
 * complete or not: lines ended by bare CRs never make a complete head, and such a
 * request would wait for `timeout http-request`. Like method_verdict() it comes
 * before the size limits, and a bare CR that a byte-by-byte reader would meet
 * only past max_line (start line without LF) or max_head is left to them, so
 * every prefix of a head is answered as the whole head is. */
static int64_t bare_cr_verdict(const unsigned char *b, int64_t from, int64_t to, int64_t ls,
                               int64_t start, int64_t max_line, int64_t max_head)
{
    const unsigned char *c;
    int64_t j, lim;
    for (;;) {
        if (from + 1 >= to)
            return 0;
        c = memchr(b + from, '\r', (size_t)(to - 1 - from));
        if (c == NULL)
            return 0;
        j = c - b;
        if (b[j + 1] != '\n')
            break;
        from = j + 2;
    }
    lim = start + max_head;
    if (ls + max_line < lim
        && memchr(b + ls, '\n', (size_t)((j < ls + max_line ? j : ls + max_line) - ls)) == NULL)
        lim = ls + max_line;
    return j + 1 < lim ? KHTTP_E_BARE_CR : 0;
}

#define ALPHA(c) ((unsigned char)(((c) | 0x20) - 'a') < 26)
#define DIGIT(c) ((unsigned char)((c) - '0') < 10)

/* Is t[0:len) a request-target form that `method` may use (RFC 9112 §3.2)?
 * origin-form ("/...") for any method but CONNECT, which takes the
 * authority-form (host ":" port, §3.2.3); the asterisk-form only for OPTIONS
 * (§3.2.4); absolute-form for any method but CONNECT, with "//" after the
 * scheme as HAProxy requires (RFC 3986 §3.1: scheme = ALPHA *( ALPHA / DIGIT /
 * "+" / "-" / "." )). Anything else ("foo", "x:80" with GET) would reach the
 * server as a target it must guess at: HAProxy answers 400, so do we. */
static int target_form_ok(const unsigned char *t, int64_t len, int method)
{
    int64_t i;
    if (method == M_CONNECT) {
        for (i = len; i > 0 && DIGIT(t[i - 1]); i--)
            ;
        if (i == len || i < 2 || t[i - 1] != ':')
            return 0;       /* no port, or no host */
        return memchr(t, '/', (size_t)len) == NULL;
    }
    if (t[0] == '/')
        return 1;
    if (t[0] == '*')
        return len == 1 && method == M_OPTIONS;
    if (!ALPHA(t[0]))
        return 0;
    for (i = 1; i < len && (ALPHA(t[i]) || DIGIT(t[i]) || t[i] == '+' || t[i] == '-'
                            || t[i] == '.'); i++)
        ;
    return i + 3 <= len && t[i] == ':' && t[i + 1] == '/' && t[i + 2] == '/';
}

/* RFC 3986 §3.2.2 reg-name bytes: unreserved, sub-delims ('%' is checked apart). */
static int regname_char(unsigned char c)
{
    return ALPHA(c) || DIGIT(c) || (c && strchr("-._~!$&'()*+,;=", c) != NULL);
}

#define HEXDIG(c) (DIGIT(c) || (unsigned char)(((c) | 0x20) - 'a') < 6)

/* Split an authority's uri-host [":" port] (RFC 9112 §3.2, RFC 3986 §3.2.2-3):
 * *hlen gets the host's length, *port the port (-1: none or empty). Returns 0
 * when the syntax is not host[:port] or the port is above 65535. */
static int split_host(const unsigned char *a, int64_t len, int64_t *hlen, int64_t *port)
{
    int64_t i = 0, p = -1;
    if (len > 0 && a[0] == '[') {
        for (i = 1; i < len && (HEXDIG(a[i]) || a[i] == ':' || a[i] == '.'); i++)
            ;
        if (i == len || a[i] != ']' || i == 1)
            return 0;
        i++;
    } else {
        while (i < len) {
            if (a[i] == '%') {
                if (i + 2 >= len || !HEXDIG(a[i + 1]) || !HEXDIG(a[i + 2]))
                    return 0;
                i += 3;
            } else if (regname_char(a[i])) {
                i++;
            } else {
                break;
            }
        }
    }
    *hlen = i;
    if (i < len) {
        if (a[i] != ':')
            return 0;
        for (i++; i < len; i++) {
            if (!DIGIT(a[i]))
                return 0;
            p = (p < 0 ? 0 : p) * 10 + (a[i] - '0');
            if (p > 65535)
                return 0;
        }
    }
    *port = p;
    return 1;
}

/* An absolute-form target's authority (RFC 3986 §3.2: after "scheme://", up to
 * '/', '?', '#' or the end, userinfo left out): [*a, *e); returns the scheme's
 * default port (80, 443) or -1 when it has none known. */
static int64_t authority(const unsigned char *t, int64_t tlen, int64_t *a, int64_t *e)
{
    int64_t s = 0, i, def = -1;
    while (t[s] != ':')
        s++;                 /* target_form_ok() saw "scheme://" */
    if (s == 4 && ieq(t, "http", 4))
        def = 80;
    else if (s == 5 && ieq(t, "https", 5))
        def = 443;
    *a = s + 3;
    for (*e = *a; *e < tlen && t[*e] != '/' && t[*e] != '?' && t[*e] != '#'; (*e)++)
        ;
    for (i = *e; i > *a; i--)
        if (t[i - 1] == '@') {
            *a = i;          /* userinfo is not part of what Host repeats */
            break;
        }
    return def;
}

/* An absolute-form target's authority against the Host value (RFC 9112 §3.2.2:
 * the same, userinfo aside; a port left out is the scheme's default). Returns
 * -1 when they differ (400), 1 when they agree and the target names its
 * scheme's default port (forwarded without it, as HAProxy does), else 0. */
static int authority_vs_host(const unsigned char *t, int64_t tlen,
                             const unsigned char *h, int64_t hlen)
{
    int64_t a, e, i, ahl, ap, hhl, hp, def = authority(t, tlen, &a, &e);
    if (!split_host(t + a, e - a, &ahl, &ap) || !split_host(h, hlen, &hhl, &hp))
        return -1;
    if (ahl != hhl)
        return -1;
    for (i = 0; i < ahl; i++)
        if (lower[t[a + i]] != lower[h[i]])
            return -1;
    if ((ap < 0 ? def : ap) != (hp < 0 ? def : hp))
        return -1;
    return ap >= 0 && ap == def;
}

/* F_NORMALIZE's request line into out: method, the target without its scheme's
 * default port, HTTP/1.1 (HTTP/1.0 stays), CRLF. Its length, or -1 (no room). */
static int64_t normalized_line(const khttp_parser *p, const unsigned char *b, char *out,
                               int64_t cap)
{
    const int64_t *res = p->res;
    const unsigned char *t = b + res[R_TARGET_OFF];
    int64_t tlen = res[R_TARGET_LEN], mlen = res[R_TARGET_OFF] - p->line_off;
    int64_t cut = tlen, resume = tlen, o;
    if (t[0] != '/' && t[0] != '*') {
        int64_t a, e, hl, port, def = authority(t, tlen, &a, &e);
        if (split_host(t + a, e - a, &hl, &port) && port >= 0 && port == def) {
            cut = a + hl;    /* ":port" goes */
            resume = e;
        }
    }
    o = mlen + cut + (tlen - resume);
    if (o + 11 > cap)
        return -1;
    memcpy(out, b + p->line_off, (size_t)mlen);
    memcpy(out + mlen, t, (size_t)cut);
    memcpy(out + mlen + cut, t + resume, (size_t)(tlen - resume));
    memcpy(out + o, res[R_VERSION] == 10 ? " HTTP/1.0\r\n" : " HTTP/1.1\r\n", 11);
    return o + 11;
}

static int64_t request_line(const unsigned char *b, int64_t ls, int64_t *res, int64_t *next)
{
    int64_t pos = ls, toff, err;
    int major, minor;
    while (IS(b[pos], C_TCHAR))
        pos++;
    if (pos == ls) {
        if (b[pos] == '\n')
            return KHTTP_E_BARE_LF;
        if (b[pos] == '\r')
            return KHTTP_E_BARE_CR;
        return KHTTP_E_METHOD;
    }
    if (b[pos] != ' ')
        return KHTTP_E_METHOD;
    res[R_METHOD_OFF] = ls;
    res[R_METHOD_LEN] = pos - ls;
    toff = ++pos;
    while (IS(b[pos], C_TARGET))
        pos++;
    if (b[pos] != ' ') {
        if (pos > toff && (b[pos] == '\r' || b[pos] == '\n'))
            return KHTTP_E_VERSION;
        return KHTTP_E_TARGET;
    }
    if (pos == toff)
        return KHTTP_E_TARGET;
    res[R_TARGET_OFF] = toff;
    res[R_TARGET_LEN] = pos - toff;
    pos++;
    if (!version(b, &pos, &major, &minor))
        return KHTTP_E_VERSION;
    if ((err = line_end(b, pos, KHTTP_E_VERSION)) != 0)
        return err;
    if (major != 1)
        return KHTTP_E_VERSION_UNSUPPORTED;
    /* The target's form is judged once the version says it is HTTP/1's grammar. */
    res[R_METHOD] = method_code(b + ls, res[R_METHOD_LEN]);
    if ((b[toff] != '/' || res[R_METHOD] == M_CONNECT)
        && !target_form_ok(b + toff, res[R_TARGET_LEN], (int)res[R_METHOD]))
        return KHTTP_E_TARGET;
    /* RFC 9110 §2.5: a higher 1.x minor version is handled, and forwarded, as 1.1. */
    res[R_VERSION] = minor == 0 ? 10 : 11;
    if (minor > 1)
        res[R_FLAGS] = KHTTP_F_NORMALIZE | KHTTP_F_HOP;   /* F_HOP: through strip_hop */
    *next = pos + 2;
    return 0;
}

static int64_t status_line(const unsigned char *b, int64_t ls, int64_t *res, int64_t *next)
{
    int64_t pos = ls, roff, err;
    int major, minor;
    if (!version(b, &pos, &major, &minor) || b[pos] != ' ')
        return KHTTP_E_STATUS_LINE;
    pos++;
    /* Three digits, 100-999 (RFC 9110 §15). */
    if (b[pos] < '1' || b[pos] > '9' || b[pos + 1] < '0' || b[pos + 1] > '9'
        || b[pos + 2] < '0' || b[pos + 2] > '9')
        return KHTTP_E_STATUS_LINE;
    res[R_STATUS] = (b[pos] - '0') * 100 + (b[pos + 1] - '0') * 10 + (b[pos + 2] - '0');
    pos += 3;
    if (b[pos] == ' ') {
        roff = ++pos;
        while (IS(b[pos], C_VALUE))
            pos++;
    } else {
        roff = pos; /* "HTTP/1.1 200\r\n": reason omitted along with its SP */
    }
    if ((err = line_end(b, pos, KHTTP_E_STATUS_LINE)) != 0)
        return err;
    if (major != 1)
        return KHTTP_E_VERSION_UNSUPPORTED;
    res[R_VERSION] = minor == 0 ? 10 : 11;
    res[R_REASON_OFF] = roff;
    res[R_REASON_LEN] = pos - roff;
    *next = pos + 2;
    return 0;
}

/* The error in a header line that failed the fast scan. */
static int64_t header_line_error(const unsigned char *b, int64_t pos)
{
    int64_t q = pos;
    if (OWS(b[pos]))
        return KHTTP_E_OBS_FOLD; /* RFC 9112 §5.2: obs-fold is rejected */
    while (IS(b[q], C_TCHAR))
        q++;
    if (b[q] == ':') {
        if (q == pos)
            return KHTTP_E_HEADER_NAME;
    } else {
        if (q > pos && OWS(b[q]))
            return KHTTP_E_SPACE_BEFORE_COLON; /* RFC 9112 §5.1: MUST reject */
        if (b[q] == '\r') {
            if (b[q + 1] != '\n')
                return KHTTP_E_BARE_CR;
            return q > pos ? KHTTP_E_NO_COLON : KHTTP_E_HEADER_NAME;
        }
        if (b[q] == '\n')
            return KHTTP_E_BARE_LF;
        return KHTTP_E_HEADER_NAME;
    }
    q++;
    while (IS(b[q], C_VALUE))
        q++;
    if (b[q] == '\r')
        return KHTTP_E_BARE_CR; /* a CRLF here would have passed the fast scan */
    if (b[q] == '\n')
        return KHTTP_E_BARE_LF;
    return KHTTP_E_HEADER_VALUE;
}

/* NTLM and Negotiate authenticate the TCP connection, not the request. */
static int auth_is_conn_bound(const unsigned char *b, int64_t vo, int64_t ve)
{
    int64_t a = vo;
    for (;;) {
        int64_t e = elem_end(b, a, ve), s = a, t;
        int64_t end = e;
        trim(b, &s, &end);
        for (t = s; t < end && !OWS(b[t]); t++)
            ;
        if ((t - s == 4 && ieq(b + s, "ntlm", 4)) || (t - s == 9 && ieq(b + s, "negotiate", 9)))
            return 1;
        if (e == ve)
            return 0;
        a = e + 1;
    }
}

/* What the proxy decides from a head, in the same pass (pure.py: _framing):
 *
 * R_PERSIST (RFC 9112 §9.3): HTTP/1.1 persists unless Connection lists close,
 *   HTTP/1.0 only when it lists keep-alive; a response whose body runs until
 *   the close cannot persist.
 * R_BODY, R_BODY_LEN (RFC 9112 §6.3): requests: chunked, else Content-Length
 *   above 0, else none (the scan already refused CL with TE, a bad CL, a
 *   request TE not ending in chunked, TE in HTTP/1.0). Responses: 1xx, 204 and
 *   304 have none whatever they say; TE ending in chunked is chunked, any other
 *   TE runs until close; then Content-Length (0: none); no framing at all runs
 *   until close. A response to HEAD has no body either: the caller knows the
 *   method, the parser does not (proxy/http1/rules.py).
 * R_VERDICT (requests): 400 for an HTTP/1.1 request without Host or any request
 *   with several (RFC 9112 §3.2), 501 for CONNECT (keepwarm is no forward
 *   proxy), else 0.
 */
static void framing(int64_t *res, int64_t flags, int64_t cl, int64_t host, int is_request)
{
    int64_t persist = !(flags & KHTTP_F_CONN_CLOSE)
                      && (res[R_VERSION] == 11 || (flags & KHTTP_F_CONN_KEEPALIVE));
    int64_t body, len;
    if (is_request) {
        if (flags & KHTTP_F_CHUNKED) {
            body = B_CHUNKED;
            len = -1;
        } else if (cl > 0) {
            body = B_LENGTH;
            len = cl;
        } else {
            body = B_NONE;
            len = 0;
        }
        if (host != 1 && (host > 1 || res[R_VERSION] == 11))
            res[R_VERDICT] = 400;
        else if (res[R_METHOD] == M_CONNECT)
            res[R_VERDICT] = 501;
    } else {
        int64_t status = res[R_STATUS];
        if (status < 200 || status == 204 || status == 304) {
            body = B_NONE;
            len = 0;
        } else if (flags & KHTTP_F_TE) {
            body = (flags & KHTTP_F_CHUNKED) ? B_CHUNKED : B_CLOSE;
            len = -1;
        } else if (cl > 0) {
            body = B_LENGTH;
            len = cl;
        } else if (cl == 0) {
            body = B_NONE;
            len = 0;
        } else {
            body = B_CLOSE;
            len = -1;
        }
        if (body == B_CLOSE)
            persist = 0;
    }
    res[R_BODY] = body;
    res[R_BODY_LEN] = len;
    res[R_PERSIST] = persist;
}

static int64_t complete_head(khttp_parser *p, const unsigned char *b, int64_t start,
                             int64_t ls, int64_t end, int is_request);

static int64_t parse_head(khttp_parser *p, const char *buf, size_t len_, size_t start_,
                          size_t prev_len_, int is_request)
{
    const unsigned char *b = (const unsigned char *)buf;
    int64_t n = (int64_t)len_, start = (int64_t)start_, prev_len = (int64_t)prev_len_;
    int64_t max_line = p->max_line, max_head = p->max_head;
    int64_t ls, s, i, end = 0, err;
    const unsigned char *lf;

    p->end = 0;
    p->nheaders = 0;
    if (start > n)
        return 0;
    ls = start;
    if (is_request) {
        /* RFC 9112 §2.2: ignore empty lines (CRLF) before the request-line. */
        while (ls + 1 < n && b[ls] == '\r' && b[ls + 1] == '\n')
            ls += 2;
    }
    s = start + prev_len - 2;
    if (s < ls)
        s = ls;
    /* The head ends at the first LF followed by CRLF or by LF (the latter, and
     * any "\n\r\n" not preceded by CR, is a bare LF the line scan reports). */
    for (i = s; i < n; i++) {
        lf = memchr(b + i, '\n', (size_t)(n - i));
        if (lf == NULL)
            break;
        i = lf - b;
        if (i + 1 < n && b[i + 1] == '\n') {
            end = i + 2;
            break;
        }
        if (i + 2 < n && b[i + 1] == '\r' && b[i + 2] == '\n') {
            end = i + 3;
            break;
        }
    }
    if (is_request && (err = method_verdict(b, ls, n, ls + max_line < start + max_head ?
                                                      ls + max_line : start + max_head)) != 0)
        return err;
    if (end == 0) {
        int line_bad;
        /* Bytes searched at the previous call had no bare CR (but maybe a CR last). */
        s = start + prev_len - 1;
        if ((err = bare_cr_verdict(b, s < ls ? ls : s, n, ls, start, max_line, max_head)) != 0)
            return err;
        line_bad = n - ls >= max_line && memchr(b + ls, '\n', (size_t)max_line) == NULL;
        return limit_error(line_bad, n - start >= max_head, ls, start, max_line, max_head);
    }
    err = complete_head(p, b, start, ls, end, is_request);
    if (err < 0) {
        /* A head that parses has no bare CR: only a failure needs the search. */
        int64_t cr = bare_cr_verdict(b, ls, end, ls, start, max_line, max_head);
        if (cr)
            return cr;
    }
    return err;
}

/* RFC 9112 §3.2: a Host value that is not uri-host [":" port] gets a 400 (a
 * MUST that HAProxy 2.6 does not apply), and so does an absolute-form target
 * whose authority is not the Host's (HAProxy 2.6 does). Returns the flags,
 * with F_NORMALIZE when the target's default port is to be dropped. */
static int64_t host_verdict(const unsigned char *b, int64_t *res, int64_t flags,
                            int64_t hvo, int64_t hve)
{
    int64_t hl, hp;
    const unsigned char *t = b + res[R_TARGET_OFF];
    int same;
    if (!split_host(b + hvo, hve - hvo, &hl, &hp)) {
        res[R_VERDICT] = 400;
        return flags;
    }
    if (t[0] == '/' || t[0] == '*')
        return flags;
    same = authority_vs_host(t, res[R_TARGET_LEN], b + hvo, hve - hvo);
    if (same < 0)
        res[R_VERDICT] = 400;
    else if (same)
        flags |= KHTTP_F_NORMALIZE | KHTTP_F_HOP;
    return flags;
}

/* A head whose end is known: the limits, the start line, each header line, then
 * the rules over the whole head; R_END or the first error met. */
static int64_t complete_head(khttp_parser *p, const unsigned char *b, int64_t start,
                             int64_t ls, int64_t end, int is_request)
{
    int64_t max_line = p->max_line, max_head = p->max_head, max_headers = p->max_headers;
    int64_t *res = p->res, *hdrs = p->hdrs;
    int64_t pos, err, nh = 0, cl = -1, host = 0, other = 0, flags = 0;
    int64_t te_codings = 0, hvo = 0, hve = 0;
    int chunked_seen = 0, last_chunked = 0;
    const unsigned char *lf;

    lf = memchr(b + ls, '\n', (size_t)(end - ls));
    err = limit_error((lf - b) - ls >= max_line, end - start > max_head, ls, start,
                      max_line, max_head);
    if (err)
        return err;

    memset(res, 0, sizeof(p->res));
    if (is_request)
        err = request_line(b, ls, res, &pos);
    else
        err = status_line(b, ls, res, &pos);
    if (err)
        return err;
    flags = res[R_FLAGS];

    for (;;) {
        int64_t q, no, nl, vo, ve;
        if (b[pos] == '\r' && b[pos + 1] == '\n') {
            end = pos + 2;
            break;
        }
        if (nh == max_headers)
            return KHTTP_E_TOO_MANY_HEADERS;
        no = q = pos;
        while (IS(b[q], C_TCHAR))
            q++;
        if (b[q] != ':' || q == no)
            return header_line_error(b, pos);
        nl = q - no;
        q++;
        while (OWS(b[q]))
            q++;
        vo = q;
        while (IS(b[q], C_VALUE))
            q++;
        if (b[q] != '\r' || b[q + 1] != '\n')
            return header_line_error(b, pos);
        ve = q;
        while (ve > vo && OWS(b[ve - 1]))
            ve--;
        hdrs[4 * nh] = no;
        hdrs[4 * nh + 1] = no + nl;
        hdrs[4 * nh + 2] = vo;
        hdrs[4 * nh + 3] = ve;
        nh++;
        pos = q + 2;
        {
            switch (header_kind(b + no, nl)) {
            case K_OTHER:
                break;
            case K_CL: {
                /* RFC 9110 §8.6: a list of identical values may be taken as one, and
                 * RFC 9112 §6.3 (5) then has it forwarded as one: F_HOP sends the
                 * head through strip_hop, which writes a single Content-Length. */
                int64_t a = vo;
                if (cl >= 0)
                    flags |= KHTTP_F_HOP;   /* a repeated field */
                flags |= KHTTP_F_CL;
                for (;;) {
                    int64_t e = elem_end(b, a, ve), x = a, y = e, v = 0;
                    trim(b, &x, &y);
                    if (x == y)
                        return KHTTP_E_CONTENT_LENGTH;
                    for (; x < y; x++) {
                        if (b[x] < '0' || b[x] > '9')
                            return KHTTP_E_CONTENT_LENGTH;
                        if (v > (CL_LIMIT - 1 - (b[x] - '0')) / 10)
                            return KHTTP_E_CONTENT_LENGTH; /* would reach 10^18 */
                        v = v * 10 + (b[x] - '0');
                    }
                    if (cl < 0)
                        cl = v;
                    else if (v != cl)
                        return KHTTP_E_CL_CONFLICT;
                    if (e == ve)
                        break;
                    flags |= KHTTP_F_HOP;   /* a list */
                    a = e + 1;
                }
                break;
            }
            case K_TE_ENC: {
                int64_t a = vo;
                flags |= KHTTP_F_TE;
                for (;;) {
                    int64_t e = elem_end(b, a, ve), x = a, y = e, t;
                    trim(b, &x, &y);
                    if (x < y) { /* RFC 9110 §5.6.1: empty list elements are ignored */
                        for (t = x; t < y; t++)
                            if (!IS(b[t], C_TCHAR))
                                return KHTTP_E_TE;
                        te_codings++;
                        if (y - x == 7 && ieq(b + x, "chunked", 7)) {
                            if (chunked_seen) /* RFC 9112 §6.1: chunked at most once */
                                return KHTTP_E_TE;
                            chunked_seen = last_chunked = 1;
                        } else {
                            last_chunked = 0;
                        }
                    }
                    if (e == ve)
                        break;
                    a = e + 1;
                }
                break;
            }
            case K_CONNECTION: {
                int64_t a = vo;
                flags |= KHTTP_F_HOP;
                for (;;) {
                    int64_t e = elem_end(b, a, ve), x = a, y = e;
                    trim(b, &x, &y);
                    if (y - x == 5 && ieq(b + x, "close", 5))
                        flags |= KHTTP_F_CONN_CLOSE;
                    else if (y - x == 10 && ieq(b + x, "keep-alive", 10))
                        flags |= KHTTP_F_CONN_KEEPALIVE;
                    else if (y - x == 7 && ieq(b + x, "upgrade", 7))
                        flags |= KHTTP_F_CONN_UPGRADE;
                    else if (y > x) {
                        flags |= KHTTP_F_CONN_OTHER;
                        other++;
                    }
                    if (e == ve)
                        break;
                    a = e + 1;
                }
                break;
            }
            case K_HOST:
                host++;
                hvo = vo;
                hve = ve;
                break;
            case K_HOP:
                flags |= KHTTP_F_HOP;
                break;
            case K_KEEPALIVE:
                flags |= KHTTP_F_HOP | KHTTP_F_KEEPALIVE_HDR;
                break;
            case K_UPGRADE:
                flags |= KHTTP_F_HOP | KHTTP_F_UPGRADE;
                break;
            case K_PROXY_CONN:
                flags |= KHTTP_F_HOP | KHTTP_F_PROXY_CONN;
                break;
            case K_EXPECT:
                if (ve - vo == 12 && ieq(b + vo, "100-continue", 12))
                    flags |= KHTTP_F_EXPECT_CONTINUE;
                break;
            case K_AUTHORIZATION:
                if (is_request && auth_is_conn_bound(b, vo, ve))
                    flags |= KHTTP_F_AUTH_CONN;
                break;
            case K_AUTHENTICATE:
                if (!is_request && auth_is_conn_bound(b, vo, ve))
                    flags |= KHTTP_F_AUTH_CONN;
                break;
            }
        }
    }

    if (flags & KHTTP_F_TE) {
        /* RFC 9112 §6.1 / §6.3: both framings at once is how requests get smuggled. */
        if (flags & KHTTP_F_CL)
            return KHTTP_E_CL_TE;
        if (is_request && res[R_VERSION] == 10)
            return KHTTP_E_TE_HTTP10;
        if (te_codings == 0)
            return KHTTP_E_TE;
        if (last_chunked)
            flags |= KHTTP_F_CHUNKED;
        else if (is_request) /* RFC 9112 §6.3 (4): a request's final coding must be chunked */
            return KHTTP_E_TE;
    }
    res[R_END] = end;
    res[R_CONTENT_LENGTH] = cl;
    res[R_FLAGS] = flags;
    framing(res, flags, cl, host, is_request);
    if (is_request && host == 1 && res[R_VERDICT] == 0)
        res[R_FLAGS] = flags = host_verdict(b, res, flags, hvo, hve);
    res[R_NHEADERS] = nh;
    res[R_HOST_COUNT] = host;
    res[R_CONN_OTHER_COUNT] = other;
    p->nheaders = nh;
    p->line_off = ls;
    p->end = end;
    return end;
}

int64_t khttp_parse_request(khttp_parser *p, const char *buf, size_t len,
                            size_t start, size_t prev_len)
{
    return parse_head(p, buf, len, start, prev_len, 1);
}

int64_t khttp_parse_response(khttp_parser *p, const char *buf, size_t len,
                             size_t start, size_t prev_len)
{
    return parse_head(p, buf, len, start, prev_len, 0);
}

/* Does a Connection header of the last parse list the name b[no:no+nl]?  Those
 * looked at: header numbers conn[0..nconn), or, when nconn < 0 (more than
 * MAX_CONNECTION_HEADERS of them), every header whose name is Connection. */
static int named_by_connection(const khttp_parser *p, const unsigned char *b,
                               const int64_t *conn, int nconn, int64_t no, int64_t nl)
{
    int64_t c, count = nconn < 0 ? p->nheaders : nconn;
    for (c = 0; c < count; c++) {
        const int64_t *h = p->hdrs + 4 * (nconn < 0 ? c : conn[c]);
        int64_t a = h[2], ve = h[3];
        if (nconn < 0 && header_kind(b + h[0], h[1] - h[0]) != K_CONNECTION)
            continue;
        for (;;) {
            int64_t e = elem_end(b, a, ve), x = a, y = e, i;
            trim(b, &x, &y);
            if (y - x == nl) {
                for (i = 0; i < nl && lower[b[x + i]] == lower[b[no + i]]; i++)
                    ;
                if (i == nl)
                    return 1;
            }
            if (e == ve)
                break;
            a = e + 1;
        }
    }
    return 0;
}

#define MAX_CONNECTION_HEADERS 32

int64_t khttp_strip_hop(const khttp_parser *p, const char *buf, size_t len,
                        int keep_upgrade, char *out, size_t out_cap)
{
    const unsigned char *b = (const unsigned char *)buf;
    int64_t k, nh = p->nheaders, o = 0, first, cap = (int64_t)out_cap;
    int64_t conn[MAX_CONNECTION_HEADERS];
    int nconn = 0, cl_seen = 0;
    if (p->end == 0 || p->end > (int64_t)len)
        return -1;
    /* Connection can name other headers to drop (RFC 9110 §7.6.1). Its tokens
     * keep-alive and upgrade name headers classified anyway; only "close" and
     * other tokens can name an ordinary header, so only then are the
     * Connection headers gathered (once, not per header line). */
    if (p->res[R_FLAGS] & (KHTTP_F_CONN_OTHER | KHTTP_F_CONN_CLOSE)) {
        for (k = 0; k < nh; k++) {
            const int64_t *h = p->hdrs + 4 * k;
            if (header_kind(b + h[0], h[1] - h[0]) != K_CONNECTION)
                continue;
            if (nconn == MAX_CONNECTION_HEADERS) {
                nconn = -1; /* too many to note: named_by_connection looks at all */
                break;
            }
            conn[nconn++] = k;
        }
    }
    first = nh ? p->hdrs[0] : p->end - 2;
    if (p->res[R_FLAGS] & KHTTP_F_NORMALIZE) {
        if ((o = normalized_line(p, b, out, cap)) < 0)
            return -1;
    } else {
        if (first - p->line_off > cap)
            return -1;
        memcpy(out, b + p->line_off, (size_t)(first - p->line_off));
        o = first - p->line_off;
    }
    for (k = 0; k < nh; k++) {
        const int64_t *h = p->hdrs + 4 * k;
        int64_t line_end_off = k + 1 < nh ? h[4] : p->end - 2;
        int drop;
        switch (header_kind(b + h[0], h[1] - h[0])) {
        case K_CONNECTION:
        case K_PROXY_CONN:
        case K_HOP:
        case K_KEEPALIVE:
            drop = 1;
            break;
        case K_UPGRADE:
            drop = !keep_upgrade;
            break;
        case K_CL:
            /* RFC 9112 §6.3 (5): a list or a repeat of one value is forwarded as a
             * single field, as HAProxy does: the first, with the value alone when
             * it was a list; later ones go. Never dropped on Connection's say-so. */
            if (cl_seen)
                continue;
            cl_seen = 1;
            if (memchr(b + h[2], ',', (size_t)(h[3] - h[2])) != NULL) {
                char digits[20];
                int64_t v = p->res[R_CONTENT_LENGTH], nd = 0, nl = h[1] - h[0];
                do {
                    digits[nd++] = (char)('0' + v % 10);
                    v /= 10;
                } while (v);
                /* "name: digits\r\n" is shorter than the list's line it replaces. */
                if (o + nl + 2 + nd + 2 > cap)
                    return -1;
                memcpy(out + o, b + h[0], (size_t)nl);
                o += nl;
                out[o++] = ':';
                out[o++] = ' ';
                while (nd)
                    out[o++] = digits[--nd];
                out[o++] = '\r';
                out[o++] = '\n';
                continue;
            }
            drop = 0;
            break;
        case K_HOST:
        case K_TE_ENC:
            /* Never dropped on Connection's say-so: the framing is already decided. */
            drop = 0;
            break;
        default:
            drop = nconn && named_by_connection(p, b, conn, nconn, h[0], h[1] - h[0]);
        }
        if (drop)
            continue;
        if (o + (line_end_off - h[0]) > cap)
            return -1;
        memcpy(out + o, b + h[0], (size_t)(line_end_off - h[0]));
        o += line_end_off - h[0];
    }
    return o;
}

int64_t khttp_rewrite(const khttp_parser *p, const char *buf, size_t len,
                      int keep_upgrade, const char *tail, size_t tail_len)
{
    char *out = p->out;
    int64_t o, rest;
    if (out == NULL)
        return -1;
    o = khttp_strip_hop(p, buf, len, keep_upgrade, out, (size_t)p->out_cap);
    if (o < 0)
        return -1;
    rest = (int64_t)len - p->end;
    if (o + (int64_t)tail_len + rest > p->out_cap)
        return -1;
    memcpy(out + o, tail, tail_len);
    o += (int64_t)tail_len;
    memcpy(out + o, buf + p->end, (size_t)rest);
    return o + rest;
}

int64_t khttp_headers_join(const khttp_parser *p, const char *buf, size_t len,
                           char *out, size_t out_cap)
{
    int64_t k, o = 0, cap = (int64_t)out_cap;
    if (p->end == 0 || p->end > (int64_t)len)
        return -1;
    for (k = 0; k < p->nheaders; k++) {
        const int64_t *h = p->hdrs + 4 * k;
        int64_t nl = h[1] - h[0], vl = h[3] - h[2];
        if (o + nl + vl + 2 > cap)
            return -1;
        if (k)
            out[o++] = '\0';
        memcpy(out + o, buf + h[0], (size_t)nl);
        o += nl;
        out[o++] = '\0';
        memcpy(out + o, buf + h[2], (size_t)vl);
        o += vl;
    }
    return o;
}

/* Body decoder states (same numbers as pure.py): the chunked machine, S_DONE, and
 * S_LENGTH, where `size` counts the body bytes left. */
enum {
    S_SIZE_START, S_SIZE, S_SIZE_WS, S_EXT_NAME_START, S_EXT_NAME, S_EXT_AFTER_NAME,
    S_EXT_VAL_START, S_EXT_TOKEN, S_EXT_QUOTED, S_EXT_QUOTED_ESC, S_EXT_AFTER_VAL,
    S_SIZE_LF, S_DATA, S_DATA_CR, S_DATA_LF, S_TRAILER_START, S_FINAL_LF, S_TR_NAME,
    S_TR_VALUE, S_TR_LF, S_DONE, S_LENGTH
};

void khttp_body_init(khttp_body *d, int64_t max_line, int64_t max_trailers)
{
    d->max_line = max_line;
    d->max_trailers = max_trailers;
    khttp_body_start_chunked(d);
}

void khttp_body_start_chunked(khttp_body *d)
{
    d->size = 0;
    d->line_len = 0;
    d->trailer_len = 0;
    d->nspans = 0;
    d->state = S_SIZE_START;
    d->error = 0;
}

void khttp_body_start_length(khttp_body *d, int64_t length)
{
    khttp_body_start_chunked(d);
    if (length < 0) { /* the parser never gives one: a caller's bug, said on the first feed */
        d->state = S_LENGTH;
        d->error = KHTTP_E_CONTENT_LENGTH;
        return;
    }
    d->size = length;
    d->state = length ? S_LENGTH : S_DONE;
}

int khttp_body_done(const khttp_body *d)
{
    return d->state == S_DONE;
}

int64_t khttp_body_take(khttp_body *d, const char *buf, size_t len, size_t start)
{
    int64_t r = khttp_body_feed(d, buf, len, start, NULL, 0);
    return r >= 0 && d->state == S_DONE ? r + KHTTP_BODY_DONE : r;
}

int64_t khttp_body_feed(khttp_body *d, const char *buf, size_t len_, size_t start_,
                        int64_t *spans, size_t max_spans)
{
    const unsigned char *b = (const unsigned char *)buf;
    int64_t n = (int64_t)len_, start = (int64_t)start_, pos = start;
    int64_t size = d->size, line_len = d->line_len, trailer_len = d->trailer_len;
    int64_t nspans = 0, err = 0;
    int state = d->state;

    d->nspans = 0;
    if (d->error)
        return d->error;
    if (start >= n)
        return 0;
    if (state == S_LENGTH) { /* RFC 9112 §6.3 (6): exactly Content-Length bytes */
        int64_t take = n - start < size ? n - start : size;
        if (spans != NULL) {
            if (max_spans == 0)
                return 0;
            spans[0] = start;
            spans[1] = take;
            d->nspans = 1;
        }
        d->size = size - take;
        if (d->size == 0)
            d->state = S_DONE;
        return take;
    }
    while (pos < n && state != S_DONE) {
        unsigned char c;
        if (state == S_DATA) {
            int64_t take = n - pos;
            if (take > size)
                take = size;
            if (spans != NULL) {
                if (nspans == (int64_t)max_spans)
                    break; /* caller calls again with fresh room */
                spans[2 * nspans] = pos;
                spans[2 * nspans + 1] = take;
                nspans++;
            }
            pos += take;
            size -= take;
            if (size == 0)
                state = S_DATA_CR;
            continue;
        }
        c = b[pos];
        if (state <= S_SIZE_LF) {
            if (++line_len > d->max_line) {
                err = KHTTP_E_CHUNK_LINE_TOO_LONG;
                break;
            }
        } else if (state >= S_TRAILER_START) {
            if (++trailer_len > d->max_trailers) {
                err = KHTTP_E_TRAILER;
                break;
            }
        }
        pos++;
        switch (state) {
        case S_SIZE_START:
        case S_SIZE:
            if (hexval[c] >= 0) {
                if (size >> CHUNK_SIZE_SHIFT_LIMIT) {
                    err = KHTTP_E_CHUNK_SIZE;
                    break;
                }
                size = (size << 4) | hexval[c];
                state = S_SIZE;
            } else if (state == S_SIZE_START) {
                err = KHTTP_E_CHUNK_SIZE;
            } else if (c == '\r') {
                state = S_SIZE_LF;
            } else if (c == ';') {
                state = S_EXT_NAME_START;
            } else if (OWS(c)) {
                state = S_SIZE_WS; /* BWS before ';' (RFC 9112 §7.1.1) */
            } else if (c == '\n') {
                err = KHTTP_E_CHUNK_CRLF;
            } else {
                err = KHTTP_E_CHUNK_SIZE;
            }
            break;
        case S_SIZE_WS:
            if (c == ';')
                state = S_EXT_NAME_START;
            else if (!OWS(c))
                err = KHTTP_E_CHUNK_SIZE;
            break;
        case S_EXT_NAME_START:
            if (IS(c, C_TCHAR))
                state = S_EXT_NAME;
            else if (!OWS(c))
                err = KHTTP_E_CHUNK_EXT;
            break;
        case S_EXT_NAME:
        case S_EXT_AFTER_NAME:
            if (IS(c, C_TCHAR) && state == S_EXT_NAME)
                ;
            else if (OWS(c))
                state = S_EXT_AFTER_NAME;
            else if (c == '=')
                state = S_EXT_VAL_START;
            else if (c == ';')
                state = S_EXT_NAME_START;
            else if (c == '\r')
                state = S_SIZE_LF;
            else
                err = KHTTP_E_CHUNK_EXT;
            break;
        case S_EXT_VAL_START:
            if (c == '"')
                state = S_EXT_QUOTED;
            else if (IS(c, C_TCHAR))
                state = S_EXT_TOKEN;
            else if (!OWS(c))
                err = KHTTP_E_CHUNK_EXT;
            break;
        case S_EXT_TOKEN:
        case S_EXT_AFTER_VAL:
            if (IS(c, C_TCHAR) && state == S_EXT_TOKEN)
                ;
            else if (OWS(c))
                state = S_EXT_AFTER_VAL;
            else if (c == ';')
                state = S_EXT_NAME_START;
            else if (c == '\r')
                state = S_SIZE_LF;
            else
                err = KHTTP_E_CHUNK_EXT;
            break;
        case S_EXT_QUOTED:
            if (c == '"')
                state = S_EXT_AFTER_VAL;
            else if (c == '\\')
                state = S_EXT_QUOTED_ESC;
            else if (!IS(c, C_QDTEXT))
                err = KHTTP_E_CHUNK_EXT;
            break;
        case S_EXT_QUOTED_ESC:
            if (IS(c, C_QPAIR))
                state = S_EXT_QUOTED;
            else
                err = KHTTP_E_CHUNK_EXT;
            break;
        case S_SIZE_LF:
            if (c != '\n') {
                err = KHTTP_E_CHUNK_CRLF;
                break;
            }
            line_len = 0;
            state = size ? S_DATA : S_TRAILER_START;
            break;
        case S_DATA_CR:
            if (c != '\r')
                err = KHTTP_E_CHUNK_CRLF;
            else
                state = S_DATA_LF;
            break;
        case S_DATA_LF:
            if (c != '\n')
                err = KHTTP_E_CHUNK_CRLF;
            else
                state = S_SIZE_START;
            break;
        case S_TRAILER_START:
            if (c == '\r')
                state = S_FINAL_LF;
            else if (IS(c, C_TCHAR))
                state = S_TR_NAME;
            else
                err = KHTTP_E_TRAILER; /* includes obs-fold and bare LF */
            break;
        case S_FINAL_LF:
            if (c != '\n')
                err = KHTTP_E_CHUNK_CRLF;
            else
                state = S_DONE;
            break;
        case S_TR_NAME:
            if (c == ':')
                state = S_TR_VALUE;
            else if (!IS(c, C_TCHAR))
                err = KHTTP_E_TRAILER;
            break;
        case S_TR_VALUE:
            if (c == '\r')
                state = S_TR_LF;
            else if (!IS(c, C_VALUE))
                err = KHTTP_E_TRAILER;
            break;
        default: /* S_TR_LF */
            if (c != '\n')
                err = KHTTP_E_TRAILER;
            else
                state = S_TRAILER_START;
            break;
        }
        if (err)
            break;
    }
    if (err) {
        d->error = (int32_t)err;
        return err;
    }
    d->state = state;
    d->size = size;
    d->line_len = line_len;
    d->trailer_len = trailer_len;
    d->nspans = nspans;
    return pos - start;
}
