"""The external programs the harness needs, and a description of the machine.
Nothing is ever installed from here: missing tools are reported with the
command that installs them."""

import datetime
import os
import platform
import shutil
import subprocess

# program -> Debian package
NEEDED = {"wrk": "wrk", "nginx": "nginx", "haproxy": "haproxy", "taskset": "util-linux"}


def missing(needed):
    """Programs (from NEEDED) not found on PATH."""
    return [prog for prog in needed if shutil.which(prog) is None]


def install_hint(progs):
    pkgs = " ".join(sorted({NEEDED[p] for p in progs}))
    return f"apt-get update && apt-get install -y {pkgs}"


def _first_line(argv):
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    text = (out.stdout + out.stderr).strip()
    return text.splitlines()[0] if text else None


def versions():
    return {"haproxy": _first_line(["haproxy", "-v"]),
            "nginx": _first_line(["nginx", "-v"]),
            "wrk": _first_line(["wrk", "-v"])}


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "?"


def git_rev(repo):
    return _first_line(["git", "-C", str(repo), "log", "-1", "--format=%h %s"])


def machine(repo):
    return {"date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "nproc": os.cpu_count(), "cpu_model": cpu_model(), "kernel": platform.release(),
            "python": platform.python_version(), "loadavg_at_start": os.getloadavg(),
            "keepwarm_commit": git_rev(repo), **versions()}


_QLEN = "/proc/sys/net/unix/max_dgram_qlen"


def dgram_qlen():
    """How many datagrams a UNIX datagram socket queues (None: unknown)."""
    try:
        with open(_QLEN) as f:
            return int(f.read())
    except (OSError, ValueError):
        return None


def set_dgram_qlen(n):
    """Set net.unix.max_dgram_qlen; the value it had (None when it cannot be set)."""
    was = dgram_qlen()
    try:
        with open(_QLEN, "w") as f:
            f.write("%d\n" % n)
    except OSError as exc:
        print(f"note: net.unix.max_dgram_qlen not set ({exc}); it stays {was}")
        return None
    return was
