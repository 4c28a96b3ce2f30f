"""The tunnel alone: two real transports over socketpairs, relayed by a Tunnel.

No HTTP runs here: what workers/tunnel.py does after a 101 (and what `mode
tcp` will do from accept): bytes both ways, the bytes each side sent past its
head handed over first, half-close passed on, a server close ending the
tunnel once the client has what the server sent, `timeout tunnel`, counters.
"""

import socket
import time
from selectors import EVENT_READ

import pytest

from workers.counters import Counters
from workers.loop import Selector
from workers.runtime import NEVER
from workers.tunnel import Tunnel
from workers.xprt import Transport


class Owner:
    """What a tunnel sees of the worker: the clock, and the session it replaces."""

    def __init__(self):
        self.now = time.monotonic()
        self.closed = []

    def session_closed(self, sess, frontend):
        self.closed.append(sess)


class Side:
    def __init__(self):
        self.counters = Counters()
        self.counters.scur = 1


class Stream:
    deadline = NEVER


@pytest.fixture
def rig():
    sel = Selector()
    owner = Owner()
    client, client_end = socket.socketpair()
    server, server_end = socket.socketpair()
    socks = [client, client_end, server, server_end]
    for s in socks:
        s.settimeout(2)
    client_end.setblocking(False)
    server_end.setblocking(False)
    a = Transport(sel, client_end, lambda m: None)
    b = Transport(sel, server_end, lambda m: None)
    a.set_events(EVENT_READ)
    b.set_events(EVENT_READ)
    fe, srv = Side(), Side()
    tunnel = Tunnel(owner, fe, a, b, srv, 5.0, Stream())

    def turn(rounds=20):
        for _ in range(rounds):
            sel.dispatch(0.01, lambda: None)
            if tunnel.closed:
                return

    yield tunnel, client, server, turn, owner, fe, srv
    sel.close()
    for s in socks:
        s.close()


def recv_exactly(sock, n):
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            break
        data += chunk
    return data


def test_leftovers_go_first_then_bytes_flow_both_ways_and_are_counted(rig):
    tunnel, client, server, turn, owner, fe, srv = rig
    tunnel.start(b"HTTP/1.1 101 Switching Protocols\r\n\r\nhi", b"early", False)
    assert recv_exactly(client, 38) == b"HTTP/1.1 101 Switching Protocols\r\n\r\nhi"
    assert recv_exactly(server, 5) == b"early"
    client.sendall(b"ping")
    turn(3)
    assert recv_exactly(server, 4) == b"ping"
    server.sendall(b"pong")
    turn(3)
    assert recv_exactly(client, 4) == b"pong"
    assert fe.counters.bin == 4 and srv.counters.bin == 9
    assert srv.counters.bout == 4 and fe.counters.bout == 38 + 4


def test_a_client_half_close_reaches_the_server_whose_answer_still_flows(rig):
    tunnel, client, server, turn, owner, fe, srv = rig
    tunnel.start(b"", b"", False)
    client.sendall(b"last words")
    client.shutdown(socket.SHUT_WR)
    turn(5)
    assert recv_exactly(server, 10) == b"last words"
    assert server.recv(10) == b""                  # the FIN was passed on
    server.sendall(b"reply")
    turn(5)
    assert recv_exactly(client, 5) == b"reply"
    assert not tunnel.closed
    server.close()
    turn(5)
    assert tunnel.closed and client.recv(10) == b""


def test_a_server_close_ends_the_tunnel_after_the_client_got_everything(rig):
    tunnel, client, server, turn, owner, fe, srv = rig
    tunnel.start(b"", b"", False)
    payload = b"x" * 3_000_000             # more than the socket buffers hold
    server.setblocking(True)
    import threading
    t = threading.Thread(target=lambda: (server.sendall(payload), server.close()))
    t.start()
    got = b""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        turn(2)
        try:
            client.settimeout(0.01)
            chunk = client.recv(1 << 20)
        except socket.timeout:
            continue
        if not chunk:
            break
        got += chunk
    t.join(5)
    assert got == payload
    assert tunnel.closed and owner.closed == [tunnel]
    assert fe.counters.scur == 0 and srv.counters.scur == 0


def test_timeout_tunnel_closes_both_sides_once_both_stayed_silent(rig):
    tunnel, client, server, turn, owner, fe, srv = rig
    tunnel.start(b"", b"", False)
    tunnel.on_timeout(owner.now + 4.9)
    assert not tunnel.closed
    tunnel.on_timeout(owner.now + 5.1)
    assert tunnel.closed
    assert client.recv(10) == b"" and server.recv(10) == b""


def test_a_client_gone_at_start_closes_the_tunnel(rig):
    tunnel, client, server, turn, owner, fe, srv = rig
    client.close()
    tunnel.start(b"x" * 10_000_000, b"", False)    # the write fails: broken pipe
    turn(5)
    assert tunnel.closed
