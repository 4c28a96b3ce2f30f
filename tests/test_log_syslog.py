"""Syslog lines as HAProxy 2.6 writes them: PRI, each format's header, ``len``."""

import re
import time

import pytest

from proxy.log import syslog
from proxy.log.termination import CAUSES, EVENTS, PHASES, state, state_of, with_cookies

NOW = time.mktime((2026, 12, 6, 1, 4, 21, 0, 0, -1)) + 0.666260
LOCAL = syslog.legacy_time(NOW).decode()


@pytest.mark.parametrize("facility,level,expected", [
    ("kern", "emerg", 0), ("user", "info", 14), ("daemon", "notice", 29),
    ("local0", "info", 134), ("local7", "debug", 191), ("cron2", "err", 123)])
def test_pri_is_facility_times_8_plus_level(facility, level, expected):
    assert syslog.pri(syslog.facility_code(facility), syslog.level_code(level)) == expected


def test_the_24_facilities_and_8_levels():
    assert len(syslog.FACILITIES) == 24 and syslog.FACILITIES[16] == "local0"
    assert syslog.LEVELS.index("warning") == 4
    with pytest.raises(ValueError):
        syslog.facility_code("local8")
    with pytest.raises(ValueError):
        syslog.level_code("warn")


def test_local_format_is_rfc3164_without_host():
    # HAProxy 2.6.12, `log stdout local0`:
    # <134>Dec  6 01:04:21 haproxy[23855]: 127.0.0.1:40902 [...
    line = syslog.build(b"msg", "local", 16, 6, NOW, b"haproxy", 23855)
    assert line == ("<134>%s haproxy[23855]: msg\n" % LOCAL).encode()
    assert re.fullmatch(r"[A-Z][a-z]{2} [ 1-3][0-9] [0-9]{2}:[0-9]{2}:[0-9]{2}", LOCAL)


def test_rfc3164_has_the_host_or_localhost():
    assert syslog.build(b"m", "rfc3164", 16, 6, NOW, b"haproxy", 7, host=b"lb1") == \
        ("<134>%s lb1 haproxy[7]: m\n" % LOCAL).encode()
    assert syslog.build(b"m", "rfc3164", 16, 6, NOW, b"haproxy", 7) == \
        ("<134>%s localhost haproxy[7]: m\n" % LOCAL).encode()


def test_rfc5424_layout():
    # HAProxy 2.6.12: <134>1 2026-12-06T01:04:21.666260+00:00 - haproxy 23855 - - 127...
    line = syslog.build(b"msg", "rfc5424", 16, 6, NOW, b"haproxy", 23855).decode()
    m = re.fullmatch(r"<134>1 (\S+) - haproxy 23855 - - msg\n", line)
    assert m, line
    assert re.fullmatch(r"2026-12-06T01:04:21\.666260[+-][0-9]{2}:[0-9]{2}", m.group(1))
    line = syslog.build(b"m", "rfc5424", 3, 4, NOW, b"t", 1, host=b"h", sd=b"[x a=\"1\"] ")
    assert line.endswith(b" h t 1 - [x a=\"1\"] m\n") and line.startswith(b"<28>1 ")


def test_short_priority_timed_iso_raw():
    assert syslog.build(b"m", "short", 16, 3, NOW) == b"<3>m\n"
    assert syslog.build(b"m", "priority", 16, 3, NOW) == b"<131>m\n"
    assert syslog.build(b"m", "raw", 16, 3, NOW) == b"m\n"
    iso = syslog.iso_time(NOW)
    assert syslog.build(b"m", "iso", 16, 3, NOW) == iso + b" m\n"
    assert syslog.build(b"m", "timed", 16, 3, NOW) == b"<3>" + iso + b" m\n"


def test_trailing_newlines_are_not_doubled():
    assert syslog.build(b"m\n\n", "raw") == b"m\n"


def test_len_truncates_header_and_message_on_a_socket():
    line = syslog.build(b"x" * 200, "local", 16, 6, NOW, b"haproxy", 1, maxlen=80)
    assert len(line) == 81 and line.endswith(b"x\n")


def test_len_on_a_file_descriptor_keeps_room_for_the_lf():
    # HAProxy 2.6.12, `log stdout len 80 local0`: 79 characters, then LF
    line = syslog.build(b"x" * 200, "local", 16, 6, NOW, b"haproxy", 1, maxlen=80, fd=True)
    assert len(line) == 80 and line.endswith(b"x\n")


def test_termination_states():
    assert state(None, "data") == "--"
    assert state("client_abort", "data") == "CD"
    assert state_of("client_timeout_request") == "cR"
    assert state_of("no_server") == "SC"
    assert state_of("server_timeout_headers") == "sH"
    assert state_of("tarpit") == "PT"
    assert with_cookies("SD") == "SD--"
    for cause, phase in EVENTS.values():
        assert cause in CAUSES and phase in PHASES
    with pytest.raises(ValueError):
        state("bogus", "R")
