"""A proxy's log lines to all its targets: level filter, sampling, header, send.

What the worker's wiring calls once per finished stream (and the master for
its events): ``LogOutput(targets, tag, host, pid).emit(message, level)``. For
each ``log`` target of the proxy, in order, as HAProxy's process_send_log():

- a line less severe than the target's ``level`` is not sent to it;
- a line more severe than its ``minlevel`` is sent at ``minlevel``;
- with ``sample R:S``, only the lines whose number in each period of S is in
  one of the ranges R are sent (numbered from 1);
- the header is the target's format (``local`` by default, ``rfc3164`` when
  ``log-send-hostname`` is set), cut at ``len``; the sender never waits.
"""

from __future__ import annotations

import os
import time
from typing import List, Optional, Sequence, Tuple

from . import syslog
from .sender import Sender, batch_for


# the formats whose header holds no time or the time to the second only
_BY_SECOND = frozenset(("local", "rfc3164", "priority", "short", "raw"))
_TRAILING = (b"\n", b"\0")


def level_for(level: int, max_level: int, min_level: int) -> Optional[int]:
    """The level a line of ``level`` is sent at, or None when it is filtered out."""
    if level > max_level:
        return None
    return max(level, min_level)


class Sampler:
    """``sample 1,3-4:5``: lines 1, 3 and 4 of every 5 pass."""

    __slots__ = ("ranges", "size", "index")

    def __init__(self, ranges: Sequence[Tuple[int, int]], size: int):
        self.ranges, self.size, self.index = tuple(ranges), size, 0

    def take(self) -> bool:
        n = self.index + 1
        self.index = n % self.size
        return any(low <= n <= high for low, high in self.ranges)


class LogOutput:
    """The targets of one proxy (or of the global section) in one process."""

    def __init__(self, targets, tag: Optional[str] = None, host: Optional[str] = None,
                 pid: Optional[int] = None, on_hold=None, **sender_kw):
        """``on_hold``: a worker's, to hold its socket targets' lines until it calls
        each sender's ``flush()`` at the end of its loop's turn (proxy/log/sender.py);
        None: each line goes at once."""
        self.targets = tuple(targets)
        self.tag = (tag or "haproxy").encode()
        self.host = host.encode() if host else None
        self.pid = os.getpid() if pid is None else pid
        self.senders: List[Sender] = [
            Sender.for_target(t, on_hold=on_hold, batch=batch_for(t.kind) if on_hold else 1,
                              **sender_kw) for t in self.targets]
        self.samplers = [Sampler(*t.sample) if t.sample else None for t in self.targets]
        self.default_format = "rfc3164" if self.host else "local"
        self.formats = [t.format or self.default_format for t in self.targets]
        # A header that changes once a second at most is made once a second: one
        # (second, level) -> header per target (the -log benchmark's profile).
        self.headers = [{} if f in _BY_SECOND else None for f in self.formats]
        # Per target, what emit() reads of it, in one tuple; per level (0-7), the
        # level each target takes a line at (None: filtered out).
        self.plans = [(t, s, sp, h, f, t.maxlen - 1 if t.kind == "fd" else t.maxlen)
                      for t, s, sp, h, f in zip(self.targets, self.senders, self.samplers,
                                                self.headers, self.formats)]
        self.levels = [[level_for(lv, t.level, t.minlevel) for t in self.targets]
                       for lv in range(8)]

    def open(self) -> List[str]:
        """Open every target; the warnings for those not reachable now."""
        return [w for w in (s.open() for s in self.senders) if w]

    def close(self) -> None:
        for s in self.senders:
            s.close()

    @property
    def dropped(self) -> int:
        return sum(s.dropped for s in self.senders)

    def emit(self, message: bytes, level: int = 6, now: Optional[float] = None,
             sd: bytes = b"") -> int:
        """Send ``message`` to every target that takes it (or hold it, see
        ``on_hold``); the number handed over or held. One datagram per line."""
        sent = 0
        if now is None:
            now = time.time()
        if message[-1:] in _TRAILING:
            message = message.rstrip(b"\n\0")     # HAProxy drops trailing LFs and NULs
        ats = self.levels[level]
        i = -1
        for target, sender, sampler, cache, fmt, limit in self.plans:
            i += 1
            at = ats[i]
            if at is None or (sampler is not None and not sampler.take()):
                continue
            if cache is None:
                head = syslog.header(fmt, target.facility, at, now, self.tag, self.pid,
                                     self.host, sd)
            else:
                key = (int(now), at)
                head = cache.get(key)
                if head is None:
                    cache.clear()
                    head = cache[key] = syslog.header(fmt, target.facility, at, now,
                                                      self.tag, self.pid, self.host)
            line = head + message
            line = (line if len(line) <= limit else line[:limit]) + b"\n"
            sent += sender.send(line)
        return sent
