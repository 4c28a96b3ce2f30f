"""The msgpack channel (workers/channel.py) over real socketpairs: frames cut anywhere,
several per read, a peer that closes, a socket buffer that fills."""

import select
import socket

import msgpack
import pytest

from workers.channel import Channel, ChannelError


@pytest.fixture
def pair():
    a, b = socket.socketpair()
    a.setblocking(False)
    b.setblocking(False)
    yield a, b
    a.close()
    b.close()


def readable(sock, timeout=2.0):
    ready, _, _ = select.select([sock], [], [], timeout)
    assert ready, "nothing arrived within %.1f s" % timeout


def receive_until(channel, count, timeout=2.0):
    """Read until `count` messages have come (or fail after `timeout` of silence)."""
    got = []
    while len(got) < count:
        readable(channel.sock, timeout)
        msgs = channel.receive()
        assert msgs is not None, "the peer closed after %d of %d messages" % (len(got), count)
        got += msgs
    return got


def test_a_message_cut_at_every_byte_comes_out_whole_once(pair):
    a, b = pair
    msg = {"t": "server", "backend": "be", "server": "s1", "usable": None, "weight": 7}
    frame = msgpack.packb(msg, use_bin_type=True)
    reader = Channel(b)
    for i in range(1, len(frame)):
        a.sendall(frame[i - 1:i])
        readable(b)
        assert reader.receive() == [], "decoded a message from %d of %d bytes" % (i, len(frame))
    a.sendall(frame[-1:])
    readable(b)
    assert reader.receive() == [msg]
    assert reader.receive() == []        # nothing left, and nothing to read


def test_several_messages_in_one_read_all_come_out_in_order(pair):
    a, b = pair
    msgs = [{"t": "stats", "c": {"n": i}} for i in range(50)]
    a.sendall(b"".join(msgpack.packb(m, use_bin_type=True) for m in msgs))
    readable(b)
    assert Channel(b).receive() == msgs


def test_a_read_that_ends_inside_a_message_keeps_the_rest_for_the_next(pair):
    a, b = pair
    frames = [msgpack.packb({"n": i, "pad": "x" * 100}, use_bin_type=True) for i in range(3)]
    data = b"".join(frames)
    cut = len(frames[0]) + len(frames[1]) // 2
    reader = Channel(b)
    a.sendall(data[:cut])
    readable(b)
    assert [m["n"] for m in reader.receive()] == [0]
    a.sendall(data[cut:])
    readable(b)
    assert [m["n"] for m in reader.receive()] == [1, 2]


def test_nothing_to_read_is_no_message_not_a_close(pair):
    _, b = pair
    assert Channel(b).receive() == []


def test_a_peer_that_closes_is_seen_after_what_it_sent(pair):
    a, b = pair
    Channel(a).send({"t": "bye", "c": {}})
    a.close()
    reader = Channel(b)
    readable(b)
    assert reader.receive() == [{"t": "bye", "c": {}}]
    readable(b)
    assert reader.receive() is None


def test_a_peer_that_closes_inside_a_message_is_a_close(pair):
    a, b = pair
    a.sendall(msgpack.packb({"t": "stats", "c": {"x": 1}}, use_bin_type=True)[:5])
    a.close()
    reader = Channel(b)
    readable(b)
    assert reader.receive() == []
    readable(b)
    assert reader.receive() is None


def test_sending_to_a_closed_peer_says_so(pair):
    a, b = pair
    b.close()
    assert Channel(a).send({"t": "stats"}) is False


def test_a_full_socket_queues_the_rest_and_flush_sends_it_in_order(pair):
    a, b = pair
    writer, reader = Channel(a), Channel(b)
    sent = 0
    while not writer.out:                # until the socket buffer takes no more
        assert writer.send({"n": sent, "pad": "x" * 1000}) is True
        sent += 1
    queued = len(writer.out)
    assert writer.send({"n": sent, "pad": "x" * 1000}) is True    # queued behind
    sent += 1
    assert len(writer.out) > queued
    got = []
    while len(got) < sent:
        readable(b)
        got += reader.receive()
        assert writer.flush() is True
    assert [m["n"] for m in got] == list(range(sent))
    assert writer.out == b""


def test_send_blocking_sends_the_queue_first_and_restores_non_blocking(pair):
    a, b = pair
    writer, reader = Channel(a), Channel(b)
    writer.out = msgpack.packb({"n": 0}, use_bin_type=True)     # left by a send() that filled the socket
    writer.send_blocking({"n": 1}, 1.0)
    assert writer.out == b""
    assert a.gettimeout() == 0.0
    assert receive_until(reader, 2) == [{"n": 0}, {"n": 1}]


def test_send_blocking_to_a_peer_that_does_not_read_times_out(pair):
    a, _ = pair
    writer = Channel(a)
    with pytest.raises(socket.timeout):
        for _ in range(10000):
            writer.send_blocking({"pad": "x" * 65536}, 0.05)
    assert a.gettimeout() == 0.0


def test_bytes_that_are_not_msgpack_raise_after_the_messages_before_them(pair):
    a, b = pair
    a.sendall(msgpack.packb({"t": "ready"}, use_bin_type=True) + b"\xc1 garbage")
    reader = Channel(b)
    readable(b)
    assert reader.receive() == [{"t": "ready"}]
    with pytest.raises(ChannelError):
        reader.feed(msgpack.packb({"t": "stats"}, use_bin_type=True))


def test_bytes_that_are_not_msgpack_raise_at_once_when_nothing_came_before():
    with pytest.raises(ChannelError):
        Channel(None).feed(b"\xc1\xc1 garbage")
