"""The soak run's one table: a row per figure, a column per proxy, whether the two agree.

Pure functions from the result dict (as written to JSON) to rows and text,
so the table can be rebuilt from a saved result.
"""

from . import hostile
from .cases import CASES

PROXIES = ("keepwarm", "haproxy")
HEADER = ("test", "figure", "keepwarm", "haproxy", "same")


def _num(x, fmt="{:.0f}"):
    return "?" if x is None else fmt.format(x)


def _errs(e):
    """wrk errors as `connect/read/write/timeout, non-2xx N`."""
    return "{}/{}/{}/{}, non-2xx {}".format(*(e.get(k, 0) for k in (
        "connect", "read", "write", "timeout", "non_2xx")))


def _ms3(rec):
    """p50 / p99 / max in ms, and the normal client's failures if any."""
    text = " / ".join(_num(rec.get(k), "{:.1f}") for k in ("p50_ms", "p99_ms", "max_ms"))
    if rec.get("errors"):
        text += f" ({rec['errors']} failed)"
    return text


def _median(xs):
    xs = sorted(x for x in xs if x is not None)
    return xs[len(xs) // 2] if xs else None


def _cells(per_proxy, fn):
    """fn(record) for each proxy; a failed or skipped measurement shows why."""
    out = []
    for name in PROXIES:
        rec = per_proxy.get(name)
        if rec is None:
            out.append("—")
        elif "na" in rec:
            out.append("n/a: " + rec["na"])
        elif "error" in rec:
            out.append("FAILED: " + rec["error"].splitlines()[0][:60])
        else:
            out.append(fn(rec))
    return out


def _rows_reload(r, args):
    t = "reload"
    any_rec = next((v for v in r.values() if "reloads" in v), {})
    n, d = any_rec.get("reloads", args.get("reloads")), any_rec.get("duration_s")
    return [
        (t, f"{n} reloads in wrk -c32 {d}s: requests", *_cells(r, lambda x: _num(x["requests"]))),
        (t, "socket errors c/r/w/t, non-2xx", *_cells(r, lambda x: _errs(x["errors"]))),
        (t, "errors per reload", *_cells(r, lambda x: _num(x["per_reload"], "{:.1f}"))),
        (t, "processes, fds: before → 3 s after",
         *_cells(r, lambda x: "{}, {} → {}, {}".format(x["before"]["procs"], x["before"]["fds"],
                                                       x["after"]["procs"], x["after"]["fds"]))),
    ]


def _rows_kill(r, args):
    t = "kill -9"
    any_rec = next((v for v in r.values() if "kills" in v), {})

    def repl(x):
        f = [e["forked_ms"] for e in x["events"]]
        rd = [e["ready_ms"] for e in x["events"]]
        missing = sum(1 for v in rd if v is None)
        return "{} / {} (max {} / {}){}".format(
            _num(_median(f)), _num(_median(rd)), _num(max((v for v in f if v), default=None)),
            _num(max((v for v in rd if v), default=None)),
            f", {missing} not ready" if missing else "")
    return [
        (t, f"{any_rec.get('kills', '?')} kills in wrk -c32 {any_rec.get('duration_s', '?')}s: "
            "errors c/r/w/t, non-2xx", *_cells(r, lambda x: _errs(x["errors"]))),
        (t, "errors per kill", *_cells(r, lambda x: _num(x["per_kill"], "{:.1f}"))),
        (t, "replacement forked / ready ms (median, max)", *_cells(r, repl)),
    ]


def _rows_idle(r, args):
    rows = []
    sizes = sorted({int(k) for v in r.values() for k in v if k.isdigit()})
    for n in sizes:
        per = {p: r[p][str(n)] for p in r if str(n) in r[p]}
        t = f"idle {n}"
        marks = lambda x, key: " / ".join(str(m[key]) for m in x["marks"])  # noqa: E731
        at = "/".join(str(m["t_s"]) for m in next(
            (v["marks"] for v in per.values() if "marks" in v), []))
        rows += [
            (t, "clients answered (failed)",
             *_cells(per, lambda x: "{} ({})".format(x["opened"], sum(x["failures"].values())))),
            (t, f"server conns at {at} s", *_cells(per, lambda x: marks(x, "server_conns"))),
            (t, f"fds at {at} s (before)",
             *_cells(per, lambda x: marks(x, "fds") + f" ({x['before']['fds']})")),
            (t, "idle clients served again after",
             *_cells(per, lambda x: f"{x['reuse_ok']}/{x['reuse_sample']}")),
        ]
    return rows


def _rows_hostile(r, args):
    rows = []
    names = [c[0] for c in CASES if any(c[0] in v for v in r.values())]
    for name in names:
        per = {p: v[name] for p, v in r.items() if name in v}
        same = ""
        if "keepwarm" in per and "haproxy" in per:
            same = hostile.agree(per["keepwarm"], per["haproxy"])
        rows.append(("hostile", name, *_cells(per, hostile.cell), same))
        if name == hostile.CL_LIST:
            rows.append(("hostile", f"{name}: backend received", *_cells(per, hostile.cl_cell)))
    if any("error" in v for v in r.values()):
        rows.append(("hostile", "run", *_cells(r, lambda x: "ok")))
    return rows


def _rows_slowloris(r, args):
    t = "slowloris"
    n = args.get("slow")
    busy = args.get("busy")
    labels = {"quiet": "quiet: GET p50/p99/max ms", "quiet+slow": f"quiet + {n} slow",
              "busy": f"busy ({busy}): GET p50/p99/max ms", "busy+slow": f"busy + {n} slow"}
    rows = [(t, label, *_cells(r, lambda x, k=k: _ms3(x[k]))) for k, label in labels.items()]

    def fate(x):
        f = dict(x["busy+slow"].get("slow_conns") or {})
        f.pop("send_failed", None)
        opened = f.pop("opened", "?")
        return f"{opened} opened: " + ", ".join(f"{k} {v}" for k, v in sorted(f.items()))
    rows.append((t, "slow conns at phase end (busy)", *_cells(r, fate)))
    return rows


def _rows_closing(r, args):
    t = "closing backend"
    n = args.get("requests")

    def errs(m):
        def f(x):
            y = x[m]
            other = y["errors"] - y["status_502"] - y["closed"]
            return "{} / {} / {} ({:.2f} %)".format(y["status_502"], y["closed"], other,
                                                    y["error_pct"] or 0)
        return f
    return [
        (t, f"{n} keep-alive POSTs: 502 / closed / other (%)", *_cells(r, errs("POST"))),
        (t, "POSTs the backend saw twice", *_cells(r, lambda x: str(x["POST"]["post_dups"]))),
        (t, f"{n} keep-alive GETs: 502 / closed / other (%)", *_cells(r, errs("GET"))),
    ]


BUILDERS = {"reload": _rows_reload, "kill9": _rows_kill, "idle": _rows_idle,
            "hostile": _rows_hostile, "slowloris": _rows_slowloris, "closing": _rows_closing}


def rows(result):
    """All rows, in measurement order, each a 5-tuple of strings."""
    out = []
    for name, per_proxy in result["results"].items():
        for row in BUILDERS[name](per_proxy, result["args"]):
            out.append(tuple(row) + ("",) * (len(HEADER) - len(row)))
    return out


def table(rows_, header=HEADER):
    """A markdown table, columns padded so it also reads in a terminal."""
    def esc(s):
        return str(s).replace("|", "\\|")
    all_rows = [tuple(esc(c) for c in header)] + [tuple(esc(c) for c in r) for r in rows_]
    widths = [max(len(r[i]) for r in all_rows) for i in range(len(header))]
    line = lambda r: "| " + " | ".join(c.ljust(w) for c, w in zip(r, widths)) + " |"  # noqa: E731
    sep = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(all_rows[0]), sep] + [line(r) for r in all_rows[1:]])
