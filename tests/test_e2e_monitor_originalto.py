"""`monitor-uri` and `option originalto`, as HAProxy 2.6.12 does them (measured,
2026-12-05, pipelining a second request behind each): a request for exactly the
monitor URI gets 200 from the proxy (its query makes it another URI) and the
connection goes on; `errorfile 200` replaces the page; `option originalto` gives the
server `X-Original-To: <the address the client connected to>`."""

import socket

import pytest

from support.backend import Reply
from support.proxy import free_port


def config(port, be_port, sock, extra=""):
    return ("global\n    nbthread 1\n    stats socket %s\n"
            "defaults\n    mode http\n    timeout connect 2s\n    timeout client 5s\n"
            "    timeout server 5s\n%s"
            "frontend fe\n    bind 127.0.0.1:%d\n    monitor-uri /haproxy_test\n"
            "    option originalto\n    default_backend be\n"
            "backend be\n    server s1 127.0.0.1:%d\n" % (sock, extra, port, be_port))


def pipelined(port, path):
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(b"GET %s HTTP/1.1\r\nHost: h\r\n\r\nGET /x HTTP/1.1\r\nHost: h\r\n\r\n"
                  % path.encode())
        data = b""
        while data.count(b"HTTP/1.1 200") < 2 or not data.endswith(b"ok"):
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    return data


@pytest.fixture
def backend(backend_factory):
    return backend_factory("s1", lambda be, req: Reply(body=b"ok"))


def test_monitor_uri_answers_and_originalto_reaches_the_server(tmp_path, backend,
                                                              proxy_factory):
    port = free_port()
    proxy_factory(config=config(port, backend.port, tmp_path / "kw0" / "stats.sock"),
                  bind_ports=[port], nbproc=1)
    data = pipelined(port, "/haproxy_test")
    assert data.startswith(b"HTTP/1.1 200 OK\r\ncontent-length: 58\r\ncache-control: no-cache"
                           b"\r\ncontent-type: text/html\r\n\r\n<html><body><h1>200 OK</h1>")
    assert len(backend.requests) == 1 and backend.requests[0].target == "/x"
    assert pipelined(port, "/haproxy_test?x=1").count(b"\r\n\r\nok") == 2
    assert backend.requests[-1].header("X-Original-To") == "127.0.0.1"
    assert backend.requests[1].target == "/haproxy_test?x=1"


def test_errorfile_200_replaces_the_monitor_page(tmp_path, backend, proxy_factory):
    page = tmp_path / "200.http"
    page.write_bytes(b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nup\n")
    port = free_port()
    proxy_factory(config=config(port, backend.port, tmp_path / "kw0" / "stats.sock",
                                "    errorfile 200 %s\n" % page),
                  bind_ports=[port], nbproc=1)
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(b"GET /haproxy_test HTTP/1.1\r\nHost: h\r\n\r\n")
        data = b""
        while True:                          # no length: the close ends it
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    assert data == b"HTTP/1.0 200 OK\r\ncontent-type: text/plain\r\nconnection: close\r\n\r\nup\n"
