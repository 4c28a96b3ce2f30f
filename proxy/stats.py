"""The master's book of counters: worker snapshots in, totals that survive worker restarts out."""

import time
from collections import deque

from workers.counters import FIELDS, GAUGES, MAXIMA

_GAUGE_IDX = [i for i, f in enumerate(FIELDS) if f in GAUGES]
_MAX_IDX = [i for i, f in enumerate(FIELDS) if f in MAXIMA]
_SCUR = FIELDS.index("scur")
_SMAX = FIELDS.index("smax")


def _flatten(snap):
    """Worker snapshot -> {key: counters list}; keys ("fe", name), ("be", name), ("srv", be, srv)."""
    flat = {}
    for name, values in snap.get("fe", {}).items():
        flat[("fe", name)] = values
    for be, body in snap.get("be", {}).items():
        flat[("be", be)] = body.get("own", [0] * len(FIELDS))
        for srv, values in body.get("srv", {}).items():
            flat[("srv", be, srv)] = values
    return flat


class StatsBook:
    """Sums the latest snapshot of every live worker with what dead workers left behind."""

    def __init__(self):
        self.live = {}        # worker pid -> flat snapshot
        self.retired = {}     # key -> counters summed over workers that exited
        self.smax = {}        # key -> largest aggregate scur seen
        self.dropped_live = {}        # worker pid -> log lines it dropped (dropped_logs)
        self.errors = {}              # frontend -> (time, src, port, bytes): show errors
        # Rates: (time, {key: (stot, req_tot)}) samples over the last seconds, and
        # the highest rates seen (rate_max, req_rate_max).
        self.samples = deque()
        self.max_rates = {}
        self.dropped_retired = 0

    @property
    def dropped_logs(self):
        """Log lines dropped by every worker (HAProxy's DroppedLogs in `show info`)."""
        return self.dropped_retired + sum(self.dropped_live.values())

    def update(self, pid, snap):
        for fe, when, src, port, data in snap.get("errors", ()):
            self.errors[fe] = (when, src, port, data)      # `show errors`: the last one
        flat = _flatten(snap)
        self.live[pid] = flat
        self.dropped_live[pid] = snap.get("dropped_logs", 0)
        for key in flat:
            scur = sum(f[key][_SCUR] for f in self.live.values() if key in f)
            if scur > self.smax.get(key, 0):
                self.smax[key] = scur

    def retire(self, pid):
        """A worker exited: keep its cumulative counters, forget its gauges."""
        self.dropped_retired += self.dropped_live.pop(pid, 0)
        flat = self.live.pop(pid, None)
        if not flat:
            return
        for key, values in flat.items():
            acc = self.retired.setdefault(key, [0] * len(FIELDS))
            for i, v in enumerate(values):
                if i in _GAUGE_IDX:
                    continue
                acc[i] = max(acc[i], v) if i in _MAX_IDX else acc[i] + v

    def sessions_of(self, pids):
        """{key: stot}: the sessions the live workers `pids` reported so far."""
        at = FIELDS.index("stot")
        out = {}
        for pid in pids:
            for key, values in self.live.get(pid, {}).items():
                out[key] = out.get(key, 0) + values[at]
        return out

    def totals(self):
        """{key: {field: value}} over live and retired workers."""
        sums = {}
        for key, values in self.retired.items():
            sums[key] = list(values)
        for flat in self.live.values():
            for key, values in flat.items():
                acc = sums.setdefault(key, [0] * len(FIELDS))
                for i, v in enumerate(values):
                    if i in _MAX_IDX:
                        acc[i] = max(acc[i], v)
                    else:
                        acc[i] += v
        out = {}
        for key, values in sums.items():
            values[_SMAX] = max(values[_SMAX], self.smax.get(key, 0))
            out[key] = dict(zip(FIELDS, values))
        return out

    def rates(self, totals, now=None):
        """{key: (sessions/s, requests/s)} over about the last second (HAProxy's rate
        and req_rate), sampling `totals` at most every 0.25 s; the maxima are kept."""
        now = time.monotonic() if now is None else now
        samples = self.samples
        if not samples or now - samples[-1][0] >= 0.25:
            samples.append((now, {k: (v["stot"], v["req_tot"]) for k, v in totals.items()}))
        while len(samples) > 2 and now - samples[1][0] >= 1.0:
            samples.popleft()
        out = {}
        t0, old = samples[0]
        span = now - t0
        for key, v in totals.items():
            if span >= 0.2 and key in old:
                s0, r0 = old[key]
                rate = (max(0, v["stot"] - s0) / span, max(0, v["req_tot"] - r0) / span)
            else:
                rate = (0.0, 0.0)
            m = self.max_rates.get(key, (0, 0))
            self.max_rates[key] = (max(m[0], round(rate[0])), max(m[1], round(rate[1])))
            out[key] = (round(rate[0]), round(rate[1]))
        return out

    def report(self, config, info, server_states):
        """The document `keepwarm stats --json` prints (see README, "Stats")."""
        totals = self.totals()
        rates = self.rates(totals)

        def with_rates(row, key):
            r, m = rates.get(key, (0, 0)), self.max_rates.get(key, (0, 0))
            row.update(rate=r[0], rate_max=m[0], req_rate=r[1], req_rate_max=m[1])
            return row
        zero = dict.fromkeys(FIELDS, 0)
        frontends = {}
        for fe in config.frontends:
            frontends[fe.name] = with_rates(_public(totals.get(("fe", fe.name), zero)),
                                            ("fe", fe.name))
        backends = {}
        for be in config.backends:
            own = totals.get(("be", be.name), zero)
            agg = dict(own)
            servers = {}
            for srv in be.servers:
                c = totals.get(("srv", be.name, srv.name), zero)
                for f in FIELDS:
                    if f not in MAXIMA:
                        agg[f] += c[f]
                row = with_rates(_public(c), ("srv", be.name, srv.name))
                state = server_states.get((be.name, srv.name), {})
                row["status"] = state.get("status", "MAINT" if srv.disabled else "no check")
                row["weight"] = state.get("weight", srv.weight)
                for f in ("check_status", "check_code", "check_duration", "chkfail", "chkdown",
                          "lastchg"):
                    row[f] = state.get(f)
                servers[srv.name] = row
            agg["smax"] = max(own["smax"], self.smax.get(("be", be.name), 0),
                              max([servers[s]["smax"] for s in servers] or [0]))
            row = with_rates(_public(agg), ("be", be.name))
            for f in ("rate", "req_rate"):   # the backend's: its own and its servers'
                row[f] += sum(s[f] for s in servers.values())
            row["servers"] = servers
            backends[be.name] = row
        return {"info": info, "frontends": frontends, "backends": backends}

    def clear(self, everything):
        """`clear counters [all]`: the maxima, or every counter; the workers zero
        theirs too (their next snapshots start from there)."""
        self.max_rates.clear()
        if everything:
            self.retired.clear()
            self.dropped_retired = 0
            self.smax.clear()
            for flat in self.live.values():
                for values in flat.values():
                    values[:] = [0] * len(values)
        else:
            self.smax.clear()
            for acc in list(self.retired.values()) + [v for f in self.live.values()
                                                        for v in f.values()]:
                for i in _MAX_IDX:
                    acc[i] = 0

    def worker_requests(self, pid):
        """(sessions, requests) a live worker has reported, for the per-worker view."""
        flat = self.live.get(pid, {})
        stot = req = 0
        for key, values in flat.items():
            if key[0] == "fe":
                stot += values[FIELDS.index("stot")]
                req += values[FIELDS.index("req_tot")]
        return stot, req


def _public(counters):
    row = dict(counters)
    reqs = row["req_tot"]
    conns = row["conn_tot"]
    # Requests per server connection opened: the number keepwarm exists to raise.
    row["reuse_ratio"] = round(reqs / conns, 2) if conns else None
    return row


def format_table(doc):
    """A human table of `doc` (the dict `report` returns)."""
    info = doc["info"]
    lines = ["keepwarm %s  pid %s  workers %s  uptime %ss  parser %s  restarts %s  "
             "dropped logs %s" % (
                 info.get("version"), info.get("pid"), info.get("nbproc"),
                 int(info.get("uptime", 0)), info.get("parser"), info.get("worker_restarts"),
                 info.get("dropped_logs", 0))]
    if info.get("old_workers"):
        lines.append("reloads %s; old workers finishing their streams: %s" % (
            info.get("reloads"), ", ".join(str(w.get("pid")) for w in info["old_workers"])))
    cols = ("scur", "smax", "stot", "req_tot", "hrsp_2xx", "hrsp_3xx", "hrsp_4xx", "hrsp_5xx",
            "bin", "bout", "conn_tot", "reuse_ratio", "idle_conn_cur", "status")
    header = ["name"] + list(cols)
    rows = []
    for name, fe in doc["frontends"].items():
        rows.append(["%s/FRONTEND" % name] + [_cell(fe, c, "OPEN") for c in cols])
    for name, be in doc["backends"].items():
        for sname, srv in be["servers"].items():
            rows.append(["%s/%s" % (name, sname)] + [_cell(srv, c, "") for c in cols])
        rows.append(["%s/BACKEND" % name] + [_cell(be, c, "UP") for c in cols])
    lines += _columns(header, rows)
    # Server connection reuse: how many were opened, and why a request did not reuse one.
    header = ["server", "req_tot", "conn_tot", "reuse", "replays", "warm_used", "first", "empty",
              "private", "srv_closed", "purged"]
    fields = ("req_tot", "conn_tot", "reuse", "replays", "warm_used", "nreuse_first", "nreuse_empty",
              "nreuse_private", "idle_srv_closed", "idle_purged")
    rows = [["%s/%s" % (name, sname)] + [srv.get(f, 0) for f in fields]
            for name, be in doc["backends"].items() for sname, srv in be["servers"].items()]
    if rows:
        lines.append("")
        lines += _columns(header, rows)
    return "\n".join(lines)


def _columns(header, rows):
    widths = [max(len(str(r[i])) for r in rows + [header]) for i in range(len(header))]
    out = ["  ".join(h.ljust(w) for h, w in zip(header, widths)).rstrip()]
    for r in rows:
        out.append("  ".join(str(v).ljust(w) for v, w in zip(r, widths)).rstrip())
    return out


def _cell(row, col, status):
    if col == "status":
        return row.get("status", status)
    if col == "conn_tot" and "conn_tot" not in row:
        return ""
    value = row.get(col)
    if col in ("conn_tot", "reuse_ratio", "idle_conn_cur") and "servers" not in row and "status" not in row:
        return ""       # frontends open no server connections
    return "-" if value is None else value


def show_stat_csv(doc):
    """HAProxy's `show stat` CSV (a subset of its columns, same names and order)."""
    cols = ["pxname", "svname", "qcur", "qmax", "scur", "smax", "slim", "stot", "bin", "bout",
            "dreq", "dresp", "ereq", "econ", "eresp", "wretr", "wredis", "status", "weight",
            "act", "bck", "chkfail", "chkdown", "lastchg", "downtime", "qlimit", "pid", "iid",
            "sid", "throttle", "lbtot", "tracked", "type", "rate", "rate_lim", "rate_max",
            "check_status", "check_code", "check_duration", "hrsp_1xx", "hrsp_2xx", "hrsp_3xx",
            "hrsp_4xx", "hrsp_5xx", "hrsp_other", "hanafail", "req_rate", "req_rate_max",
            "req_tot", "cli_abrt", "srv_abrt"]
    out = ["# " + ",".join(cols)]

    def line(px, sv, row, typ, status):
        vals = {"pxname": px, "svname": sv, "type": typ, "status": status}
        vals.update({k: row.get(k, "") for k in row if k in cols and k not in vals})
        if typ == 2:
            vals["lbtot"] = row.get("req_tot", "")
        out.append(",".join(str(vals.get(c, "")) for c in cols))

    for name, fe in doc["frontends"].items():
        line(name, "FRONTEND", fe, 0, "OPEN")
    for name, be in doc["backends"].items():
        for sname, srv in be["servers"].items():
            line(name, sname, srv, 2, srv.get("status", ""))
        line(name, "BACKEND", be, 1, "UP")
    return "\n".join(out) + "\n"
