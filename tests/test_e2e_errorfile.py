"""`errorfile CODE FILE` end to end: the file's response reaches the client as HAProxy
2.6 sends it, for errors of the backend (503) and of the frontend (400), and an
empty file closes without a response (Debian's `errorfile 408 /dev/null` idiom)."""

import socket
import time

from support.proxy import free_port

PAGE = (b"HTTP/1.0 503 Service Unavailable\r\nCache-Control: no-cache\r\n"
        b"Connection: close\r\nContent-Type: text/html\r\n\r\n<html>all busy</html>\n")
SENT_503 = (b"HTTP/1.0 503 Service Unavailable\r\ncache-control: no-cache\r\n"
            b"content-type: text/html\r\n\r\n<html>all busy</html>\n")
BAD = b"HTTP/1.0 400 Bad request\r\nContent-Type: text/plain\r\n\r\nnope\n"


def exchange(port, data, timeout=5):
    """Send `data`, read until the proxy closes; (bytes, closed)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        if data:
            s.sendall(data)
        got = b""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                chunk = s.recv(4096)
            except socket.timeout:
                return got, False
            if not chunk:
                return got, True
            got += chunk
        return got, False


def test_errorfiles_replace_keepwarms_own_pages(tmp_path, proxy_factory):
    (tmp_path / "503.http").write_bytes(PAGE)
    (tmp_path / "400.http").write_bytes(BAD)
    (tmp_path / "408.http").write_bytes(b"")
    kw = proxy_factory([("dead", free_port())], nbproc=1,
                       timeouts=("connect 1s", "client 5s", "server 5s",
                                 "http-request 300ms"),
                       defaults_lines=["errorfile 503 %s" % (tmp_path / "503.http"),
                                       "errorfile 408 %s" % (tmp_path / "408.http")],
                       frontend_lines=["errorfile 400 %s" % (tmp_path / "400.http")])
    got, closed = exchange(kw.port, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert got == SENT_503 and closed
    got, closed = exchange(kw.port, b"NOT HTTP AT ALL\r\n\r\n")
    assert got == b"HTTP/1.0 400 Bad request\r\ncontent-type: text/plain\r\n\r\nnope\n"
    assert closed
    got, closed = exchange(kw.port, b"GET / HTTP/1.1\r\nHost:")     # never finished
    assert got == b"" and closed


def test_a_backends_errorfile_wins_over_its_frontends(tmp_path, proxy_factory):
    (tmp_path / "be.http").write_bytes(PAGE.replace(b"all busy", b"backend page"))
    (tmp_path / "fe.http").write_bytes(PAGE.replace(b"all busy", b"frontend page"))
    kw = proxy_factory([("dead", free_port())], nbproc=1,
                       frontend_lines=["errorfile 503 %s" % (tmp_path / "fe.http")],
                       backend_lines=["errorfile 503 %s" % (tmp_path / "be.http")])
    got, closed = exchange(kw.port, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert b"backend page" in got and closed
