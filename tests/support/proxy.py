"""Run a real keepwarm (``python -m proxy run -f CFG``) for a test, and stop all of it.

``ProxyProcess`` writes the config into the test's directory, starts the
master with stdout/stderr captured to files, waits until ``stats --json``
shows every worker ready and the bind ports accept, and on ``stop()`` signals
the master, waits for every process of the tree (master, workers learned from
stats and from /proc) and SIGKILLs and reports any survivor.
"""

import json
import os
import select
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence

REPO_ROOT = Path(__file__).resolve().parents[2]
READY_TIMEOUT = float(os.environ.get("KEEPWARM_TEST_READY_TIMEOUT", "10"))


def free_port():
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
    finally:
        s.close()


def proxy_command(*args):
    return [sys.executable, "-m", "proxy", *args]


def run_cli(*args, env=None, timeout=15, input=None):
    """Run ``python -m proxy ARGS`` from the repository root; returns CompletedProcess (text)."""
    full_env = dict(os.environ)
    full_env.update(env or {})
    return subprocess.run(proxy_command(*args), cwd=str(REPO_ROOT), env=full_env, input=input,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=timeout)


def _server_address(s):
    if hasattr(s, "port"):           # a ScriptedBackend
        return "127.0.0.1:%d" % s.port
    if isinstance(s, int):
        return "127.0.0.1:%d" % s
    return str(s)


def make_config(*, port, servers, sock=None, nbproc=2, server_opts="", bind_opts="",
                global_lines=(), defaults_lines=(), frontend_lines=(), backend_lines=(),
                timeouts=("connect 2s", "client 5s", "server 5s")):
    """HAProxy-syntax config text: one frontend ``fe`` on 127.0.0.1:port -> backend ``be``.

    ``servers``: list of (name, backend-or-port-or-"host:port") pairs, or of
    ScriptedBackend objects (named after ``.name``). ``server_opts`` is
    appended to each server line; it may also be a dict name -> options.
    ``bind_opts`` is appended to the bind line.
    """
    out = ["global"]
    if nbproc is not None:
        out.append("    nbproc %d" % nbproc)
    if sock is not None:
        out.append("    stats socket %s" % sock)
    out += ["    " + l for l in global_lines]
    out += ["", "defaults", "    mode http"]
    out += ["    timeout %s" % t for t in timeouts]
    out += ["    " + l for l in defaults_lines]
    out += ["", "frontend fe", ("    bind 127.0.0.1:%d %s" % (port, bind_opts)).rstrip(),
            "    default_backend be"]
    out += ["    " + l for l in frontend_lines]
    out += ["", "backend be", "    balance roundrobin"]
    out += ["    " + l for l in backend_lines]
    for s in servers:
        name, target = (s.name, s) if hasattr(s, "name") else s
        opts = server_opts.get(name, "") if isinstance(server_opts, dict) else server_opts
        out.append(("    server %s %s %s" % (name, _server_address(target), opts)).rstrip())
    return "\n".join(out) + "\n"


def proc_status(pid):
    """Fields of /proc/PID/status (values as strings), or {} if the process is gone."""
    try:
        with open("/proc/%d/status" % pid) as f:
            return dict(line.rstrip("\n").split(":\t", 1) for line in f if ":\t" in line)
    except (FileNotFoundError, ProcessLookupError):
        return {}


def memory_kib(pid, field="VmHWM"):
    """VmHWM (peak RSS) or VmRSS of a process in KiB; None when gone."""
    v = proc_status(pid).get(field)
    return int(v.split()[0]) if v else None


def alive(pid):
    """True when ``pid`` exists and is not a zombie."""
    st = proc_status(pid).get("State", "")
    return bool(st) and not st.startswith("Z")


def _children(pid):
    kids = set()
    try:
        for tid in os.listdir("/proc/%d/task" % pid):
            try:
                with open("/proc/%d/task/%s/children" % (pid, tid)) as f:
                    kids.update(int(x) for x in f.read().split())
            except OSError:
                pass
    except OSError:
        pass
    return kids


def descendants(pid):
    seen, todo = set(), [pid]
    while todo and len(seen) < 1000:
        for k in _children(todo.pop()):
            if k not in seen:
                seen.add(k)
                todo.append(k)
    return seen


def pids_running(*needles):
    """PIDs whose command line contains every one of ``needles`` (our own processes)."""
    found = set()
    me = os.getpid()
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) == me:
            continue
        try:
            with open("/proc/%s/cmdline" % name, "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode("utf-8", "replace")
        except OSError:
            continue
        if all(n in cmd for n in needles):
            found.add(int(name))
    return found


class StatsError(AssertionError):
    pass


STATS_IN_SUBPROCESS = os.environ.get("KEEPWARM_TEST_STATS") == "subprocess"


def _cli_in_process(args, env):
    """Run the click CLI here; returns (exit code, stdout, stderr)."""
    from click.testing import CliRunner
    if str(REPO_ROOT) not in sys.path:
        sys.path.insert(0, str(REPO_ROOT))
    from proxy.cli import main
    try:
        runner = CliRunner(mix_stderr=False)
    except TypeError:              # click >= 8.2 keeps stderr apart by itself
        runner = CliRunner()
    r = runner.invoke(main, args, env=env or None, catch_exceptions=True)
    if r.exception is not None and not isinstance(r.exception, SystemExit):
        return 99, "", "stats raised %r" % (r.exception,)
    return r.exit_code, r.stdout, r.stderr


@dataclass
class StopResult:
    returncode: Optional[int]
    elapsed: float                 # signal -> every known process of the tree gone
    pids: List[int] = field(default_factory=list)
    survivors: List[int] = field(default_factory=list)


class ProxyProcess:
    """One keepwarm master and its workers, started for a test."""

    def __init__(self, config_text, workdir, *, bind_ports: Sequence[int] = (), sock=None,
                 workers: Optional[int] = None, env: Optional[Dict[str, str]] = None,
                 name="keepwarm", args: Sequence[str] = ()):
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.cfg = self.workdir / ("%s.cfg" % name)
        self.cfg.write_text(config_text)
        self.bind_ports = list(bind_ports)
        self.sock = str(sock) if sock else None
        self.expected_workers = workers
        self.env = dict(env or {})
        self.args = list(args)
        self.out_path = self.workdir / ("%s.out" % name)
        self.err_path = self.workdir / ("%s.err" % name)
        self.proc: Optional[subprocess.Popen] = None
        self.known_pids = set()
        self.last_stats = None
        self.stopped: Optional[StopResult] = None

    # -- start -------------------------------------------------------------
    def start(self, wait=True, timeout=READY_TIMEOUT):
        env = dict(os.environ)
        env.update(self.env)
        self._out = open(self.out_path, "wb")
        self._err = open(self.err_path, "wb")
        self.proc = subprocess.Popen(proxy_command("run", "-f", str(self.cfg), *self.args), cwd=str(REPO_ROOT),
                                     env=env, stdin=subprocess.DEVNULL, stdout=self._out,
                                     stderr=self._err, start_new_session=True)
        self.known_pids.add(self.proc.pid)
        if wait:
            self.wait_ready(timeout)
        return self

    @property
    def pid(self):
        return self.proc.pid

    @property
    def port(self):
        return self.bind_ports[0]

    def stderr_text(self):
        try:
            return self.err_path.read_text(errors="replace")
        except OSError:
            return ""

    def _fail(self, what):
        rc = self.proc.poll()
        raise AssertionError("%s (master pid %d, exit status %s)\n--- keepwarm stderr ---\n%s"
                             % (what, self.proc.pid, rc, self.stderr_text()[-4000:]))

    def wait_ready(self, timeout=READY_TIMEOUT):
        """Poll (bounded) until every worker reports ready and every bind port accepts."""
        deadline = time.monotonic() + timeout
        last = "no stats yet"
        probes = 0
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self._fail("keepwarm exited during start-up")
            try:
                st = self.stats(timeout=max(1.0, deadline - time.monotonic()))
            except StatsError as exc:
                last = str(exc)
            else:
                workers = st.get("info", {}).get("workers", [])
                want = self.expected_workers
                if workers and all(w.get("ready") for w in workers) and \
                        (want is None or len(workers) == want):
                    accepted = [self._port_accepts(p) for p in self.bind_ports]
                    probes += sum(accepted)
                    if all(accepted):
                        return self._settle_probes(probes, deadline)
                    last = "workers ready but a bind port refused"
                else:
                    last = "workers not ready: %r" % (workers,)
            time.sleep(0.05)   # polling an external process; no event to wait on
        self._fail("keepwarm not ready within %.0f s: %s" % (timeout, last))

    def _settle_probes(self, probes, deadline):
        """Let the readiness probes show in frontend ``stot`` so tests start from still counters."""
        end = min(deadline, time.monotonic() + 3.0)
        st = self.last_stats
        while time.monotonic() < end:
            try:
                st = self.stats()
                if sum(f.get("stot", 0) for f in st.get("frontends", {}).values()) >= probes:
                    break
            except StatsError:
                pass
            time.sleep(0.1)
        return st

    @staticmethod
    def _port_accepts(port):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return True
        except OSError:
            return False

    # -- stats -------------------------------------------------------------
    def stats(self, timeout=5.0, subprocess_cli=STATS_IN_SUBPROCESS):
        """``keepwarm stats -s SOCK --json`` parsed (or KEEPWARM_SOCKET from env).

        The command runs in this process through click's test runner (the same
        code, without paying an interpreter start per poll); set
        KEEPWARM_TEST_STATS=subprocess to run ``python -m proxy`` instead.
        """
        args = ["stats", "--json"]
        if self.sock:
            args += ["-s", self.sock]
        if subprocess_cli:
            try:
                r = run_cli(*args, env=self.env, timeout=timeout)
            except subprocess.TimeoutExpired:
                raise StatsError("stats timed out after %.1f s" % timeout)
            rc, out, err = r.returncode, r.stdout, r.stderr
        else:
            rc, out, err = _cli_in_process(args, self.env)
        if rc != 0:
            raise StatsError("stats exit %d: %s" % (rc, err.strip()[-500:]))
        try:
            st = json.loads(out)
        except ValueError:
            raise StatsError("stats printed no JSON: %r" % out[:300])
        self.last_stats = st
        for w in st.get("info", {}).get("workers", []):
            if w.get("pid"):
                self.known_pids.add(w["pid"])
        return st

    def wait_stats(self, predicate, timeout=5.0, what="stats condition"):
        """Poll stats (bounded) until ``predicate(stats)`` is true; returns those stats."""
        deadline = time.monotonic() + timeout
        st, err = None, None
        while True:
            try:
                st = self.stats()
                if predicate(st):
                    return st
            except StatsError as exc:
                err = exc
            except (KeyError, TypeError) as exc:
                err = "stats lack a field: %r" % (exc,)
            if time.monotonic() >= deadline:
                raise AssertionError("timed out waiting for %s; last stats: %s; last error: %s"
                                     % (what, json.dumps(st)[:3000] if st else None, err))
            time.sleep(0.1)   # workers report every ~250 ms

    def worker_pids(self, stats=None):
        st = stats or self.last_stats or self.stats()
        return [w["pid"] for w in st["info"]["workers"]]

    # -- stop --------------------------------------------------------------
    def tree_pids(self):
        """Every process we know belongs to this instance (alive ones)."""
        pids = set(self.known_pids)
        if self.proc and self.proc.poll() is None:
            pids |= descendants(self.proc.pid)
        pids |= pids_running(str(self.cfg), " run ")
        return {p for p in pids if alive(p)}

    def send_signal(self, sig):
        os.kill(self.proc.pid, sig)

    def stop(self, sig=signal.SIGTERM, timeout=5.0, check=True):
        """Signal the master, wait for the whole tree; SIGKILL and report survivors."""
        if self.stopped is not None:
            return self.stopped
        pids = self.tree_pids()
        fds = {}
        for p in pids:
            try:
                fds[p] = os.pidfd_open(p)
            except (ProcessLookupError, OSError):
                pass
        t0 = time.monotonic()
        if self.proc.poll() is None:
            try:
                os.kill(self.proc.pid, sig)
            except ProcessLookupError:
                pass
        poller = select.poll()
        for fd in fds.values():
            poller.register(fd, select.POLLIN)
        pending = dict(fds)
        deadline = t0 + timeout
        elapsed = 0.0
        while pending:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            for fd, _ in poller.poll(left * 1000):
                poller.unregister(fd)
                for p, f in list(pending.items()):
                    if f == fd:
                        del pending[p]
            elapsed = time.monotonic() - t0
        survivors = sorted(pending)
        for p in survivors:
            try:
                os.kill(p, signal.SIGKILL)
            except ProcessLookupError:
                pass
        # late-born processes (a worker forked while we were stopping)
        late = sorted(p for p in pids_running(str(self.cfg), " run ") if alive(p))
        for p in late:
            try:
                os.kill(p, signal.SIGKILL)
            except ProcessLookupError:
                pass
        survivors += [p for p in late if p not in survivors]
        try:
            rc = self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait(timeout=5)
        for fd in fds.values():
            os.close(fd)
        for f in (self._out, self._err):
            f.close()
        self.stopped = StopResult(rc, elapsed, sorted(pids), survivors)
        if check and survivors:
            raise AssertionError("keepwarm processes survived %s for %.1f s and were killed: %s\n%s"
                                 % (signal.Signals(sig).name, timeout, survivors,
                                    self.stderr_text()[-3000:]))
        return self.stopped

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
