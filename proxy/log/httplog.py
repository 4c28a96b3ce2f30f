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

import time
from typing import Callable, Optional, Tuple

from proxy.rules import compile_logformat
from proxy.rules.logformat import _HDR_ENCODE, _URL_ENCODE, _encode

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

    # Every field's "not reached" value is a class attribute: a record is made per
    # request, and sets only what the request reached (the -log benchmark's profile:
    # 45 stores per record cost more than the line).
    xprt = None                      # the client's transport: its `tls` makes %ft 'fe~'
    t_handshake = 0
    t_idle = t_request = t_queue = t_connect = t_data = -1
    t_close = 0
    src: Optional[str] = None
    src_port: Optional[int] = None
    dst: Optional[str] = None
    dst_port: Optional[int] = None
    fe_name = be_name = b""
    server: Optional[bytes] = None           # None: <NOSRV>
    method: Optional[bytes] = None           # None: no request parsed (<BADREQ>)
    target = b""
    version = b"1.1"
    status = 0
    bytes_out = bytes_in = 0
    termination = "--"                       # proxy/log/termination.py
    retries = 0
    redispatched = False
    actconn = feconn = beconn = srv_conn = 0
    srv_queue = bck_queue = 0
    # one value per `capture request|response header` of the frontend, in order
    # (None: header absent); None: the frontend captures nothing
    req_captures: Optional[Tuple[Optional[bytes], ...]] = None
    res_captures: Optional[Tuple[Optional[bytes], ...]] = None
    cli_cookie = srv_cookie = None
    unique_id: Optional[bytes] = None
    request_counter = log_counter = 0
    # option logasap: the line is written when the response head is forwarded, and
    # %Tt, %Ta and %B are prefixed with '+' (partial values), on every line of the
    # frontend, as HAProxy 2.6 does (its to_log lacks LW_BYTES)
    logasap = False
    logged = False                           # (its line is written: logasap)
    be_src: Optional[str] = None             # %bi/%bp: our end of the server connection
    be_src_port: Optional[int] = None
    srv_addr: Optional[str] = None           # %si/%sp: the server's address
    srv_port: Optional[int] = None
    world = _World()                         # the log's host name and pid (%H, %pid)

    def __init__(self, accept_date: float = 0.0, **fields):
        self.accept_date = accept_date
        for name, value in fields.items():
            setattr(self, name, value)

    @property
    def log(self) -> "LogRecord":
        """What the log-format compiler reads by name (``log.get(NAME)``): the
        record itself, each value computed when a format asks for it."""
        return self

    def get(self, name: str):
        getter = _WIRED.get(name)
        return None if getter is None else getter(self)

    @property
    def path(self) -> bytes:
        """%HPO: the path alone (no scheme, authority nor query)."""
        t = self.target
        if b"://" in t[:12]:
            slash = t.find(b"/", t.find(b"://") + 3)
            t = t[slash:] if slash >= 0 else b"/"
        q = t.find(b"?")
        return t if q < 0 else t[:q]


def _before(r: LogRecord) -> int:
    """Th + Ti: the ms from the accept to the request's first byte."""
    return r.t_idle + r.t_handshake if r.t_idle >= 0 else 0


def _request_start(r: LogRecord) -> float:
    return r.accept_date + _before(r) / 1000.0


def _plus(r: LogRecord, value: int):
    return "+%d" % value if r.logasap else value


def _tsc(r: LogRecord) -> str:
    ts = r.termination
    return ts if len(ts) == 4 else ts[:2] + "--"


# name -> value(record), HAProxy's arithmetic (src/log.c, sess_build_logline)
_WIRED = {
    "s": lambda r: r.server if r.server is not None else b"<NOSRV>",
    "Th": lambda r: r.t_handshake, "Ti": lambda r: r.t_idle, "Tq": lambda r: r.t_request,
    "TR": lambda r: r.t_request - r.t_idle - r.t_handshake if r.t_request >= 0 else -1,
    "Tw": lambda r: r.t_queue - r.t_request if r.t_queue >= 0 else -1,
    "Tc": lambda r: r.t_connect - r.t_queue if r.t_connect >= 0 else -1,
    "Tr": lambda r: r.t_data - r.t_connect if r.t_data >= 0 else -1,
    "Td": lambda r: r.t_close - r.t_data if r.t_data >= 0 else -1,
    "Ta": lambda r: _plus(r, r.t_close - _before(r)), "Tt": lambda r: _plus(r, r.t_close),
    "Tu": lambda r: r.t_close - (r.t_idle if r.t_idle >= 0 else 0),
    "B": lambda r: _plus(r, r.bytes_out), "U": lambda r: r.bytes_in,
    "ts": lambda r: r.termination[:2], "tsc": _tsc,
    "ac": lambda r: r.actconn, "fc": lambda r: r.feconn, "bc": lambda r: r.beconn,
    "sc": lambda r: r.srv_conn,
    "rc": lambda r: ("+%d" % r.retries) if r.redispatched else r.retries,
    "sq": lambda r: r.srv_queue, "bq": lambda r: r.bck_queue,
    "hr": lambda r: r.req_captures, "hrl": lambda r: r.req_captures,
    "hs": lambda r: r.res_captures, "hsl": lambda r: r.res_captures,
    "CC": lambda r: r.cli_cookie, "CS": lambda r: r.srv_cookie, "ID": lambda r: r.unique_id,
    "rt": lambda r: r.request_counter, "lc": lambda r: r.log_counter,
    "bi": lambda r: r.be_src, "bp": lambda r: r.be_src_port,
    "si": lambda r: r.srv_addr, "sp": lambda r: r.srv_port,
    "t": lambda r: date_log(r.accept_date), "tr": lambda r: date_log(_request_start(r)),
    "T": lambda r: date_clf(r.accept_date), "trg": lambda r: date_clf(_request_start(r)),
    "Tl": lambda r: date_clf(r.accept_date, local=True),
    "trl": lambda r: date_clf(_request_start(r), local=True),
    "Ts": lambda r: int(r.accept_date),
    "ms": lambda r: "%03d" % int((r.accept_date % 1) * 1000),
}


def compile_httplog(fmt: str = HTTPLOG, ctx=None) -> Callable[[LogRecord], bytes]:
    """A log-format string -> ``line(record) -> bytes`` (without the syslog header).

    Raises proxy.rules.RuleError for a bad format (the config parser reports it
    with file:line). Addresses are kept as text in the record (``%ci`` writes
    them as they are; ``%{+X}ci`` converts). ``option httplog``'s own format
    gets ``httplog_line``, which writes the same bytes in one step."""
    if fmt == HTTPLOG:
        return httplog_line
    return compile_logformat(fmt, ctx, mode="log", wired=_WIRED)


# The date of %tr changes once a millisecond: the last one made is kept.
_last_date = [None, b""]


def _caps(caps) -> bytes:
    """%hr/%hs followed by their separator, or nothing when there are no captures."""
    if caps is None:
        return b""
    return b"{" + b"|".join([b"" if v is None else _encode(v, _HDR_ENCODE, b"#")
                             for v in caps]) + b"} "


# termination state (str, 2 or 4 letters) -> what %tsc writes
_TSC = {}


def httplog_line(r: LogRecord) -> bytes:
    """``option httplog``'s line for ``r``: byte for byte what the compiled HTTPLOG
    format writes (tests/test_log_httplog.py compares them on varied records),
    without the generic engine's call per field (issue 17's logging benchmark:
    profiled, the engine took about 10 us of a line's cost)."""
    ti = r.t_idle
    before = ti + r.t_handshake if ti >= 0 else 0
    tq = r.t_request
    tw_at, tc_at, td_at = r.t_queue, r.t_connect, r.t_data
    start = r.accept_date + before / 1000.0
    key = (int(start), int((start % 1) * 1000))       # what date_log reads of it
    last = _last_date
    if last[0] == key:
        date = last[1]
    else:
        date = date_log(start)
        last[0], last[1] = key, date
    x = r.xprt
    fe = r.fe_name + b"~" if x is not None and x.tls is not None else r.fe_name
    src = r.src
    port = r.src_port
    ts = r.termination
    tsc = _TSC.get(ts)
    if tsc is None:
        tsc = _TSC[ts] = (ts if len(ts) == 4 else ts[:2] + "--").encode()
    method = r.method
    if method is None:
        req = b"<BADREQ>"
    else:
        req = _encode(b"%s %s HTTP/%s" % (method, r.target, r.version), _URL_ENCODE, b"#")
    cc, cs = r.cli_cookie, r.srv_cookie
    hcap, scap = r.req_captures, r.res_captures
    plus = b"+" if r.logasap else b""
    return b'%s:%s [%s] %s %s/%s %d/%d/%d/%d/%s%d %d %s%d %s %s %s %d/%d/%d/%d/%s %d/%d %s%s"%s"' % (
        src.encode() if src else b"-", b"%d" % port if port is not None else b"-", date,
        fe or b"-", r.be_name or b"-", r.server if r.server is not None else b"<NOSRV>",
        tq - ti - r.t_handshake if tq >= 0 else -1, tw_at - tq if tw_at >= 0 else -1,
        tc_at - tw_at if tc_at >= 0 else -1, td_at - tc_at if td_at >= 0 else -1,
        plus, r.t_close - before, r.status, plus, r.bytes_out, cc or b"-", cs or b"-", tsc,
        r.actconn,
        r.feconn, r.beconn, r.srv_conn,
        b"+%d" % r.retries if r.redispatched else b"%d" % r.retries, r.srv_queue,
        r.bck_queue, b"" if hcap is None else _caps(hcap),
        b"" if scap is None else _caps(scap), req)


def capture(value: Optional[bytes], length: int) -> Optional[bytes]:
    """A captured header's value as HAProxy keeps it: its first ``length`` bytes."""
    return None if value is None else value[:length]
