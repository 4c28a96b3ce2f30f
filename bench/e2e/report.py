"""Turn per-run figures into medians with min–max, ratios to the reference
proxy measured in the same run, a markdown table, and a comparison with an
earlier JSON result."""

import statistics

METRICS = ("rps", "p50_ms", "p99_ms", "cpu_us_per_req", "conns_per_1k")


def _spread(values):
    values = [v for v in values if v is not None]
    if not values:
        return None
    return {"median": statistics.median(values), "min": min(values), "max": max(values),
            "n": len(values)}


def key(r):
    return (r["proxy"], r["mode"], r["size"])


def summarise(runs, ref):
    """One row per (proxy, mode, size), in first-seen order."""
    by_run = {(r["run"],) + key(r): r for r in runs}
    rows = {}
    for r in runs:
        row = rows.setdefault(key(r), {"proxy": r["proxy"], "mode": r["mode"], "size": r["size"],
                                       "_runs": []})
        row["_runs"].append(r)
    out = []
    for k, row in rows.items():
        rs = row.pop("_runs")
        for m in METRICS:
            row[m] = _spread(r.get(m) for r in rs)
        rps_ratio, cpu_ratio = [], []
        for r in rs:
            other = by_run.get((r["run"], ref, r["mode"], r["size"]))
            if other is None or r.get("error") or other.get("error"):
                continue
            if r.get("rps") and other.get("rps"):
                rps_ratio.append(r["rps"] / other["rps"])
            if r.get("cpu_us_per_req") and other.get("cpu_us_per_req"):
                cpu_ratio.append(r["cpu_us_per_req"] / other["cpu_us_per_req"])
        row["rps_ratio"] = _spread(rps_ratio)
        row["cpu_ratio"] = _spread(cpu_ratio)
        row["non_2xx_3xx"] = sum(r.get("non_2xx_3xx") or 0 for r in rs)
        row["socket_errors"] = sum(sum((r.get("socket_errors") or {}).values()) for r in rs)
        row["failed_runs"] = sum(1 for r in rs if r.get("error"))
        out.append(row)
    return out


def _fmt(v, digits):
    if v is None:
        return "—"
    if digits == 0:
        return f"{v:,.0f}"
    return f"{v:.{digits}f}"


def cell(s, digits, spread=True):
    if s is None:
        return "—"
    text = _fmt(s["median"], digits)
    if spread and s["n"] > 1:
        text += f" ({_fmt(s['min'], digits)}–{_fmt(s['max'], digits)})"
    return text


def table(rows, ref):
    head = ("| proxy | clients | size | req/s | p50 ms | p99 ms | CPU µs/req | "
            f"backend conn/1k req | req/s ÷ {ref} | CPU ÷ {ref} | errors |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in rows:
        errs = []
        if r["non_2xx_3xx"]:
            errs.append(f"{r['non_2xx_3xx']} non-2xx")
        if r["socket_errors"]:
            errs.append(f"{r['socket_errors']} socket")
        if r["failed_runs"]:
            errs.append(f"{r['failed_runs']} failed runs")
        lines.append("| " + " | ".join([
            r["proxy"], r["mode"], r["size"], cell(r["rps"], 0), cell(r["p50_ms"], 2, False),
            cell(r["p99_ms"], 2, False), cell(r["cpu_us_per_req"], 1),
            cell(r["conns_per_1k"], 1, False), cell(r["rps_ratio"], 2), cell(r["cpu_ratio"], 2),
            ", ".join(errs) or "0"]) + " |")
    return "\n".join(lines)


def _med(s):
    return s["median"] if s else None


def _delta(old, new):
    if old is None or new is None or old == 0:
        return "—"
    return f"{(new - old) / old * 100:+.0f}%"


def compare(old_rows, new_rows, ref):
    """Markdown table of old → new medians for rows present in both results."""
    old = {key(r): r for r in old_rows}
    lines = ["| proxy | clients | size | req/s old → new | CPU µs/req old → new | "
             f"req/s ÷ {ref} old → new | CPU ÷ {ref} old → new |", "|---|---|---|---|---|---|---|"]
    for r in new_rows:
        o = old.get(key(r))
        if o is None:
            continue
        parts = []
        for m, digits in (("rps", 0), ("cpu_us_per_req", 1), ("rps_ratio", 2), ("cpu_ratio", 2)):
            a, b = _med(o.get(m)), _med(r.get(m))
            parts.append(f"{_fmt(a, digits)} → {_fmt(b, digits)} ({_delta(a, b)})")
        lines.append("| " + " | ".join([r["proxy"], r["mode"], r["size"]] + parts) + " |")
    return "\n".join(lines)
