"""Demo backends: tiny HTTP/1.1 keep-alive servers to proxy to while trying keepwarm.

``serve(addresses)`` runs one server per (host, port) in this process until
interrupted. Each answer says which server, which TCP connection and which
request on it served you, so connection reuse is visible with plain curl::

    hello from demo backend 127.0.0.1:9001 (connection #3, request #12 on it)

``GET /health`` answers 200 ``ok`` for health checks.
``start_in_background(addresses)`` runs them in child processes that die with
their parent. ``python -m proxy.demo 127.0.0.1:9001 127.0.0.1:9002`` does the
same from a shell.
"""

import argparse
import ctypes
import itertools
import os
import signal
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PR_SET_PDEATHSIG = 1
READY_TIMEOUT = 10.0


class DemoServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address):
        super().__init__(address, DemoHandler)
        self.label = "%s:%d" % address
        self.conn_ids = itertools.count(1)
        self.lock = threading.Lock()


class DemoHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"   # keep-alive unless the client says close
    timeout = 60                    # an idle client connection is dropped after this

    def setup(self):
        super().setup()
        with self.server.lock:
            self.conn_id = next(self.server.conn_ids)
        self.served = 0

    def log_message(self, format, *args):
        pass                        # keepwarm logs; the demo stays quiet

    def _drain_body(self):
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return
                self.rfile.read(size + 2)
        length = int(self.headers.get("Content-Length") or 0)
        while length > 0:
            got = self.rfile.read(min(length, 65536))
            if not got:
                return
            length -= len(got)

    def _answer(self, send_body=True):
        self._drain_body()
        self.served += 1
        if self.path.split("?")[0] == "/health":
            status, text = 200, "ok\n"
        else:
            status = 200
            text = "hello from demo backend %s (connection #%d, request #%d on it)\n" % (
                self.server.label, self.conn_id, self.served)
        body = text.encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if send_body:
            self.wfile.write(body)

    def do_GET(self):
        self._answer()

    def do_POST(self):
        self._answer()

    def do_PUT(self):
        self._answer()

    def do_HEAD(self):
        self._answer(send_body=False)


def parse_address(text):
    host, _, port = text.rpartition(":")
    return (host or "127.0.0.1", int(port))


def serve(addresses, ready=None):
    """Serve on every (host, port) until SIGINT/SIGTERM. ``ready()`` is called once bound."""
    servers = [DemoServer(tuple(a)) for a in addresses]
    stop = threading.Event()

    def on_signal(signum, frame):
        stop.set()

    old = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    threads = [threading.Thread(target=s.serve_forever, kwargs={"poll_interval": 0.5}, daemon=True)
               for s in servers]
    for t in threads:
        t.start()
    if ready:
        ready()
    try:
        while not stop.wait(1.0):
            pass
    finally:
        for s in servers:
            s.shutdown()
            s.server_close()
        for s, h in old.items():
            signal.signal(s, h)


def _die_with_parent():
    """In the child, before exec: get SIGTERM when the parent goes (Linux)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    except (OSError, AttributeError):
        pass   # not Linux: the child also watches the parent's pid


def start_in_background(addresses):
    """Start ``serve`` for each address in its own child process; return their pids.

    Returns once every child is listening; raises RuntimeError (with the
    child's message) when one cannot start, e.g. its port is taken. The
    children die when this process dies.
    """
    pids, procs = [], []
    try:
        for host, port in addresses:
            p = subprocess.Popen(
                [sys.executable, "-m", "proxy.demo", "--parent", str(os.getpid()),
                 "%s:%d" % (host, port)],
                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                preexec_fn=_die_with_parent, close_fds=True)
            procs.append(p)
        for p, (host, port) in zip(procs, addresses):
            line = _read_line(p.stdout, READY_TIMEOUT)
            if line.strip() != b"ready":
                try:   # EOF on stdout: the child is exiting; let it finish its message
                    p.wait(1 if line == b"" else 0.01)
                except subprocess.TimeoutExpired:
                    pass
                err = p.stderr.read().decode(errors="replace") if p.poll() is not None else ""
                raise RuntimeError("demo backend %s:%d did not start: %s"
                                   % (host, port, (err.strip().splitlines() or ["timeout"])[-1]))
            p.stdout.close()
            p.stderr.close()
            pids.append(p.pid)
        return pids
    except BaseException:
        for p in procs:
            if p.poll() is None:
                p.terminate()
                p.wait(5)
        raise


def _read_line(f, timeout):
    import select
    deadline = time.monotonic() + timeout
    buf = b""
    while not buf.endswith(b"\n"):
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([f], [], [], left)[0]:
            return buf
        b = os.read(f.fileno(), 64)
        if not b:
            return buf
        buf += b
    return buf


def _watch_parent(parent):
    while True:
        time.sleep(1.0)
        if os.getppid() != parent:
            os.kill(os.getpid(), signal.SIGTERM)
            return


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m proxy.demo", description=__doc__.split("\n")[0])
    ap.add_argument("addresses", nargs="+", metavar="HOST:PORT")
    ap.add_argument("--parent", type=int, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.parent is not None:
        if os.getppid() != args.parent:   # the parent died before prctl took effect
            return 0
        threading.Thread(target=_watch_parent, args=(args.parent,), daemon=True).start()

    def ready():
        if args.parent is not None:   # start_in_background waits for this line
            sys.stdout.write("ready\n")
            sys.stdout.flush()
        else:
            sys.stderr.write("demo backends listening on %s (Ctrl-C stops)\n"
                             % ", ".join(args.addresses))

    try:
        serve([parse_address(a) for a in args.addresses], ready=ready)
    except OSError as exc:
        sys.stderr.write("demo backend: %s\n" % exc)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
