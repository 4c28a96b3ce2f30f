"""Reloads and kill -9 of workers under load: what busy keep-alive clients lose per event.

Both run `wrk -t1 -c32` against an nginx backend behind the proxy while the
harness signals its master (reload) or kills its workers (kill -9), and count
wrk's socket errors and non-2xx answers per event.
"""

import os
import signal
import threading
import time

from bench.e2e import wrk

from .proxies import children

WRK_CONNECTIONS = 32
FIRST_KILL_S = 3.0


def _wrk_in_thread(port, duration_s):
    """Start wrk in a thread; returns (thread, result holder)."""
    box = {}

    def run():
        box["res"], box["raw"] = wrk.run(f"http://127.0.0.1:{port}/small", duration_s,
                                         WRK_CONNECTIONS, close=False, cpu=None)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t, box


def _errors(res):
    """Client-visible errors of one wrk run: socket errors by kind plus non-2xx/3xx."""
    errs = dict(res.get("socket_errors") or {})
    errs["non_2xx"] = res.get("non_2xx_3xx", 0)
    errs["total"] = sum(errs.values())
    return errs


def reloads(proxy, n, duration_s):
    """n reloads spread over a wrk run of duration_s seconds."""
    wrk.run(f"http://127.0.0.1:{proxy.port}/small", 2, WRK_CONNECTIONS, close=False, cpu=None)
    before = {"procs": len(proxy.proc.pids()), "fds": proxy.fds()}
    thread, box = _wrk_in_thread(proxy.port, duration_s)
    time.sleep(1.0)
    gap = max(0.2, (duration_s - 3.0) / max(n, 1))
    peak = 0
    for _ in range(n):
        proxy.reload()
        time.sleep(gap)
        peak = max(peak, len(proxy.proc.pids()))
    thread.join(duration_s + 60)
    res = box.get("res", {"error": "wrk did not finish"})
    # Old workers finish their draining sessions; give them a moment before counting.
    time.sleep(3.0)
    after = {"procs": len(proxy.proc.pids()), "fds": proxy.fds()}
    errs = _errors(res)
    return {"reloads": n, "duration_s": duration_s, "requests": res.get("requests"),
            "errors": errs, "per_reload": errs["total"] / n if n else None,
            "procs_peak": peak, "before": before, "after": after, "alive": proxy.alive(),
            "wrk_error": res.get("error"), "wrk_raw": box.get("raw", "")[-1500:]}


def _wait_replacement(proxy, old, deadline_s=2.0):
    """(ms until a worker not in `old` is forked, its PIDs); (None, []) past the deadline."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < deadline_s:
        new = [p for p in children(proxy.master) if p not in old]
        if new:
            return (time.monotonic() - t0) * 1000, new
        time.sleep(0.005)
    return None, []


def _wait_ready(proxy, pid, t_kill, deadline_s=3.0):
    """Milliseconds from the kill until keepwarm's stats list `pid` as ready (polled every
    20 ms)."""
    while time.monotonic() - t_kill < deadline_s:
        try:
            workers = proxy.stats()["info"]["workers"]
        except Exception:  # the master may be busy respawning; try again
            workers = []
        if any(w.get("pid") == pid and w.get("ready") for w in workers):
            return (time.monotonic() - t_kill) * 1000
        time.sleep(0.02)
    return None


def kills(proxy, duration_s, every_s=2.0):
    """kill -9 of one worker every every_s seconds during a wrk run (keepwarm: worker processes)."""
    thread, box = _wrk_in_thread(proxy.port, duration_s)
    # keepwarm counts a worker dying within 2 s of its start as a crash loop and
    # backs off before respawning; the first kill comes later, as later ones do.
    time.sleep(FIRST_KILL_S)
    events = []
    end = time.monotonic() + duration_s - 2.0
    while time.monotonic() < end:
        old = children(proxy.master)
        if not old:
            break
        victim = old[0]  # the oldest: it has lived longer than keepwarm's crash-loop window
        t_kill = time.monotonic()
        try:
            os.kill(victim, signal.SIGKILL)
        except ProcessLookupError:
            continue
        forked_ms, new = _wait_replacement(proxy, set(old))
        ready_ms = _wait_ready(proxy, new[0], t_kill) if new else None
        events.append({"victim": victim, "forked_ms": forked_ms, "ready_ms": ready_ms})
        proxy.proc.pids()
        time.sleep(max(0.0, every_s - (time.monotonic() - t_kill)))
    thread.join(duration_s + 60)
    res = box.get("res", {"error": "wrk did not finish"})
    errs = _errors(res)
    n = len(events)
    return {"kills": n, "duration_s": duration_s, "requests": res.get("requests"),
            "errors": errs, "per_kill": errs["total"] / n if n else None, "events": events,
            "workers_after": len(children(proxy.master)), "alive": proxy.alive(),
            "wrk_error": res.get("error"), "wrk_raw": box.get("raw", "")[-1500:]}
