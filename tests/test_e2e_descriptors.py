"""Out of file descriptors: a worker that cannot accept() (EMFILE) pauses, and
accepts again as soon as descriptors are free, even with no session of its own
left to close (a probing helper found it stuck for good behind a full warm pool)."""

import resource
import signal
import subprocess
import time

import pytest

from support.client import HttpClient
from support.proxy import REPO_ROOT, free_port, make_config, proxy_command, run_cli

NOFILE = 64


def stop(proc):
    """SIGTERM the master (it stops its workers), SIGKILL if it lingers; bounded."""
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


def _limit_fds():
    resource.setrlimit(resource.RLIMIT_NOFILE, (NOFILE, NOFILE))


def test_a_worker_out_of_descriptors_accepts_again_once_some_are_free(backend_factory,
                                                                       tmp_path):
    hog = backend_factory("s1")          # its warm pool takes every descriptor there is
    ok = backend_factory("s2")
    port, sock = free_port(), tmp_path / "kw.sock"
    cfg = tmp_path / "k.cfg"
    cfg.write_text(make_config(port=port, servers=[hog, ok], sock=sock, nbproc=1,
                               server_opts={"s1": "pool-warm-conn 100"}))
    err = open(tmp_path / "err.log", "wb")
    proc = subprocess.Popen(proxy_command("run", "-f", str(cfg)), cwd=str(REPO_ROOT),
                            stdout=subprocess.DEVNULL, stderr=err, preexec_fn=_limit_fds)
    try:
        hog.wait_for(lambda be: be.conn_count >= NOFILE - 20, timeout=10,
                     what="the warm pool filling the worker's descriptors")
        c = HttpClient(port, timeout=15)
        try:
            c.send_request("GET", "/")             # connected by the kernel; accept() fails
            deadline = time.monotonic() + 10
            while b"accept failed" not in (tmp_path / "err.log").read_bytes():
                assert time.monotonic() < deadline, (tmp_path / "err.log").read_text()
                time.sleep(0.05)
            r = run_cli("server", "disable", "be/s1", "-s", str(sock))
            assert r.returncode == 0, r.stderr     # its idle connections close: room again
            resp = c.read_response()
            assert resp.status == 200 and resp.body.startswith(b"hello from s2")
        finally:
            c.close()
        log = (tmp_path / "err.log").read_text()
        # Said once (per kind of error per 10 s), not at every retry: the warm pool
        # also fails to open connections at every tick.
        assert log.count("accept failed") == 1, log
        assert log.count("cannot open a server connection") == 1, log
    finally:
        stop(proc)
        err.close()


def _soft_limit(pid):
    with open("/proc/%d/limits" % pid) as f:
        for line in f:
            if line.startswith("Max open files"):
                return int(line.split()[3])
    raise AssertionError("no 'Max open files' line")


@pytest.mark.parametrize("hard", [4096, 128])
def test_the_master_fits_the_descriptor_limit_to_maxconn(backend_factory, tmp_path, hard):
    """maxconn 500 needs about 2 x 500 + 256 descriptors: the soft limit (64 here) is
    raised to that within the hard limit, and a hard limit too low for it is said."""
    b = backend_factory("s1")
    port, sock = free_port(), tmp_path / "kw.sock"
    cfg = tmp_path / "k.cfg"
    cfg.write_text(make_config(port=port, servers=[b], sock=sock, nbproc=1,
                               global_lines=["maxconn 500"]))
    err = open(tmp_path / "err.log", "wb")
    proc = subprocess.Popen(
        proxy_command("run", "-f", str(cfg)), cwd=str(REPO_ROOT), stdout=subprocess.DEVNULL,
        stderr=err,
        preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (64, hard)))
    try:
        with HttpClient(port, connect=False) as c:
            deadline = time.monotonic() + 10
            while True:                           # bounded: until the worker answers
                try:
                    c.connect()
                    break
                except OSError:
                    assert time.monotonic() < deadline and proc.poll() is None
                    time.sleep(0.05)
            assert c.request("GET", "/").status == 200
        assert _soft_limit(proc.pid) == min(1256, hard)
        log = (tmp_path / "err.log").read_text()
        assert ("needs about 1256 file descriptors, but the limit is 128" in log) == (hard < 1256)
    finally:
        stop(proc)
        err.close()
