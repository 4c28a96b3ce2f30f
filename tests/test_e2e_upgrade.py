"""Upgrade (WebSocket) tunnels, 100-continue and 1xx relaying through the proxy (issue 4)."""

import socket
import threading
import time

from support.client import HttpClient

UPGRADE_REQ = (b"GET /chat HTTP/1.1\r\nHost: test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
               b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")


class EchoUpgradeServer:
    """Answers an Upgrade request with 101, then echoes every byte; records what it saw."""

    def __init__(self, accept=b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"):
        self.accept = accept         # RFC 6455 §1.3's example answer to UPGRADE_REQ's key
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.sock.settimeout(10)
        self.port = self.sock.getsockname()[1]
        self.heads = []
        self.conns = 0
        self.closed = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        try:
            conn, _ = self.sock.accept()
        except OSError:
            return
        self.conns += 1
        conn.settimeout(10)
        with conn:
            buf = b""
            while b"\r\n\r\n" not in buf:
                chunk = conn.recv(4096)
                if not chunk:
                    return
                buf += chunk
            head, _, rest = buf.partition(b"\r\n\r\n")
            self.heads.append(head)
            conn.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                         b"Connection: Upgrade\r\n" + self.accept + b"\r\n" + rest)
            try:
                for _ in range(1000):
                    data = conn.recv(65536)
                    if not data:
                        break
                    conn.sendall(data)
            except OSError:
                pass
        self.closed.set()

    def close(self):
        self.sock.close()


def _read_until(sock, marker, limit=65536):
    buf = b""
    while marker not in buf and len(buf) < limit:
        chunk = sock.recv(65536)
        if not chunk:
            break
        buf += chunk
    return buf


def test_websocket_upgrade_is_relayed_and_bytes_flow_both_ways(proxy_factory):
    srv = EchoUpgradeServer()
    try:
        kw = proxy_factory([("s1", srv.port)], nbproc=1)
        with socket.create_connection(("127.0.0.1", kw.port), timeout=5) as c:
            c.sendall(UPGRADE_REQ)
            head = _read_until(c, b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 101 ")
            assert b"upgrade: websocket" in head.lower()
            assert b"connection: upgrade" in head.lower()
            for i in range(5):
                msg = b"frame %d " % i * 100
                c.sendall(msg)
                got = b""
                while len(got) < len(msg):
                    got += c.recv(65536)
                assert got == msg
        sent = srv.heads[0].lower()
        assert b"upgrade: websocket" in sent and b"connection: upgrade" in sent
        assert srv.closed.wait(5), "the server side of the tunnel was not closed with the client"
    finally:
        srv.close()


def test_tunnel_is_closed_after_timeout_tunnel(proxy_factory):
    srv = EchoUpgradeServer()
    try:
        kw = proxy_factory([("s1", srv.port)], nbproc=1, defaults_lines=["timeout tunnel 1s"])
        with socket.create_connection(("127.0.0.1", kw.port), timeout=5) as c:
            c.sendall(UPGRADE_REQ)
            assert _read_until(c, b"\r\n\r\n").startswith(b"HTTP/1.1 101 ")
            started = time.monotonic()
            assert c.recv(10) == b"", "the idle tunnel was not closed"
            waited = time.monotonic() - started
            assert 0.7 <= waited <= 3.0, waited
    finally:
        srv.close()


def test_websocket_101_without_sec_websocket_accept_is_a_bad_gateway(proxy_factory):
    # HAProxy 2.6 (mux_h1, h1_search_websocket_key) refuses such a 101 with 502:
    # no tunnel is opened to a server that did not complete the handshake.
    srv = EchoUpgradeServer(accept=b"")
    try:
        kw = proxy_factory([("s1", srv.port)], nbproc=1)
        with socket.create_connection(("127.0.0.1", kw.port), timeout=5) as c:
            c.sendall(UPGRADE_REQ)
            head = _read_until(c, b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 502 "), head[:80]
            # The server's connection is dropped, not turned into a tunnel.
            assert srv.closed.wait(5), "the server connection stayed open"
    finally:
        srv.close()


def test_websocket_upgrade_without_sec_websocket_key_is_a_bad_request(backend_factory,
                                                                    proxy_factory):
    b = backend_factory("s1")
    kw = proxy_factory([b], nbproc=1)
    for key in (b"", b"Sec-WebSocket-Key: short\r\n"):
        with socket.create_connection(("127.0.0.1", kw.port), timeout=5) as c:
            c.sendall(b"GET /chat HTTP/1.1\r\nHost: test\r\nUpgrade: websocket\r\n"
                      b"Connection: Upgrade\r\n" + key + b"Sec-WebSocket-Version: 13\r\n\r\n")
            assert _read_until(c, b"\r\n\r\n").startswith(b"HTTP/1.1 400 ")
    # Another protocol's upgrade carries no such key and is forwarded.
    with socket.create_connection(("127.0.0.1", kw.port), timeout=5) as c:
        c.sendall(b"GET / HTTP/1.1\r\nHost: test\r\nUpgrade: h2c\r\nConnection: Upgrade\r\n\r\n")
        assert _read_until(c, b"\r\n\r\n").startswith(b"HTTP/1.1 200 ")
    assert b.request_count == 1


def test_101_without_an_upgrade_request_is_a_bad_gateway(backend_factory, proxy_factory):
    from support.backend import Reply
    b = backend_factory("s1", lambda be, req: Reply(raw=b"HTTP/1.1 101 Switching Protocols\r\n"
                                                       b"Upgrade: x\r\nConnection: upgrade\r\n\r\n"))
    kw = proxy_factory([b], nbproc=1)
    with HttpClient(kw.port) as c:
        assert c.request("GET", "/").status == 502


class ContinueServer(threading.Thread):
    """Reads a head; if it expects 100-continue, says 100 Continue; then reads the
    Content-Length body and answers 200 with it."""

    def __init__(self):
        super().__init__(daemon=True)
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.sock.settimeout(10)
        self.port = self.sock.getsockname()[1]
        self.body = None
        self.start()

    def run(self):
        try:
            conn, _ = self.sock.accept()
        except OSError:
            return
        conn.settimeout(10)
        with conn:
            buf = _read_until(conn, b"\r\n\r\n")
            head, _, body = buf.partition(b"\r\n\r\n")
            length = int([l.split(b":")[1] for l in head.split(b"\r\n")
                          if l.lower().startswith(b"content-length")][0])
            if b"100-continue" in head.lower():
                conn.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
            while len(body) < length:
                chunk = conn.recv(65536)
                if not chunk:
                    return
                body += chunk
            self.body = body
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
            conn.recv(10)

    def close(self):
        self.sock.close()


def test_expect_100_continue_is_relayed_before_the_body(proxy_factory):
    srv = ContinueServer()
    try:
        kw = proxy_factory([("s1", srv.port)], nbproc=1)
        with socket.create_connection(("127.0.0.1", kw.port), timeout=5) as c:
            c.sendall(b"POST /up HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n"
                      b"Expect: 100-continue\r\n\r\n")
            interim = _read_until(c, b"\r\n\r\n")
            assert interim.startswith(b"HTTP/1.1 100"), interim
            c.sendall(b"hello")
            final = _read_until(c, b"ok")
            assert final.startswith(b"HTTP/1.1 200") and final.endswith(b"ok")
        assert srv.body == b"hello"
    finally:
        srv.close()
