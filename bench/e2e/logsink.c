/* The -log variants' syslog receiver in C (bench/e2e/logsink.py builds and runs it
 * when a C compiler is there): a UNIX datagram socket bound at PATH, drained with
 * recvmmsg() until SIGTERM, then "logsink: N lines, M bytes" on stdout.
 *
 * A UNIX datagram socket queues only net.unix.max_dgram_qlen datagrams (10 here):
 * a reader slower than the proxies makes them drop lines, and a dropped line
 * costs its sender less than a delivered one. This reader keeps up where the
 * Python one does not (HAProxy's lines: ~30% dropped with it, measured).
 */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#define BATCH 64
#define SIZE 65536

static volatile sig_atomic_t stop;

static void on_term(int sig) { (void)sig; stop = 1; }

int main(int argc, char **argv)
{
    static char bufs[BATCH][SIZE];
    struct mmsghdr msgs[BATCH];
    struct iovec iov[BATCH];
    struct sockaddr_un addr;
    struct timeval tv = {0, 500000};          /* wakes to see SIGTERM's flag */
    struct sigaction sa;
    unsigned long long lines = 0, bytes = 0;
    int fd, rcvbuf = 8 << 20, i, n;

    if (argc != 2 || strlen(argv[1]) >= sizeof(addr.sun_path)) {
        fprintf(stderr, "usage: logsink PATH\n");
        return 2;
    }
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_term;                  /* no SA_RESTART: recvmmsg returns EINTR */
    sigaction(SIGTERM, &sa, NULL);
    unlink(argv[1]);
    fd = socket(AF_UNIX, SOCK_DGRAM, 0);
    memset(&addr, 0, sizeof(addr));
    addr.sun_family = AF_UNIX;
    strcpy(addr.sun_path, argv[1]);
    if (fd < 0 || bind(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
        perror("logsink");
        return 1;
    }
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    for (i = 0; i < BATCH; i++) {
        iov[i].iov_base = bufs[i];
        iov[i].iov_len = SIZE;
        memset(&msgs[i], 0, sizeof(msgs[i]));
        msgs[i].msg_hdr.msg_iov = &iov[i];
        msgs[i].msg_hdr.msg_iovlen = 1;
    }
    while (!stop) {
        /* MSG_WAITFORONE: block for the first datagram, then take what is queued */
        n = recvmmsg(fd, msgs, BATCH, MSG_WAITFORONE, NULL);
        for (i = 0; i < n; i++) {
            lines++;
            bytes += msgs[i].msg_len;
        }
    }
    close(fd);
    unlink(argv[1]);
    printf("logsink: %llu lines, %llu bytes\n", lines, bytes);
    return 0;
}
