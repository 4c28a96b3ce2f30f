"""workers/tls.py's TLSTransport under workers/loop.py's selector, on 127.0.0.1,
against Python's ssl client in a thread: the handshake, plaintext both ways
(pipelined records, a write larger than the socket takes), a failed handshake
seen as an end of stream, close_notify."""

import socket
import ssl
import threading
import time
from selectors import EVENT_READ, EVENT_WRITE

import pytest

from proxy.tls import cert_store, parse_bind_tls
from tests.support.certs import CA
from workers.loop import Selector
from workers.tls import TLSTransport


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    d = tmp_path_factory.mktemp("pki")
    ca = CA()
    return {"ca": ca.write_ca(str(d / "ca.pem")),
            "crt": ca.issue(str(d / "site.pem"), ["site.test"])}


class Owner:
    """An endpoint as h1_front is one: reads with recv, writes with write."""

    def __init__(self, sel, sock, context, reply=None, failures=None, close_after=False):
        self.close_after = close_after
        self.xprt = TLSTransport(sel, sock, self.on_io, context, failures)
        self.recv = self.xprt.recv
        self.got = b""
        self.eof = False
        self.reply = reply
        self.xprt.set_events(EVENT_READ)

    def on_io(self, mask):
        if mask & EVENT_WRITE and self.xprt.out:
            self.xprt.flush()
            if not self.xprt.out:
                self.xprt.set_events(EVENT_READ)
        if not mask & EVENT_READ:
            return
        try:
            data = self.recv(65536)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self.eof = True
            self.xprt.close()
            return
        self.got += data
        if self.reply is not None and b"\r\n\r\n" in self.got:
            self.xprt.write(self.reply(self.got))
            self.reply = None
            if self.close_after:
                self.xprt.close()
                self.eof = True


def run(pki, client, reply=None, failures=None, close_after=False):
    """Accept one connection on a TLS transport, run the loop (bounded) while
    `client(addr)` runs in a thread; returns (owner, client's result)."""
    store = cert_store(parse_bind_tls(["ssl", "crt", pki["crt"]]))
    lsock = socket.socket()
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(1)
    lsock.settimeout(5)
    out = {}
    t = threading.Thread(target=lambda: out.update(result=client(lsock.getsockname())),
                         daemon=True)
    t.start()
    conn, _ = lsock.accept()
    conn.setblocking(False)
    sel = Selector()
    owner = Owner(sel, conn, store.default, reply, failures, close_after)
    deadline = time.monotonic() + 10
    while (t.is_alive() or not owner.eof) and time.monotonic() < deadline:
        sel.dispatch(0.05, lambda: None)
        if not t.is_alive() and owner.xprt.sock is None:
            break
    t.join(5)
    owner.xprt.close()
    sel.close()
    lsock.close()
    return owner, out.get("result")


def tls_client(pki, payloads, read_until=None, delay=0.0):
    def client(addr):
        ctx = ssl.create_default_context(cafile=pki["ca"])
        with socket.create_connection(addr, timeout=5) as raw:
            with ctx.wrap_socket(raw, server_hostname="site.test") as tls:
                for p in payloads:
                    tls.sendall(p)      # one TLS record (or more) each
                time.sleep(delay)
                got = b""
                while read_until is not None and len(got) < read_until:
                    chunk = tls.recv(65536)
                    if not chunk:
                        break
                    got += chunk
                return got
    return client


def test_plaintext_both_ways_after_the_handshake(pki):
    head = b"GET / HTTP/1.1\r\nHost: site.test\r\n\r\n"
    answer = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"
    owner, got = run(pki, tls_client(pki, [head[:10], head[10:]], read_until=len(answer)),
                     reply=lambda req: answer)
    assert owner.got == head
    assert got == answer


def test_a_write_larger_than_the_socket_takes_arrives_whole(pki):
    big = bytes(range(256)) * 8192                # 2 MiB: several WANT_WRITE turns
    head = b"GET /big HTTP/1.1\r\n\r\n"
    owner, got = run(pki, tls_client(pki, [head], read_until=len(big), delay=0.3),
                     reply=lambda req: big)
    assert got == big


def test_a_failed_handshake_is_an_end_of_stream_and_counted(pki):
    failures = []

    def plain_client(addr):
        with socket.create_connection(addr, timeout=5) as s:
            s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")    # no TLS at all
            try:
                return s.recv(100)
            except OSError:
                return b""
    owner, _ = run(pki, plain_client, failures=failures.append)
    assert owner.eof and owner.got == b""
    assert len(failures) == 1 and isinstance(failures[0], ssl.SSLError)


def test_close_sends_close_notify(pki):
    head = b"GET / HTTP/1.1\r\n\r\n"
    seen = {}

    def client(addr):
        ctx = ssl.create_default_context(cafile=pki["ca"])
        with socket.create_connection(addr, timeout=5) as raw:
            with ctx.wrap_socket(raw, server_hostname="site.test",
                                 suppress_ragged_eofs=False) as tls:
                tls.sendall(head)
                got = tls.recv(100)
                try:
                    seen["after"] = tls.recv(100)     # b"": the server said close_notify
                except ssl.SSLEOFError:
                    seen["after"] = "ragged"          # a FIN without close_notify
                return got
    _, got = run(pki, client, reply=lambda req: b"bye", close_after=True)
    assert got == b"bye"
    assert seen["after"] == b""
