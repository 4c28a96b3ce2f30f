/*
 * ksend: many datagrams in one system call (the workers' log lines).
 *
 * Everything between the CDEF markers is also read by build.py as the cffi cdef.
 */
#ifndef KSEND_H
#define KSEND_H

/* CDEF BEGIN */
/* Send n datagrams on the connected datagram socket fd, without waiting: datagram
 * i is lens[i] bytes of buf, the datagrams lying end to end. Returns how many
 * went out, in order (the first that could not go, and those after it, did
 * not), or -errno when none did. */
int ksend_datagrams(int fd, const char *buf, const int *lens, int n);
/* CDEF END */

#endif
