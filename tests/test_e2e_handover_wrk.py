"""`-sf` hand-over under wrk, the load generator HAProxy's users reload under: a second
keepwarm started with `-sf <old master>` on the same configuration takes over while wrk
runs across the switch: no non-2xx answer and no socket error. The new instance takes
the old one's listening sockets over through the shared control socket (no -x needed):
a connection queued on an old worker's own socket when it closed would be reset."""

import re
import shutil
import subprocess
import time

import pytest

from test_e2e_service import config_for, haproxy_factory, wait_until  # noqa: F401

pytestmark = pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed")


def test_sf_hand_over_under_wrk_loses_nothing(tmp_path, backend_factory,
                                               haproxy_factory):  # noqa: F811
    be = backend_factory("s1")
    text, port, sock = config_for(be, tmp_path)
    pidfile = tmp_path / "kw.pid"
    a = haproxy_factory(text, port, sock=sock, flags=["-W", "-p", str(pidfile)], name="a")
    wrk = subprocess.Popen(["wrk", "-t2", "-c16", "-d5s", "http://127.0.0.1:%d/" % port],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        time.sleep(1.5)
        b = haproxy_factory(text, port, sock=sock, name="b",
                            flags=["-W", "-p", str(pidfile), "-sf", str(a.pid)])
        assert a.proc.wait(timeout=40) == 0, a.stderr_text()
        out = wrk.communicate(timeout=30)[0].decode()
    finally:
        if wrk.poll() is None:
            wrk.kill()
            wrk.wait(5)
    done = int(re.search(r"(\d+) requests in", out).group(1))
    assert done > 200, out
    assert "Non-2xx" not in out, out
    assert "Socket errors" not in out, out
    assert "took 2 listening socket(s) over" in b.stderr_text(), b.stderr_text()
    assert b.stats()["info"]["pid"] == b.pid
    print("wrk across the -sf hand-over: %d requests, no error" % done)
