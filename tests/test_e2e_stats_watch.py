"""`keepwarm stats --watch` (issue 18): plain repeated frames when the output is not
a terminal, with rates over the interval; in a pseudo-terminal, a redrawn screen
that `q` ends; 80 columns are enough."""

import os
import pty
import select
import subprocess
import sys
import threading
import time

from support.client import HttpClient
from support.proxy import REPO_ROOT


def _load(port, stop):
    """Requests on one keep-alive connection until `stop` is set (bounded: 30 s)."""
    deadline = time.monotonic() + 30
    with HttpClient(port) as c:
        while not stop.is_set() and time.monotonic() < deadline:
            c.request("GET", "/")


def test_watch_prints_frames_with_rates_when_piped(backends, proxy_factory):
    kw = proxy_factory(backends, nbproc=1)
    stop = threading.Event()
    t = threading.Thread(target=_load, args=(kw.port, stop), daemon=True)
    t.start()
    try:
        out = subprocess.run([sys.executable, "-m", "proxy", "stats", "-s", kw.sock, "--watch",
                              "--interval", "1", "--count", "3"], cwd=str(REPO_ROOT),
                             capture_output=True, text=True, timeout=20)
    finally:
        stop.set()
        t.join(5)
    assert out.returncode == 0, out.stderr
    frames = [f for f in ("\n" + out.stdout).split("\nkeepwarm ") if f.strip()]
    assert len(frames) == 3
    assert all(len(line) <= 80 for line in out.stdout.splitlines())
    first, last = frames[0].splitlines(), frames[-1].splitlines()
    assert " pid " in first[0] and "NAME" in first[3]
    fe = [ln for ln in last if ln.startswith("fe/FRONTEND")][0]
    assert float(fe.split()[2]) > 0            # requests per second while loaded
    server = [ln for ln in last if ln.startswith("be/s1")][0]
    assert server.split()[1] in ("no", "UP")    # 'no check' or UP


def test_watch_in_a_terminal_redraws_and_q_quits(backends, proxy_factory):
    kw = proxy_factory(backends, nbproc=1)
    pid, fd = pty.fork()
    if pid == 0:                                # the child: the CLI itself
        os.chdir(str(REPO_ROOT))
        os.execv(sys.executable, [sys.executable, "-m", "proxy", "stats", "-s", kw.sock,
                                  "--watch", "--interval", "0.5"])
    out = b""
    try:
        deadline = time.monotonic() + 10
        while out.count(b"\x1b[2J") < 2 and time.monotonic() < deadline:
            ready, _, _ = select.select([fd], [], [], 0.2)
            if ready:
                out += os.read(fd, 65536)
        assert out.count(b"\x1b[2J") >= 2 and b"fe/FRONTEND" in out
        os.write(fd, b"q")
        deadline = time.monotonic() + 5
        status = None
        while time.monotonic() < deadline:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                break
            time.sleep(0.05)
        assert status is not None and os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
    finally:
        try:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass
        os.close(fd)
