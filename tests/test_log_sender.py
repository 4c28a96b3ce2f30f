"""The log sender over real sockets the tests create: it never blocks nor raises;
a full or absent receiver costs a dropped line, counted; retries rest."""

import os
import socket
import time

import pytest

from proxy.log import syslog
from proxy.log.sender import Sender

MAX_LINES = 20000          # bounded loops: a full buffer shows long before this


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


@pytest.fixture
def unix_receiver(tmp_path):
    path = str(tmp_path / "log.sock")
    rx = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    rx.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    rx.bind(path)
    rx.settimeout(2)
    yield path, rx
    rx.close()


def test_unix_datagram_line_arrives_with_its_pri(unix_receiver):
    path, rx = unix_receiver
    s = Sender("unix", path=path)
    assert s.open() is None
    line = syslog.build(b"hello", "rfc3164", 16, 6, tag=b"keepwarm", pid=42, host=b"h")
    assert s.send(line) is True
    got = rx.recv(4096)
    assert got.startswith(b"<134>") and got.endswith(b" h keepwarm[42]: hello\n")
    assert (s.sent, s.dropped) == (1, 0)
    s.close()


def test_full_unix_receiver_drops_and_counts_without_blocking(unix_receiver):
    path, rx = unix_receiver
    s = Sender("unix", path=path)
    start = time.monotonic()
    for _ in range(MAX_LINES):
        s.send(b"x" * 200)
        if s.dropped:
            break
    assert s.dropped >= 1 and s.sent >= 1
    assert s.backoff == 0             # a full buffer is no failure of the target
    for _ in range(100):              # still full: each line dropped at once
        assert s.send(b"y") is False
    assert time.monotonic() - start < 5
    assert rx.recv(4096) == b"x" * 200    # what was handed over is intact
    s.close()


def test_receiver_gone_drops_then_rests_then_finds_it_again(tmp_path):
    path = str(tmp_path / "log.sock")
    rx = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    rx.bind(path)
    clock = Clock()
    s = Sender("unix", path=path, clock=clock, retry_min=1.0, retry_max=4.0)
    assert s.open() is None
    rx.close()
    os.unlink(path)
    assert s.send(b"a") is False and s.dropped == 1 and s.backoff == 1.0
    assert s.send(b"b") is False and s.dropped == 2        # resting: no attempt
    clock.now += 1.5
    assert s.send(b"c") is False and s.backoff == 2.0      # tried, failed: longer rest
    clock.now += 2.5
    rx = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)  # the daemon comes back
    rx.bind(path)
    rx.settimeout(2)
    try:
        assert s.send(b"d") is True and s.backoff == 0
        assert rx.recv(100) == b"d"
    finally:
        rx.close()
        s.close()


def test_backoff_is_bounded(tmp_path):
    clock = Clock()
    s = Sender("unix", path=str(tmp_path / "none"), clock=clock, retry_min=0.5, retry_max=2.0)
    for _ in range(10):
        clock.now += 10
        s.send(b"x")
    assert s.backoff == 2.0 and s.dropped == 10


def test_absent_target_at_start_is_a_warning(tmp_path):
    s = Sender("unix", path=str(tmp_path / "nobody.sock"))
    warning = s.open()
    assert "cannot be reached" in warning and "nobody.sock" in warning
    assert s.send(b"x") is False and s.dropped == 1


def test_udp_line_arrives_with_its_pri():
    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rx.bind(("127.0.0.1", 0))
    rx.settimeout(2)
    try:
        s = Sender("udp", host="127.0.0.1", port=rx.getsockname()[1])
        assert s.open() is None
        line = syslog.build(b"hi", "rfc5424", 3, 3, tag=b"keepwarm", pid=7)
        assert s.send(line)
        got = rx.recv(4096)
        assert got.startswith(b"<27>1 ") and got.endswith(b" - keepwarm 7 - - hi\n")
        s.close()
    finally:
        rx.close()


def test_udp_receiver_gone_is_counted_never_raised():
    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rx.bind(("127.0.0.1", 0))
    port = rx.getsockname()[1]
    rx.close()
    clock = Clock()
    s = Sender("udp", host="127.0.0.1", port=port, clock=clock, retry_min=0.1)
    s.open()
    for _ in range(50):               # the ICMP refusal shows at a following send
        clock.now += 1
        s.send(b"x")
        if s.dropped:
            break
    assert s.dropped >= 1 and "refused" in s.last_error.lower()
    s.close()


def test_full_pipe_on_a_descriptor_drops(tmp_path):
    r, w = os.pipe()
    try:
        s = Sender("fd", fd=w)
        assert s.open() is None
        for _ in range(MAX_LINES):
            s.send(b"z" * 1000)
            if s.dropped:
                break
        assert s.dropped >= 1 and s.sent >= 1
        assert os.read(r, 1000) == b"z" * 1000
    finally:
        os.close(r)
        os.close(w)


def test_closed_pipe_drops_and_rests():
    r, w = os.pipe()
    os.close(r)
    try:
        s = Sender("fd", fd=w)
        s.open()
        assert s.send(b"x") is False and s.dropped == 1 and s.backoff > 0
    finally:
        os.close(w)


# ---------------------------------------------------------------- held lines (a worker's)

def _drain(rx, limit=1000):
    got = []
    rx.setblocking(False)
    for _ in range(limit):
        try:
            got.append(rx.recv(4096))
        except BlockingIOError:
            break
    rx.settimeout(2)
    return got


def test_held_lines_go_in_order_at_flush_and_the_first_one_reports_the_sender(unix_receiver):
    path, rx = unix_receiver
    held = []
    s = Sender("unix", path=path, batch=8, on_hold=held.append)
    assert s.open() is None
    for i in range(3):
        assert s.send(b"line %d\n" % i) is True
    assert held == [s]                      # reported once, with its first line
    assert _drain(rx) == []                 # nothing sent before the flush
    assert s.flush() == 3
    assert _drain(rx) == [b"line 0\n", b"line 1\n", b"line 2\n"]
    assert (s.sent, s.dropped, s.held) == (3, 0, [])
    assert s.flush() == 0                   # nothing held: no system call, nothing counted
    s.send(b"again\n")
    assert held == [s, s]                   # a new turn's first line reports it again
    s.close()                               # closing sends what is held
    assert _drain(rx) == [b"again\n"]


def test_a_full_batch_goes_without_waiting_for_the_flush(unix_receiver):
    path, rx = unix_receiver
    s = Sender("unix", path=path, batch=4, on_hold=lambda _: None)
    for i in range(5):
        s.send(b"%d" % i)
    assert _drain(rx) == [b"0", b"1", b"2", b"3"]
    assert s.held == [b"4"]
    s.flush()
    assert _drain(rx) == [b"4"]


def test_a_held_batch_the_receiver_has_no_room_for_is_dropped_and_counted(unix_receiver):
    path, rx = unix_receiver
    s = Sender("unix", path=path, batch=64, on_hold=lambda _: None)
    start = time.monotonic()
    for _ in range(MAX_LINES // 64):
        for _ in range(64):
            s.send(b"x" * 200)
        s.flush()
        if s.dropped:
            break
    assert s.dropped >= 1 and s.sent >= 1
    assert s.backoff == 0                   # a full queue is no failure of the target
    assert time.monotonic() - start < 5
    got = _drain(rx, MAX_LINES)
    assert len(got) == s.sent and set(got) == {b"x" * 200}


def test_held_lines_for_a_receiver_gone_are_dropped_then_the_target_rests(tmp_path):
    path = str(tmp_path / "log.sock")
    rx = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    rx.bind(path)
    clock = Clock()
    s = Sender("unix", path=path, clock=clock, retry_min=1.0, batch=8,
               on_hold=lambda _: None)
    assert s.open() is None
    rx.close()
    os.unlink(path)
    s.send(b"a")
    s.send(b"b")
    assert s.flush() == 0 and s.dropped == 2 and s.backoff == 1.0
    s.send(b"c")                            # resting: dropped at the flush, no system call
    assert s.flush() == 0 and s.dropped == 3
    rx = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    rx.bind(path)
    rx.settimeout(2)
    clock.now += 1.5
    s.send(b"d")
    assert s.flush() == 1 and s.backoff == 0
    assert rx.recv(100) == b"d"
    rx.close()
    s.close()


def test_udp_lines_held_arrive_as_one_datagram_each():
    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rx.bind(("127.0.0.1", 0))
    rx.settimeout(2)
    try:
        s = Sender("udp", host="127.0.0.1", port=rx.getsockname()[1], batch=64,
                   on_hold=lambda _: None)
        assert s.open() is None
        lines = [b"<134>line %d" % i for i in range(10)]
        for line in lines:
            s.send(line)
        assert s.flush() == 10
        assert [rx.recv(100) for _ in lines] == lines
        s.close()
    finally:
        rx.close()


def test_fd_targets_and_senders_without_a_flusher_hold_nothing(unix_receiver):
    path, rx = unix_receiver
    r, w = os.pipe()
    try:
        assert Sender("fd", fd=w, batch=64, on_hold=lambda _: None).batch == 1
        s = Sender("unix", path=path, batch=64)     # (the master's: nobody flushes)
        assert s.batch == 1
        s.send(b"now")
        assert rx.recv(100) == b"now"
        s.close()
    finally:
        os.close(r)
        os.close(w)


def test_batch_size_follows_the_kernels_queue_of_datagrams():
    from proxy.log import sender
    with open(sender._QLEN) as f:
        qlen = int(f.read())
    assert sender.batch_for("unix") == max(1, min(64, qlen // 8))
    assert sender.batch_for("udp") == 64
    assert sender.batch_for("fd") == 1
