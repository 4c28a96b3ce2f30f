"""The command line when its output cannot be written: /dev/full answers every write
with ENOSPC, as a full disk does. One line and status 1, never a traceback; a
running proxy whose stderr is full goes on serving."""

import os
import subprocess
import time

import pytest

from support.client import get
from support.proxy import REPO_ROOT, free_port, make_config, proxy_command

QUICKSTART = REPO_ROOT / "examples" / "quickstart.cfg"

pytestmark = pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")


def run_into_full(args, stdout_full=True, stderr_full=False, env=None, timeout=15):
    """Run `python -m proxy ARGS` with stdout and/or stderr on /dev/full."""
    with open("/dev/full", "w") as full:
        res = subprocess.run(proxy_command(*args), cwd=str(REPO_ROOT),
                             env=dict(os.environ, **(env or {})), timeout=timeout,
                             stdout=full if stdout_full else subprocess.PIPE,
                             stderr=full if stderr_full else subprocess.PIPE)
    return res.returncode, (b"" if stderr_full else res.stderr).decode()


@pytest.mark.parametrize("args", [["version"], ["check", "-f", str(QUICKSTART)], ["--help"]],
                         ids=["version", "check", "help"])
def test_a_full_stdout_is_one_line_and_status_1(args):
    rc, err = run_into_full(args)
    assert rc == 1
    assert err == "keepwarm: cannot write the output: No space left on device\n"


def test_stats_into_a_full_stdout(backends, proxy_factory):
    kw = proxy_factory(backends, nbproc=1)
    for extra in ([], ["--json"]):
        rc, err = run_into_full(["stats", "-s", str(kw.sock)] + extra)
        assert rc == 1 and "Traceback" not in err
        assert err == "keepwarm: cannot write the output: No space left on device\n"


def test_errors_into_a_full_stderr_still_end_with_status_1(tmp_path):
    rc, _ = run_into_full(["check", "-f", str(tmp_path / "missing.cfg")],
                          stdout_full=False, stderr_full=True)
    assert rc == 1


def test_run_serves_with_stderr_on_a_full_disk(backends, tmp_path):
    """Warnings and logs that cannot be written are dropped; the proxy runs."""
    port = free_port()
    cfg = tmp_path / "k.cfg"
    # No timeouts: the configuration loads with warnings, which go to the full stderr.
    cfg.write_text(make_config(port=port, servers=backends, sock=tmp_path / "s.sock",
                               nbproc=1, timeouts=()))
    with open("/dev/full", "w") as full:
        proc = subprocess.Popen(proxy_command("run", "-f", str(cfg)), cwd=str(REPO_ROOT),
                                stdout=full, stderr=full)
    try:
        r = None
        for _ in range(100):         # bounded: up to ~10 s for the workers to start
            try:
                r = get(port, "/", timeout=2)
                break
            except OSError:
                if proc.poll() is not None:
                    break
                time.sleep(0.1)
        assert proc.poll() is None, "keepwarm exited with %s" % proc.returncode
        assert r is not None and r.status == 200
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
    assert proc.returncode == 0
