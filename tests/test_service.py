"""HAProxy's command line and the service helpers, without starting a proxy:
argument grammar, sd_notify datagrams, cpu-map choice, pidfile, the systemd unit."""

import dataclasses
import os
import signal
import socket

import pytest

from proxy import haproxy_cli
from proxy.cli import haproxy_flags
from proxy.config.model import Global
from proxy.haproxy_cli import UsageError, parse_args
from proxy.service import (Service, cpus_for_worker, fd_limit_wanted, notify_address,
                           notify_message, sd_notify)


# ---------------------------------------------------------------- dispatch

@pytest.mark.parametrize("args,expected", [
    (["-f", "x.cfg"], True), (["-v"], True), (["-Ws", "-f", "x"], True),
    (["run", "-f", "x"], False), (["-h"], False), (["--help"], False), ([], False),
    (["check", "-f", "x"], False),
])
def test_a_command_line_starting_with_a_flag_is_haproxys(args, expected):
    assert haproxy_flags(args) is expected


# ---------------------------------------------------------------- grammar

def test_systemd_unit_line_parses():
    o = parse_args(["-Ws", "-f", "/etc/haproxy/haproxy.cfg", "-p", "/run/haproxy.pid", "-q"])
    assert o.systemd and o.master_worker and o.foreground and o.quiet
    assert o.configs == ["/etc/haproxy/haproxy.cfg"] and o.pidfile == "/run/haproxy.pid"


def test_several_f_and_double_dash_collect_config_paths():
    o = parse_args(["-f", "a.cfg", "-f", "conf.d", "--", "b.cfg", "-c.cfg"])
    assert o.configs == ["a.cfg", "conf.d", "b.cfg", "-c.cfg"]


def test_sf_takes_pids_up_to_the_next_flag():
    o = parse_args(["-f", "x", "-sf", "12", "34", "-q"])
    assert o.old_pids == (12, 34) and o.old_signal == signal.SIGUSR1 and o.quiet


def test_st_terminates_and_an_empty_pid_list_is_fine():
    assert parse_args(["-f", "x", "-st", "7"]).old_signal == signal.SIGTERM
    # `-sf $(cat pidfile)` with no pidfile yet: HAProxy accepts an empty list too.
    assert parse_args(["-f", "x", "-sf"]).old_pids == ()


@pytest.mark.parametrize("bad", ["abc", "0", "12x"])
def test_sf_refuses_what_is_not_a_pid(bad):
    with pytest.raises(UsageError, match="not a process id"):
        parse_args(["-f", "x", "-sf", "5", bad])


def test_check_daemon_foreground_flags():
    o = parse_args(["-c", "-f", "x", "-D", "-db"])
    assert o.check and o.daemon and o.foreground


def test_version_needs_no_config():
    assert parse_args(["-v"]).version == 1
    assert parse_args(["-vv"]).version == 2


def test_master_cli_socket_of_haproxys_unit_is_accepted_with_a_note():
    o = parse_args(["-Ws", "-f", "x", "-S", "/run/haproxy-master.sock"])
    assert o.configs == ["x"] and "no master CLI" in o.notes[0]


def test_x_names_the_old_instances_control_socket():
    o = parse_args(["-f", "x", "-x", "/run/haproxy.sock"])
    assert o.takeover_socket == "/run/haproxy.sock" and not o.notes


def test_listeners_travel_over_a_unix_socket_with_their_addresses():
    from proxy.service import fetch_listeners, send_listeners
    import tempfile
    lst = [socket.socket() for _ in range(3)]
    try:
        for s in lst:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        lst[0].bind(("127.0.0.1", 0))
        port = lst[0].getsockname()[1]
        lst[1].bind(("127.0.0.1", port))
        lst[2].bind(("127.0.0.1", 0))
        for s in lst:
            s.listen(8)
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "ctl.sock")
            srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            srv.bind(path)
            srv.listen(1)
            srv.settimeout(5)
            import threading

            def answer():
                conn, _ = srv.accept()
                conn.settimeout(5)
                assert conn.recv(64, socket.MSG_PEEK) == b"_getsocks\n"
                send_listeners(conn, lst)
                conn.close()
            t = threading.Thread(target=answer)
            t.start()
            got = fetch_listeners(path)
            t.join(5)
            srv.close()
        assert sorted(got) == sorted({(socket.AF_INET, "127.0.0.1", port),
                                      (socket.AF_INET, "127.0.0.1", lst[2].getsockname()[1])})
        same = got[(socket.AF_INET, "127.0.0.1", port)]
        assert len(same) == 2
        # The very same sockets (same kernel object), not new ones.
        ino = lambda s: os.fstat(s.fileno()).st_ino
        assert {ino(s) for s in same} == {ino(lst[0]), ino(lst[1])}
        for socks in got.values():
            for s in socks:
                s.close()
    finally:
        for s in lst:
            s.close()


@pytest.mark.parametrize("argv,needle", [
    (["-f", "x", "-Z"], "unknown option '-Z'"),
    (["-f"], "-f expects a value"),
    (["-p"], "-p expects a value"),
    (["-f", "x", "-n", "100"], "-n is not supported"),
    (["-f", "x", "-S"], "-S expects a value"),
    (["-f", "x", "-m", "100"], "-m is not supported"),
    (["-c"], "no configuration file"),
    (["-f", "x", "stray"], "unexpected argument 'stray'"),
])
def test_usage_errors_are_one_line(argv, needle):
    with pytest.raises(UsageError) as info:
        parse_args(argv)
    assert needle in str(info.value) and "\n" not in str(info.value)


def test_main_prints_usage_and_exits_1_on_an_unknown_flag(capsys):
    assert haproxy_cli.main(["-Z"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("keepwarm: unknown option '-Z'\nUsage: keepwarm")
    assert "Traceback" not in err


def test_main_version_lines(capsys):
    assert haproxy_cli.main(["-vv"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("keepwarm version ") and any("Head parser" in l for l in out)


# ---------------------------------------------------------------- sd_notify

def test_notify_address_path_abstract_and_unset():
    assert notify_address("/run/systemd/notify") == "/run/systemd/notify"
    assert notify_address("@/org/freedesktop/systemd1/notify/1") == \
        "\0/org/freedesktop/systemd1/notify/1"
    assert notify_address(None) is None and notify_address("") is None


def test_notify_message_is_key_value_lines_in_order():
    assert notify_message(READY=1, MAINPID=42, STATUS="a\nb") == \
        b"READY=1\nMAINPID=42\nSTATUS=a b\n"


def test_sd_notify_sends_one_datagram_to_a_path(tmp_path):
    path = str(tmp_path / "notify")
    rx = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    rx.settimeout(5)
    rx.bind(path)
    try:
        assert sd_notify(notify_address(path), b"READY=1\n")
        assert rx.recv(4096) == b"READY=1\n"
    finally:
        rx.close()


def test_sd_notify_reaches_an_abstract_socket():
    name = "keepwarm-test-%d" % os.getpid()
    rx = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    rx.settimeout(5)
    rx.bind("\0" + name)
    try:
        assert sd_notify(notify_address("@" + name), b"RELOADING=1\n")
        assert rx.recv(4096) == b"RELOADING=1\n"
    finally:
        rx.close()


def test_sd_notify_without_a_listener_says_false(tmp_path):
    assert sd_notify(str(tmp_path / "nobody-listens"), b"READY=1\n") is False
    assert sd_notify(None, b"READY=1\n") is False


# ---------------------------------------------------------------- cpu-map, ulimit-n

def test_cpu_map_later_lines_replace_earlier_ones():
    cpu_map = (((1, 2, 3, 4), (0, 1, 2, 3)), ((2,), (7,)))
    assert cpus_for_worker(cpu_map, 1) == (0, 1, 2, 3)
    assert cpus_for_worker(cpu_map, 2) == (7,)
    assert cpus_for_worker(cpu_map, 5) is None
    assert cpus_for_worker((), 1) is None


def test_fd_limit_is_ulimit_n_when_written_else_from_maxconn():
    assert fd_limit_wanted(Global(maxconn=1000), 256) == 2256
    assert fd_limit_wanted(dataclasses.replace(Global(), ulimit_n=5000), 256) == 5000


# ---------------------------------------------------------------- pidfile

def test_pidfile_written_with_our_pid_and_removed_only_if_still_ours(tmp_path):
    path = tmp_path / "kw.pid"
    svc = Service(pidfile=str(path))
    svc.bound()
    assert path.read_text() == "%d\n" % os.getpid()
    svc.exited()
    assert not path.exists()
    svc = Service(pidfile=str(path))
    svc.bound()
    path.write_text("999999\n")          # a newer instance (-sf) wrote its pid
    svc.exited()
    assert path.read_text() == "999999\n"


def test_pidfile_that_cannot_be_created_is_a_service_error(tmp_path):
    from proxy.service import ServiceError
    with pytest.raises(ServiceError, match="cannot create pidfile"):
        Service(pidfile=str(tmp_path / "no" / "such" / "dir.pid")).bound()


def test_ulimit_n_without_maxconn_sizes_maxconn():
    from proxy.config.model import Config
    from proxy.service import fit_maxconn
    cfg = Config(path="x", global_=dataclasses.replace(Global(), ulimit_n=3000))
    assert fit_maxconn(cfg, 256).global_.maxconn == 1372
    written = Config(path="x", global_=dataclasses.replace(Global(), ulimit_n=3000,
                                                           maxconn=50, maxconn_set=True))
    assert fit_maxconn(written, 256).global_.maxconn == 50
    assert fit_maxconn(Config(path="x"), 256).global_.maxconn == Global().maxconn


# ---------------------------------------------------------------- the systemd unit

UNIT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                    "contrib", "systemd", "keepwarm.service")


def _unit_lines():
    with open(UNIT) as f:
        return [l.strip() for l in f if "=" in l and not l.lstrip().startswith("#")]


def test_unit_is_type_notify_with_checked_reloads():
    lines = _unit_lines()
    for wanted in ("Type=notify", "KillMode=mixed", "Restart=always",
                   "ExecReload=/bin/kill -USR2 $MAINPID"):
        assert wanted in lines
    execs = [l.split("=", 1)[1] for l in lines if l.startswith(("ExecStart", "ExecReload"))]
    # Every keepwarm command line of the unit is one our parser takes, as systemd
    # expands it (EXTRAOPTS empty).
    env = {"$CONFIG": "/etc/keepwarm/keepwarm.cfg", "$PIDFILE": "/run/keepwarm.pid"}
    for line in execs:
        words = [env.get(w, w) for w in line.split() if w != "$EXTRAOPTS"]
        if words[0].endswith("/keepwarm"):
            opts = parse_args(words[1:])
            assert opts.configs == ["/etc/keepwarm/keepwarm.cfg"]
    assert any("-Ws" in l and "-c" not in l.split() for l in execs)


def test_unit_passes_systemd_analyze_verify(tmp_path):
    import shutil
    import subprocess
    analyze, keepwarm = shutil.which("systemd-analyze"), shutil.which("keepwarm")
    if not analyze or not keepwarm:
        pytest.skip("needs systemd-analyze and an installed keepwarm")
    unit = tmp_path / "keepwarm.service"
    with open(UNIT) as f:
        unit.write_text(f.read().replace("/usr/local/bin/keepwarm", keepwarm))
    r = subprocess.run([analyze, "verify", str(unit)], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, text=True, timeout=60)
    assert r.returncode == 0 and "keepwarm.service" not in r.stdout, r.stdout


# ---------------------------------------------------------------- milestones

def test_service_milestones_send_what_systemd_expects(tmp_path):
    import subprocess
    path = str(tmp_path / "notify")
    rx = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    rx.settimeout(5)
    rx.bind(path)
    old = subprocess.Popen(["sleep", "30"])
    try:
        svc = Service(notify_socket=path, old_pids=[old.pid], old_signal=signal.SIGTERM)
        svc.reloading()                 # before the start's READY=1: nothing
        svc.reload_failed("x")
        svc.ready(2)
        assert rx.recv(4096) == b"READY=1\nMAINPID=%d\nSTATUS=ready, 2 worker(s)\n" % os.getpid()
        assert old.wait(timeout=5) == -signal.SIGTERM          # -st: the old pid was told
        svc.ready(2)                    # once only
        svc.reloading()
        assert rx.recv(4096) == b"RELOADING=1\nSTATUS=reloading\n"
        svc.reload_failed("bad.cfg:3: unknown keyword")
        assert rx.recv(4096).startswith(b"READY=1\nSTATUS=reload failed, still running the "
                                        b"previous configuration: bad.cfg:3")
        svc.stopping()
        assert rx.recv(4096) == b"STOPPING=1\n"
    finally:
        rx.close()
        if old.poll() is None:
            old.kill()
            old.wait(timeout=5)


def test_privileges_need_root_and_an_existing_jail(tmp_path, monkeypatch):
    from proxy.service import check_privileges
    g = Global()
    assert check_privileges(g) is None
    assert "not a directory" in check_privileges(
        dataclasses.replace(g, chroot=str(tmp_path / "nope")))
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    monkeypatch.setattr(os, "getegid", lambda: 1000)
    assert "needs keepwarm to be started as root" in check_privileges(
        dataclasses.replace(g, chroot=str(tmp_path)))
    assert "user/uid 65534 needs" in check_privileges(dataclasses.replace(g, uid=65534))
    assert "group/gid 65534 needs" in check_privileges(dataclasses.replace(g, gid=65534))
    assert check_privileges(dataclasses.replace(g, uid=1000, gid=1000)) is None
