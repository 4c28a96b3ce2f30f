"""Workers check: keepwarm with 1 and 2 workers beside HAProxy with 1 and 2
threads and nginx with 1 and 2 worker processes (SO_REUSEPORT, like keepwarm's
workers: the same process model in C), three ways, and from `keepwarm stats --json` how connections and
requests spread across workers:

  unpinned  the proxy anywhere, wrk and the backend on CPU 1 (as side by side);
  cpu0      the proxy pinned to CPU 0: two workers share the one core a single
            worker had, which isolates what running two workers costs by itself;
  free      nothing pinned (a backend of its own): a second worker can use
            whatever CPU wrk and the backend leave.

On a 2-core machine no scaling can show; the point is evenness (SO_REUSEPORT)
and no regression."""

from pathlib import Path

import time

from . import report, servers, wrk
from .measure import measure, start_proxy
from .servers import PATHS

# Per-worker counters we look for, first match wins (HAProxy's names first).
CONN_FIELDS = ("cum_conn", "conn_tot", "cumconns", "CumConns", "stot", "sessions", "accepted",
               "connections")
STATS_PERIOD_S = 0.25
REQ_FIELDS = ("cum_req", "req_tot", "CumReq", "cumreq", "requests", "hrsp_2xx")


def _workers(stats):
    """{worker id: flat dict of its numeric counters} from stats JSON."""
    ws = (stats.get("info") or {}).get("workers")
    if ws is None:
        return None
    items = ws.items() if isinstance(ws, dict) else enumerate(ws)
    out = {}
    for wid, entry in items:
        if not isinstance(entry, dict):
            continue
        wid = entry.get("slot", entry.get("id", wid))
        flat = {}
        for k, v in entry.items():
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                flat[k] = v
            elif isinstance(v, dict):
                flat.update({f"{k}.{k2}": v2 for k2, v2 in v.items()
                             if isinstance(v2, (int, float)) and not isinstance(v2, bool)})
        out[str(wid)] = flat
    return out


def _pick(fields, names):
    for n in names:
        for f in fields:
            if f == n or f.endswith("." + n):
                return f
    return None


def distribution(before, after):
    """Per-worker deltas of the connection and request counters (or why not)."""
    wb, wa = _workers(before), _workers(after)
    if wa is None:
        return {"error": "stats JSON has no info.workers", "keys": sorted(after)}
    fields = set().union(*(set(v) for v in wa.values())) if wa else set()
    conn_f, req_f = _pick(fields, CONN_FIELDS), _pick(fields, REQ_FIELDS)
    rows = {}
    for wid, counters in wa.items():
        old = (wb or {}).get(wid, {})
        rows[wid] = {f: counters.get(f, 0) - old.get(f, 0) for f in (conn_f, req_f) if f}
        for f in ("pid",):
            if f in counters:
                rows[wid][f] = counters[f]
    res = {"conn_field": conn_f, "req_field": req_f, "workers": rows,
           "fields_available": sorted(fields)}
    if req_f is None:
        res["error"] = "no per-worker request counter in info.workers"
    return res


def _ratios(d):
    """max/min across workers of the connection and request deltas."""
    for label in ("conn", "req"):
        f = d.get(f"{label}_field")
        vals = [w[f] for w in d.get("workers", {}).values() if f and f in w]
        if vals:
            d[f"{label}_max_over_min"] = max(vals) / min(vals) if min(vals) > 0 else None


def run(args, workdir, backend, failures):
    configs = []
    free_dir = Path(workdir) / "free"
    free_dir.mkdir(exist_ok=True)
    free_backend = servers.Backend(free_dir, cpu=None)
    for cpu, where, be in ((None, "unpinned", backend), (0, "cpu0", backend),
                           (None, "free", free_backend)):
        group = [servers.Keepwarm(workdir, be, cpu=cpu, workers=1, repo=args.repo),
                 servers.Keepwarm(workdir, be, cpu=cpu, workers=2, repo=args.repo),
                 servers.HAProxy(workdir, be, cpu=cpu, reuse="safe", threads=1),
                 servers.HAProxy(workdir, be, cpu=cpu, reuse="safe", threads=2),
                 servers.NginxProxy(workdir, be, cpu=cpu, workers=1),
                 servers.NginxProxy(workdir, be, cpu=cpu, workers=2)]
        # Names distinct from the side-by-side ones.
        for p, name in zip(group, ("keepwarm-%s-w1", "keepwarm-%s-w2",
                                   "haproxy-%s-t1", "haproxy-%s-t2",
                                   "nginx-%s-p1", "nginx-%s-p2")):
            p.name = name % where
        if not servers.keepwarm_runs(args.repo):
            failures["workers check"] = "keepwarm does not run yet: HAProxy rows only"
            group = group[2:]
        configs += group
    runs, spread, started = [], {}, []
    try:
        for p in configs:
            if start_proxy(p, failures):
                started.append(p)
                wrk.run(f"http://127.0.0.1:{p.port}{PATHS['100B']}", args.warmup,
                        args.connections, close=False)
        # Interleaved like the side-by-side runs, so ratios compare like moments.
        for i in range(args.runs):
            for mode in args.modes:
                for p in started:
                    before = _stats(p, failures)
                    free = p.name.split("-")[1] == "free"
                    runs.append(measure(p, p.backend, mode, "100B", args.duration,
                                        args.connections, i, wrk_cpu=None if free else 1))
                    if before is None:
                        continue
                    # Workers push counters to the master every ~250 ms (DESIGN §6).
                    time.sleep(STATS_PERIOD_S * 2)
                    after = _stats(p, failures)
                    if after is not None:
                        _accumulate(spread, f"{p.name} {mode}", distribution(before, after))
    finally:
        for p in started:
            p.stop()
        free_backend.stop()
    for d in spread.values():
        _ratios(d)
    summary = []
    for where in ("unpinned", "cpu0", "free"):
        summary += report.summarise([r for r in runs if f"-{where}-" in r["proxy"]],
                                    ref=f"haproxy-{where}-t1")
    return {"runs": runs, "summary": summary, "spread": spread}


def _accumulate(spread, key, d):
    """Sum per-worker deltas of several runs into spread[key]."""
    acc = spread.setdefault(key, {k: v for k, v in d.items() if k != "workers"})
    acc.setdefault("workers", {})
    for wid, counters in d.get("workers", {}).items():
        w = acc["workers"].setdefault(wid, {})
        for f, v in counters.items():
            w[f] = v if f == "pid" else w.get(f, 0) + v


def _stats(p, failures):
    if not isinstance(p, servers.Keepwarm):
        return None
    try:
        return p.stats_json()
    except Exception as exc:  # a broken stats command is a finding, not a crash
        failures[f"{p.name} stats"] = str(exc)
        return None


def table(res):
    rows = res["summary"]
    lines = []
    for where, title in (("unpinned", "unpinned proxy, wrk and backend on CPU 1"),
                         ("cpu0", "proxy pinned to CPU 0, wrk and backend on CPU 1"),
                         ("free", "nothing pinned")):
        mine = [r for r in rows if f"-{where}-" in r["proxy"]]
        if not mine:
            continue
        lines += [f"Workers check (100 B, {title}):", "",
                  report.table(mine, f"haproxy-{where}-t1"), ""]
        med = {(r["proxy"], r["mode"]): r["rps"]["median"] for r in mine if r["rps"]}
        for mode in ("keep-alive", "close"):
            for name, unit, what in (("keepwarm", "w", "workers"), ("haproxy", "t", "threads"),
                                     ("nginx", "p", "processes")):
                one = med.get((f"{name}-{where}-{unit}1", mode))
                two = med.get((f"{name}-{where}-{unit}2", mode))
                if one and two:
                    lines.append(f"{name} {where} {mode}: 2 {what} / 1 req/s = {two / one:.2f}")
        lines.append("")
    for name, d in res["spread"].items():
        lines.append(f"\nspread {name}:")
        if d.get("error"):
            lines.append(f"  {d['error']} (fields: {', '.join(d.get('fields_available', d.get('keys', [])))})")
        for wid, counters in d.get("workers", {}).items():
            lines.append(f"  worker {wid}: " + ", ".join(f"{k}={v}" for k, v in counters.items()))
        for label in ("conn", "req"):
            v = d.get(f"{label}_max_over_min")
            if f"{label}_max_over_min" in d:
                lines.append(f"  {label} max/min across workers: "
                             + (f"{v:.2f}" if v else "a worker got none"))
    return "\n".join(lines)

