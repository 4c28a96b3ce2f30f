"""One measured wrk run through one proxy, and starting a proxy under test."""

import sys
import time

from . import wrk
from .servers import PATHS

MODES = {"keep-alive": False, "close": True}


def measure(proxy, backend, mode, size, duration, connections, run, wrk_cpu=1):
    """One wrk run through one proxy, with the proxy's and backend's counters
    read just before and just after. wrk runs on `wrk_cpu` (None: anywhere)."""
    rec = {"run": run, "proxy": proxy.name, "mode": mode, "size": size}
    if not proxy.alive():
        rec["error"] = f"{proxy.name} is not running:\n{proxy.proc.log_tail()}"
        return rec
    acc0, req0 = backend.counters()
    cpu0, bcpu0, t0 = proxy.cpu_seconds(), backend.proc.cpu_seconds(), time.monotonic()
    res, raw = wrk.run(f"http://127.0.0.1:{proxy.port}{PATHS[size]}", duration, connections,
                       close=MODES[mode], cpu=wrk_cpu)
    cpu1, bcpu1, t1 = proxy.cpu_seconds(), backend.proc.cpu_seconds(), time.monotonic()
    acc1, req1 = backend.counters()
    n = res["requests"]
    rec.update({k: res[k] for k in ("rps", "p50_ms", "p99_ms", "requests", "non_2xx_3xx",
                                    "socket_errors")})
    # The "after" stub_status read is itself one accepted connection and request.
    rec["backend_conns"] = acc1 - acc0 - 1
    rec["backend_requests"] = req1 - req0 - 1
    rec["bytes_per_resp"] = round(res["bytes"] / n) if n and res["bytes"] else None
    if n:
        rec["conns_per_1k"] = rec["backend_conns"] * 1000.0 / n
        rec["backend_cpu_us_per_req"] = (bcpu1 - bcpu0) * 1e6 / n
        if cpu0 is not None:
            rec["cpu_us_per_req"] = (cpu1 - cpu0) * 1e6 / n
            rec["proxy_core_pct"] = (cpu1 - cpu0) / (t1 - t0) * 100
    if "error" in res:
        rec["error"] = res["error"]
    if not proxy.alive():
        rec["error"] = (rec.get("error", "") + f"\n{proxy.name} died during the run "
                        f"(status {proxy.proc.popen.returncode}):\n{proxy.proc.log_tail()}")
    if rec.get("error") or rec["non_2xx_3xx"] or rec["socket_errors"]:
        rec["wrk_output"] = raw
    return rec


def start_proxy(proxy, failures):
    """Start and check one proxy; on failure note why and return False."""
    try:
        proxy.start()
        proxy.preflight()
        return True
    except Exception as exc:  # any failure of a proxy under test is a result
        proxy.stop()
        failures[proxy.name] = str(exc)
        print(f"!! {proxy.name}: {exc}", file=sys.stderr)
        return False
