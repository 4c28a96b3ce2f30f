"""The backend nginx and the proxies under test: configs rendered from
bench/configs/, started pinned, checked with one real request per path."""

import http.client
import json
import os
import string
import subprocess
import sys
import time
from pathlib import Path

from . import logsink
from .procs import Proc, free_port, wait_listening

CONFIGS = Path(__file__).resolve().parent.parent / "configs"
REPO = Path(__file__).resolve().parents[2]
SIZES = {"100B": 100, "16KiB": 16384}
PATHS = {"100B": "/small", "16KiB": "/large"}


def render(template, dest, **fields):
    text = string.Template((CONFIGS / template).read_text()).substitute(**fields)
    Path(dest).write_text(text)
    return dest


def http_get(port, path, timeout=5.0):
    """(status, body) of one GET on a fresh connection."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


class Backend:
    """One nginx process on CPU 1 serving /small and /large, plus stub_status."""

    def __init__(self, workdir, cpu=1):
        self.dir = Path(workdir)
        www = self.dir / "www"
        www.mkdir()
        (www / "small").write_bytes(b"s" * (SIZES["100B"] - 1) + b"\n")
        (www / "large").write_bytes(b"L" * (SIZES["16KiB"] - 1) + b"\n")
        self.port, self.status_port = free_port(), free_port()
        conf = render("backend-nginx.conf", self.dir / "backend-nginx.conf", dir=self.dir,
                      data_port=self.port, status_port=self.status_port)
        self.proc = Proc("backend nginx", ["nginx", "-p", str(self.dir), "-c", str(conf),
                                           "-e", str(self.dir / "backend-startup.log")],
                         self.dir / "backend.log", cpu=cpu)
        try:
            wait_listening(self.port, self.proc)
            wait_listening(self.status_port, self.proc)
        except BaseException:
            self.proc.stop()
            raise

    def counters(self):
        """(accepted connections, requests) from stub_status. Reading opens one
        connection and makes one request, which callers subtract."""
        status, body = http_get(self.status_port, "/")
        lines = body.decode().splitlines()
        accepts, _handled, requests = (int(x) for x in lines[2].split())
        return accepts, requests

    def stop(self):
        self.proc.stop()


class Proxy:
    """A proxy under test (or "direct": wrk straight to the backend)."""

    name = "?"
    DEFER = " defer-accept"      # what the bind line says for TCP_DEFER_ACCEPT

    def __init__(self, workdir, backend, cpu=0, **options):
        self.dir = Path(workdir)
        self.backend = backend
        self.cpu = cpu
        self.options = options
        self.proc = None
        self.port = None
        self.defer = False
        self.rules = False        # -rules: the frontend carries rules-frontend.cfg
        self.log = False          # -log: the frontend carries log-frontend.cfg
        self.sink = None          # -log: the syslog receiver (bench/e2e/logsink.py)

    def rule_fields(self):
        """${rules} and ${rule_backends} for the config templates: empty, or (for
        NAME-rules) issue 15's rule set with its map file written beside the config;
        for NAME-log, the frontend's `log` and `option httplog` lines come first."""
        logging = ""
        if self.log:
            logging = string.Template((CONFIGS / "log-frontend.cfg").read_text()).substitute(
                log_socket=self.log_socket)
        if not self.rules:
            return {"rules": logging, "rule_backends": ""}
        (self.dir / "hosts.map").write_text("api.example.com be_api\nadmin.example.com be_admin\n")
        fields = {"dir": self.dir, "backend_port": self.backend.port}
        return {"rules": logging + string.Template((CONFIGS / "rules-frontend.cfg")
                                                   .read_text()).substitute(**fields),
                "rule_backends": string.Template((CONFIGS / "rules-backends.cfg").read_text())
                .substitute(**fields)}

    @property
    def bind_opts(self):
        return self.DEFER if self.defer else ""

    def argv(self, conf):
        raise NotImplementedError

    def config(self):
        raise NotImplementedError

    @property
    def log_socket(self):
        return self.dir / f"{self.name}-log.sock"

    def start(self):
        self.port = free_port()
        if self.log:
            # on the backend's and wrk's CPU: the proxy's own CPU stays its alone
            self.sink = Proc(f"{self.name} logsink", logsink.command(self.log_socket, self.dir),
                             self.dir / f"{self.name}-logsink.log", cpu=1,
                             env=dict(os.environ, PYTHONPATH=str(REPO)))
            deadline = time.monotonic() + 10
            while not self.log_socket.exists() and time.monotonic() < deadline:
                time.sleep(0.05)      # polling a process we started; nothing to wait on
        conf = self.config()
        self.proc = Proc(self.name, self.argv(conf), self.dir / f"{self.name}.log",
                         cpu=self.cpu, env=self.env())
        wait_listening(self.port, self.proc)

    def env(self):
        return None

    def preflight(self):
        """One GET per size through the proxy; raise unless 200 with the exact body."""
        for size, path in PATHS.items():
            status, body = http_get(self.port, path)
            if status != 200 or len(body) != SIZES[size]:
                raise RuntimeError(f"{self.name}: GET {path} gave {status} with "
                                   f"{len(body)} bytes (want 200, {SIZES[size]})")

    def alive(self):
        return self.proc is None or self.proc.alive()

    def cpu_seconds(self):
        return self.proc.cpu_seconds() if self.proc else None

    def stop(self):
        if self.proc:
            self.proc.stop()
        if self.sink:
            self.sink.stop()


class Direct(Proxy):
    name = "direct"

    def start(self):
        self.port = self.backend.port


class HAProxy(Proxy):
    def __init__(self, workdir, backend, cpu=0, reuse="safe", threads=1):
        super().__init__(workdir, backend, cpu)
        self.reuse, self.threads = reuse, threads
        self.name = f"haproxy-{reuse}" + (f"-t{threads}" if threads != 1 else "")

    def config(self):
        return render("haproxy.cfg", self.dir / f"{self.name}.cfg", port=self.port,
                      backend_port=self.backend.port, reuse=self.reuse, threads=self.threads,
                      bind_opts=self.bind_opts, **self.rule_fields())

    def argv(self, conf):
        return ["haproxy", "-db", "-f", str(conf)]


class NginxProxy(Proxy):
    DEFER = " deferred"

    def __init__(self, workdir, backend, cpu=0, workers=1):
        super().__init__(workdir, backend, cpu)
        self.workers = workers
        self.name = "nginx" + (f"-p{workers}" if workers != 1 else "")

    def config(self):
        # Own file names per instance: the workers check runs several side by side.
        return render("nginx-proxy.conf", self.dir / f"{self.name}.conf", dir=self.dir,
                      name=self.name, port=self.port, backend_port=self.backend.port,
                      workers=self.workers, bind_opts=self.bind_opts)

    def argv(self, conf):
        return ["nginx", "-p", str(self.dir), "-c", str(conf),
                "-e", str(self.dir / f"{self.name}-startup.log")]


class Keepwarm(Proxy):
    def __init__(self, workdir, backend, cpu=0, workers=1, repo=REPO):
        super().__init__(workdir, backend, cpu)
        self.workers, self.repo = workers, Path(repo)
        self.name = "keepwarm" + (f"-w{workers}" if workers != 1 else "")

    @property
    def sock(self):
        """The control socket: named after the proxy, so renamed copies do not collide."""
        return self.dir / f"{self.name}.sock"

    def config(self):
        return render("keepwarm.cfg", self.dir / f"{self.name}.cfg", sock=self.sock,
                      port=self.port, backend_port=self.backend.port, workers=self.workers,
                      bind_opts=self.bind_opts, **self.rule_fields())

    def argv(self, conf):
        # -P: the harness's current directory is not put first on sys.path, so the
        # code run is --repo's (PYTHONPATH below), not that of the checkout the
        # harness was started from (it was, before: `--repo` changed nothing)
        safe = ["-P"] if sys.version_info >= (3, 11) else []
        return [sys.executable] + safe + ["-m", "proxy", "run", "-f", str(conf)]

    def env(self):
        env = dict(os.environ)
        env["PYTHONPATH"] = str(self.repo) + os.pathsep + env.get("PYTHONPATH", "")
        return env

    def stats_json(self, timeout_s=10):
        """The output of `keepwarm stats --json` (parsed), or raise."""
        out = subprocess.run([sys.executable, "-m", "proxy", "stats", "-s", str(self.sock),
                              "--json"], capture_output=True, text=True, timeout=timeout_s,
                             env=self.env(), cwd=self.repo)
        if out.returncode != 0:
            raise RuntimeError(f"keepwarm stats exited {out.returncode}: {out.stderr.strip()}")
        return json.loads(out.stdout)


def make(name, workdir, backend, cpu=0, repo=REPO):
    """A proxy object from its harness name; NAME-defer is NAME with its bind
    deferring accept() until the request arrives (HAProxy's and keepwarm's
    `defer-accept`, nginx's `deferred`); NAME-rules (haproxy-safe, keepwarm) is
    NAME with issue 15's rule set in its frontend (configs/rules-frontend.cfg);
    NAME-log (the same proxies; before -rules if both) logs every request with
    option httplog to a UNIX datagram socket drained by bench/e2e/logsink.py
    (configs/log-frontend.cfg)."""
    base, rules = (name[:-len("-rules")], True) if name.endswith("-rules") else (name, False)
    base, log = (base[:-len("-log")], True) if base.endswith("-log") else (base, False)
    if log and base not in ("haproxy", "haproxy-safe", "haproxy-always", "keepwarm"):
        raise ValueError(f"{name!r}: -log is for haproxy-safe, haproxy-always and keepwarm")
    base, defer = (base[:-len("-defer")], True) if base.endswith("-defer") else (base, False)
    if rules and base not in ("haproxy", "haproxy-safe", "haproxy-always", "keepwarm"):
        raise ValueError(f"{name!r}: -rules is for haproxy-safe, haproxy-always and keepwarm")
    if base == "direct" and not defer:
        return Direct(workdir, backend, cpu=None)
    if base in ("haproxy", "haproxy-safe"):
        p = HAProxy(workdir, backend, cpu, reuse="safe")
    elif base == "haproxy-always":
        p = HAProxy(workdir, backend, cpu, reuse="always")
    elif base == "nginx":
        p = NginxProxy(workdir, backend, cpu)
    elif base == "keepwarm":
        p = Keepwarm(workdir, backend, cpu, repo=repo)
    else:
        raise ValueError(f"unknown proxy {name!r} (direct, haproxy-safe, haproxy-always, nginx, "
                         "keepwarm; any but direct with -defer)")
    if defer:
        p.defer = True
        p.name += "-defer"
    if log:
        p.log = True
        p.name += "-log"
    if rules:
        p.rules = True
        p.name += "-rules"
    return p


def keepwarm_runs(repo=REPO):
    """Whether `python3 -m proxy run` exists yet in this checkout (a cheap probe)."""
    env = dict(os.environ, PYTHONPATH=str(repo))
    try:
        out = subprocess.run([sys.executable, "-m", "proxy", "run", "--help"], cwd=repo,
                             env=env, capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return out.returncode == 0

