"""Processes for the benchmark: start pinned, wait until listening, measure a
process tree's CPU time from /proc, stop by PID."""

import os
import signal
import socket
import subprocess
import time

CLK_TCK = os.sysconf("SC_CLK_TCK")


def free_port():
    """A port the kernel just gave us on 127.0.0.1 (closed again at once)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _read_stat(pid):
    """(ppid, utime+stime+cutime+cstime in ticks, starttime) for one PID, or
    None if gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: split after
    # the last ')'. Fields from there: state(3) ppid(4) ... utime(14) stime(15)
    # cutime(16) cstime(17) ... starttime(22); index 0 below is field 3.
    rest = data[data.rindex(b")") + 2:].split()
    return (int(rest[1]), int(rest[11]) + int(rest[12]) + int(rest[13]) + int(rest[14]),
            int(rest[19]))


def tree_pids(root):
    """The root PID and all its live descendants (found through /proc ppid)."""
    children = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        st = _read_stat(int(name))
        if st is not None:
            children.setdefault(st[0], []).append(int(name))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, ()))
    return out


def tree_cpu_seconds(root):
    """CPU seconds (user+system) used so far by the whole tree under root.

    A live process's cutime/cstime hold only its reaped children, which are no
    longer in the tree, so summing all four fields counts every tick once even
    when a worker exits (and is reaped) during the measurement."""
    ticks = 0
    for pid in tree_pids(root):
        st = _read_stat(pid)
        if st is not None:
            ticks += st[1]
    return ticks / CLK_TCK


def cpus_allowed(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("Cpus_allowed_list:"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "?"


def wait_listening(port, proc, deadline_s=15.0):
    """Return once 127.0.0.1:port accepts a connection; raise if proc exits
    or the deadline passes. Polls connect() (there is nothing else to wait on)."""
    end = time.monotonic() + deadline_s
    while True:
        if proc.popen.poll() is not None:
            raise RuntimeError(f"{proc.name} exited with status {proc.popen.returncode} "
                               f"before listening on {port}:\n{proc.log_tail()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            pass
        if time.monotonic() > end:
            raise RuntimeError(f"{proc.name} not listening on {port} after {deadline_s}s:\n"
                               f"{proc.log_tail()}")
        time.sleep(0.05)


class Proc:
    """One started program (and whatever it forks), its log file, its stop."""

    def __init__(self, name, argv, log_path, cpu=None, env=None):
        self.name = name
        self.log_path = log_path
        if cpu is not None:
            argv = ["taskset", "-c", str(cpu)] + list(argv)
        self.argv = argv
        self._log = open(log_path, "ab")
        # taskset execs the program, so the PID is the program's.
        self.popen = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=self._log,
                                      stderr=subprocess.STDOUT, env=env)
        self.pid = self.popen.pid
        self.seen = {}  # PID -> starttime of every tree member observed, for stop()
        self._note(tree_pids(self.pid))

    def alive(self):
        return self.popen.poll() is None

    def _note(self, pids):
        for pid in pids:
            st = _read_stat(pid)
            if st is not None:
                self.seen.setdefault(pid, st[2])

    def pids(self):
        pids = tree_pids(self.pid) if self.alive() else []
        self._note(pids)
        return pids

    def cpu_seconds(self):
        self.pids()
        return tree_cpu_seconds(self.pid)

    def log_tail(self, n=40):
        try:
            with open(self.log_path, "rb") as f:
                lines = f.read().decode("utf-8", "replace").splitlines()
        except OSError:
            return ""
        return "\n".join(lines[-n:])

    def stop(self, grace_s=5.0):
        """SIGTERM the root, wait, then SIGKILL it and every descendant we saw."""
        if self.alive():
            self.pids()
            try:
                self.popen.send_signal(signal.SIGTERM)
                self.popen.wait(timeout=grace_s)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(timeout=grace_s)
        for pid, started in self.seen.items():
            st = _read_stat(pid)
            # Same PID and same start time: still the process we saw, not a
            # recycled PID belonging to someone else.
            if pid != self.pid and st is not None and st[2] == started:
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
        self._log.close()
