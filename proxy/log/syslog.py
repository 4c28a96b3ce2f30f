"""One log line as HAProxy 2.6 puts it on the wire: header per format, PRI, length.

Sans-IO: ``build(...)`` returns the bytes to send (header, message, LF) for a
target's format; the sender only writes them. Formats (configuration manual
3.1 ``log``)::

    local     <PRI>Mmm dd hh:mm:ss TAG[PID]: MSG      (HAProxy's default)
    rfc3164   <PRI>Mmm dd hh:mm:ss HOST TAG[PID]: MSG (HOST: 'localhost' unset)
    rfc5424   <PRI>1 ISODATE HOST TAG PID - SD MSG    ('-' for what is unset)
    priority  <PRI>MSG
    short     <LEVEL>MSG                               (facility left out)
    timed     <LEVEL>ISODATE MSG
    iso       ISODATE MSG
    raw       MSG

PRI is facility * 8 + level. ``len`` truncates the header and message together
to N bytes before the LF on a socket (N + 1 in all), and to N - 1 before the
LF on a file descriptor (stdout/stderr: N in all), as HAProxy does.
"""

from __future__ import annotations

import time
from typing import Optional

# The 24 facilities, in code order (RFC 5424 §6.2.1; HAProxy's names).
FACILITIES = ("kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news", "uucp",
              "cron", "auth2", "ftp", "ntp", "audit", "alert", "cron2", "local0", "local1",
              "local2", "local3", "local4", "local5", "local6", "local7")
LEVELS = ("emerg", "alert", "crit", "err", "warning", "notice", "info", "debug")
FORMATS = ("local", "rfc3164", "rfc5424", "priority", "short", "timed", "iso", "raw")

DEFAULT_LEN = 1024          # HAProxy's MAX_SYSLOG_LEN
MIN_LEN, MAX_LEN = 80, 65535

_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov",
           "Dec")


def facility_code(name: str) -> int:
    """``local0`` -> 16; ValueError for a name HAProxy does not know."""
    try:
        return FACILITIES.index(name)
    except ValueError:
        raise ValueError("unknown log facility '%s'" % name) from None


def level_code(name: str) -> int:
    """``info`` -> 6; ValueError for a name HAProxy does not know."""
    try:
        return LEVELS.index(name)
    except ValueError:
        raise ValueError("unknown log level '%s'" % name) from None


def pri(facility: int, level: int) -> int:
    return facility * 8 + level


def legacy_time(now: float) -> bytes:
    """RFC 3164's ``Mmm dd hh:mm:ss`` in local time (day padded with a space)."""
    t = time.localtime(now)
    return b"%s %2d %02d:%02d:%02d" % (_MONTHS[t.tm_mon - 1].encode(), t.tm_mday, t.tm_hour,
                                       t.tm_min, t.tm_sec)


def iso_time(now: float) -> bytes:
    """``2026-12-06T01:02:03.123456+00:00`` in local time, with microseconds."""
    t = time.localtime(now)
    off = t.tm_gmtoff // 60
    sign = b"+" if off >= 0 else b"-"
    off = abs(off)
    return b"%04d-%02d-%02dT%02d:%02d:%02d.%06d%s%02d:%02d" % (
        t.tm_year, t.tm_mon, t.tm_mday, t.tm_hour, t.tm_min, t.tm_sec,
        int((now % 1) * 1e6), sign, off // 60, off % 60)


def header(fmt: str, facility: int, level: int, now: float, tag: bytes, pid: int,
           host: Optional[bytes] = None, sd: bytes = b"") -> bytes:
    """The part before the message for format ``fmt``."""
    if fmt == "raw":
        return b""
    if fmt == "iso":
        return iso_time(now) + b" "
    if fmt in ("short", "timed"):
        out = b"<%d>" % level
        return out + iso_time(now) + b" " if fmt == "timed" else out
    out = b"<%d>" % pri(facility, level)
    if fmt == "priority":
        return out
    if fmt == "rfc5424":
        sd = sd.rstrip(b" ")
        return out + b"1 %s %s %s %d - %s " % (iso_time(now), host or b"-", tag or b"-", pid,
                                              sd or b"-")
    out += legacy_time(now) + b" "
    if fmt == "rfc3164":
        out += (host or b"localhost") + b" "
    elif fmt != "local":
        raise ValueError("unknown log format '%s'" % fmt)
    if tag:
        out += tag + b"[%d]: " % pid
    return out


def build(message: bytes, fmt: str = "local", facility: int = 16, level: int = 6,
          now: Optional[float] = None, tag: bytes = b"haproxy", pid: int = 0,
          host: Optional[bytes] = None, maxlen: int = DEFAULT_LEN, fd: bool = False,
          sd: bytes = b"") -> bytes:
    """The whole line for one target: header + message, truncated to ``maxlen``
    (``maxlen - 1`` on a file descriptor), then LF."""
    while message[-1:] in (b"\n", b"\0") and message:
        message = message[:-1]        # HAProxy drops trailing LFs and NULs
    line = header(fmt, facility, level, time.time() if now is None else now, tag, pid,
                  host, sd) + message
    limit = maxlen - 1 if fd else maxlen
    return line[:limit] + b"\n"
