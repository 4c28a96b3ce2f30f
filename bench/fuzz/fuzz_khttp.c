/*
 * libFuzzer harness for _native/khttp.c (build and run: bench/fuzz/run.sh).
 *
 * Input layout: byte 0 picks the mode and limits, byte 1 a split point, the rest
 * is the message.  Each input is copied into a buffer of exactly its size so that
 * AddressSanitizer sees any read past the end.  Besides memory errors the harness
 * aborts when a property of the contract in khttp.h fails:
 *   - parsing in two pieces (with prev_len) gives the same answer as whole;
 *   - a successful parse's offsets lie inside the head;
 *   - strip_hop output fits in the head and starts with the start line;
 *   - the body decoder gives the same consumed/error/data for any split, through
 *     khttp_body_feed with spans and through khttp_body_take (whose KHTTP_BODY_DONE
 *     says what khttp_body_done says); in length mode it
 *     consumes exactly min(length, input) bytes, all of them data, and is done when
 *     the input held the whole body; after a length body the rest is decoded as a
 *     chunked one by the same decoder (a start clears the previous message).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "khttp.h"

#define MAXH 40

static void check(int ok)
{
    if (!ok)
        abort();
}

static int64_t parse(khttp_parser *p, int req, const char *b, size_t n, size_t start, size_t prev)
{
    return req ? khttp_parse_request(p, b, n, start, prev) : khttp_parse_response(p, b, n, start, prev);
}

static void fuzz_head(const uint8_t *data, size_t size, int req, uint8_t lim, uint8_t cut_byte)
{
    int64_t hdrs[4 * MAXH], hdrs2[4 * MAXH];
    khttp_parser p, q;
    char *whole = malloc(size ? size : 1), *piece, *out;
    size_t cut = size ? cut_byte % (size + 1) : 0, i;
    int64_t r, r1, r2, end;

    memcpy(whole, data, size);
    memset(&p, 0, sizeof p);
    p.hdrs = hdrs;
    p.max_headers = (lim & 1) ? 3 : MAXH;
    /* Small limits vary with the high bits, odd and even (a CR last before an odd
     * max_head once answered differently whole and in pieces). */
    p.max_head = (lim & 2) ? 39 + (lim >> 4) : 4096;
    p.max_line = (lim & 4) ? 2 + 3 * (lim >> 4) : 1024;
    q = p;
    q.hdrs = hdrs2;

    r = parse(&p, req, whole, size, 0, 0);
    check(r >= KHTTP_E_VERSION_UNSUPPORTED);
    if (r > 0) {
        end = p.res[KHTTP_R_END];
        check(end == r && end <= (int64_t)size && p.end == end);
        check(p.nheaders == p.res[KHTTP_R_NHEADERS] && p.nheaders <= p.max_headers);
        for (i = 0; i < (size_t)p.nheaders; i++) {
            check(hdrs[4 * i] >= 0 && hdrs[4 * i] < hdrs[4 * i + 1] && hdrs[4 * i + 1] <= end);
            check(hdrs[4 * i + 2] >= 0 && hdrs[4 * i + 2] <= hdrs[4 * i + 3] && hdrs[4 * i + 3] <= end);
        }
        check(p.res[KHTTP_R_TARGET_OFF] + p.res[KHTTP_R_TARGET_LEN] <= end);
        check(p.res[KHTTP_R_REASON_OFF] + p.res[KHTTP_R_REASON_LEN] <= end);
        check(p.res[KHTTP_R_BODY] >= KHTTP_B_NONE && p.res[KHTTP_R_BODY] <= KHTTP_B_CLOSE);
        check(p.res[KHTTP_R_PERSIST] == 0 || p.res[KHTTP_R_PERSIST] == 1);
        out = malloc((size_t)(end - p.line_off));
        r1 = khttp_strip_hop(&p, whole, size, (lim & 8) != 0, out, (size_t)(end - p.line_off));
        check(r1 >= 0 && r1 <= end - p.line_off - 2);
        check(memcmp(out, whole + p.line_off, (size_t)(p.nheaders ? hdrs[0] - p.line_off : r1)) == 0);
        r1 = khttp_headers_join(&p, whole, size, out, (size_t)(end - p.line_off));
        check(r1 >= 0 && r1 <= end - p.line_off);
        free(out);
        /* rewrite: stripped head + tail + the rest, into p.out; -1 when it cannot fit. */
        p.out_cap = (int64_t)size + 8;
        p.out = malloc((size_t)p.out_cap);
        r1 = khttp_rewrite(&p, whole, size, (lim & 8) != 0, "\r\n", 2);
        check(r1 >= 0 && r1 <= (int64_t)size && memcmp(p.out + r1 - ((int64_t)size - end),
                                                       whole + end, (size_t)((int64_t)size - end)) == 0);
        p.out_cap = 1;
        check(khttp_rewrite(&p, whole, size, 0, "\r\n", 2) == -1);
        free(p.out);
        p.out = NULL;
    }

    /* The same input in two pieces, the first in a buffer of exactly cut bytes. */
    piece = malloc(cut ? cut : 1);
    memcpy(piece, data, cut);
    r1 = parse(&q, req, piece, cut, 0, 0);
    if (r1 == 0)
        r2 = parse(&q, req, whole, size, 0, cut);
    else
        r2 = r1;
    if (r > 0 && r2 > 0)
        check(memcmp(p.res, q.res, sizeof p.res) == 0);
    else
        check(r2 == r);
    free(piece);
    free(whole);
}

/* Feed buf[0:n] in two pieces (up to cut, then all), as a socket would deliver it;
 * with spans, counts the data bytes they cover into *data_bytes. */
static int64_t feed_all(khttp_body *d, const char *b, size_t n, size_t cut, int use_spans,
                        int64_t *data_bytes)
{
    int64_t spans[2 * 4], total = 0, r;
    size_t pos = 0, k, upto = cut;
    *data_bytes = 0;
    for (;;) {
        if (use_spans)
            r = khttp_body_feed(d, b, upto, pos, spans, 4);
        else
            r = khttp_body_take(d, b, upto, pos);
        if (r < 0)
            return r;
        if (!use_spans) { /* take says done in its answer */
            check((r >= KHTTP_BODY_DONE) == khttp_body_done(d));
            if (r >= KHTTP_BODY_DONE)
                r -= KHTTP_BODY_DONE;
        }
        check(r <= (int64_t)(upto - pos));
        for (k = 0; use_spans && k < (size_t)d->nspans; k++) {
            check(spans[2 * k] >= (int64_t)pos && spans[2 * k + 1] > 0
                  && spans[2 * k] + spans[2 * k + 1] <= (int64_t)pos + r);
            *data_bytes += spans[2 * k + 1];
        }
        total += r;
        pos += (size_t)r;
        if (khttp_body_done(d))
            return total;
        if (pos >= upto) {
            if (upto == n)
                return total;
            upto = n;
        }
    }
}

/* Lengths worth trying besides 0..239: around 2^31 and 2^32, the parser's largest
 * Content-Length, INT64_MAX, and a negative (a caller's bug, a sticky error). */
static const int64_t big_lengths[] = {
    INT32_MAX, (int64_t)INT32_MAX + 1, (int64_t)UINT32_MAX, (int64_t)UINT32_MAX + 1,
    999999999999999999LL, INT64_MAX, -1, INT64_MIN,
};

static int64_t length_of(uint8_t v)
{
    if (v < 240)
        return v;
    return big_lengths[(v - 240) % (sizeof big_lengths / sizeof big_lengths[0])];
}

/* Three decoders on one input: whole with spans, split with spans, split without. */
static void decode_three(khttp_body *a, khttp_body *b, khttp_body *c, const char *buf,
                         size_t size, size_t cut, int64_t *ra_out, int64_t *da_out)
{
    int64_t ra, rb, rc, da, db, dc;
    ra = feed_all(a, buf, size, size, 1, &da);
    rb = feed_all(b, buf, size, cut, 1, &db);
    rc = feed_all(c, buf, size, cut, 0, &dc);
    check(ra == rb && rb == rc);
    if (ra >= 0)
        check(da == db && ra <= (int64_t)size && khttp_body_done(a) == khttp_body_done(b)
              && khttp_body_done(b) == khttp_body_done(c));
    *ra_out = ra;
    *da_out = da;
    (void)dc;
}

static void fuzz_body(const uint8_t *data, size_t size, uint8_t lim, uint8_t cut_byte)
{
    khttp_body a, b, c;
    char *buf;
    size_t cut;
    int64_t r, length = 0, want, da;
    int64_t max_line = (lim & 2) ? 8 : 4096, max_tr = (lim & 4) ? 12 : 16384;
    int length_mode = (lim & 8) != 0;

    if (length_mode) {
        if (size == 0)
            return;
        length = length_of(data[0]);
        data++;
        size--;
    }
    cut = size ? cut_byte % (size + 1) : 0;
    buf = malloc(size ? size : 1);
    memcpy(buf, data, size);
    khttp_body_init(&a, max_line, max_tr);
    khttp_body_init(&b, max_line, max_tr);
    khttp_body_init(&c, max_line, max_tr);
    if (length_mode) {
        khttp_body_start_length(&a, length);
        khttp_body_start_length(&b, length);
        khttp_body_start_length(&c, length);
        check(khttp_body_done(&a) == (length == 0));
    }
    decode_three(&a, &b, &c, buf, size, cut, &r, &da);
    if (length_mode) {
        if (length < 0) {
            check(r == KHTTP_E_CONTENT_LENGTH && !khttp_body_done(&a));
        } else {
            want = length < (int64_t)size ? length : (int64_t)size;
            check(r == want && da == r && khttp_body_done(&a) == (length <= (int64_t)size));
        }
        if (r >= 0 && khttp_body_done(&a) && (size_t)r < size) {
            /* The next message, chunked, on the same decoders. */
            size_t rest = size - (size_t)r;
            char *next = malloc(rest);
            memcpy(next, buf + r, rest);
            khttp_body_start_chunked(&a);
            khttp_body_start_chunked(&b);
            khttp_body_start_chunked(&c);
            decode_three(&a, &b, &c, next, rest, cut % (rest + 1), &r, &da);
            free(next);
        }
    }
    free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t mode, cut;
    if (size < 2)
        return 0;
    mode = data[0];
    cut = data[1];
    data += 2;
    size -= 2;
    switch (mode % 3) {
    case 0:
        fuzz_head(data, size, 1, mode / 3, cut);
        break;
    case 1:
        fuzz_head(data, size, 0, mode / 3, cut);
        break;
    default:
        fuzz_body(data, size, mode / 3, cut);
    }
    return 0;
}
