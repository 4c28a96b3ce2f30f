"""Soak run: keepwarm beside HAProxy 2.6 under faults, one table (issue 12's measurements).

    python3 -m bench.soak [--only reload,kill9,idle,hostile,slowloris,closing]
                          [--proxies keepwarm,haproxy] [--reloads 20] [--duration 30]
                          [--idle 300,1000,5000] [--slow 500] [--requests 10000] [--json PATH]

Each measurement starts the proxies one after the other under the same
config (bench/soak/proxies.py), against nginx or a scripted Python backend,
and stops every process it started, by PID, in a `finally`. Read errors and
counts, not speed: the machine is small and shared. See bench/README.md.
"""

import argparse
import json
import os
import resource
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

from bench.e2e import servers, tools
from bench.e2e.procs import Proc, free_port, wait_listening

from . import closing, hostile, idle, report, restarts, slowloris
from .proxies import SoakProxy, haproxy_version

MEASUREMENTS = ("reload", "kill9", "idle", "hostile", "slowloris", "closing")
NEEDS_NGINX = {"reload", "kill9", "idle", "slowloris"}


def parse_args(argv):
    ap = argparse.ArgumentParser(prog="python3 -m bench.soak", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", default=",".join(MEASUREMENTS),
                    help="comma list of measurements (default: all): " + ",".join(MEASUREMENTS))
    ap.add_argument("--proxies", default="keepwarm,haproxy",
                    help="keepwarm,haproxy (haproxy is left out with a note when not installed)")
    ap.add_argument("--reloads", type=int, default=20, help="reloads during the reload run (20)")
    ap.add_argument("--duration", type=int, default=30,
                    help="seconds of wrk in the reload run (30)")
    ap.add_argument("--kill-duration", type=int, default=20,
                    help="seconds of wrk in the kill -9 run (20)")
    ap.add_argument("--kill-every", type=float, default=2.0, help="seconds between kills (2)")
    ap.add_argument("--idle", default="300,1000,5000", help="idle client counts (300,1000,5000)")
    ap.add_argument("--slow", type=int, default=500, help="slowloris connections (500)")
    ap.add_argument("--slow-phase", type=int, default=8,
                    help="seconds per slowloris phase, under 10 (8)")
    ap.add_argument("--busy", choices=("cpu", "wrk"), default="cpu",
                    help="other load for the busy slowloris phases: a busy loop per CPU, or "
                         "wrk -c32 against the same proxy (cpu)")
    ap.add_argument("--requests", type=int, default=10000,
                    help="POSTs, then GETs, against the closing backend (10000 each)")
    ap.add_argument("--think-ms", type=float, default=2.0,
                    help="each closing-backend client pauses 0..MS ms between requests (2)")
    ap.add_argument("--json", type=Path, default=None,
                    help="result file (default bench/results/soak-<UTC time>.json)")
    ap.add_argument("--repo", type=Path, default=servers.REPO, help="keepwarm checkout to run")
    args = ap.parse_args(argv)
    args.only = [m for m in args.only.split(",") if m]
    args.proxies = [p for p in args.proxies.split(",") if p]
    args.idle = [int(n) for n in args.idle.split(",") if n]
    for m in args.only:
        if m not in MEASUREMENTS:
            ap.error(f"unknown measurement {m!r} (one of {', '.join(MEASUREMENTS)})")
    for p in args.proxies:
        if p not in report.PROXIES:
            ap.error(f"unknown proxy {p!r} (keepwarm, haproxy)")
    if not 1 <= args.slow_phase < 10:
        ap.error("--slow-phase must be 1..9 s (the proxies cut slow heads at 10 s)")
    return args


def raise_nofile(need):
    """Raise our soft descriptor limit to the hard one (children inherit it); a note if short."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if hard < need:
        return f"RLIMIT_NOFILE hard limit {hard} < {need}: idle/slowloris runs may fail to open"
    return None


class ScriptedBackend:
    """bench/soak/backend.py in its own process."""

    def __init__(self, workdir, close_idle_max_ms=0):
        self.port = free_port()
        argv = [sys.executable, "-m", "bench.soak.backend", str(self.port),
                "--close-idle-max-ms", str(close_idle_max_ms)]
        env = dict(os.environ, PYTHONPATH=str(servers.REPO))  # this harness, whatever --repo
        self.proc = Proc("scripted backend", argv, Path(workdir) / f"backend-{self.port}.log",
                         env=env)
        try:
            wait_listening(self.port, self.proc)
        except BaseException:
            self.proc.stop()
            raise

    def stop(self):
        self.proc.stop()


def uncommitted(repo):
    """Tracked files changed outside bench/: what the run measured beyond the commit."""
    try:
        out = subprocess.run(["git", "-C", str(repo), "status", "--porcelain",
                              "--untracked-files=no"], capture_output=True, text=True,
                             timeout=10).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    return [line[3:] for line in out.splitlines() if not line[3:].startswith("bench/")]


def say(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def with_proxy(kind, workdir, backend_port, repo, fn):
    """Start one proxy, run fn(proxy), stop it; a failure becomes {"error": ...}."""
    proxy = SoakProxy(kind, workdir, backend_port, repo)
    try:
        proxy.start()
        return fn(proxy)
    except Exception as exc:  # a finding for the table, not a reason to stop the run
        tail = proxy.proc.log_tail(10) if proxy.proc else ""
        return {"error": f"{type(exc).__name__}: {exc}", "trace": traceback.format_exc(),
                "log_tail": tail}
    finally:
        proxy.stop()


def measure(name, args, workdir, nginx_port):
    """One measurement for every proxy: {proxy: record}."""
    out = {}
    for kind in args.proxies:
        say(f"{name}: {kind}")
        if name == "reload":
            out[kind] = with_proxy(kind, workdir, nginx_port, args.repo,
                                   lambda p: restarts.reloads(p, args.reloads, args.duration))
        elif name == "kill9":
            if kind == "haproxy":
                out[kind] = {"na": "one process with threads; a kill -9 is an outage"}
                continue
            out[kind] = with_proxy(kind, workdir, nginx_port, args.repo,
                                   lambda p: restarts.kills(p, args.kill_duration,
                                                            args.kill_every))
        elif name == "idle":
            out[kind] = {str(n): with_proxy(kind, workdir, nginx_port, args.repo,
                                            lambda p, n=n: idle.idle_clients(p, n))
                         for n in args.idle}
        elif name == "slowloris":
            out[kind] = with_proxy(kind, workdir, nginx_port, args.repo,
                                   lambda p: slowloris.phases(p, args.slow, args.slow_phase,
                                                              args.busy, Path(workdir)))
        elif name in ("hostile", "closing"):
            be = ScriptedBackend(workdir,
                                 closing.CLOSE_IDLE_MAX_MS if name == "closing" else 0)
            try:
                if name == "hostile":
                    fn = lambda p: hostile.run_cases(p, be.port)  # noqa: E731
                else:
                    fn = lambda p: closing.run(p, be.port, args.requests,  # noqa: E731
                                               args.think_ms / 1000.0)
                out[kind] = with_proxy(kind, workdir, be.port, args.repo, fn)
            finally:
                be.stop()
    return out


def _interrupt(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    notes = []
    if "haproxy" in args.proxies and haproxy_version() is None:
        args.proxies.remove("haproxy")
        notes.append("haproxy is not installed: keepwarm only "
                     f"(install with: {tools.install_hint(['haproxy'])})")
    if "keepwarm" in args.proxies and not servers.keepwarm_runs(args.repo):
        args.proxies.remove("keepwarm")
        notes.append(f"`python3 -m proxy run` does not work in {args.repo}: keepwarm left out")
    needed = ["wrk"] + (["nginx"] if NEEDS_NGINX & set(args.only) else [])
    lacking = tools.missing(needed)
    if lacking or not args.proxies:
        print(f"missing: {', '.join(lacking) or 'a proxy to measure'}"
              + (f"\ninstall with: {tools.install_hint(lacking)}" if lacking else ""),
              file=sys.stderr)
        return 1
    note = raise_nofile(2 * max(args.idle + [args.slow]) + 1000)
    if note:
        notes.append(note)
    for n in notes:
        print("note:", n, file=sys.stderr)

    signal.signal(signal.SIGTERM, _interrupt)
    machine = tools.machine(args.repo)
    machine["uncommitted"] = uncommitted(args.repo)
    result = {"machine": machine, "notes": notes, "results": {},
              "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}}
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="keepwarm-soak-") as workdir:
        nginx = servers.Backend(workdir, cpu=None) if NEEDS_NGINX & set(args.only) else None
        try:
            for name in args.only:
                result["results"][name] = measure(name, args, workdir,
                                                  nginx.port if nginx else None)
        finally:
            if nginx:
                nginx.stop()
    result["elapsed_s"] = round(time.monotonic() - t0)
    # Others may edit the tree during a run; each proxy start reads it afresh.
    machine["uncommitted_at_end"] = uncommitted(args.repo)

    out = args.json or (args.repo / "bench" / "results" /
                        time.strftime("soak-%Y%m%d-%H%M%S.json", time.gmtime()))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1, default=str) + "\n")

    dirty = sorted(set(machine["uncommitted"] or []) | set(machine["uncommitted_at_end"] or []))
    commit = machine["keepwarm_commit"] or ""
    commit = commit.split()[0] if commit and not commit.startswith("fatal") else "(no git)"
    print(f"\n{machine['date']} · keepwarm {commit} in {args.repo}"
          + (f" + uncommitted changes to {', '.join(dirty)}" if dirty else "")
          + f" · {machine['haproxy']} · {machine['nproc']} CPUs · "
          f"load at start {machine['loadavg_at_start'][0]:.2f} · {result['elapsed_s']} s\n")
    print(report.table(report.rows(result)))
    for n in notes:
        print(f"\nnote: {n}")
    print(f"\nresult: {out}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt as exc:  # processes were stopped by the finally blocks
        print(f"interrupted ({exc or 'SIGINT'}); all started processes stopped", file=sys.stderr)
        sys.exit(130)
