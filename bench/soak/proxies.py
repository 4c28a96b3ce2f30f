"""keepwarm and HAProxy under one soak config: start, reload, workers, fds and server connections.

Both read the same HAProxy-syntax config (only the control socket's path
differs): 2 workers (keepwarm) or 2 threads (HAProxy), `maxconn` high enough
for the idle-clients test, `timeout http-request` for slowloris. HAProxy runs
in master-worker mode (`-W`), so both have a master that reloads on a signal:
SIGHUP for keepwarm, SIGUSR2 for HAProxy.
"""

import json
import os
import signal
import string
import subprocess
import sys
import time
from pathlib import Path

from bench.e2e.procs import Proc, free_port, wait_listening
from bench.e2e.servers import REPO

from . import clients

CONFIG = string.Template("""\
# Soak run config: the same text for keepwarm and HAProxy (bench/soak/proxies.py).
global
    nbthread 2
    maxconn ${maxconn}
    stats socket ${sock}

defaults
    mode http
    timeout connect 2s
    timeout client 30s
    timeout server 30s
    timeout http-request 10s
    timeout http-keep-alive 30s
    retries 3

frontend fe
    bind 127.0.0.1:${port}
    default_backend be

backend be
    server s1 127.0.0.1:${backend_port}
""")

# Enough for 5,000 idle clients plus a server connection each; both proxies
# size their descriptor limit from it (2 x maxconn + 256, HAProxy's ulimit-n rule).
MAXCONN = 9000
RELOAD_SIGNAL = {"keepwarm": signal.SIGHUP, "haproxy": signal.SIGUSR2}


def stat_fields(pid):
    """(ppid, starttime) of a live PID from /proc/PID/stat, or None."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return None
    rest = data[data.rindex(b")") + 2:].split()  # the name may hold spaces and ')'
    return int(rest[1]), int(rest[19])


def children(pid):
    """The direct children of `pid`, sorted by start time."""
    found = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            st = stat_fields(int(name))
            if st is not None and st[0] == pid:
                found.append((st[1], int(name)))
    return [p for _, p in sorted(found)]


def parse_proc_net_tcp(text):
    """Rows of /proc/net/tcp as (local port, remote port, state hex, inode)."""
    rows = []
    for line in text.splitlines()[1:]:
        f = line.split()
        if len(f) < 10:
            continue
        rows.append((int(f[1].rsplit(":", 1)[1], 16), int(f[2].rsplit(":", 1)[1], 16), f[3],
                     int(f[9])))
    return rows


ESTABLISHED = "01"
# `python -m` puts the working directory first on sys.path; -P (3.11+) leaves it out,
# so PYTHONPATH decides which checkout runs (--repo).
SAFE_PATH = ["-P"] if sys.version_info >= (3, 11) else []


class SoakProxy:
    """One proxy (keepwarm or haproxy) started under the soak config."""

    def __init__(self, kind, workdir, backend_port, repo=REPO):
        self.kind, self.repo = kind, Path(repo)
        self.dir = Path(workdir)
        self.backend_port = backend_port
        self.port = free_port()
        self.sock = self.dir / f"{kind}-{self.port}.sock"
        self.conf = self.dir / f"{kind}-{self.port}.cfg"
        self.conf.write_text(CONFIG.substitute(maxconn=MAXCONN, sock=self.sock, port=self.port,
                                               backend_port=backend_port))
        self.proc = None

    def start(self, ready_s=15.0):
        if self.kind == "keepwarm":
            env = dict(os.environ)
            env["PYTHONPATH"] = str(self.repo) + os.pathsep + env.get("PYTHONPATH", "")
            argv = [sys.executable, *SAFE_PATH, "-m", "proxy", "run", "-f", str(self.conf)]
        else:
            env, argv = None, ["haproxy", "-W", "-f", str(self.conf)]
        self.proc = Proc(self.kind, argv, self.dir / f"{self.kind}-{self.port}.log", env=env)
        try:
            wait_listening(self.port, self.proc, ready_s)
            self.wait_workers(2 if self.kind == "keepwarm" else 1, ready_s)
        except BaseException:
            self.stop()
            raise
        return self

    @property
    def master(self):
        return self.proc.pid

    def workers(self):
        """The master's children (old workers still draining included), oldest first."""
        pids = children(self.master)
        self.proc.pids()  # note them, so stop() can kill what SIGTERM leaves
        return pids

    def wait_workers(self, n, deadline_s):
        end = time.monotonic() + deadline_s
        while len(self.workers()) < n:
            if time.monotonic() > end or not self.proc.alive():
                raise RuntimeError(f"{self.kind}: {len(self.workers())} worker(s) after "
                                   f"{deadline_s}s, want {n}:\n{self.proc.log_tail()}")
            time.sleep(0.05)

    def reload(self):
        os.kill(self.master, RELOAD_SIGNAL[self.kind])

    def fds(self):
        """Open descriptors of the whole tree (master and workers)."""
        n = 0
        for pid in self.proc.pids():
            try:
                n += len(os.listdir(f"/proc/{pid}/fd"))
            except OSError:
                pass
        return n

    def socket_inodes(self):
        inodes = set()
        for pid in self.proc.pids():
            try:
                fds = os.listdir(f"/proc/{pid}/fd")
            except OSError:
                continue
            for fd in fds:
                try:
                    link = os.readlink(f"/proc/{pid}/fd/{fd}")
                except OSError:
                    continue
                if link.startswith("socket:["):
                    inodes.add(int(link[8:-1]))
        return inodes

    def server_conns(self):
        """ESTABLISHED connections from this proxy's tree to its backend port."""
        mine = self.socket_inodes()
        with open("/proc/net/tcp") as f:
            rows = parse_proc_net_tcp(f.read())
        return sum(1 for _l, rport, st, inode in rows
                   if rport == self.backend_port and st == ESTABLISHED and inode in mine)

    def stats(self, timeout_s=5):
        """`keepwarm stats --json`, parsed (keepwarm only). Asked in-process through the
        CLI's own request function when it imports (a CLI process costs ~100 ms under load)."""
        try:
            from proxy.control import request
        except ImportError:
            request = None
        if request is not None:
            return request(str(self.sock), {"cmd": "stats"}, timeout=timeout_s)
        out = subprocess.run([sys.executable, *SAFE_PATH, "-m", "proxy", "stats", "-s",
                              str(self.sock), "--json"], capture_output=True, text=True,
                             timeout=timeout_s, cwd=self.repo,
                             env=dict(os.environ, PYTHONPATH=str(self.repo)))
        if out.returncode != 0:
            raise RuntimeError(f"keepwarm stats exited {out.returncode}: {out.stderr.strip()}")
        return json.loads(out.stdout)

    def alive(self):
        return self.proc is not None and self.proc.alive() and clients.alive(self.port)

    def stop(self):
        if self.proc is not None:
            self.proc.stop()


def haproxy_version():
    """HAProxy's version line, or None when it is not installed."""
    try:
        out = subprocess.run(["haproxy", "-v"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.splitlines()[0] if out.returncode == 0 and out.stdout else None
