"""Demo backends (proxy/demo.py) and the quickstart config they make work out of the box."""

import os
import re
import time
import select
import signal
import subprocess
import sys

import pytest

from proxy import demo
from support.client import HttpClient, get
from support.proxy import REPO_ROOT, alive, descendants, free_port, pids_running

QUICKSTART = REPO_ROOT / "examples" / "quickstart.cfg"


def wait_gone(pid, timeout):
    """True when ``pid`` exits within ``timeout`` (pidfd: no polling)."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    try:
        return bool(select.select([fd], [], [], timeout)[0])
    finally:
        os.close(fd)


@pytest.fixture
def demo_pids():
    started = []
    yield started
    for pid in started:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            continue
        if not wait_gone(pid, 5):
            os.kill(pid, signal.SIGKILL)
        try:
            os.waitpid(pid, 0)
        except ChildProcessError:
            pass


def test_demo_backend_says_which_connection_and_request_served_it(demo_pids):
    port = free_port()
    demo_pids += demo.start_in_background([("127.0.0.1", port)])
    with HttpClient(port) as c:
        first = c.request("GET", "/").body.decode()
        second = c.request("GET", "/x").body.decode()
        health = c.request("GET", "/health")
    assert first == "hello from demo backend 127.0.0.1:%d (connection #1, request #1 on it)\n" % port
    assert second.endswith("(connection #1, request #2 on it)\n")
    assert health.status == 200
    assert get(port, "/").body.decode().endswith("(connection #2, request #1 on it)\n")


def test_demo_backend_on_a_taken_port_raises_with_the_reason(demo_pids):
    port = free_port()
    demo_pids += demo.start_in_background([("127.0.0.1", port)])
    with pytest.raises(RuntimeError, match="in use"):
        demo.start_in_background([("127.0.0.1", port)])


def test_demo_backends_die_with_their_parent():
    port = free_port()
    code = ("import sys; sys.path.insert(0, %r); from proxy import demo; "
            "print(*demo.start_in_background([('127.0.0.1', %d)]), flush=True); "
            "sys.stdin.read()" % (str(REPO_ROOT), port))
    parent = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        child = int(parent.stdout.readline())
        assert get(port, "/health").status == 200
    finally:
        parent.kill()
        parent.wait(5)
    gone = wait_gone(child, 5)
    if not gone and alive(child):
        os.kill(child, signal.SIGKILL)
    assert gone, "demo backend %d outlived its parent" % child


def quickstart_on_free_ports():
    text = QUICKSTART.read_text()
    ports = {}
    for old in ("8080", "9001", "9002"):
        ports[old] = free_port()
        text, n = re.subn(r"(?m)^(\s*(?:bind|server \S+)\s+)127\.0\.0\.1:%s\b" % old,
                          r"\g<1>127.0.0.1:%d" % ports[old], text)
        assert n == 1, old
    return text, ports


def test_quickstart_with_demo_backends_serves_through_the_proxy(tmp_path, proxy_factory):
    text, ports = quickstart_on_free_ports()
    env = {"KEEPWARM_SOCKET": str(tmp_path / "qs.sock")}
    kw = proxy_factory(config=text, bind_ports=[ports["8080"]], workers=2, sock=False, env=env,
                       args=["--with-demo-backends"])
    demos = [p for p in descendants(kw.pid) if p in pids_running("proxy.demo")]
    assert len(demos) == 2, "expected two demo backend processes under the master"
    seen = set()
    for _ in range(6):
        body = get(kw.port, "/").body.decode()
        m = re.match(r"hello from demo backend 127\.0\.0\.1:(\d+) ", body)
        assert m, body
        seen.add(int(m.group(1)))
    assert seen == {ports["9001"], ports["9002"]}
    # One httplog line per request on standard output (the quickstart's `log stdout`).
    deadline = time.monotonic() + 5
    lines = []
    while len(lines) < 6 and time.monotonic() < deadline:
        time.sleep(0.05)
        lines = [l for l in kw.out_path.read_text(errors="replace").splitlines()
                 if re.match(r'127\.0\.0\.1:\d+ \[[^]]+\] web app/app[12] '
                             r'\d+/\d+/\d+/\d+/\d+ 200 \d+ - - ---- .* "GET / HTTP/1\.1"$', l)]
    assert len(lines) == 6, kw.out_path.read_text(errors="replace")[-2000:]
    res = kw.stop()
    assert res.returncode == 0 and res.survivors == []
    assert not [p for p in demos if alive(p)], "demo backends outlived keepwarm"
