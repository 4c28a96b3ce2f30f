"""Slowloris: a normal client's GET latency while N connections send their heads at 1 byte/s.

    python3 -m bench.soak.slowloris PORT N SECONDS   (the slow sender alone)

The slow sender runs in its own process, so its sends never delay the
normal client's timestamps in this one. Each phase samples the normal client
(a fresh connection, one GET, `Connection: close`) every SAMPLE_GAP_S for
`phase_s` seconds; the four phases per proxy are: quiet machine without and
with the slow connections, then the same with other load on the machine
(`cpu`: one busy-looping process per CPU; `wrk`: wrk -t1 -c32 against the
same proxy on its own connections). Phases are shorter than the proxies'
`timeout http-request` (10 s), so the slow heads are never cut mid-phase.
"""

import json
import math
import os
import socket
import sys
import time

from bench.e2e.procs import Proc
from bench.e2e.servers import REPO

from . import clients

HEAD = b"GET /small HTTP/1.1\r\nHost: soak\r\nX-Slow: " + b"s" * 64 + b"\r\n\r\n"
SAMPLE_GAP_S = 0.02
BURN = "import time\nend = time.monotonic() + {secs}\nwhile time.monotonic() < end: pass\n"


def percentile(sorted_values, p):
    """The p-th percentile (0..100) of an ascending list, nearest rank; None if empty."""
    if not sorted_values:
        return None
    k = math.ceil(p / 100.0 * len(sorted_values)) - 1
    return sorted_values[max(0, min(len(sorted_values) - 1, k))]


def sample_latency(port, secs):
    """A normal client's latencies (ms) and failures over `secs` seconds."""
    lat, errors = [], 0
    end = time.monotonic() + secs
    while time.monotonic() < end:
        t0 = time.monotonic()
        try:
            ok = clients.get(port) == 200
        except (OSError, clients.Closed, ValueError):
            ok = False
        if ok:
            lat.append((time.monotonic() - t0) * 1000)
        else:
            errors += 1
        time.sleep(SAMPLE_GAP_S)
    lat.sort()
    return {"n": len(lat), "errors": errors,
            "p50_ms": percentile(lat, 50), "p99_ms": percentile(lat, 99),
            "max_ms": lat[-1] if lat else None}


def _start_load(kind, port, secs, workdir):
    """Other load on the machine for `secs` seconds: a list of Procs to stop."""
    if kind == "wrk":
        return [Proc("wrk load", ["wrk", "-t1", "-c32", f"-d{secs}s", "--timeout=2s",
                                  f"http://127.0.0.1:{port}/small"], workdir / "wrk-load.log")]
    return [Proc(f"cpu burner {i}", [sys.executable, "-c", BURN.format(secs=secs)],
                 workdir / "burner.log") for i in range(os.cpu_count() or 1)]


def _start_slow(port, n, secs, workdir):
    """The slow sender, returned once it reports all its connections open."""
    proc = Proc("slowloris", [sys.executable, "-m", "bench.soak.slowloris", str(port), str(n),
                              str(secs)], workdir / f"slowloris-{port}.log",
                env=dict(os.environ, PYTHONUNBUFFERED="1", PYTHONPATH=str(REPO)))
    end = time.monotonic() + 30
    while time.monotonic() < end and proc.alive():
        with open(proc.log_path, "rb") as f:
            if b"ready" in f.read():
                return proc
        time.sleep(0.05)
    proc.stop()
    raise RuntimeError(f"slow sender not ready:\n{proc.log_tail()}")


def _slow_report(proc):
    """The slow sender's last JSON line (its connections' fate)."""
    proc.popen.wait(timeout=30)
    for line in reversed(proc.log_tail(5).splitlines()):
        if line.startswith("{"):
            return json.loads(line)
    return {}


def phases(proxy, n_slow, phase_s, busy, workdir):
    """The four phases for one proxy: quiet/busy x without/with slowloris."""
    out = {}
    for loaded in (False, True):
        for slow in (False, True):
            key = ("busy" if loaded else "quiet") + ("+slow" if slow else "")
            started = []
            try:
                if loaded:
                    started += _start_load(busy, proxy.port, phase_s + 2, workdir)
                if slow:
                    started.append(_start_slow(proxy.port, n_slow, phase_s + 1, workdir))
                time.sleep(0.5)
                rec = sample_latency(proxy.port, phase_s)
                if slow:
                    rec["slow_conns"] = _slow_report(started[-1])
            finally:
                for p in started:
                    p.stop()
            rec["alive_after"] = proxy.alive()
            out[key] = rec
    return out


def slow_send(port, n, secs):
    """Open n connections, send HEAD one byte per second on each; return the connections' fate."""
    socks = []
    end = time.monotonic() + 30
    for _ in range(n):
        if time.monotonic() > end:
            break
        try:
            s = socket.create_connection(("127.0.0.1", port), timeout=5)
        except OSError:
            break
        s.setblocking(False)
        socks.append(s)
    print("ready", len(socks), flush=True)
    closed = set()
    start = time.monotonic()
    for pos in range(min(int(secs), len(HEAD) - 1)):
        for i, s in enumerate(socks):
            if i not in closed:
                try:
                    s.send(HEAD[pos:pos + 1])
                except OSError:
                    closed.add(i)
        time.sleep(max(0.0, start + pos + 1 - time.monotonic()))
    fate = {"opened": len(socks), "send_failed": len(closed)}
    for s in socks:
        try:
            data = s.recv(200)
            key = "answered " + data.split(b" ", 2)[1].decode("latin-1") if data else "closed"
        except BlockingIOError:
            key = "still open"
        except (OSError, IndexError):
            key = "reset"
        fate[key] = fate.get(key, 0) + 1
        s.close()
    return fate


if __name__ == "__main__":
    port, n, secs = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
    print(json.dumps(slow_send(port, n, secs)), flush=True)
