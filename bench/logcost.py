"""What logging every request costs a worker, in process: CPU µs per round trip.

    python3 -m bench.logcost [--rounds N] [--repeat K] [--profile FILE]

Two rigs of bench/test_bench_roundtrip.py (a real Worker driven step by step,
a raw backend, all on 127.0.0.1), one plain and one whose frontend logs every
request with `option httplog` to a UNIX datagram socket that a child process
(bench/e2e/logsink.py, `--sink child`) or this one between round trips
(`--sink inproc`) drains. They are measured alternately (A/B, `--repeat`
times, keep-alive and close); the figure is the median of the per-pair
differences, CPU time of the whole process (client and backend included, the
same in both). The machine is shared: compare figures of one run only.
"""

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from bench import test_bench_roundtrip as rt  # noqa: E402

LOG_LINES = "    log {sock} local0\n    option httplog\n"


class InProcessSink:
    """The syslog socket, bound here and drained every 8 round trips (before the
    kernel's queue of 10 datagrams, net.unix.max_dgram_qlen, fills and lines are
    dropped); the CPU the draining takes is measured apart and not counted. The
    reader never sleeps in a wait, so no line pays for waking it (the child
    sink's lines do: ~10 us each on this VM when its CPU is idle)."""

    def __init__(self, path):
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
        self.sock.bind(path)
        self.sock.setblocking(False)
        self.lines = 0

    def drain(self):
        """Read what waits; the CPU seconds it took."""
        t0 = time.process_time()
        for _ in range(100000):
            try:
                self.sock.recv(65536)
            except BlockingIOError:
                break
            self.lines += 1
        return time.process_time() - t0

    def close(self):
        self.sock.close()
        return b"in process: %d lines" % self.lines


class Sink:
    """The syslog socket, drained by bench/e2e/logsink.py in a child process (its CPU
    is not the worker's), stopped by PID at the end."""

    lines = None

    def __init__(self, path):
        self.path = path
        self.proc = subprocess.Popen([sys.executable, "-m", "bench.e2e.logsink", path],
                                     cwd=ROOT, stdout=subprocess.PIPE)
        for _ in range(500):
            if os.path.exists(path):
                return
            time.sleep(0.01)
        self.close()
        raise RuntimeError("the log sink did not bind %s" % path)

    def drain(self):
        return 0.0

    def close(self):
        self.proc.terminate()
        try:
            out, _ = self.proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, _ = self.proc.communicate(timeout=10)
        return out


def make_rig(log_sock):
    plain = rt.CONFIG
    if log_sock is not None:
        rt.CONFIG = plain.replace("    default_backend be\n",
                                  "    default_backend be\n" + LOG_LINES.format(sock=log_sock))
    try:
        return rt.Rig("native")
    finally:
        rt.CONFIG = plain


def measure(fn, n, sink=None):
    drained = 0.0
    cpu0 = time.process_time()
    for i in range(n):
        fn()
        if sink is not None and i % 8 == 7:
            drained += sink.drain()
    if sink is not None:
        drained += sink.drain()
    return (time.process_time() - cpu0 - drained) / n * 1e6


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=2000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--modes", default="keep-alive,close")
    ap.add_argument("--profile", help="cProfile the logging rig's keep-alive rounds to FILE")
    ap.add_argument("--sink", choices=("child", "inproc"), default="child",
                    help="the log reader: a child process (each line may wake it, as in "
                         "bench.e2e) or this process between round trips (no wakeups: "
                         "the worker's own cost)")
    args = ap.parse_args(argv)
    tmp = tempfile.mkdtemp(prefix="kw-logcost-")
    sink = (Sink if args.sink == "child" else InProcessSink)(os.path.join(tmp, "log.sock"))
    rigs, clients = [], []
    try:
        plain, logged = make_rig(None), make_rig(sink.path)
        rigs += [plain, logged]
        for mode in args.modes.split(","):
            fns = []
            for rig in (plain, logged):
                fn = rt.one_round_trip_function(rig, mode, clients)
                for _ in range(100):
                    fn()                   # warm up
                fns.append(fn)
            if args.profile and mode == "keep-alive":
                import cProfile
                prof = cProfile.Profile()
                prof.enable()
                measure(fns[1], args.rounds, sink)
                prof.disable()
                prof.dump_stats(args.profile)
            a, b = [], []
            for _ in range(args.repeat):
                a.append(measure(fns[0], args.rounds))
                b.append(measure(fns[1], args.rounds, sink))
            diff = statistics.median([y - x for x, y in zip(a, b)])
            print("%-10s plain %.1f µs  logged %.1f µs  logging +%.1f µs per request "
                  "(medians of %d A/B pairs of %d)" % (mode, statistics.median(a),
                                                      statistics.median(b), diff,
                                                      args.repeat, args.rounds))
    finally:
        for c in clients:
            c.close()
        for rig in rigs:
            rig.close()
        out = sink.close()
        print("the sink (%s):" % args.sink, out.decode(errors="replace").strip())
        if os.path.exists(sink.path):
            os.unlink(sink.path)
        os.rmdir(tmp)


if __name__ == "__main__":
    main()
