"""End-to-end benchmark: keepwarm beside HAProxy and nginx, same backend, same run.

    python3 -m bench.e2e --runs 3 --duration 5 [--proxies ...] [--json PATH]
                         [--compare OLD.json] [--workers-check]

See bench/README.md for the method."""

import argparse
import json
import signal
import sys
import tempfile
import time
from pathlib import Path

from . import report, servers, tools, wrk
from .measure import MODES, measure, start_proxy
from .servers import PATHS, REPO

DEFAULT_PROXIES = ["direct", "haproxy-safe", "haproxy-always", "nginx", "keepwarm"]


def side_by_side(args, workdir, backend, failures):
    proxies = []
    try:
        for name in args.proxies:
            p = servers.make(name, workdir, backend, cpu=0, repo=args.repo)
            if start_proxy(p, failures):
                proxies.append(p)
        for p in proxies:  # warm up: connections, caches, pools
            wrk.run(f"http://127.0.0.1:{p.port}{PATHS['100B']}", args.warmup, args.connections,
                    close=False)
        runs = []
        for run in range(args.runs):
            # Rotate the order each run so no proxy always goes first.
            order = proxies[run % len(proxies):] + proxies[:run % len(proxies)] if proxies else []
            for mode in args.modes:
                for size in args.sizes:
                    for p in order:
                        rec = measure(p, backend, mode, size, args.duration, args.connections, run)
                        runs.append(rec)
                        print(f"run {run + 1}/{args.runs} {p.name:15} {mode:10} {size:6} "
                              f"{rec.get('rps') or 0:9,.0f} req/s "
                              f"cpu {rec.get('cpu_us_per_req') or 0:6.1f} us/req "
                              f"conn/1k {rec.get('conns_per_1k') or 0:7.1f}"
                              + (f"  ERROR {rec['error'][:200]}" if rec.get("error") else "")
                              + (f"  non-2xx {rec['non_2xx_3xx']}" if rec.get("non_2xx_3xx")
                                 else "")
                              + (f"  socket errors {rec['socket_errors']}"
                                 if rec.get("socket_errors") else ""),
                              file=sys.stderr, flush=True)
        for p in proxies:
            if p.proc and not p.alive():
                failures.setdefault(p.name, f"exited {p.proc.popen.returncode}:\n"
                                            f"{p.proc.log_tail()}")
        logs = {p.name: p.proc.log_tail(60) for p in proxies if p.proc}
        for p in proxies:  # keepwarm's own view of the session: reuse, errors, retries
            if isinstance(p, servers.Keepwarm) and p.alive():
                try:
                    logs[p.name + " stats"] = p.stats_json()
                except Exception as exc:  # a finding for the report, not a crash
                    failures[p.name + " stats"] = str(exc)
        for p in proxies:  # -log: the lines each syslog receiver got (the rest: dropped)
            if p.sink is not None:
                p.sink.stop()
                logs[p.name + " logsink"] = p.sink.log_tail(3)
                print(f"{p.name}: {logs[p.name + ' logsink']}, "
                      f"{sum(r.get('requests') or 0 for r in runs if r['proxy'] == p.name):,} "
                      f"requests measured (+ warm-up)", file=sys.stderr, flush=True)
        return runs, logs
    finally:
        for p in proxies:
            p.stop()


def _interrupt(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


def parse_args(argv):
    ap = argparse.ArgumentParser(prog="python3 -m bench.e2e", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=3, help="runs per combination (default 3)")
    ap.add_argument("--duration", type=int, default=5, help="seconds per wrk run (default 5)")
    ap.add_argument("--warmup", type=int, default=1, help="seconds of warm-up per proxy")
    ap.add_argument("--connections", type=int, default=64, help="wrk -c (default 64)")
    ap.add_argument("--proxies", default=None,
                    help="comma list from direct,haproxy-safe,haproxy-always,nginx,keepwarm "
                         "(default: all; keepwarm only if `python3 -m proxy run` works)")
    ap.add_argument("--modes", default="keep-alive,close", help="keep-alive,close")
    ap.add_argument("--sizes", default="100B,16KiB", help="100B,16KiB")
    ap.add_argument("--ref", default="haproxy-safe", help="proxy the ratios divide by")
    ap.add_argument("--json", type=Path, default=None,
                    help="result file (default bench/results/e2e-<UTC time>.json)")
    ap.add_argument("--compare", type=Path, help="earlier result JSON to print deltas against")
    ap.add_argument("--workers-check", action="store_true",
                    help="also run keepwarm with 1 and 2 workers (unpinned, then pinned to CPU 0) and show the spread")
    ap.add_argument("--only-workers-check", action="store_true",
                    help="run only the workers check")
    ap.add_argument("--repo", type=Path, default=REPO, help="keepwarm checkout to run")
    ap.add_argument("--dgram-qlen", type=int, default=None, metavar="N",
                    help="set net.unix.max_dgram_qlen to N for the run (restored after; "
                         "systemd hosts run with 512, a bare kernel with 10): the -log "
                         "variants' receivers then drop no line")
    args = ap.parse_args(argv)
    args.modes = args.modes.split(",")
    args.sizes = args.sizes.split(",")
    for m in args.modes:
        if m not in MODES:
            ap.error(f"unknown mode {m!r}")
    for s in args.sizes:
        if s not in PATHS:
            ap.error(f"unknown size {s!r}")
    if args.runs < 1 or args.duration < 1:
        ap.error("--runs and --duration must be at least 1")
    return args


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    explicit = args.proxies is not None
    args.proxies = args.proxies.split(",") if explicit else list(DEFAULT_PROXIES)
    needed = ["wrk", "nginx", "taskset"] + (["haproxy"] if any(
        p.startswith("haproxy") for p in args.proxies) or args.workers_check else [])
    lacking = tools.missing(needed)
    if lacking:
        print(f"missing: {', '.join(lacking)}\ninstall with: {tools.install_hint(lacking)}",
              file=sys.stderr)
        return 1
    notes = []
    if "keepwarm" in args.proxies and not servers.keepwarm_runs(args.repo):
        msg = f"keepwarm: `python3 -m proxy run` does not work yet in {args.repo}"
        if explicit:
            print(msg, file=sys.stderr)
            return 1
        notes.append(msg + "; left out")
        args.proxies.remove("keepwarm")
    if args.ref not in args.proxies:
        notes.append(f"reference {args.ref} not measured: no ratios")
    for n in notes:
        print("note:", n, file=sys.stderr)

    # SIGTERM unwinds like ^C, so every finally below stops its processes.
    signal.signal(signal.SIGTERM, _interrupt)
    machine = tools.machine(args.repo)
    result = {"machine": machine, "args": {k: (str(v) if isinstance(v, Path) else v)
                                           for k, v in vars(args).items()},
              "notes": notes, "failures": {}}
    qlen_was = tools.set_dgram_qlen(args.dgram_qlen) if args.dgram_qlen else None
    machine["max_dgram_qlen"] = tools.dgram_qlen()
    with tempfile.TemporaryDirectory(prefix="keepwarm-e2e-") as workdir:
        backend = servers.Backend(workdir, cpu=1)
        try:
            if not args.only_workers_check:
                runs, logs = side_by_side(args, workdir, backend, result["failures"])
                result["runs"] = runs
                result["summary"] = report.summarise(runs, args.ref)
                result["proxy_log_tails"] = logs
            if args.workers_check or args.only_workers_check:
                from . import workers_check
                result["workers_check"] = workers_check.run(args, workdir, backend,
                                                            result["failures"])
        finally:
            backend.stop()
            if qlen_was is not None:
                tools.set_dgram_qlen(qlen_was)

    out = args.json or (REPO / "bench" / "results" /
                        time.strftime("e2e-%Y%m%d-%H%M%S.json", time.gmtime()))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1, default=str) + "\n")

    print(f"\n{machine['date']} · {machine['nproc']} CPUs · {machine['cpu_model']} · "
          f"{args.runs} runs × {args.duration}s · wrk -t1 -c{args.connections} · "
          f"load at start {machine['loadavg_at_start'][0]:.2f}\n")
    if "summary" in result:
        print(report.table(result["summary"], args.ref))
    if "workers_check" in result:
        from . import workers_check
        print()
        print(workers_check.table(result["workers_check"]))
    if result["failures"]:
        print("\nfailures:")
        for name, why in result["failures"].items():
            print(f"- {name}: {why}")
    if args.compare:
        old = json.loads(args.compare.read_text())
        print(f"\ncompared with {args.compare} ({old['machine']['date']}):\n")
        print(report.compare(old.get("summary", []), result.get("summary", []), args.ref))
    print(f"\nresult: {out}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt as exc:  # processes were stopped by the finally blocks
        print(f"interrupted ({exc or 'SIGINT'}); all started processes stopped",
              file=sys.stderr)
        sys.exit(130)
