"""Health checks run by the master: one probe per checked server per interval, HAProxy's rise/fall rules.

HAProxy 2.6 semantics, as its configuration manual and ``show stat`` define them:

* A server's health is a counter from 0 to ``rise + fall - 1``; the server is
  UP while health >= ``rise``.  A success adds one (and jumps to the top once
  ``rise`` is reached); a failure takes one away (and drops to 0 once below
  ``rise``).  So a fully UP server needs ``fall`` consecutive failures to go
  DOWN and a fully DOWN one ``rise`` consecutive successes to come UP.
* A checked server starts UP at health ``rise``: it takes traffic at once, but
  the first failed check marks it DOWN ("UP 1/3" in ``show stat`` until the first
  success).  HAProxy 3.1 names this default ``init-state up``.  Leaving
  maintenance puts the server back in the same state, checked at once.
* Interval (HAProxy's ``srv_getinter``): ``inter`` when fully UP, ``downinter``
  when fully DOWN, ``fastinter`` while in between; each falls back to
  ``inter``.  The next probe starts one interval after the previous one ended.
  The first probes are spread over the shortest interval so N servers do not
  fire together.
* ``timeout check`` set: the connect may take min(``inter``, ``timeout
  connect``) and, once connected, the response ``timeout check``.  Not set:
  ``inter`` bounds the whole check (connect + read).
* Without ``option httpchk``/``http-check`` a check is a TCP connect (L4OK,
  L4CON, L4TOUT).  With it, one HTTP request (``Connection: close``; a Host
  header for HTTP/1.1) and at most RESPONSE_LIMIT bytes of response, judged by
  ``http-check expect`` or, by default, status 2xx/3xx (L7OK, L7STS, L7RSP,
  L7TOUT).

Everything is non-blocking: probes are sockets registered on the master's
selector (``key.data(mask)``), timeouts are enforced by ``tick(now)``.
"""

from __future__ import annotations

import errno
import os
import re
import random
import selectors
import socket
import ssl
import time
from typing import Callable, Dict, List, Optional, Tuple

from proxy.log import events as ev
from proxy.tls.server import client_context

RESPONSE_LIMIT = 16 * 1024          # HAProxy reads a check response into one 16 KiB buffer

# HAProxy's check status codes and their descriptions (``show stat`` check_status).
CHECK_DESC = {
    "UNK": "Unknown",
    "INI": "Initializing",
    "SOCKERR": "Socket error",
    "L4OK": "Layer4 check passed",
    "L4TOUT": "Layer4 timeout",
    "L4CON": "Layer4 connection problem",
    "L6OK": "Layer6 check passed",
    "L6TOUT": "Layer6 timeout",
    "L6RSP": "Layer6 invalid response",
    "L7OK": "Layer7 check passed",
    "L7TOUT": "Layer7 timeout",
    "L7RSP": "Layer7 invalid response",
    "L7STS": "Layer7 wrong status",
    "HANA": "Health analyze",
}
ADMIN_STATES = ("ready", "drain", "maint")
PASSED = ("L4OK", "L6OK", "L7OK")


# --------------------------------------------------------------------------- HTTP (no I/O)

def build_request(chk, host_header: Optional[str]) -> bytes:
    """The check request for HttpCheck ``chk``; ``host_header`` is used when 1.1 needs a Host."""
    lines = ["%s %s %s" % (chk.method, chk.uri, chk.version)]
    names = set()
    for name, value in chk.headers:
        lines.append("%s: %s" % (name, value))
        names.add(name.lower())
    # RFC 9112 §3.2: an HTTP/1.1 request must carry Host; HAProxy sends none
    # unless configured, we fill in the server's address rather than send an
    # invalid request.
    if chk.version == "HTTP/1.1" and "host" not in names and host_header:
        lines.append("Host: %s" % host_header)
    body = chk.body.encode("utf-8")
    if body and "content-length" not in names and "transfer-encoding" not in names:
        lines.append("Content-Length: %d" % len(body))
    if "connection" not in names:
        lines.append("Connection: close")      # a check connection is never reused
    return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8") + body


_HEAD_END = re.compile(rb"\r?\n\r?\n")
_STATUS_LINE = re.compile(rb"HTTP/(\d)\.(\d) (\d{3})(?:[ \t]([^\r\n]*))?\r?$")


class BadResponse(ValueError):
    """The bytes received are not an HTTP/1.x response (L7RSP)."""


def parse_response(buf: bytes, eof: bool, method: str):
    """Read a check response from ``buf``.

    Returns None while more bytes are needed, else ``(status, reason, body)``.
    Once ``eof`` is set or RESPONSE_LIMIT bytes are in hand, the answer is
    given on what was received (HAProxy judges what fits its buffer).
    Raises BadResponse for bytes that are not a response.
    """
    full = eof or len(buf) >= RESPONSE_LIMIT
    pos = 0
    while True:
        m = _HEAD_END.search(buf, pos)
        if m is None:
            if full:
                raise BadResponse("incomplete response head" if buf else "empty response")
            return None
        lines = buf[pos:m.start()].split(b"\n")
        sm = _STATUS_LINE.match(lines[0])
        if sm is None:
            raise BadResponse("invalid status line")
        status = int(sm.group(3))
        reason = (sm.group(4) or b"").decode("latin-1").strip()
        headers = {}
        for line in lines[1:]:
            name, sep, value = line.rstrip(b"\r").partition(b":")
            if not sep or not name or name != name.strip():
                raise BadResponse("invalid header line")
            key = name.decode("latin-1").lower()
            value = value.strip().decode("latin-1")
            headers[key] = headers[key] + "," + value if key in headers else value
        body_at = m.end()
        if 100 <= status < 200 and status != 101:
            pos = body_at                      # interim response: the final one follows
            continue
        break
    rest = buf[body_at:]
    if method == "HEAD" or status in (204, 304) or status == 101:
        return status, reason, b""
    if "chunked" in headers.get("transfer-encoding", "").lower():
        body, done = _dechunk(rest)
        if not done and not full:
            return None
        return status, reason, body
    length = headers.get("content-length")
    if length is not None:
        try:
            n = int(length.split(",")[0])
        except ValueError:
            raise BadResponse("invalid Content-Length") from None
        if len(rest) >= n:
            return status, reason, rest[:n]
        return (status, reason, rest) if full else None
    return (status, reason, rest) if full else None     # body delimited by the close


def _dechunk(data: bytes) -> Tuple[bytes, bool]:
    """Decode as much chunked body as ``data`` holds; (body, complete)."""
    out = []
    pos = 0
    while True:
        eol = data.find(b"\r\n", pos)
        if eol < 0:
            return b"".join(out), False
        size_text = data[pos:eol].split(b";", 1)[0].strip()
        try:
            size = int(size_text, 16)
        except ValueError:
            raise BadResponse("invalid chunk size") from None
        if size == 0:
            return b"".join(out), True
        start = eol + 2
        out.append(data[start:start + size])
        if len(data) < start + size + 2:
            return b"".join(out), False
        pos = start + size + 2


def judge_response(chk, status: int, reason: str, body: bytes) -> Tuple[str, Optional[str]]:
    """Apply ``http-check expect`` (default: 2xx or 3xx); (check_status, info)."""
    kind = chk.expect_kind
    if kind is None:
        ok = 200 <= status < 400
        return ("L7OK", None) if ok else ("L7STS", reason or None)
    if kind == "status":
        ok = _status_in(status, chk.expect_status)
    elif kind == "rstatus":
        ok = re.search(chk.expect_status, str(status)) is not None
    elif kind == "string":
        ok = chk.expect_string.encode("utf-8") in body
    else:                                      # rstring
        ok = re.search(chk.expect_string.encode("utf-8"), body) is not None
    if chk.expect_negate:
        ok = not ok
    if ok:
        return "L7OK", None
    if kind in ("status", "rstatus"):
        return "L7STS", reason or None
    neg = "!" if chk.expect_negate else ""
    return "L7RSP", "HTTP check did not match %s%s '%s'" % (neg, kind, chk.expect_string)


def _status_in(status: int, spec: str) -> bool:
    for part in spec.split(","):
        low, _, high = part.partition("-")
        if int(low) <= status <= int(high or low):
            return True
    return False


# --------------------------------------------------------------------------- one server

class ServerHealth:
    """One server's check state: HAProxy's health counter, admin state and last result."""

    def __init__(self, backend, server, family, sockaddr, now):
        self.backend = backend
        self.server = server
        self.key = (backend.name, server.name)
        self.checked = server.check
        self.rise = server.rise
        self.fall = server.fall
        self.inter = server.inter
        self.fastinter = server.fastinter or server.inter
        self.downinter = server.downinter or server.inter
        self.health = self.rise                # UP, going down at the first failure
        self.admin = "maint" if server.disabled else "ready"
        self.check_status = "INI"
        self.check_code: Optional[int] = None
        self.check_info: Optional[str] = None
        self.check_duration: Optional[int] = None
        self.chkfail = 0
        self.chkdown = 0
        self.last_change = now
        self.next_at: Optional[float] = None
        self.probe: Optional[Probe] = None
        self.family, self.sockaddr = _check_target(server, family, sockaddr)

    @property
    def up(self) -> bool:
        return not self.checked or self.health >= self.rise

    @property
    def probing(self) -> bool:
        """Checks run for a checked server unless it is in maintenance."""
        return self.checked and self.admin != "maint"

    @property
    def usable(self) -> bool:
        return self.admin == "ready" and self.up

    def status(self) -> str:
        """The ``show stat`` status column."""
        if self.admin == "maint":
            return "MAINT"
        top = self.rise + self.fall - 1
        if self.up:
            if self.admin == "drain":
                return "DRAIN"
            if not self.checked:
                return "no check"
            if self.health < top:
                return "UP %d/%d" % (self.health - self.rise + 1, self.fall)
            return "UP"
        if self.health > 0:
            return "DOWN %d/%d" % (self.health, self.rise)
        return "DOWN"

    def kind(self) -> Tuple[bool, str]:
        """What workers care about: usable, and the status without its counter."""
        return self.usable, self.status().split(" ")[0]

    def interval(self) -> float:
        """HAProxy's srv_getinter: inter when fully UP, downinter when DOWN, fastinter between."""
        if self.health >= self.rise + self.fall - 1:
            return self.inter
        if self.health == 0:
            return self.downinter
        return self.fastinter

    def record(self, ok: bool) -> None:
        """Apply one check result to the health counter."""
        top = self.rise + self.fall - 1
        if ok:
            if self.health < top:
                self.health += 1
                if self.health >= self.rise:
                    self.health = top
        elif self.health > 0:
            self.chkfail += 1
            was_up = self.up
            self.health -= 1
            if self.health < self.rise:
                self.health = 0
                if was_up:
                    self.chkdown += 1

    def state(self, now: float) -> Dict:
        return {
            "status": self.status(),
            "usable": self.usable,
            "admin": self.admin,
            "check_status": self.check_status if self.checked else None,
            "check_desc": CHECK_DESC.get(self.check_status) if self.checked else None,
            "check_code": self.check_code,
            "check_info": self.check_info,
            "check_duration": self.check_duration,
            "chkfail": self.chkfail,
            "chkdown": self.chkdown,
            "lastchg": int(now - self.last_change),
            "backup": self.server.backup,
            "weight": self.server.weight,
        }


def _check_target(server, family, sockaddr):
    """(family, sockaddr) that checks connect to: the server's, changed by ``addr``/``port``."""
    if server.check_addr:
        family = socket.AF_INET6 if ":" in server.check_addr else socket.AF_INET
        sockaddr = (server.check_addr, sockaddr[1]) + ((0, 0) if family == socket.AF_INET6 else ())
    if server.check_port:
        sockaddr = (sockaddr[0], server.check_port) + tuple(sockaddr[2:])
    return family, sockaddr


def _host_header(server) -> str:
    host = "[%s]" % server.host if ":" in server.host else server.host
    return host if server.port == 80 else "%s:%d" % (host, server.port)


# --------------------------------------------------------------------------- one probe

class Probe:
    """One check in flight: a non-blocking socket, the request to send, the bytes received."""

    __slots__ = ("sock", "started", "deadline", "connected", "request", "sent", "buf",
                 "registered", "tls", "handshaking")

    def __init__(self, sock, started, deadline, request):
        self.sock = sock
        self.started = started
        self.deadline = deadline
        self.connected = False
        self.request = request               # None for a layer-4 check
        self.sent = 0
        self.buf = bytearray()
        self.registered = False
        self.tls = None                      # `server ... ssl`: the check's client context
        self.handshaking = False


def spread_interval(inter: float, percent: int, draw: float) -> float:
    """`spread-checks P`: the interval moved by up to ±P% (`draw` uniform in [0, 1)),
    as HAProxy's srv_getinter users do, so that checks of servers on one host do
    not fall in step."""
    if not percent:
        return inter
    rv = inter * percent / 100.0
    return inter + rv - 2.0 * rv * draw


class HealthChecker:
    """Runs every server's checks on the master's selector and keeps their states.

    ``on_change(backend, server, state)`` is called whenever a server's
    ``usable`` flag or status word (UP, DOWN, MAINT, DRAIN, no check) changes;
    ``log(message)`` gets HAProxy's lines for transitions and check results
    (stderr). ``events``, when given, is the master's event log: its
    ``emit(proxy, (level, message))`` sends the same lines to the backend's log
    targets at HAProxy's levels (check results only with ``option
    log-health-checks``, as HAProxy), and its ``load(backend, server)`` says
    (sessions active, queued) for the transition lines.
    """

    def __init__(self, sel: selectors.BaseSelector, config, addrs: Dict,
                 on_change: Callable[[str, str, Dict], None], log: Callable[[str], None],
                 events=None):
        self.sel = sel
        self.on_change = on_change
        self.log = log
        self.events = events
        now = time.monotonic()
        self.servers: Dict[Tuple[str, str], ServerHealth] = {}
        self.by_backend: Dict[str, List[ServerHealth]] = {}
        for be in config.backends:
            lst = self.by_backend.setdefault(be.name, [])
            for srv in be.servers:
                family, sockaddr = addrs[(be.name, srv.name)]
                hs = ServerHealth(be, srv, family, sockaddr, now)
                self.servers[hs.key] = hs
                lst.append(hs)
        # backend -> whether it had a usable server at its last change: HAProxy says
        # "has no server available!" once, when the last one goes
        self.available: Dict[str, bool] = {}
        g = config.global_
        self.spread = g.spread_checks        # percent of random spread on each interval
        # HAProxy spreads the first checks over the shortest interval, or over
        # max-spread-checks when that is shorter.
        probing = [hs for hs in self.servers.values() if hs.probing]
        if probing:
            first = min(hs.interval() for hs in probing)
            if g.max_spread_checks is not None:
                first = min(first, g.max_spread_checks)
            for pos, hs in enumerate(probing):
                hs.next_at = now + first * pos / len(probing)

    # ------------------------------------------------------------ queries

    def states(self) -> Dict[Tuple[str, str], Dict]:
        now = time.monotonic()
        return {key: hs.state(now) for key, hs in self.servers.items()}

    def state(self, backend: str, server: str) -> Dict:
        return self.servers[(backend, server)].state(time.monotonic())

    def next_due(self) -> Optional[float]:
        """The earliest monotonic time ``tick`` has work to do (None: nothing scheduled)."""
        times = [hs.probe.deadline if hs.probe else hs.next_at
                 for hs in self.servers.values() if hs.probe or hs.next_at is not None]
        return min(times) if times else None

    # ------------------------------------------------------------ the loop's side

    def tick(self, now: float) -> None:
        """Expire probes past their deadline, then start the ones that are due."""
        for hs in self.servers.values():
            probe = hs.probe
            if probe is not None:
                if now >= probe.deadline:
                    timed_out = "L6TOUT" if probe.handshaking else \
                        "L7TOUT" if probe.connected else "L4TOUT"
                    self.finish(hs, timed_out, None, None)
            elif hs.next_at is not None and now >= hs.next_at and hs.probing:
                self.start_probe(hs, now)

    def start_probe(self, hs: ServerHealth, now: float) -> None:
        hs.next_at = None
        be = hs.backend
        chk = be.httpchk
        request = build_request(chk, _host_header(hs.server)) if chk is not None else None
        if be.timeout_check is not None and be.timeout_connect is not None:
            deadline = now + min(hs.inter, be.timeout_connect)
        else:
            deadline = now + hs.inter
        try:
            sock = socket.socket(hs.family, socket.SOCK_STREAM)
        except OSError as exc:
            hs.probe = Probe(None, now, deadline, request)
            self.finish(hs, "SOCKERR", None, exc.strerror)
            return
        probe = Probe(sock, now, deadline, request)
        tls = hs.server.tls
        if tls is not None and tls.check:
            probe.tls = tls              # the check speaks TLS too (HAProxy: check-ssl)
        hs.probe = probe
        try:
            sock.setblocking(False)
            if request is not None:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            err = sock.connect_ex(hs.sockaddr)
        except OSError as exc:
            self.finish(hs, "SOCKERR", None, exc.strerror)
            return
        if err == 0:
            self.connected(hs)
        elif err in (errno.EINPROGRESS, errno.EAGAIN, errno.EALREADY):
            self.sel.register(sock, selectors.EVENT_WRITE, lambda mask, h=hs: self.on_event(h))
            probe.registered = True
        else:
            self.finish(hs, "L4CON", None, os.strerror(err))

    def on_event(self, hs: ServerHealth) -> None:
        probe = hs.probe
        if probe is None:
            return
        if not probe.connected:
            err = probe.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if err:
                self.finish(hs, "L4CON", None, os.strerror(err))
                return
            self.connected(hs)
        elif probe.handshaking:
            self.handshake(hs)
        elif probe.sent < len(probe.request):
            self.send(hs)
        else:
            self.receive(hs)

    def connected(self, hs: ServerHealth) -> None:
        probe = hs.probe
        probe.connected = True
        if probe.tls is not None:
            self.start_tls(hs)
            return
        self.layer5(hs)

    def start_tls(self, hs: ServerHealth) -> None:
        """TLS over the check's connection (proxy/tls/server.py's context)."""
        probe = hs.probe
        tls = probe.tls
        name = tls.check_sni or tls.hostname
        try:
            probe.sock = client_context(tls, named=bool(name)).wrap_socket(
                probe.sock, server_hostname=name, do_handshake_on_connect=False)
        except (ssl.SSLError, OSError, ValueError) as exc:
            self.finish(hs, "L6RSP", None, str(exc))
            return
        probe.handshaking = True
        self.handshake(hs)

    def handshake(self, hs: ServerHealth) -> None:
        probe = hs.probe
        try:
            probe.sock.do_handshake()
        except ssl.SSLWantReadError:
            self.watch(probe, selectors.EVENT_READ, hs)
            return
        except ssl.SSLWantWriteError:
            self.watch(probe, selectors.EVENT_WRITE, hs)
            return
        except (ssl.SSLError, OSError, ValueError) as exc:
            self.finish(hs, "L6RSP", None, getattr(exc, "reason", None) or str(exc))
            return
        probe.handshaking = False
        if probe.request is None:
            self.finish(hs, "L6OK", None, None)
            return
        self.layer5(hs)

    def watch(self, probe: Probe, events: int, hs: ServerHealth) -> None:
        callback = lambda mask, h=hs: self.on_event(h)        # noqa: E731
        if probe.registered:
            self.sel.modify(probe.sock, events, callback)
        else:
            self.sel.register(probe.sock, events, callback)
            probe.registered = True

    def layer5(self, hs: ServerHealth) -> None:
        """Connected (and TLS done): a TCP check passes, an HTTP one sends."""
        probe = hs.probe
        if probe.request is None:
            self.finish(hs, "L4OK", None, None)
            return
        timeout_check = hs.backend.timeout_check
        if timeout_check is not None:
            probe.deadline = time.monotonic() + timeout_check
        self.send(hs)

    def send(self, hs: ServerHealth) -> None:
        probe = hs.probe
        try:
            probe.sent += probe.sock.send(probe.request[probe.sent:])
        except (BlockingIOError, ssl.SSLWantReadError, ssl.SSLWantWriteError):
            pass
        except OSError as exc:
            self.finish(hs, "L4CON", None, exc.strerror)
            return
        events = selectors.EVENT_WRITE if probe.sent < len(probe.request) else selectors.EVENT_READ
        self.watch(probe, events, hs)

    def receive(self, hs: ServerHealth) -> None:
        probe = hs.probe
        eof = False
        try:
            data = probe.sock.recv(RESPONSE_LIMIT - len(probe.buf))
        except (BlockingIOError, ssl.SSLWantReadError, ssl.SSLWantWriteError):
            return
        except ssl.SSLZeroReturnError:
            data = b""                   # close_notify: the end of the response
        except OSError as exc:
            if not probe.buf:
                self.finish(hs, "L4CON", None, exc.strerror)
                return
            data = b""
        if data:
            probe.buf += data
        else:
            eof = True
        method = hs.backend.httpchk.method
        try:
            answer = parse_response(bytes(probe.buf), eof, method)
        except BadResponse as exc:
            self.finish(hs, "L7RSP", None, str(exc))
            return
        if answer is None:
            return
        status, reason, body = answer
        result, info = judge_response(hs.backend.httpchk, status, reason, body)
        self.finish(hs, result, status, info)

    def finish(self, hs: ServerHealth, result: str, code: Optional[int], info: Optional[str]) -> None:
        """Close the probe, apply its result, log, notify and schedule the next one."""
        probe, hs.probe = hs.probe, None
        now = time.monotonic()
        self.close_probe(probe)
        duration = int((now - probe.started) * 1000)
        before_kind, before_health, before_status = hs.kind(), hs.health, hs.check_status
        hs.check_status, hs.check_code, hs.check_info = result, code, info
        hs.check_duration = duration
        hs.record(result in PASSED)
        hs.next_at = now + spread_interval(hs.interval(), self.spread, random.random())
        self.report(hs, before_kind, before_health, now, before_status)

    def report(self, hs, before_kind, before_health, now, before_status=None) -> None:
        """HAProxy's lines for one check result: a transition (UP/DOWN), or with
        ``option log-health-checks`` the check itself when its result or the
        server's health changed."""
        be, srv = hs.key
        backup = hs.server.backup
        reason = ev.check_reason(CHECK_DESC.get(hs.check_status, hs.check_status),
                                 hs.check_code, hs.check_info, hs.check_duration)
        logged = hs.backend.log.log_health_checks
        if hs.health != before_health or (logged and before_status is not None
                                          and hs.check_status != before_status):
            line = ev.health_check(be, srv, backup, hs.check_status in PASSED, reason,
                                   hs.health, hs.rise, hs.fall, hs.admin == "drain")
            self.log(line[1])
            if logged:
                self.event(be, line)
        if hs.kind() != before_kind:
            active, backup_n = self.usable_counts(be)
            why = "" if logged else reason      # the check's own line said why
            if hs.up:
                line = ev.server_up(be, srv, backup, why, active, backup_n)
            else:
                sessions, queued = self.load(be, srv)
                line = ev.server_down(be, srv, backup, why, active, backup_n, sessions, 0,
                                      queued)
            self.log(line[1])
            self.event(be, line)
            self.changed(hs, now)

    def event(self, backend: str, line) -> None:
        if self.events is not None:
            self.events.emit(backend, line)

    def load(self, backend: str, server: str) -> Tuple[int, int]:
        return self.events.load(backend, server) if self.events is not None else (0, 0)

    def changed(self, hs: ServerHealth, now: float) -> None:
        hs.last_change = now
        be = hs.backend.name
        available = any(s.usable for s in self.by_backend[be])
        if self.available.get(be, True) and not available:
            line = ev.no_server(be)
            self.log(line[1])
            self.event(be, line)
        self.available[be] = available
        self.on_change(be, hs.server.name, hs.state(now))

    def usable_counts(self, backend: str) -> Tuple[int, int]:
        servers = self.by_backend[backend]
        active = sum(1 for s in servers if s.usable and not s.server.backup)
        backup = sum(1 for s in servers if s.usable and s.server.backup)
        return active, backup

    # ------------------------------------------------------------ passive health

    def passive_error(self, backend: str, server: str) -> None:
        """A worker saw `error-limit` consecutive errors on live traffic (`observe`):
        apply the server's `on-error` action, as HAProxy does.

          fastinter    -- only check sooner (at fastinter);
          fail-check   -- count a failed check, and check sooner (the default);
          sudden-death -- leave one failed check before DOWN, and check sooner;
          mark-down    -- mark the server DOWN at once, and check sooner.
        Servers without `check` have no health to lower: nothing happens.
        """
        hs = self.servers.get((backend, server))
        if hs is None or not hs.probing:
            return
        now = time.monotonic()
        before_kind, before_health = hs.kind(), hs.health
        action = hs.server.on_error
        hs.check_status, hs.check_code, hs.check_info = "HANA", None, "on-error %s" % action
        hs.check_duration = 0
        if action == "fail-check":
            hs.record(False)
        elif action == "sudden-death":
            if hs.health > hs.rise:
                hs.health = hs.rise
            else:
                hs.record(False)
        elif action == "mark-down":
            while hs.health > 0:
                hs.record(False)
        due = now + hs.fastinter
        if hs.probe is None and (hs.next_at is None or hs.next_at > due):
            hs.next_at = due
        self.report(hs, before_kind, before_health, now)

    # ------------------------------------------------------------ admin

    def set_address(self, backend: str, server: str, family, sockaddr) -> None:
        """`set server B/S addr`: checks go to the new address (unless `addr`/`port`
        give them their own), from the next probe on."""
        hs = self.servers[(backend, server)]
        hs.family, hs.sockaddr = _check_target(hs.server, family, sockaddr)

    def set_checking(self, backend: str, server: str, enabled: bool) -> None:
        """`disable health B/S`: no more checks and the last result ignored (the
        server counts as UP); `enable health B/S`: checks resume now."""
        hs = self.servers[(backend, server)]
        if enabled == hs.checked:
            return
        before = hs.kind()
        now = time.monotonic()
        hs.checked = enabled
        if hs.probe is not None:
            self.close_probe(hs.probe)
            hs.probe = None
        hs.next_at = now if enabled and hs.admin != "maint" else None
        if not enabled:
            hs.health = hs.rise + hs.fall - 1
        if hs.kind() != before:
            self.changed(hs, now)

    def set_admin(self, backend: str, server: str, admin: str) -> Dict:
        """``ready``, ``drain`` or ``maint`` (``enable/disable server``, ``set server … state``)."""
        if admin not in ADMIN_STATES:
            raise ValueError("state must be one of %s" % ", ".join(ADMIN_STATES))
        hs = self.servers[(backend, server)]
        now = time.monotonic()
        if admin == hs.admin:
            return hs.state(now)
        before = hs.kind()
        previous, hs.admin = hs.admin, admin
        be, srv, backup = hs.key + (hs.server.backup,)
        if admin == "maint":
            if hs.probe is not None:
                self.close_probe(hs.probe)
                hs.probe = None
            hs.next_at = None
            active, backup_n = self.usable_counts(backend)
            line = ev.maint_down(be, srv, backup, active, backup_n, self.load(be, srv)[0])
        else:
            if previous == "maint" and hs.checked:
                hs.health = hs.rise            # as at start: UP, checked at once
                hs.next_at = now
            if admin == "drain":
                active, backup_n = self.usable_counts(backend)
                line = ev.drain_entered(be, srv, backup, active, backup_n)
            elif previous == "maint":
                line = ev.maint_left(be, srv, backup, hs.up)
            else:
                line = ev.drain_left(be, srv, backup, hs.up)
        self.log(line[1])
        self.event(be, line)
        if hs.kind() != before:
            self.changed(hs, now)
        return hs.state(now)

    # ------------------------------------------------------------ teardown

    def close_probe(self, probe: Optional[Probe]) -> None:
        if probe is None or probe.sock is None:
            return
        if probe.registered:
            try:
                self.sel.unregister(probe.sock)
            except (KeyError, ValueError):
                pass
            probe.registered = False
        probe.sock.close()

    def close(self) -> None:
        """Abort every probe in flight and stop scheduling new ones."""
        for hs in self.servers.values():
            if hs.probe is not None:
                self.close_probe(hs.probe)
                hs.probe = None
            hs.next_at = None

    def close_after_fork(self) -> None:
        """In a forked worker: close the inherited copies of probe sockets.

        Without this a worker forked while a check is in flight holds that
        connection open after the master closed it (no FIN reaches the server).
        The selector is the master's and is not touched.
        """
        for hs in self.servers.values():
            if hs.probe is not None and hs.probe.sock is not None:
                hs.probe.sock.close()
            hs.probe = None
            hs.next_at = None
