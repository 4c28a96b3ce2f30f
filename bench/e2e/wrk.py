"""Run wrk (pinned) against a URL and parse its --latency report."""

import re
import subprocess

_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}
_BYTES = {"B": 1, "KB": 1024, "MB": 1024 ** 2, "GB": 1024 ** 3, "TB": 1024 ** 4}


def _ms(text):
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    return float(m.group(1)) * _UNITS_MS[m.group(2)] if m else None


def parse(out):
    """The figures of one wrk run as a dict; missing ones are None/0."""
    res = {"requests": 0, "duration_s": None, "rps": None, "p50_ms": None, "p99_ms": None,
           "bytes": None, "non_2xx_3xx": 0, "socket_errors": {}}
    m = re.search(r"(\d+) requests in ([\d.]+)(us|ms|s|m), ([\d.]+)(B|KB|MB|GB|TB) read", out)
    if m:
        res["requests"] = int(m.group(1))
        res["duration_s"] = float(m.group(2)) * _UNITS_MS[m.group(3)] / 1000.0
        res["bytes"] = int(float(m.group(4)) * _BYTES[m.group(5)])
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if m:
        res["rps"] = float(m.group(1))
    for pct, key in (("50", "p50_ms"), ("99", "p99_ms")):
        m = re.search(rf"^\s+{pct}(?:\.000)?%\s+(\S+)", out, re.M)
        if m:
            res[key] = _ms(m.group(1))
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if m:
        res["non_2xx_3xx"] = int(m.group(1))
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if m:
        res["socket_errors"] = {k: int(v) for k, v in
                                zip(("connect", "read", "write", "timeout"), m.groups()) if int(v)}
    return res


def run(url, duration_s, connections, close, cpu=1, timeout_s=2):
    """Run wrk once; return (parsed figures, raw output)."""
    argv = ["wrk", "-t1", f"-c{connections}", f"-d{duration_s}s", f"--timeout={timeout_s}s",
            "--latency"]
    if close:
        argv += ["-H", "Connection: close"]
    argv.append(url)
    if cpu is not None:
        argv = ["taskset", "-c", str(cpu)] + argv
    # wrk stops itself after -d; the extra margin only guards against a hang.
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=duration_s + 30)
    out = proc.stdout + proc.stderr
    res = parse(out)
    if proc.returncode != 0 or res["rps"] is None:
        res["error"] = f"wrk exited {proc.returncode}: {out.strip()[-500:]}"
    return res, out
