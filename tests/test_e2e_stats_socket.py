"""`stats socket` as HAProxy's global section sets it up: several sockets, UNIX or TCP,
each with its mode, owner and level, and `stats timeout` / `stats maxconn` for all."""

import os
import pwd
import socket
import stat
import time

import pytest

from support.proxy import free_port


def ask(address, line, timeout=3.0):
    """Send one runtime-API text line, read the answer until the master closes."""
    family = socket.AF_UNIX if isinstance(address, str) else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(address)
        s.sendall(line.encode() + b"\n")
        out = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                return out.decode()
            out += chunk


def start(proxy_factory, backends, tmp_path, lines):
    return proxy_factory(backends, nbproc=1, global_lines=lines)


def test_sockets_levels_modes_and_tcp(tmp_path, backends, proxy_factory):
    tcp = free_port()
    ro = str(tmp_path / "ro.sock")
    kw = start(proxy_factory, backends, tmp_path,
               ["stats socket ipv4@127.0.0.1:%d level user" % tcp,
                "stats socket %s mode 600 level operator" % ro])
    # The main socket (admin by default) may change a server; the others may read only.
    assert ask(kw.sock, "set server be/%s state drain" % backends[0].name) == "\n"
    assert ask(kw.sock, "set server be/%s state ready" % backends[0].name) == "\n"
    for where in (("127.0.0.1", tcp), ro):
        assert "Pid: %d" % kw.pid in ask(where, "show info")
        assert ask(where, "show stat").startswith("# pxname,svname,")
        assert ask(where, "disable server be/%s" % backends[0].name) == "Permission denied\n\n"
        assert ask(where, "set weight be/%s 10" % backends[0].name) == "Permission denied\n\n"
    assert stat.S_IMODE(os.stat(ro).st_mode) == 0o600


@pytest.mark.skipif(os.geteuid() != 0, reason="only root can give the socket to another user")
def test_a_unix_socket_gets_its_owner(tmp_path, backends, proxy_factory):
    nobody = pwd.getpwnam("nobody")
    path = str(tmp_path / "owned.sock")
    start(proxy_factory, backends, tmp_path,
          ["stats socket %s user nobody gid %d mode 660" % (path, nobody.pw_gid)])
    st = os.stat(path)
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (nobody.pw_uid, nobody.pw_gid,
                                                                 0o660)


def test_stats_timeout_drops_a_silent_client(tmp_path, backends, proxy_factory):
    kw = start(proxy_factory, backends, tmp_path, ["stats timeout 300ms"])
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(5)
        s.connect(kw.sock)
        started = time.monotonic()
        assert s.recv(10) == b""            # closed by the master, not by our timeout
        waited = time.monotonic() - started
    assert 0.2 <= waited < 2.0, waited


def test_stats_maxconn_bounds_the_connections_at_once(tmp_path, backends, proxy_factory):
    kw = start(proxy_factory, backends, tmp_path, ["stats maxconn 2", "stats timeout 5s"])
    held = []
    try:
        for _ in range(2):
            s = socket.socket(socket.AF_UNIX)
            s.settimeout(5)
            s.connect(kw.sock)
            held.append(s)
        time.sleep(0.2)                      # both accepted by the master
        third = socket.socket(socket.AF_UNIX)
        third.settimeout(5)
        third.connect(kw.sock)               # waits in the backlog: not accepted
        held.append(third)
        third.sendall(b"show info\n")
        third.settimeout(0.5)
        with pytest.raises(socket.timeout):
            third.recv(100)                  # no answer while two are open
        held[0].close()                      # one leaves: the third is taken
        third.settimeout(5)
        assert b"Pid:" in third.recv(4096)
    finally:
        for s in held:
            s.close()


def test_show_info_names_the_node_and_its_description(tmp_path, backends, proxy_factory):
    kw = start(proxy_factory, backends, tmp_path, ["node lb-7", 'description "edge proxy"'])
    info = ask(kw.sock, "show info")
    assert "\nnode: lb-7\n" in info and "\ndescription: edge proxy\n" in info
    assert "\nnode: %s\n" % socket.gethostname() in ask(
        start(proxy_factory, backends, tmp_path, []).sock, "show info")
