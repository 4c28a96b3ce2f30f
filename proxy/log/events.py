"""The master's event log: HAProxy 2.6's wording and levels for server and proxy events.

The messages are what HAProxy 2.6.12 sends (recorded in
tests/fixtures/haproxy_eventlog.json by record_eventlog.py): operators grep
for them, so the text is HAProxy's to the byte. Each builder returns
``(level, message)``; ``EventLog`` sends it to the targets of the proxy it is
about (a backend's ``log global`` targets, as HAProxy's send_log(proxy, ...)),
or to the global targets for what concerns the process. Builders are pure;
``EventLog`` owns the master's senders (non-blocking, as the workers').
"""

from __future__ import annotations

import os
from typing import Dict, Optional, Tuple

from .output import LogOutput

EMERG, ALERT, CRIT, ERR, WARNING, NOTICE, INFO, DEBUG = range(8)


def _escape(text: str) -> str:
    """The check's info between double quotes: a '"' or a byte outside printable
    ASCII escaped, as HAProxy's chunk_asciiencode does."""
    out = []
    for ch in text:
        if ch == '"':
            out.append('\\"')
        elif " " <= ch <= "~":
            out.append(ch)
        else:
            out.append("".join("\\x%02X" % b for b in ch.encode("utf-8")))
    return "".join(out)


def check_reason(desc: str, code: Optional[int], info: Optional[str],
                 duration: Optional[int]) -> str:
    """', reason: Layer7 wrong status, code: 500, info: "...", check duration: 1ms'."""
    out = ", reason: %s" % desc
    if code is not None:
        out += ", code: %d" % code
    if info:
        out += ', info: "%s"' % _escape(info)
    if duration is not None and duration >= 0:
        out += ", check duration: %dms" % duration
    return out


def _left(active: int, backup: int, sessions: int, requeued: int, queued: int) -> str:
    return ". %d active and %d backup servers left.%s %d sessions active, %d requeued, " \
           "%d remaining in queue." % (active, backup, _on_backup(active, backup), sessions,
                                       requeued, queued)


def _online(active: int, backup: int, requeued: int, queued: int) -> str:
    return ". %d active and %d backup servers online.%s %d sessions requeued, %d total " \
           "in queue." % (active, backup, _on_backup(active, backup), requeued, queued)


def _on_backup(active: int, backup: int) -> str:
    return " Running on backup." if backup and not active else ""


def _server(backend: str, server: str, backup: bool) -> str:
    return "%sServer %s/%s" % ("Backup " if backup else "", backend, server)


def server_down(backend: str, server: str, backup: bool, reason: str, active: int,
                nbackup: int, sessions: int = 0, requeued: int = 0, queued: int = 0
                ) -> Tuple[int, str]:
    """A server's checks took it DOWN (``reason``: check_reason(), or '' when the
    backend has option log-health-checks: the check's own line said why)."""
    return ALERT, "%s is DOWN%s%s" % (_server(backend, server, backup), reason,
                                      _left(active, nbackup, sessions, requeued, queued))


def server_up(backend: str, server: str, backup: bool, reason: str, active: int,
              nbackup: int, requeued: int = 0, queued: int = 0) -> Tuple[int, str]:
    return NOTICE, "%s is UP%s%s" % (_server(backend, server, backup), reason,
                                     _online(active, nbackup, requeued, queued))


def health_check(backend: str, server: str, backup: bool, passed: bool, reason: str,
                 health: int, rise: int, fall: int, drain: bool = False) -> Tuple[int, str]:
    """`option log-health-checks`: one check whose result or health changed."""
    if health >= rise:
        where = "%d/%d %s" % (health - rise + 1, fall, "DRAIN" if drain else "UP")
    else:
        where = "%d/%d DOWN" % (health, rise)
    return NOTICE, "Health check for %sserver %s/%s %s%s, status: %s." % (
        "backup " if backup else "", backend, server, "succeeded" if passed else "failed",
        reason, where)


def no_server(backend: str) -> Tuple[int, str]:
    return EMERG, "backend %s has no server available!" % backend


def maint_down(backend: str, server: str, backup: bool, active: int, nbackup: int,
               sessions: int = 0) -> Tuple[int, str]:
    return ALERT, "%s is going DOWN for maintenance%s" % (
        _server(backend, server, backup), _left(active, nbackup, sessions, 0, 0))


def maint_left(backend: str, server: str, backup: bool, up: bool) -> Tuple[int, str]:
    return NOTICE, "%s is %s (leaving forced maintenance)." % (
        _server(backend, server, backup), "UP/READY" if up else "DOWN")


def drain_entered(backend: str, server: str, backup: bool, active: int, nbackup: int
                  ) -> Tuple[int, str]:
    return NOTICE, "%s enters drain state%s" % (_server(backend, server, backup),
                                                 _online(active, nbackup, 0, 0))


def drain_left(backend: str, server: str, backup: bool, up: bool) -> Tuple[int, str]:
    return NOTICE, "%s is %s (leaving forced drain)." % (_server(backend, server, backup),
                                                        "UP" if up else "DOWN")


def proxy_stopped(name: str, fe_conns: int, be_conns: int) -> Tuple[int, str]:
    return WARNING, "Proxy %s stopped (cumulated conns: FE: %d, BE: %d)." % (
        name, fe_conns, be_conns)


class EventLog:
    """The master's log targets: the global ones and each proxy's, opened once."""

    def __init__(self, config, pid: Optional[int] = None):
        g = config.global_
        pid = os.getpid() if pid is None else pid
        self.outputs: Dict[Optional[str], LogOutput] = {}
        if g.log_targets:
            self.outputs[None] = LogOutput(g.log_targets, g.log_tag, g.log_send_hostname, pid)
        for px in tuple(config.frontends) + tuple(config.backends):
            if px.log.targets and px.name not in self.outputs:
                self.outputs[px.name] = LogOutput(px.log.targets, px.log.tag or g.log_tag,
                                                  g.log_send_hostname, pid)

    def __bool__(self) -> bool:
        return bool(self.outputs)

    def open(self):
        """Open every target: the warnings for those not reachable now."""
        return [w for out in self.outputs.values() for w in out.open()]

    def emit(self, proxy: Optional[str], event: Tuple[int, str]) -> None:
        """Send ``(level, message)`` to ``proxy``'s targets (None: the global ones)."""
        out = self.outputs.get(proxy)
        if out is not None:
            level, message = event
            out.emit(message.encode("utf-8", "replace"), level)

    def close(self) -> None:
        for out in self.outputs.values():
            out.close()
