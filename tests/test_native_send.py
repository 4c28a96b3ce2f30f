"""_native/send.py: the C form (sendmmsg) and the pure loop give the same answers
on real sockets: the datagrams in order, one each; what did not fit is not sent;
no room at all is BlockingIOError; no receiver is the socket's error."""

import errno
import os
import socket

import pytest

from _native import send as native_send

FORMS = {"pure": native_send._send_each}
if native_send.IMPLEMENTATION == "native":
    FORMS["native"] = native_send.send_datagrams


@pytest.fixture(params=sorted(FORMS))
def form(request):
    return FORMS[request.param]


@pytest.fixture
def pair(tmp_path):
    path = str(tmp_path / "rx.sock")
    rx = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    rx.bind(path)
    rx.setblocking(False)
    tx = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    tx.connect(path)
    tx.setblocking(False)
    yield path, rx, tx
    rx.close()
    tx.close()


def drain(rx, limit=10000):
    got = []
    for _ in range(limit):
        try:
            got.append(rx.recv(65536))
        except BlockingIOError:
            return got
    raise AssertionError("more than %d datagrams" % limit)


def test_datagrams_arrive_in_order_one_each(pair, form):
    _, rx, tx = pair
    lines = [b"", b"a", b"bb" * 100] + [b"line %d" % i for i in range(5)]
    assert form(tx, lines) == len(lines)
    assert drain(rx) == lines


def test_more_than_one_chunk_of_64(form):
    """150 datagrams: three sendmmsg chunks (UDP: a UNIX socket may queue only 10)."""
    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        rx.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        rx.bind(("127.0.0.1", 0))
        rx.setblocking(False)
        tx.connect(rx.getsockname())
        tx.setblocking(False)
        lines = [b"%d" % i for i in range(150)]
        assert form(tx, lines) == len(lines)
        assert drain(rx) == lines
    finally:
        rx.close()
        tx.close()


def test_what_does_not_fit_is_not_sent_and_a_full_queue_raises(pair, form):
    _, rx, tx = pair
    lines = [b"x" * 100] * 5000             # more than any queue of datagrams holds
    sent = form(tx, lines)
    assert 0 < sent < len(lines)
    with pytest.raises(BlockingIOError):
        form(tx, [b"y"])
    assert len(drain(rx)) == sent


def test_no_receiver_is_the_sockets_error(pair, form):
    path, rx, tx = pair
    rx.close()
    os.unlink(path)
    with pytest.raises(OSError) as err:
        form(tx, [b"a", b"b"])
    assert err.value.errno in (errno.ECONNREFUSED, errno.ENOTCONN, errno.ENOENT)
