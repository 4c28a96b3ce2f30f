"""The access-log line of one stream: HAProxy's ``option httplog`` (and ``clf``),
or any ``log-format``, compiled once and filled from a ``LogRecord``.

Sans-IO. The stream fills a ``LogRecord`` as it goes (HAProxy's ``strm_logs``:
each timer is the milliseconds from the accept to an event, -1 while the event
has not happened) and, at the end, the worker calls ``line(record)`` on the
compiled format of its frontend. The ``%`` variables are those of the rule
engine's log-format compiler (proxy/rules/logformat.py): the record answers
what a ``Txn`` answers (addresses, names, method, status) and puts the rest in
``record.log`` the way that compiler reads it, with HAProxy's arithmetic:

    TR = t_request - Ti - Th   Tw = t_queue - t_request   Tc = t_connect - t_queue
    Tr = t_data - t_connect    Ta = t_close - Ti - Th     Tt = t_close
    (each -1 when its later event was not reached)
"""

from __future__ import annotations

import ipaddress
import time
from typing import Callable, Optional, Tuple

from proxy.rules import compile_logformat

# HAProxy 2.6's "option httplog" and "option httplog clf", as its manual gives them.
HTTPLOG = ("%ci:%cp [%tr] %ft %b/%s %TR/%Tw/%Tc/%Tr/%Ta %ST %B %CC "
           "%CS %tsc %ac/%fc/%bc/%sc/%rc %sq/%bq %hr %hs %{+Q}r")
HTTPLOG_CLF = ("%{+Q}o %{-Q}ci - - [%trg] %r %ST %B \"\" \"\" %cp "
               "%ms %ft %b %s %TR %Tw %Tc %Tr %Ta %tsc %ac %fc "
               "%bc %sc %rc %sq %bq %CC %CS %hrl %hsl")

_MONTHS = (b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct",
           b"Nov", b"Dec")


def date_log(when: float, local: bool = True) -> bytes:
    """``%t``/``%tr``: ``06/Dec/2026:01:03:13.559`` (local time, milliseconds)."""
    t = time.localtime(when) if local else time.gmtime(when)
    return b"%02d/%s/%04d:%02d:%02d:%02d.%03d" % (t.tm_mday, _MONTHS[t.tm_mon - 1], t.tm_year,
                                                  t.tm_hour, t.tm_min, t.tm_sec,
                                                  int((when % 1) * 1000))


def date_clf(when: float, local: bool = False) -> bytes:
    """``%T``/``%trg`` (GMT) and ``%Tl``/``%trl`` (local): ``06/Dec/2026:01:03:13 +0000``."""
    t = time.localtime(when) if local else time.gmtime(when)
    off = (t.tm_gmtoff // 60) if local else 0
    sign = b"+" if off >= 0 else b"-"
    off = abs(off)
    return b"%02d/%s/%04d:%02d:%02d:%02d %s%02d%02d" % (
        t.tm_mday, _MONTHS[t.tm_mon - 1], t.tm_year, t.tm_hour, t.tm_min, t.tm_sec, sign,
        off // 60, off % 60)


class _World:
    __slots__ = ("hostname", "pid")

    def __init__(self, hostname: bytes = b"", pid: int = 0):
        self.hostname, self.pid = hostname, pid


class LogRecord:
    """What one stream leaves for its log line. The wiring sets the fields as the
    stream passes each point; what is never set keeps HAProxy's "not reached".

    ``accept_date``: the accept, seconds since the epoch (``time.time()``).
    Timers, in ms from the accept (-1: not reached): ``t_handshake`` (Th),
    ``t_idle`` (Ti, the wait for the first byte of this request on a kept-alive
    connection), ``t_request`` (the whole head received), ``t_queue`` (left the
    queue), ``t_connect`` (server connection established), ``t_data`` (response
    head received), ``t_close`` (the end).
    """

    __slots__ = ("accept_date", "t_handshake", "t_idle", "t_request", "t_queue", "t_connect",
                 "t_data", "t_close", "src", "src_port", "dst", "dst_port", "fe_name",
                 "be_name", "server", "method", "target", "version", "status", "bytes_out",
                 "bytes_in", "termination", "retries", "redispatched", "actconn", "feconn",
                 "beconn", "srv_conn", "srv_queue", "bck_queue", "req_captures",
                 "res_captures", "cli_cookie", "srv_cookie", "unique_id", "request_counter",
                 "log_counter", "be_src", "be_src_port", "srv_addr", "srv_port", "world",
                 "_log")

    def __init__(self, accept_date: float = 0.0, **fields):
        self.accept_date = accept_date
        self.t_handshake = 0
        self.t_idle = -1
        self.t_request = self.t_queue = self.t_connect = self.t_data = -1
        self.t_close = 0
        self.src: Optional[str] = None
        self.src_port: Optional[int] = None
        self.dst: Optional[str] = None
        self.dst_port: Optional[int] = None
        self.fe_name = self.be_name = b""
        self.server: Optional[bytes] = None          # None: <NOSRV>
        self.method: Optional[bytes] = None          # None: no request parsed (<BADREQ>)
        self.target = b""
        self.version = b"1.1"
        self.status = 0
        self.bytes_out = self.bytes_in = 0
        self.termination = "--"                      # proxy/log/termination.py
        self.retries = 0
        self.redispatched = False
        self.actconn = self.feconn = self.beconn = self.srv_conn = 0
        self.srv_queue = self.bck_queue = 0
        # one value per `capture request|response header` of the frontend, in order
        # (None: header absent); None: the frontend captures nothing
        self.req_captures: Optional[Tuple[Optional[bytes], ...]] = None
        self.res_captures: Optional[Tuple[Optional[bytes], ...]] = None
        self.cli_cookie = self.srv_cookie = None
        self.unique_id: Optional[bytes] = None
        self.request_counter = 0
        self.log_counter = 0
        self.be_src: Optional[str] = None            # %bi/%bp: our end of the server connection
        self.be_src_port: Optional[int] = None
        self.srv_addr: Optional[str] = None          # %si/%sp: the server's address
        self.srv_port: Optional[int] = None
        self.world = _World()
        self._log = None
        for name, value in fields.items():
            setattr(self, name, value)

    @property
    def log(self) -> dict:
        """The values the log-format compiler reads by name (computed once)."""
        if self._log is None:
            self._log = self._values()
        return self._log

    def _values(self) -> dict:
        th = self.t_handshake
        ti = self.t_idle
        treq = self.t_request
        before = ti + th if ti >= 0 else 0
        tq, tw, tc, tr = self.t_queue, self.t_connect, self.t_data, self.t_close
        start = self.accept_date + before / 1000.0      # the request's first byte
        ts = self.termination
        return {
            "s": self.server if self.server is not None else b"<NOSRV>",
            "Th": th, "Ti": ti, "Tq": treq,
            "TR": treq - ti - th if treq >= 0 else -1,
            "Tw": tq - treq if tq >= 0 else -1,
            "Tc": tw - tq if tw >= 0 else -1,
            "Tr": tc - tw if tc >= 0 else -1,
            "Td": tr - tc if tc >= 0 else -1,
            "Ta": tr - before, "Tt": tr, "Tu": tr - (ti if ti >= 0 else 0),
            "B": self.bytes_out, "U": self.bytes_in,
            "ts": ts[:2], "tsc": ts if len(ts) == 4 else ts[:2] + "--",
            "ac": self.actconn, "fc": self.feconn, "bc": self.beconn, "sc": self.srv_conn,
            "rc": ("+%d" % self.retries) if self.redispatched else self.retries,
            "sq": self.srv_queue, "bq": self.bck_queue,
            "hr": self.req_captures, "hrl": self.req_captures,
            "hs": self.res_captures, "hsl": self.res_captures,
            "CC": self.cli_cookie, "CS": self.srv_cookie, "ID": self.unique_id,
            "rt": self.request_counter, "lc": self.log_counter,
            "bi": self.be_src, "bp": self.be_src_port, "si": self.srv_addr, "sp": self.srv_port,
            "t": date_log(self.accept_date), "tr": date_log(start),
            "T": date_clf(self.accept_date), "trg": date_clf(start),
            "Tl": date_clf(self.accept_date, local=True), "trl": date_clf(start, local=True),
            "Ts": int(self.accept_date), "ms": "%03d" % int((self.accept_date % 1) * 1000),
        }


def _ip(text):
    if text is None:
        return None
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return text                        # "unix" and the like, written as is


class _View:
    """The record as the log-format compiler reads a Txn (addresses as ip objects)."""

    __slots__ = ("r", "src", "dst")

    def __init__(self, record: LogRecord):
        self.r = record
        self.src = _ip(record.src)
        self.dst = _ip(record.dst)

    @property
    def path(self) -> bytes:
        """%HPO: the path alone (no scheme, authority nor query)."""
        t = self.r.target
        if b"://" in t[:12]:
            slash = t.find(b"/", t.find(b"://") + 3)
            t = t[slash:] if slash >= 0 else b"/"
        q = t.find(b"?")
        return t if q < 0 else t[:q]

    def __getattr__(self, name):
        return getattr(self.r, name)


def compile_httplog(fmt: str = HTTPLOG, ctx=None) -> Callable[[LogRecord], bytes]:
    """A log-format string -> ``line(record) -> bytes`` (without the syslog header).

    Raises proxy.rules.RuleError for a bad format (the config parser reports it
    with file:line)."""
    compiled = compile_logformat(fmt, ctx, mode="log")

    def line(record: LogRecord) -> bytes:
        return compiled(_View(record))
    line.uses = compiled.uses
    return line


def capture(value: Optional[bytes], length: int) -> Optional[bytes]:
    """A captured header's value as HAProxy keeps it: its first ``length`` bytes."""
    return None if value is None else value[:length]
