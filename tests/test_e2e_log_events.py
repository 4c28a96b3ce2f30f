"""keepwarm's event log on the wire, against HAProxy 2.6.12's (issue 17).

The steps of tests/fixtures/record_eventlog.py (checks failing then passing,
maintenance, drain, ready, soft stop) run through a real keepwarm with the
recorder's configuration: its lines, read from a UNIX datagram socket this test
binds with `format priority` (so each keeps its level), must be HAProxy's
recorded ones, level and text, after masking check durations. Lines are compared
per server (and per backend for 'has no server available!'), in order: two
servers' checks interleave differently from one run to the next. For backend
app2 (two servers racing) the server counts are masked here and checked exactly
by the builders' tests below, on HAProxy's recorded text.
"""

import json
import os
import re
import signal
import socket
from pathlib import Path

import pytest

from fixtures.record_eventlog import Health, STEPS, config, run_steps, runtime_api
from proxy.log import events as ev
from support.backend import ScriptedBackend
from support.proxy import ProxyProcess, free_port

RECORDED = json.loads((Path(__file__).parent / "fixtures" / "haproxy_eventlog.json")
                      .read_text())["steps"]
_COUNTS = re.compile(r"\. [0-9]+ active and [0-9]+ backup servers (left|online)\."
                     r"( Running on backup\.)?")


def _subject(message):
    m = re.search(r"[Ss]erver ([^ ]+/[^ ]+) ", message) or re.match(r"(backend [^ ]+) ",
                                                                      message)
    return m.group(1) if m else message


def grouped(lines):
    """[(level, message)] -> {subject: [(level, masked message)]} (HAProxy's internal
    <HTTPCLIENT> proxy and access-log lines, at info, left out)."""
    out = {}
    for level, message in lines:
        if level >= ev.INFO or "<HTTPCLIENT>" in message:
            continue
        message = re.sub(r"check duration: [0-9]+ms", "check duration: Nms", message)
        # the harness's start-up probes are connections HAProxy's run did not get
        message = re.sub(r"FE: [0-9]+, BE: [0-9]+", "FE: N, BE: N", message)
        if message.split(" ")[0:2] != ["Server", "app/s1"] and "app2/" in message:
            message = _COUNTS.sub(". COUNTS.", message)
        out.setdefault(_subject(message), []).append((level, message))
    return out


@pytest.fixture(scope="module")
def steps(tmp_path_factory):
    work = tmp_path_factory.mktemp("e2e_log_events")
    health = Health()
    backend = ScriptedBackend("app", health.reply).start()
    rx = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    rx.bind(str(work / "log.sock"))
    port = free_port()
    api = work / "api.sock"
    text = config(port, backend.port, work / "log.sock", api)
    p = ProxyProcess(text.replace("global\n", "global\n    nbthread 1\n", 1), work,
                     bind_ports=[port], sock=api, workers=1)
    try:
        p.start()
        got = run_steps(rx, api, health, lambda sig: p.stop(sig=getattr(signal, sig)),
                        command=runtime_api)
        got["_stderr"] = p.stderr_text()
    finally:
        p.stop()
        rx.close()
        backend.stop()
    return got


@pytest.mark.timeout(120)
@pytest.mark.parametrize("name", [s[0] for s in STEPS])
def test_event_lines_and_levels_match_haproxys(steps, name):
    ours = grouped(steps[name])
    theirs = grouped([tuple(x) for x in RECORDED[name]])
    assert ours == theirs, steps["_stderr"][-3000:]


# ---------------------------------------------------------------------- the builders

def _recorded(step, start):
    return [tuple(x) for x in RECORDED[step] if x[1].startswith(start)][0]


def test_down_line_with_the_checks_reason_is_haproxys():
    reason = ev.check_reason("Layer7 wrong status", 500, "Internal Server Error", 0)
    assert ev.server_down("app", "s1", False, reason, 0, 0) == \
        _recorded("checks_fail", "Server app/s1 is DOWN")


def test_up_line_with_the_checks_reason_is_haproxys():
    reason = ev.check_reason("Layer7 check passed", 200, None, 0)
    assert ev.server_up("app", "s1", False, reason, 1, 0) == \
        _recorded("checks_pass", "Server app/s1 is UP")


def test_lines_without_reason_say_running_on_backup_as_haproxy():
    assert ev.server_down("app2", "s1", False, "", 0, 1) == \
        _recorded("checks_fail", "Server app2/s1 is DOWN")
    assert ev.server_down("app2", "s2", True, "", 0, 0) == \
        _recorded("checks_fail", "Backup Server app2/s2 is DOWN")
    assert ev.server_up("app2", "s2", True, "", 0, 1) == \
        _recorded("checks_pass", "Backup Server app2/s2 is UP")


def test_health_check_lines_are_haproxys():
    reason = ev.check_reason("Layer7 wrong status", 500, "Internal Server Error", 0)
    assert ev.health_check("app2", "s2", True, False, reason, 0, 2, 2) == \
        _recorded("checks_fail", "Health check for backup server app2/s2 failed, reason: "
                  "Layer7 wrong status, code: 500, info: \"Internal Server Error\", check "
                  "duration: 0ms, status: 0/2")
    reason = ev.check_reason("Layer7 check passed", 200, None, 0)
    assert ev.health_check("app2", "s1", False, True, reason, 3, 2, 2) == \
        _recorded("start", "Health check for server app2/s1")


def test_admin_lines_are_haproxys():
    assert ev.maint_down("app", "s1", False, 0, 0) == _recorded("maint", "Server")
    assert ev.maint_left("app", "s1", False, True) == _recorded("ready_from_maint", "Server")
    assert ev.drain_entered("app", "s1", False, 0, 0) == _recorded("drain", "Server")
    assert ev.drain_left("app", "s1", False, True) == _recorded("ready_from_drain", "Server")
    assert ev.no_server("app") == _recorded("maint", "backend")
    assert ev.proxy_stopped("fe", 0, 0) == _recorded("soft_stop", "Proxy fe ")


def test_check_info_is_escaped_as_haproxy_escapes_it():
    assert ev.check_reason("Layer7 wrong status", 500, 'a "b"\x01', None) == \
        ', reason: Layer7 wrong status, code: 500, info: "a \\"b\\"\\x01"'


def test_soft_stop_counts_the_frontends_connections(steps):
    # the harness's start-up probes connected to fe: at least one connection counted
    assert any(re.match(r"Proxy fe stopped \(cumulated conns: FE: [1-9][0-9]*, BE: 0\)\.$", m)
               for _, m in steps["soft_stop"]), steps["soft_stop"]


PROCESS_CFG = """global
    nbthread 1
    log %(log)s format priority local0 notice
defaults
    mode http
    log global
    timeout client 5s
    timeout server 2s
    timeout connect 1s
frontend fe
    bind 127.0.0.1:%(port)d
    default_backend app
backend app
    server s1 127.0.0.1:%(bport)d
"""


def _until(rx, predicate, seconds=5.0):
    """Lines until one satisfies `predicate` (bounded by `seconds` of silence)."""
    got = []
    rx.settimeout(seconds)
    for _ in range(100):
        level, message = ev_split(rx.recv(65536).decode())
        got.append((level, message))
        if predicate(level, message):
            return got
    return got


def ev_split(line):
    from fixtures.record_eventlog import split_pri
    return split_pri(line)


@pytest.mark.timeout(60)
def test_worker_crash_and_reload_go_to_the_global_targets(tmp_path):
    backend = ScriptedBackend("app").start()
    rx = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    rx.bind(str(tmp_path / "log.sock"))
    port = free_port()
    p = ProxyProcess(PROCESS_CFG % {"log": tmp_path / "log.sock", "port": port,
                                    "bport": backend.port}, tmp_path, bind_ports=[port],
                     workers=1)
    try:
        p.start()
        victim = p.worker_pids()[0]
        os.kill(victim, signal.SIGKILL)
        got = _until(rx, lambda lvl, m: "(pid %d) killed by signal 9" % victim in m)
        assert got[-1][0] == ev.ALERT, got
        assert got[-1][1].startswith("worker 0 (pid %d) killed by signal 9; restarting"
                                     % victim), got
        os.kill(p.pid, signal.SIGHUP)
        got = _until(rx, lambda lvl, m: m.startswith("reloaded "))
        assert got[-1][0] == ev.NOTICE, got
        # The old worker's proxies stop, as HAProxy 2.6's old worker logs it at a reload
        # (checked with haproxy -W and SIGUSR2): the sessions the old workers served.
        stopped = [(lvl, m) for lvl, m in got if m.startswith("Proxy ")]
        assert [m.split(" (")[0] for _, m in stopped] == ["Proxy fe stopped",
                                                         "Proxy app stopped"], got
        assert all(lvl == ev.WARNING for lvl, _ in stopped), stopped
        assert re.match(r"Proxy fe stopped \(cumulated conns: FE: [0-9]+, BE: 0\)\.$",
                        stopped[0][1]), stopped
        p.cfg.write_text("global\n    log %s local0\nfrontend\n" % (tmp_path / "log.sock"))
        os.kill(p.pid, signal.SIGHUP)
        got = _until(rx, lambda lvl, m: m.startswith("reload failed"))
        assert got[-1][0] == ev.WARNING and "previous configuration" in got[-1][1], got
    finally:
        p.stop()
        rx.close()
        backend.stop()
