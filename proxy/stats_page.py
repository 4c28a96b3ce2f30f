"""The HTML statistics page (`stats enable` / `stats uri` in a proxy), and its
`;csv` export: one table per proxy as HAProxy's page lays them out (queue,
sessions, bytes, denied, errors, warnings, server state, last change, checks,
weight), plus keepwarm's reuse columns. No JavaScript; `stats refresh`
reloads the page with a meta tag.

Sans-IO: a report, the configuration and the page's settings in, the body out.
"""

from __future__ import annotations

import html
from typing import Dict, List

from proxy import haproxy_stats

_STATUS_CLASS = {"UP": "up", "OPEN": "up", "no check": "nocheck", "DOWN": "down",
                 "MAINT": "maint", "DRAIN": "drain", "NOLB": "maint"}

_STYLE = """
body { font-family: sans-serif; font-size: 12px; margin: 1em; }
table.px { border-collapse: collapse; margin-bottom: 1.5em; }
table.px th, table.px td { border: 1px solid #999; padding: 1px 4px; text-align: right; }
table.px th.pxname { background: #20a0d0; color: #fff; text-align: left; font-size: 14px; }
table.px td.name { text-align: left; }
tr.up td { background: #c0ffc0; } tr.down td { background: #ff9090; }
tr.maint td { background: #c0c0ff; } tr.drain td { background: #b0d0ff; }
tr.nocheck td { background: #e0e0e0; } tr.total td { background: #d0d0d0; font-weight: bold; }
.legend { margin-top: 1em; }
"""

_HEAD = ("Name", "Queue cur", "Queue max", "Queue limit", "Rate cur", "Rate max",
         "Sessions cur", "Sessions max",
         "Sessions limit", "Sessions total", "LbTot", "Bytes in", "Bytes out", "Denied req",
         "Errors req", "Errors conn", "Errors resp", "Warnings retr", "Warnings redis",
         "Status", "LastChk", "Wght", "Act", "Bck", "Chk", "Dwn", "Conns opened",
         "Reused", "Req/conn")
_COLS = ("qcur", "qmax", "qlimit", "rate", "rate_max", "scur", "smax", "slim", "stot",
         "lbtot", "bin", "bout",
         "dreq", "ereq", "econ", "eresp", "wretr", "wredis")


def _e(v) -> str:
    return html.escape("" if v is None else str(v))


def _duration(seconds) -> str:
    if seconds in ("", None):
        return ""
    s = int(seconds)
    if s >= 86400:
        return "%dd%dh" % (s // 86400, s // 3600 % 24)
    if s >= 3600:
        return "%dh%dm" % (s // 3600, s // 60 % 60)
    return "%dm%ds" % (s // 60, s % 60)


def render(doc, config, page, admin: bool = False, done: bool = False) -> bytes:
    """The whole HTML page. `page`: the proxy's StatsPage settings (refresh,
    hide_version, show_legends, scope); `admin`: this client may change servers
    (a form per backend); `done`: a change was just made."""
    info = doc.get("info", {})
    rows = haproxy_stats.stat_rows(doc, config)
    wanted = set(page.scope) if page.scope else None
    out = ["<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">"
           "<title>Statistics Report for keepwarm</title>"]
    if page.refresh:
        out.append('<meta http-equiv="refresh" content="%d">' % page.refresh)
    out.append("<style>%s</style></head><body>" % _STYLE)
    title = "keepwarm" if page.hide_version else "keepwarm version %s" % _e(info.get("version"))
    out.append("<h1>%s</h1>" % title)
    out.append("<h2>Statistics Report for pid %s</h2>" % _e(info.get("pid")))
    out.append("<p>uptime = %s; workers = %s; current conns = %s; dropped logs = %s</p>" % (
        _e(haproxy_stats.uptime_text(info.get("uptime", 0))), _e(info.get("nbproc")),
        sum(r.get("scur") or 0 for r in rows if r["type"] == 0),
        _e(info.get("dropped_logs", 0))))
    if done:
        out.append('<p class="done">Action processed successfully.</p>')
    by_proxy: Dict[str, List[dict]] = {}
    for r in rows:
        by_proxy.setdefault(r["pxname"], []).append(r)
    for name, prows in by_proxy.items():
        if wanted is not None and name not in wanted:
            continue
        form = admin and any(r["type"] == 2 for r in prows)
        if form:
            out.append('<form method="post" action="%s">' % _e(page.uri))
            out.append('<input type="hidden" name="b" value="#%d">' % prows[0]["iid"])
        out.append('<table class="px"><tr><th class="pxname" colspan="%d">%s</th></tr>'
                   % (len(_HEAD) + (1 if form else 0), _e(name)))
        out.append("<tr>%s%s</tr>" % ("<th></th>" if form else "",
                                      "".join("<th>%s</th>" % h for h in _HEAD)))
        for r in prows:
            box = ""
            if form:
                box = ('<td><input type="checkbox" name="s" value="%s"></td>' % _e(r["svname"])
                       if r["type"] == 2 else "<td></td>")
            out.append(_row(r, box))
        out.append("</table>")
        if form:
            out.append('Choose the action to perform on the checked servers: '
                       '<select name="action"><option value="">---</option>'
                       '<option value="ready">Set state to READY</option>'
                       '<option value="drain">Set state to DRAIN</option>'
                       '<option value="maint">Set state to MAINT</option>'
                       '<option value="dhlth">Health: disable checks</option>'
                       '<option value="ehlth">Health: enable checks</option>'
                       '<option value="shutdown">Kill Sessions</option></select> '
                       '<input type="submit" value="Apply"></form>')
    if page.show_legends:
        out.append('<p class="legend">UP: checks pass or none; DOWN: checks fail; MAINT: '
                   "disabled by an operator; DRAIN: no new sessions. Conns opened / Reused / "
                   "Req/conn: server connections keepwarm opened, requests sent on a reused "
                   "one, requests per connection opened.</p>")
    out.append("<p>Export: <a href=\"%s;csv\">CSV</a></p>" % _e(page.uri))
    out.append("</body></html>\n")
    return "".join(out).encode()


def _row(r, box="") -> str:
    typ = r["type"]
    label = {0: "Frontend", 1: "Backend"}.get(typ, r["svname"])
    status = str(r.get("status", ""))
    cls = "total" if typ in (0, 1) else _STATUS_CLASS.get(status.split(" ")[0], "")
    cells = ['<td class="name">%s</td>' % _e(label)]
    cells += ["<td>%s</td>" % _e(r.get(c, "")) for c in _COLS]
    state = status
    if typ == 2 and r.get("lastchg") not in ("", None):
        state = "%s %s" % (_duration(r["lastchg"]), status)
    cells.append("<td>%s</td>" % _e(state))
    check = r.get("check_status") or ""
    if check and r.get("check_code") not in ("", None):
        check = "%s/%s" % (check, r["check_code"])
    cells.append("<td>%s</td>" % _e(check))
    for c in ("weight", "act", "bck", "chkfail", "chkdown"):
        v = r.get(c, "")
        if typ == 2 and c in ("act", "bck"):
            v = "Y" if v == 1 else "-"
        cells.append("<td>%s</td>" % _e(v))
    conns = r.get("conn_tot") or 0
    reqs = r.get("req_tot") if typ != 2 else r.get("lbtot")
    cells.append("<td>%s</td>" % (_e(conns) if typ != 0 else ""))
    cells.append("<td>%s</td>" % (_e(r.get("reuse", "")) if typ != 0 else ""))
    ratio = "%.1f" % (reqs / conns) if typ != 0 and conns and reqs else ""
    cells.append("<td>%s</td>" % ratio)
    return '<tr class="%s">%s%s</tr>' % (cls, box, "".join(cells))
