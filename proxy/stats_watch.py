"""`keepwarm stats --watch`: a live view of a running instance, like `top`.

Sans-IO: two reports (the one before and now) and the seconds between them in,
the lines of one frame out, at most `width` columns (80 by default). Rates are
per second over the interval: requests, new server connections, and the share
of requests sent on a reused server connection.
"""

from __future__ import annotations

from typing import List, Optional

from proxy.haproxy_stats import uptime_text


def _rate(now, before, key, seconds) -> float:
    if before is None or seconds <= 0:
        return 0.0
    return max(0, (now.get(key) or 0) - (before.get(key) or 0)) / seconds


def _reuse_pct(now, before) -> str:
    if before is None:
        return "-"
    reqs = (now.get("req_tot") or 0) - (before.get("req_tot") or 0)
    reused = (now.get("reuse") or 0) - (before.get("reuse") or 0)
    return "%d%%" % min(100, round(100 * reused / reqs)) if reqs > 0 else "-"


def frame(doc, before: Optional[dict], seconds: float, width: int = 80) -> List[str]:
    """The lines of one frame; `before`: the previous report (None: the first)."""
    info = doc.get("info", {})
    fes = doc.get("frontends", {})
    bes = doc.get("backends", {})
    total_rps = sum(_rate(f, (before or {}).get("frontends", {}).get(n), "req_tot", seconds)
                    for n, f in fes.items()) if before else 0.0
    lines = [
        "keepwarm %s  pid %s  workers %s  up %s" % (
            info.get("version", "?"), info.get("pid", "?"), info.get("nbproc", "?"),
            uptime_text(info.get("uptime", 0))),
        "sessions %d  requests/s %.1f  dropped logs %s   (q: quit)" % (
            sum(f.get("scur", 0) for f in fes.values()), total_rps,
            info.get("dropped_logs", 0)),
        "",
    ]
    head = "%-28s %-9s %8s %7s %7s %5s %5s" % ("NAME", "STATUS", "REQ/S", "CONN/S",
                                              "REUSE", "CUR", "QUEUE")
    lines.append(head)
    prev_fe = (before or {}).get("frontends", {})
    for name, f in fes.items():
        lines.append(_row(name + "/FRONTEND", "OPEN", f, prev_fe.get(name), seconds,
                          frontend=True))
    prev_be = (before or {}).get("backends", {})
    for name, b in bes.items():
        pb = prev_be.get(name) or {}
        for sname, s in b.get("servers", {}).items():
            lines.append(_row("%s/%s" % (name, sname), s.get("status") or "", s,
                              (pb.get("servers") or {}).get(sname), seconds))
        up = any(str(s.get("status", "")).startswith("UP") or s.get("status") == "no check"
                 for s in b.get("servers", {}).values())
        lines.append(_row(name + "/BACKEND", "UP" if up else "DOWN", b, prev_be.get(name),
                          seconds))
    return [line[:width] for line in lines]


def _row(name, status, now, before, seconds, frontend=False) -> str:
    if len(name) > 28:
        name = name[:27] + "~"
    reqs = _rate(now, before, "req_tot" if "req_tot" in now else "lbtot", seconds)
    conns = "" if frontend else "%.1f" % _rate(now, before, "conn_tot", seconds)
    reuse = "" if frontend else _reuse_pct(now, before)
    return "%-28s %-9s %8.1f %7s %7s %5d %5s" % (
        name, str(status)[:9], reqs, conns, reuse, now.get("scur") or 0,
        "" if frontend else now.get("qcur") or 0)
