"""Debian's default haproxy.cfg (tests/fixtures/debian-haproxy.cfg) plus one frontend and
one backend, run by keepwarm as HAProxy's unit runs HAProxy: `-c` says it is valid, `-Ws`
under a notify socket played by the test serves it, with its chroot and its user when
the test runs as root, and its errorfiles answer for the errors."""

import os
import pwd
import signal

import pytest

from support.client import HttpClient
from support.proxy import free_port, run_cli
from test_config_global import debian_config
from test_e2e_service import FakeSystemd, haproxy_factory  # noqa: F401 - a fixture


def site(tmp_path, backend, port):
    """The Debian file with our frontend and backend; the stats socket in tmp (never
    /run/haproxy), and the chroot in tmp unless root runs us with /var/lib/haproxy."""
    text = debian_config(tmp_path).read_text()
    sock = tmp_path / "admin.sock"
    text = text.replace("/run/haproxy/admin.sock", str(sock))
    text = text.replace("bind 127.0.0.1:8080", "bind 127.0.0.1:%d" % port)
    text = text.replace("server s1 127.0.0.1:9000",
                        "server s1 127.0.0.1:%d\n\tserver down 127.0.0.1:%d backup"
                        % (backend.port, free_port()))
    if os.geteuid() != 0 or not os.path.isdir("/var/lib/haproxy"):
        jail = tmp_path / "jail"
        jail.mkdir()
        text = text.replace("chroot /var/lib/haproxy", "chroot %s" % jail)
    return text, str(sock)


def test_dash_c_says_debians_config_is_valid(tmp_path, backend_factory):
    be = backend_factory("s1")
    text, _ = site(tmp_path, be, free_port())
    cfg = tmp_path / "site.cfg"
    cfg.write_text(text)
    r = run_cli("-c", "-f", str(cfg))
    assert r.returncode == 0, r.stderr
    assert "valid" in (r.stdout + r.stderr).lower()


@pytest.mark.skipif(os.geteuid() != 0, reason="Debian's file drops privileges to the "
                    "'haproxy' user and chroots: only root can start it as written")
def test_ws_serves_debians_config_chrooted_as_its_user(tmp_path, backend_factory,
                                                        haproxy_factory):  # noqa: F811
    be = backend_factory("s1")
    port = free_port()
    text, sock = site(tmp_path, be, port)
    systemd = FakeSystemd(str(tmp_path / "notify"))
    try:
        kw = haproxy_factory(text, port, sock=sock, flags=["-Ws"], wait=False,
                             env={"NOTIFY_SOCKET": systemd.path})
        msg = systemd.next(timeout=20)
        assert msg.get("READY") == "1" and msg.get("MAINPID") == str(kw.pid), msg
        with HttpClient(port) as c:
            r = c.request("GET", "/")
            assert r.status == 200
        workers = [w["pid"] for w in kw.stats()["info"]["workers"]]
        user = [line for line in text.splitlines() if line.strip().startswith("user ")][0]
        uid = pwd.getpwnam(user.split()[1]).pw_uid
        for pid in workers:
            status = open("/proc/%d/status" % pid).read()
            assert "\nUid:\t%d\t%d" % (uid, uid) in status
        # The server goes away: Debian's 503 errorfile answers (the ones of ours here).
        be.stop()
        with HttpClient(port) as c:
            c.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            r = c.read_response()
        assert r.status == 503 and b"<html><body>503</body></html>" in r.body
        kw.send_signal(signal.SIGUSR2)
        assert systemd.next().get("RELOADING") == "1"
        assert systemd.next(timeout=20).get("READY") == "1"
    finally:
        systemd.close()
