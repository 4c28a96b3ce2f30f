"""A proxy's targets together: level filter, minlevel, sampling, per-target format,
over real UNIX datagram sockets created by the test."""

import socket

import pytest

from proxy.config import parse
from proxy.log.output import LogOutput, Sampler, level_for


def test_level_filter_and_minlevel():
    assert level_for(6, 7, 0) == 6          # info, all sent
    assert level_for(7, 6, 0) is None       # debug filtered by 'info'
    assert level_for(0, 7, 3) == 3          # emerg capped to err


def test_sampling_numbers_lines_from_one_in_each_period():
    s = Sampler(((1, 1), (3, 4)), 5)
    assert [s.take() for _ in range(10)] == [True, False, True, True, False] * 2


@pytest.fixture
def receivers(tmp_path):
    socks = []
    for name in ("a.sock", "b.sock"):
        rx = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        rx.bind(str(tmp_path / name))
        rx.settimeout(0.5)
        socks.append(rx)
    yield tmp_path, socks
    for rx in socks:
        rx.close()


def config(tmp_path, extra=""):
    text = ("global\n    log %s/a.sock local0\n    log %s/b.sock len 80 format rfc5424 "
            "local1 notice err\n%s"
            "defaults\n    mode http\n    timeout client 1s\n    timeout server 1s\n"
            "    timeout connect 1s\n    log global\n"
            "frontend fe\n    bind 127.0.0.1:8080\n    default_backend be\n"
            "backend be\n    server s1 127.0.0.1:8081\n" % (tmp_path, tmp_path, extra))
    return parse(text, "t.cfg", env={})


def test_each_target_gets_its_format_level_and_length(receivers):
    tmp_path, (a, b) = receivers
    c = config(tmp_path)
    out = LogOutput(c.frontends[0].log.targets, pid=9)
    assert out.open() == []
    assert out.emit(b"x" * 100, level=6, now=1765000000.0) == 1   # info: not to b
    line = a.recv(2000)
    assert line.startswith(b"<134>") and b" haproxy[9]: " in line and line.endswith(b"x\n")
    with pytest.raises(socket.timeout):
        b.recv(2000)
    assert out.emit(b"y" * 100, level=0, now=1765000000.0) == 2   # emerg: both
    assert a.recv(2000).startswith(b"<128>")
    got = b.recv(2000)
    assert got.startswith(b"<139>1 ") and len(got) == 81          # local1 err, len 80
    out.close()


def test_send_hostname_switches_the_default_format(receivers):
    tmp_path, (a, _) = receivers
    c = config(tmp_path, "    log-send-hostname lb1\n    log-tag web\n")
    g = c.global_
    out = LogOutput(g.log_targets[:1], tag=g.log_tag, host=g.log_send_hostname, pid=3)
    out.emit(b"m")
    assert a.recv(2000).endswith(b" lb1 web[3]: m\n")


def test_a_missing_target_is_a_warning_and_counted(tmp_path):
    c = config(tmp_path)          # no receiver created
    out = LogOutput(c.global_.log_targets)
    warnings = out.open()
    assert len(warnings) == 2 and "cannot be reached" in warnings[0]
    assert out.emit(b"m", level=0) == 0 and out.dropped == 2
