"""Hand finished log lines to one target without ever waiting or raising.

One ``Sender`` per ``log`` target and per worker, as HAProxy's threads send:
a UNIX datagram socket (``/dev/log``), UDP syslog, or a file descriptor
(stdout/stderr). ``send(line)`` makes one non-blocking system call at most:

- the receiver's buffer is full (EAGAIN), or the pipe is: the line is
  dropped and counted in ``dropped``, never retried (HAProxy's DroppedLogs);
- the receiver is absent (no socket at the path, nobody bound, a UDP port
  that answers ICMP unreachable, a closed pipe): the line is dropped and
  counted, and the target rests for a backoff (``retry_min`` doubling up to
  ``retry_max``) before the next attempt, so a dead syslog costs one clock
  read per line, not one system call;
- any other error: the same, and ``last_error`` keeps its text for the
  runtime API.

``open()`` returns a warning (a string) when the target cannot be reached at
start: the caller reports it, and keeps running.

A worker's socket targets hold their lines (``batch`` > 1): ``send`` keeps the
line and, for the first one held, calls ``on_hold(sender)``; the worker calls
``flush()`` at the end of its loop's turn (or ``send`` does, once ``batch``
lines are held), which hands them all to the kernel in one system call
(sendmmsg, _native/send.py). The receiver is woken once per turn, not once per
line. ``batch_for`` sizes it: a UNIX socket queues ``net.unix.max_dgram_qlen``
datagrams (10 on a bare kernel, 512 where systemd sets it), and a burst of more
than an eighth of that would risk the lines after it; with 10, lines go one by
one, at once, as HAProxy sends them.
"""

from __future__ import annotations

import errno
import os
import socket
import time
from typing import Callable, List, Optional

from _native.send import send_datagrams

BATCH_MAX = 64          # lines in one sendmmsg at most (ksend.c's chunk)
_QLEN = "/proc/sys/net/unix/max_dgram_qlen"


def batch_for(kind: str) -> int:
    """How many lines a worker's target of ``kind`` holds before it sends them (1:
    none held). UNIX: an eighth of the datagrams the kernel queues per socket."""
    if kind == "udp":
        return BATCH_MAX
    if kind != "unix":
        return 1
    try:
        with open(_QLEN) as f:
            qlen = int(f.read())
    except (OSError, ValueError):
        return 1
    return max(1, min(BATCH_MAX, qlen // 8))


_ABSENT = (errno.ENOENT, errno.ECONNREFUSED, errno.ENOTCONN, errno.EPIPE, errno.EHOSTUNREACH,
           errno.ENETUNREACH, errno.EDESTADDRREQ)


class Sender:
    """One target. ``kind``: "unix" (``path``), "udp" (``host``, ``port``, ``family``)
    or "fd" (``fd``: 1 or 2)."""

    def __init__(self, kind: str, path: Optional[str] = None, host: Optional[str] = None,
                 port: int = 514, fd: int = -1, family: int = socket.AF_INET,
                 clock: Callable[[], float] = time.monotonic,
                 retry_min: float = 0.5, retry_max: float = 30.0, batch: int = 1,
                 on_hold: Optional[Callable[["Sender"], None]] = None):
        if kind not in ("unix", "udp", "fd"):
            raise ValueError("unknown log target kind '%s'" % kind)
        self.kind, self.path, self.host, self.port = kind, path, host, port
        self.fd, self.family = fd, family
        self.clock = clock
        self.retry_min, self.retry_max = retry_min, retry_max
        self.sock: Optional[socket.socket] = None
        self.sent = 0
        self.dropped = 0
        self.last_error: Optional[str] = None
        self.backoff = 0.0            # the current rest after a failure; 0: healthy
        self.resume_at = 0.0          # no attempt before this clock reading
        # lines held for flush() (a socket target with batch > 1 and someone to flush)
        self.batch = batch if kind != "fd" and on_hold is not None else 1
        self.on_hold = on_hold
        self.held: List[bytes] = []

    @classmethod
    def for_target(cls, target, **kw) -> "Sender":
        """From a config ``LogTarget`` (proxy/config/model.py)."""
        return cls(target.kind, path=target.path, host=target.host, port=target.port,
                   fd=target.fd, family=target.family, **kw)

    @property
    def label(self) -> str:
        if self.kind == "unix":
            return self.path or ""
        if self.kind == "fd":
            return {1: "stdout", 2: "stderr"}.get(self.fd, "fd@%d" % self.fd)
        return "udp@%s:%d" % (self.host, self.port)

    # ------------------------------------------------------------ life

    def open(self) -> Optional[str]:
        """Make the socket (or check the fd); a warning when the target is not
        reachable now (it is retried with backoff when lines come)."""
        try:
            self._make()
        except OSError as exc:
            self._failed(exc)
            return "log target '%s' cannot be reached now (%s); lines are dropped and " \
                   "counted until it can" % (self.label, exc.strerror or exc)
        return None

    def _make(self) -> None:
        if self.kind == "fd":
            if not os.isatty(self.fd):
                os.set_blocking(self.fd, False)     # HAProxy does the same
            return
        if self.sock is not None:
            return
        family = socket.AF_UNIX if self.kind == "unix" else self.family
        s = socket.socket(family, socket.SOCK_DGRAM)
        s.setblocking(False)
        try:
            # Connected: a UDP port unreachable comes back as ECONNREFUSED; a UNIX
            # path is looked up once, not at each line (sendto: 1.2 us more per line).
            s.connect(self.path if self.kind == "unix" else (self.host, self.port))
        except OSError:
            s.close()
            raise
        self.sock = s

    def close(self) -> None:
        if self.held:
            self.flush()                  # (which closes first, on some errors: held is [])
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    # ------------------------------------------------------------ sending

    def send(self, line: bytes) -> bool:
        """Hand ``line`` to the kernel now (or hold it for ``flush``) or drop it;
        False when it is dropped now."""
        if self.batch > 1:
            held = self.held
            held.append(line)
            if len(held) == 1:
                self.on_hold(self)
            elif len(held) >= self.batch:
                self.flush()
            return True
        if self.backoff and self.clock() < self.resume_at:
            self.dropped += 1
            return False
        try:
            if self.kind == "fd":
                os.write(self.fd, line)
            else:
                if self.sock is None:
                    self._make()
                try:
                    self.sock.send(line)
                except BlockingIOError:
                    raise
                except OSError:
                    if self.kind != "unix":
                        raise
                    # The receiver went away, or a syslog daemon re-created its
                    # socket: connect to the path anew, try once more.
                    self.close()
                    self._make()
                    self.sock.send(line)
        except BlockingIOError:
            self.dropped += 1             # full: the line is lost, the target is fine
            return False
        except OSError as exc:
            self.dropped += 1
            self._failed(exc)
            return False
        if self.backoff:
            self.backoff = 0.0
            self.last_error = None
        self.sent += 1
        return True

    def flush(self) -> int:
        """Send the lines held, in one system call; how many went out. Those the
        receiver's queue has no room for are dropped and counted."""
        lines = self.held
        if not lines:
            return 0
        self.held = []
        n = len(lines)
        if self.backoff and self.clock() < self.resume_at:
            self.dropped += n
            return 0
        try:
            if self.sock is None:
                self._make()
            try:
                sent = send_datagrams(self.sock, lines)
            except BlockingIOError:
                raise
            except OSError:
                if self.kind != "unix":
                    raise
                self.close()                # as in send(): connect anew, once
                self._make()
                sent = send_datagrams(self.sock, lines)
        except BlockingIOError:
            self.dropped += n
            return 0
        except OSError as exc:
            self.dropped += n
            self._failed(exc)
            return 0
        self.dropped += n - sent
        if self.backoff:
            self.backoff = 0.0
            self.last_error = None
        self.sent += sent
        return sent

    def _failed(self, exc: OSError) -> None:
        self.last_error = str(exc)
        self.backoff = min(self.retry_max, self.backoff * 2 if self.backoff else self.retry_min)
        self.resume_at = self.clock() + self.backoff
        if self.kind == "udp" and exc.errno not in _ABSENT:
            self.close()                  # remade at the next attempt
