/* ksend: see ksend.h. sendmmsg(2) where the C library has it, else sendmsg(2) each. */
#define _GNU_SOURCE
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "ksend.h"

#define KSEND_CHUNK 64

int ksend_datagrams(int fd, const char *buf, const int *lens, int n)
{
    struct mmsghdr msgs[KSEND_CHUNK];
    struct iovec iov[KSEND_CHUNK];
    int sent = 0;
    size_t off = 0;

    while (sent < n) {
        int k = n - sent < KSEND_CHUNK ? n - sent : KSEND_CHUNK;
        int i, r;
        size_t o = off;

        memset(msgs, 0, sizeof(msgs[0]) * (size_t)k);
        for (i = 0; i < k; i++) {
            iov[i].iov_base = (void *)(buf + o);
            iov[i].iov_len = (size_t)lens[sent + i];
            o += (size_t)lens[sent + i];
            msgs[i].msg_hdr.msg_iov = &iov[i];
            msgs[i].msg_hdr.msg_iovlen = 1;
        }
        do {
            r = sendmmsg(fd, msgs, (unsigned int)k, MSG_DONTWAIT | MSG_NOSIGNAL);
        } while (r < 0 && errno == EINTR);
        if (r < 0)
            return sent ? sent : -errno;
        for (i = 0; i < r; i++)
            off += (size_t)lens[sent + i];
        sent += r;
        if (r < k)
            break;      /* the next one would fail: its error is the caller's next call's */
    }
    return sent;
}
