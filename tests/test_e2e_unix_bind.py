"""`bind unix@PATH` (and `bind /PATH`): a frontend listening on a UNIX socket, as HAProxy's
(an nginx or a local agent in front of it). One socket for all workers; a reload keeps
it; the file goes with the instance."""

import os
import signal
import socket
import time

from support.proxy import free_port, make_config


def get(path, target="/", timeout=5.0):
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(path)
        s.sendall(b"GET %s HTTP/1.1\r\nHost: local\r\nConnection: close\r\n\r\n" % target.encode())
        out = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                return out
            out += chunk


def test_a_frontend_listens_on_a_unix_socket(tmp_path, backends, proxy_factory):
    path = str(tmp_path / "fe.sock")
    port = free_port()
    text = make_config(port=port, servers=backends, sock=tmp_path / "kw0" / "stats.sock",
                       nbproc=2).replace("    default_backend be\n",
                                         "    bind unix@%s\n    default_backend be\n" % path, 1)
    kw = proxy_factory(config=text, bind_ports=[port], nbproc=2)
    for i in range(6):
        answer = get(path, "/u%d" % i)
        assert answer.startswith(b"HTTP/1.1 200"), answer[:100]
    seen = sum(b.request_count for b in backends)
    assert seen == 6
    inode = os.stat(path).st_ino
    kw.send_signal(signal.SIGUSR2)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and kw.stats()["info"]["reloads"] < 1:
        time.sleep(0.05)
    assert kw.stats()["info"]["reloads"] == 1, kw.stderr_text()[-500:]
    assert get(path).startswith(b"HTTP/1.1 200")
    assert os.stat(path).st_ino == inode             # the same socket, kept over the reload
    kw.stop()
    assert not os.path.exists(path)


def test_a_live_unix_socket_is_not_stolen(tmp_path, backends, proxy_factory):
    path = str(tmp_path / "busy.sock")
    other = socket.socket(socket.AF_UNIX)
    other.bind(path)
    other.listen(1)
    try:
        port = free_port()
        text = make_config(port=port, servers=backends, sock=tmp_path / "s.sock",
                           nbproc=1).replace("    default_backend be\n",
                                             "    bind unix@%s\n    default_backend be\n"
                                             % path, 1)
        kw = proxy_factory(config=text, bind_ports=[port], nbproc=1, wait=False)
        kw.proc.wait(10)
        assert kw.proc.returncode != 0
        assert "another process listens there" in kw.stderr_text()
    finally:
        other.close()
