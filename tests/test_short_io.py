"""Both sides of a worker over a transport that moves one byte per call (issue 13).

The HTTP/1 code above the transport must not care how the bytes come: here the
worker runs in this process, as bench/test_bench_roundtrip.py runs it, on real
loopback sockets, with a real scripted backend and real clients in threads,
and the test's own thread turns the worker's loop. Its transport is swapped for
ShortTransport (Worker.transport): every recv returns at most one byte and
every send takes at most one, on the client side and the server side alike, so
every head and every body crosses the layers split at every byte, and the
pipelined, chunked, keep-alive and error paths resume from every state. The
bytes it moved are counted, which also proves it carried the traffic.
"""

import socket
import threading
import time

import pytest

from proxy.config import parse as parse_config
from support.backend import Reply, pattern_sha256
from support.client import HttpClient
from workers.worker import Worker
from workers.xprt import Transport

CONFIG = """\
global
    maxconn 100

defaults
    mode http
    timeout connect 5s
    timeout client 20s
    timeout server 20s

frontend fe
    bind 127.0.0.1:{fe_port}
    default_backend be

backend be
    server s1 127.0.0.1:{be_port}
"""


class ShortTransport(Transport):
    """A plain transport whose socket calls move one byte at most, counted."""

    moved = {"in": 0, "out": 0}

    def __init__(self, sel, sock, on_io, connecting=False):
        super().__init__(sel, sock, on_io, connecting)
        raw_recv, raw_send = sock.recv, sock.send
        moved = self.moved

        def recv(_size):
            data = raw_recv(1)
            moved["in"] += len(data)
            return data

        def send(data):
            n = raw_send(data[:1])
            moved["out"] += n
            return n

        self.recv = recv
        self.send = send


@pytest.fixture
def short_worker(backend_factory):
    """(worker, frontend port, backend, run(fn)): run(fn) calls fn() in a thread and
    turns the worker's loop until it returns (30 s at most), then gives fn's result."""
    def handler(be, req):
        if req.target.startswith("/big"):
            return Reply(stream_len=20000)
        if req.target.startswith("/chunked"):
            return Reply(body=b"c" * 3000, chunked=True, chunk_size=700)
        if req.target == "/nothing":
            return Reply(status=204)
        if req.method == "POST":
            return Reply(body=b"got %d" % req.body_len)
        return Reply(body=req.target.encode())

    backend = backend_factory("s1", handler)
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    listener.setblocking(False)
    pipe, worker_pipe = socket.socketpair()
    port = listener.getsockname()[1]
    config = parse_config(CONFIG.format(fe_port=port, be_port=backend.port))
    addrs = {("be", "s1"): (socket.AF_INET, ("127.0.0.1", backend.port))}
    worker = Worker(config, 0, [(listener, "fe")], worker_pipe, addrs, 1)
    worker.transport = ShortTransport
    worker.resume_accepting()
    ShortTransport.moved.update({"in": 0, "out": 0})

    def run(fn):
        box = {}

        def call():
            try:
                box["result"] = fn()
            except BaseException as exc:     # noqa: BLE001 - re-raised in the test's thread
                box["error"] = exc

        t = threading.Thread(target=call, daemon=True)
        t.start()
        deadline = time.monotonic() + 30
        while t.is_alive() and time.monotonic() < deadline:
            worker.sel.dispatch(0.005, worker.woke)
            worker.run_queues()
            if worker.now >= worker.next_tick:
                worker.next_tick = worker.now + 0.25
                worker.expire_sessions(worker.now)
        t.join(1)
        assert not t.is_alive(), "the client did not finish in 30 s"
        if "error" in box:
            raise box["error"]
        return box["result"]

    try:
        yield worker, port, backend, run
    finally:
        for sess in list(worker.sessions):
            sess.close()
        for be in worker.backends.values():
            for s in be.servers:
                s.pool.close_all()
        worker.sel.close()
        for sock in (listener, pipe, worker_pipe):
            sock.close()


def test_keepalive_requests_and_bodies_cross_one_byte_at_a_time(short_worker):
    worker, port, backend, run = short_worker

    def client():
        out = []
        with HttpClient(port, timeout=10) as c:
            out.append(c.request("GET", "/a"))
            out.append(c.request("POST", "/form", [("Content-Length", "1000")], body=b"p" * 1000))
            out.append(c.request("POST", "/up-chunked", body=[b"x" * 300, b"y" * 500],
                                 chunked=True))
            out.append(c.request("GET", "/big"))
            out.append(c.request("GET", "/chunked"))
            out.append(c.request("HEAD", "/a"))
            out.append(c.request("GET", "/nothing"))
        return out

    r = run(client)
    assert [x.status for x in r] == [200, 200, 200, 200, 200, 200, 204]
    assert r[0].body == b"/a"
    assert r[1].body == b"got 1000" and r[2].body == b"got 800"
    assert r[3].body_len == 20000 and r[3].sha256 == pattern_sha256(20000)
    assert r[4].body == b"c" * 3000 and r[4].framing == "chunked"
    assert r[5].body == b"" and r[6].body == b""
    got = backend.requests
    assert [x.target for x in got] == ["/a", "/form", "/up-chunked", "/big", "/chunked", "/a",
                                       "/nothing"]
    assert got[1].body == b"p" * 1000 and got[2].body == b"x" * 300 + b"y" * 500
    assert backend.conn_count == 1, "the server connection was not kept across requests"
    moved = ShortTransport.moved
    assert moved["in"] > 20000 and moved["out"] > 20000, moved


def test_pipelined_requests_are_answered_in_order_one_byte_at_a_time(short_worker):
    worker, port, backend, run = short_worker

    def client():
        with HttpClient(port, timeout=10) as c:
            c.send(b"".join(b"GET /p%d HTTP/1.1\r\nHost: t\r\n\r\n" % i for i in range(5)))
            return [c.read_response().body for _ in range(5)]

    assert run(client) == [b"/p%d" % i for i in range(5)]


def test_a_malformed_request_gets_its_400_one_byte_at_a_time(short_worker):
    worker, port, backend, run = short_worker

    def client():
        with HttpClient(port, timeout=10) as c:
            c.send(b"GET / HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\n"
                   b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
            r = c.read_response()
            return r.status, c.wait_closed(5)

    assert run(client) == (400, True)
    assert backend.request_count == 0
