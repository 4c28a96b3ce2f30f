"""keepwarm in HAProxy's place: its command line (-f -c -D -W -Ws -p -sf), systemd's notify
protocol played by the test, daemon mode, soft stops, privileges, and an -sf hand-over
under load. Real processes over real sockets on 127.0.0.1."""

import grp
import json
import os
import pwd
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest

from support.backend import Reply
from support.client import ClosedError, HttpClient
from support.proxy import (READY_TIMEOUT, REPO_ROOT, ProxyProcess, alive, free_port,
                           make_config, proc_status, proxy_command, run_cli)


class HaproxyMode(ProxyProcess):
    """A keepwarm started with HAProxy's flags: `python -m proxy FLAGS -f CFG`."""

    def __init__(self, config_text, workdir, *, flags=(), files=None, **kw):
        super().__init__(config_text, workdir, **kw)
        self.flags = list(flags)
        self.files = [str(self.cfg)] if files is None else [str(f) for f in files]

    def start(self, wait=True, timeout=READY_TIMEOUT):
        env = dict(os.environ)
        env.update(self.env)
        self._out = open(self.out_path, "wb")
        self._err = open(self.err_path, "wb")
        files = [w for f in self.files for w in ("-f", f)]
        self.proc = subprocess.Popen(proxy_command(*self.flags, *files),
                                     cwd=str(REPO_ROOT), env=env, stdin=subprocess.DEVNULL,
                                     stdout=self._out, stderr=self._err, start_new_session=True)
        self.known_pids.add(self.proc.pid)
        if wait:
            self.wait_ready(timeout)
        return self


@pytest.fixture
def haproxy_factory(tmp_path):
    """``start(config_text, port, flags=(), env=None, name=..., wait=True)`` -> HaproxyMode;
    every instance is stopped at teardown."""
    made = []

    def start(config_text, port, *, sock, flags=(), env=None, name="kw", wait=True, workers=2,
              files=None):
        p = HaproxyMode(config_text, tmp_path / name, bind_ports=[port], sock=sock,
                        workers=workers, env=env, name=name, flags=flags, files=files)
        made.append(p)
        p.start(wait=wait)
        return p

    yield start
    errors = []
    for p in reversed(made):
        try:
            p.stop()
        except AssertionError as exc:
            errors.append(str(exc))
    assert not errors, "\n".join(errors)


def config_for(backend, tmp_path, *, global_lines=(), nbproc=2, port=None):
    port = port or free_port()
    sock = tmp_path / "stats.sock"
    return make_config(port=port, servers=[backend], sock=sock, nbproc=nbproc,
                       global_lines=global_lines), port, str(sock)


def needs_global(lines, filled):
    """Skip unless the parser fills the Global model from `lines` (`filled(global_)`
    true): the global section's keywords land in a separate commit."""
    from proxy.config import ConfigError, parse
    text = "global\n" + "".join("    %s\n" % line for line in lines)
    try:
        g = parse(text).global_
    except ConfigError as exc:
        pytest.skip("the parser does not accept %s yet: %s" % (lines, str(exc).splitlines()[0]))
    if not filled(g):
        pytest.skip("the parser accepts %s but does not fill the model yet" % (lines,))


def wait_until(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() >= deadline:
            raise AssertionError("timed out after %.1f s waiting for %s" % (timeout, what))
        time.sleep(0.05)


def accepts(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


# ---------------------------------------------------------------- command line

def test_dash_c_says_valid_and_exits_0(tmp_path, backend_factory):
    text, _, _ = config_for(backend_factory("s1"), tmp_path)
    cfg = tmp_path / "haproxy.cfg"
    cfg.write_text(text)
    r = run_cli("-c", "-f", str(cfg))
    assert (r.returncode, r.stdout) == (0, "Configuration file is valid\n"), r.stderr
    r = run_cli("-c", "-q", "-f", str(tmp_path))         # a directory with one .cfg
    assert (r.returncode, r.stdout, r.stderr) == (0, "", "")


def test_several_f_and_a_directory_are_read_as_one_configuration(tmp_path, backend_factory,
                                                                  haproxy_factory):
    be = backend_factory("s1")
    text, port, sock = config_for(be, tmp_path)
    head, proxies = text.split("\ndefaults", 1)
    (tmp_path / "global.cfg").write_text(head + "\n")
    confd = tmp_path / "conf.d"
    confd.mkdir()
    defaults, rest = ("defaults" + proxies).split("\nfrontend", 1)
    (confd / "10-defaults.cfg").write_text(defaults + "\n")
    (confd / "20-site.cfg").write_text("frontend" + rest)
    (confd / "README").write_text("not a .cfg: skipped\n")
    r = run_cli("-c", "-f", str(tmp_path / "global.cfg"), "-f", str(confd))
    assert (r.returncode, r.stdout) == (0, "Configuration file is valid\n"), r.stderr
    kw = haproxy_factory("", port, sock=sock, flags=["-W"],
                         files=[tmp_path / "global.cfg", confd])
    with HttpClient(port) as c:
        assert c.request("GET", "/").status == 200
    # A reload lists the directory anew: a broken new file there makes it fail.
    (confd / "30-broken.cfg").write_text("frontend broken\n    no-such-keyword\n")
    kw.send_signal(signal.SIGUSR2)
    wait_until(lambda: "30-broken.cfg:2" in kw.stderr_text(), 10, "the reload to fail")


def test_missing_file_and_empty_directory_exit_1(tmp_path):
    r = run_cli("-c", "-f", str(tmp_path / "nope.cfg"))
    assert r.returncode == 1 and "nope.cfg" in r.stderr and "Traceback" not in r.stderr
    r = run_cli("-c", "-f", str(tmp_path))
    assert r.returncode == 1 and "no *.cfg file" in r.stderr


def test_dash_c_on_a_broken_config_exits_1_with_file_and_line(tmp_path):
    cfg = tmp_path / "bad.cfg"
    cfg.write_text("global\n    maxconn 10\nfrontend fe\n    bind 127.0.0.1:1\n    bogus-kw 1\n")
    r = run_cli("-c", "-f", str(cfg))
    assert r.returncode == 1 and "%s:5" % cfg in r.stderr and "Traceback" not in r.stderr


def test_unknown_flag_is_one_line_and_usage(tmp_path):
    r = run_cli("-f", "x.cfg", "--frobnicate")
    assert r.returncode == 1
    first, rest = r.stderr.split("\n", 1)
    assert first == "keepwarm: unknown option '--frobnicate'" and rest.startswith("Usage:")


def test_subcommands_still_work_beside_haproxy_flags():
    r = run_cli("version")
    assert r.returncode == 0 and r.stdout.startswith("keepwarm ")
    assert run_cli("--help").stdout.startswith("Usage:")


# ---------------------------------------------------------------- systemd Type=notify

class FakeSystemd:
    """The notify socket systemd gives a Type=notify service: one datagram per call."""

    def __init__(self, path):
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)

    def next(self, timeout=10.0):
        self.sock.settimeout(timeout)
        data = self.sock.recv(4096).decode()
        return dict(line.split("=", 1) for line in data.splitlines() if "=" in line)

    def close(self):
        self.sock.close()


@pytest.mark.parametrize("abstract", [False, True], ids=["path", "abstract"])
def test_ws_ready_after_listeners_and_workers_then_reloading_and_ready(
        tmp_path, backend_factory, haproxy_factory, abstract):
    be = backend_factory("s1")
    text, port, sock = config_for(be, tmp_path)
    if abstract:
        name = "keepwarm-notify-%d" % os.getpid()
        systemd, env_value = FakeSystemd("\0" + name), "@" + name
    else:
        systemd = FakeSystemd(str(tmp_path / "notify"))
        env_value = systemd.path
    try:
        kw = haproxy_factory(text, port, sock=sock, flags=["-Ws"], wait=False,
                             env={"NOTIFY_SOCKET": env_value})
        msg = systemd.next()
        assert msg.get("READY") == "1" and msg.get("MAINPID") == str(kw.pid), msg
        # READY=1 came after the bind and the workers: it accepts and every worker is ready.
        assert accepts(port)
        st = kw.stats()
        assert all(w["ready"] for w in st["info"]["workers"]) and len(st["info"]["workers"]) == 2
        with HttpClient(port) as c:
            assert c.request("GET", "/").status == 200

        kw.send_signal(signal.SIGUSR2)
        assert systemd.next().get("RELOADING") == "1"
        msg = systemd.next()
        assert msg.get("READY") == "1" and "reloaded" in msg.get("STATUS", ""), msg
        st = kw.stats()
        assert st["info"]["reloads"] == 1 and all(w["ready"] for w in st["info"]["workers"])

        # A reload that fails still ends the RELOADING state, and says why.
        kw.cfg.write_text(text + "    no-such-keyword\n")
        kw.send_signal(signal.SIGHUP)
        assert systemd.next().get("RELOADING") == "1"
        msg = systemd.next()
        assert msg.get("READY") == "1" and "reload failed" in msg.get("STATUS", ""), msg
        with HttpClient(port) as c:
            assert c.request("GET", "/").status == 200
        kw.stop()
        assert systemd.next().get("STOPPING") == "1"
    finally:
        systemd.close()


def test_without_ws_nothing_is_sent_to_notify_socket(tmp_path, backend_factory, haproxy_factory):
    be = backend_factory("s1")
    text, port, sock = config_for(be, tmp_path)
    systemd = FakeSystemd(str(tmp_path / "notify"))
    try:
        haproxy_factory(text, port, sock=sock, flags=["-W"], env={"NOTIFY_SOCKET": systemd.path})
        with pytest.raises(socket.timeout):
            systemd.next(timeout=0.5)
    finally:
        systemd.close()


# ---------------------------------------------------------------- daemon and pidfile

def test_daemon_detaches_writes_the_pidfile_and_removes_it_at_exit(tmp_path, backend_factory):
    be = backend_factory("s1")
    text, port, sock = config_for(be, tmp_path)
    cfg, pidfile = tmp_path / "d.cfg", tmp_path / "d.pid"
    cfg.write_text(text)
    r = run_cli("-D", "-f", str(cfg), "-p", str(pidfile), timeout=30)
    assert r.returncode == 0, r.stderr
    pid = int(pidfile.read_text())
    workers = []
    try:
        assert alive(pid)
        assert int(proc_status(pid)["PPid"]) != os.getpid()
        assert os.getsid(pid) != os.getsid(0) and os.getsid(pid) != pid   # setsid, then forked
        assert os.readlink("/proc/%d/cwd" % pid) == "/"
        for fd in (0, 1, 2):
            assert os.readlink("/proc/%d/fd/%d" % (pid, fd)) == "/dev/null"
        r = run_cli("stats", "--json", "-s", sock)
        assert r.returncode == 0, r.stderr
        st = json.loads(r.stdout)
        workers = [w["pid"] for w in st["info"]["workers"]]
        assert st["info"]["pid"] == pid and all(w["ready"] for w in st["info"]["workers"])
        with HttpClient(port) as c:
            assert c.request("GET", "/").status == 200
        os.kill(pid, signal.SIGTERM)
        wait_until(lambda: not alive(pid) and not any(alive(w) for w in workers), 10,
                   "the daemon and its workers to exit")
        assert not pidfile.exists() and not os.path.exists(sock)
    finally:
        for p in [pid] + workers:
            if alive(p):
                os.kill(p, signal.SIGKILL)


def test_daemon_reloads_a_config_given_by_a_relative_path(tmp_path, backend_factory):
    # The daemon chdirs to /: the path it was given must still name the file.
    be = backend_factory("s1")
    text, port, sock = config_for(be, tmp_path)
    cfg, pidfile = tmp_path / "d.cfg", tmp_path / "d.pid"
    cfg.write_text(text)
    r = run_cli("-D", "-f", os.path.relpath(cfg, REPO_ROOT), "-p",
                os.path.relpath(pidfile, REPO_ROOT), timeout=30)
    assert r.returncode == 0, r.stderr
    pid = int(pidfile.read_text())
    try:
        os.kill(pid, signal.SIGUSR2)

        def reloaded():
            r = run_cli("stats", "--json", "-s", sock)
            return r.returncode == 0 and json.loads(r.stdout)["info"]["reloads"] == 1
        wait_until(reloaded, 10, "the daemon to reload")
        with HttpClient(port) as c:
            assert c.request("GET", "/").status == 200
    finally:
        os.kill(pid, signal.SIGTERM)
        wait_until(lambda: not alive(pid), 10, "the daemon to exit")
    assert not pidfile.exists()


def test_daemon_that_cannot_bind_says_so_on_the_terminal(tmp_path, backend_factory):
    be = backend_factory("s1")
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen(1)
    try:
        text, port, _ = config_for(be, tmp_path, port=taken.getsockname()[1])
        cfg, pidfile = tmp_path / "d.cfg", tmp_path / "d.pid"
        cfg.write_text(text)
        r = run_cli("-D", "-f", str(cfg), "-p", str(pidfile), timeout=30)
        assert r.returncode == 1 and "cannot bind" in r.stderr and "Traceback" not in r.stderr
        assert not pidfile.exists()
    finally:
        taken.close()


def test_pidfile_from_p_holds_the_masters_pid(tmp_path, backend_factory, haproxy_factory):
    be = backend_factory("s1")
    text, port, sock = config_for(be, tmp_path)
    pidfile = tmp_path / "kw.pid"
    kw = haproxy_factory(text, port, sock=sock, flags=["-W", "-db", "-p", str(pidfile)])
    assert pidfile.read_text() == "%d\n" % kw.pid
    kw.stop()
    assert not pidfile.exists()


# ---------------------------------------------------------------- soft stops

def slow_backend(backend_factory, delay):
    return backend_factory("slow", lambda backend, req: Reply(200, body=b"slow", delay=delay))


def test_hard_stop_after_bounds_a_soft_stop(tmp_path, backend_factory, haproxy_factory):
    needs_global(["hard-stop-after 1s"], lambda g: g.hard_stop_after == 1.0)
    be = slow_backend(backend_factory, 20)
    text, port, sock = config_for(be, tmp_path, global_lines=["hard-stop-after 1s"], nbproc=1)
    text = text.replace("server 5s", "server 30s").replace("client 5s", "client 30s")
    kw = haproxy_factory(text, port, sock=sock, workers=1)
    c = HttpClient(port, timeout=30)
    try:
        c.send_request("GET", "/slow")
        be.wait_requests(1)
        t0 = time.monotonic()
        kw.send_signal(signal.SIGUSR1)
        kw.proc.wait(timeout=15)
        assert time.monotonic() - t0 < 5, "the soft stop outlived hard-stop-after 1s"
    finally:
        c.close()


def test_grace_keeps_accepting_then_stops(tmp_path, backend_factory, haproxy_factory):
    needs_global(["grace 1500ms"], lambda g: g.grace == 1.5)
    be = backend_factory("s1")
    text, port, sock = config_for(be, tmp_path, global_lines=["grace 1500ms"])
    kw = haproxy_factory(text, port, sock=sock)
    t0 = time.monotonic()
    kw.send_signal(signal.SIGUSR1)
    time.sleep(0.3)     # well inside the grace period: requests are still served
    with HttpClient(port) as c:
        assert c.request("GET", "/").status == 200
    kw.proc.wait(timeout=10)
    assert time.monotonic() - t0 >= 1.4
    assert not accepts(port)


# ---------------------------------------------------------------- privileges

def _ids(pid):
    st = proc_status(pid)
    return ([int(x) for x in st["Uid"].split()], [int(x) for x in st["Gid"].split()],
            int(st["CapEff"], 16), st.get("Groups", "").split())


@pytest.mark.skipif(os.geteuid() != 0, reason="chroot and setuid need root")
def test_workers_run_chrooted_as_nobody_without_capabilities(tmp_path, backend_factory,
                                                              haproxy_factory):
    nobody = pwd.getpwnam("nobody")
    group = grp.getgrgid(nobody.pw_gid).gr_name
    jail = tmp_path / "jail"
    jail.mkdir()
    lines = ["chroot %s" % jail, "user nobody", "group %s" % group]
    needs_global(lines, lambda g: g.chroot == str(jail) and g.uid == nobody.pw_uid
                 and g.gid == nobody.pw_gid)
    be = backend_factory("s1")
    text, port, sock = config_for(be, tmp_path, global_lines=lines)
    kw = haproxy_factory(text, port, sock=sock, flags=["-W"])
    for generation in ("start", "reload"):
        workers = kw.worker_pids(kw.stats())
        for pid in workers:
            uids, gids, capeff, groups = _ids(pid)
            assert uids == [nobody.pw_uid] * 4 and gids == [nobody.pw_gid] * 4, generation
            assert capeff == 0 and groups == [], generation
            assert os.readlink("/proc/%d/root" % pid) == str(jail), generation
        # HAProxy's master-worker mode: the master stays outside the chroot, as root,
        # so a reload reads the configuration where it was and binds new ports.
        assert os.readlink("/proc/%d/root" % kw.pid) == "/"
        with HttpClient(port) as c:
            assert c.request("GET", "/").status == 200
        if generation == "start":
            kw.send_signal(signal.SIGUSR2)
            kw.wait_stats(lambda st: st["info"]["reloads"] == 1 and
                          all(w["ready"] and w["pid"] not in workers
                              for w in st["info"]["workers"]), what="reloaded workers")


@pytest.mark.skipif(os.geteuid() != 0, reason="setuid needs root")
@pytest.mark.parametrize("dumpable", [False, True], ids=["default", "set-dumpable"])
def test_set_dumpable_keeps_a_setuid_worker_dumpable(tmp_path, backend_factory,
                                                     haproxy_factory, dumpable):
    # The kernel makes a process that changed its uid non-dumpable, and then its
    # /proc/PID files belong to root; PR_SET_DUMPABLE gives them back to its uid.
    nobody = pwd.getpwnam("nobody")
    lines = ["user nobody"] + (["set-dumpable"] if dumpable else [])
    needs_global(lines, lambda g: g.uid == nobody.pw_uid and g.set_dumpable == dumpable)
    be = backend_factory("s1")
    text, port, sock = config_for(be, tmp_path, global_lines=lines)
    kw = haproxy_factory(text, port, sock=sock)
    for pid in kw.worker_pids(kw.stats()):
        owner = os.stat("/proc/%d/status" % pid).st_uid
        assert owner == (nobody.pw_uid if dumpable else 0)


def test_mworker_max_reloads_terminates_old_workers(tmp_path, backend_factory, haproxy_factory):
    needs_global(["mworker-max-reloads 0"], lambda g: g.mworker_max_reloads == 0)
    be = slow_backend(backend_factory, 20)
    text, port, sock = config_for(be, tmp_path, global_lines=["mworker-max-reloads 0"],
                                  nbproc=1)
    text = text.replace("server 5s", "server 30s").replace("client 5s", "client 30s")
    kw = haproxy_factory(text, port, sock=sock, workers=1)
    old = kw.worker_pids(kw.stats())
    c = HttpClient(port, timeout=30)
    try:
        c.send_request("GET", "/slow")
        be.wait_requests(1)
        kw.send_signal(signal.SIGUSR2)
        # Without the limit the old worker would finish its stream (20 s).
        wait_until(lambda: not any(alive(p) for p in old), 5, "the old worker to be terminated")
    finally:
        c.close()


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="needs two CPUs")
def test_cpu_map_pins_each_worker(tmp_path, backend_factory, haproxy_factory):
    cpus = sorted(os.sched_getaffinity(0))[:2]
    lines = ["cpu-map 1/1 %d" % cpus[0], "cpu-map 1/2 %d" % cpus[1]]
    needs_global(lines, lambda g: bool(g.cpu_map))
    be = backend_factory("s1")
    text, port, sock = config_for(be, tmp_path, global_lines=lines)
    kw = haproxy_factory(text, port, sock=sock)
    for w in kw.stats()["info"]["workers"]:
        assert os.sched_getaffinity(w["pid"]) == {cpus[w["slot"]]}
    assert os.sched_getaffinity(kw.pid) == os.sched_getaffinity(0)   # the master is not pinned


def test_ulimit_n_sets_the_descriptor_limit(tmp_path, backend_factory, haproxy_factory):
    needs_global(["ulimit-n 3000"], lambda g: g.ulimit_n == 3000)
    be = backend_factory("s1")
    text, port, sock = config_for(be, tmp_path, global_lines=["ulimit-n 3000"])
    kw = haproxy_factory(text, port, sock=sock)
    for pid in [kw.pid] + kw.worker_pids():
        with open("/proc/%d/limits" % pid) as f:
            line = next(l for l in f if l.startswith("Max open files"))
        assert line.split()[3] == "3000", line


# ---------------------------------------------------------------- -sf hand-over under load

HANDOVER_CLIENTS = 4     # client loops at once during the hand-over


class ClientLoop(threading.Thread):
    """Requests without pause until stopped (bounded in count and time): keep-alive
    connections of a few requests each, and fresh connections of one request.

    As HTTP clients do (RFC 9112 §9.3.1), a GET sent on a reused keep-alive
    connection that the proxy closed before any byte of the answer is sent again
    on a new connection; a failure on a fresh connection, or any non-200, is a
    failed request."""

    def __init__(self, port, max_requests=20000, max_seconds=40.0):
        super().__init__(daemon=True)
        self.port = port
        self.max_requests = max_requests
        self.max_seconds = max_seconds
        self.stop_flag = threading.Event()
        self.ok = 0
        self.resent = 0
        self.failures = []
        self.pids_seen = set()

    def run(self):
        end = time.monotonic() + self.max_seconds
        n = 0
        client = None
        while not self.stop_flag.is_set() and time.monotonic() < end and n < self.max_requests:
            n += 1
            keep = n % 3 != 0                # two in three on a kept connection
            reused = client is not None
            try:
                if client is None:
                    client = HttpClient(self.port, timeout=5)
                resp = client.request("GET", "/n%d" % n,
                                      headers=None if keep else [("Connection", "close")])
            except Exception as exc:             # noqa: BLE001 - every failure is recorded
                if client is not None:
                    client.close()
                client = None
                if reused and isinstance(exc, (ClosedError, ConnectionResetError,
                                               BrokenPipeError)):
                    self.resent += 1
                    try:
                        with HttpClient(self.port, timeout=5) as fresh:
                            resp = fresh.request("GET", "/n%d" % n,
                                                 headers=[("Connection", "close")])
                    except Exception as exc2:   # noqa: BLE001
                        self.failures.append("request %d resent: %r" % (n, exc2))
                        continue
                else:
                    self.failures.append("request %d on a new connection: %r" % (n, exc))
                    continue
            if resp.status != 200:
                self.failures.append("request %d: status %d" % (n, resp.status))
            else:
                self.ok += 1
            if client is not None and (not keep or "close" in resp.connection_tokens):
                client.close()
                client = None
        if client is not None:
            client.close()


def listening_inodes(port):
    """Inodes of the sockets listening on 127.0.0.1:port (/proc/net/tcp, state 0A)."""
    want = "0100007F:%04X" % port
    with open("/proc/net/tcp") as f:
        rows = [line.split() for line in f.readlines()[1:]]
    return {int(r[9]) for r in rows if r[1] == want and r[3] == "0A"}


@pytest.mark.parametrize("how", ["sf", "sf-x", "sf-moved-socket"])
def test_sf_hands_over_without_a_failed_request(tmp_path, backend_factory, haproxy_factory,
                                                how):
    """-sf alone asks the old instance on the control socket both configurations name;
    -x names it; when the new configuration moves the control socket, nothing can be
    asked and B binds sockets of its own beside A's: no request fails either way."""
    be = backend_factory("s1")
    text, port, sock = config_for(be, tmp_path)
    b_text, b_sock = text, sock
    if how == "sf-moved-socket":
        b_sock = str(tmp_path / "moved.sock")
        b_text = make_config(port=port, servers=[be], sock=b_sock, nbproc=2)
    pidfile = tmp_path / "kw.pid"
    a = haproxy_factory(text, port, sock=sock, flags=["-W", "-p", str(pidfile)], name="a")
    a_workers = a.worker_pids(a.stats())
    a_sockets = listening_inodes(port)
    assert len(a_sockets) == 2
    loops = [ClientLoop(port) for _ in range(HANDOVER_CLIENTS)]
    ok = lambda: sum(loop.ok for loop in loops)
    running = lambda: all(loop.is_alive() for loop in loops)
    for loop in loops:
        loop.start()
    try:
        wait_until(lambda: ok() >= 400 or not running(), 20, "traffic through A")
        b = haproxy_factory(b_text, port, sock=b_sock, name="b",
                            flags=["-W", "-p", str(pidfile)]
                            + (["-x", sock] if how == "sf-x" else [])
                            + ["-sf", pidfile.read_text().strip()])
        assert a.proc.wait(timeout=40) == 0, a.stderr_text()
        wait_until(lambda: not any(alive(p) for p in a_workers), 10, "A's workers to exit")
        served_by_a = ok()
        wait_until(lambda: ok() >= served_by_a + 400 or not running(), 20, "traffic through B")
    finally:
        for loop in loops:
            loop.stop_flag.set()
        for loop in loops:
            loop.join(timeout=15)
    failures = [f for loop in loops for f in loop.failures]
    resent = sum(loop.resent for loop in loops)
    assert not failures, "%d failed of %d: %s" % (len(failures), ok(), failures[:5])
    print("hand-over (%s): %d ok, %d resent on a closed keep-alive connection"
          % (how, ok(), resent))
    # B listens on A's very sockets when it could ask A; else on sockets of its own.
    if how == "sf-moved-socket":
        assert not listening_inodes(port) & a_sockets
        assert "binding anew" in b.stderr_text()
    else:
        assert listening_inodes(port) == a_sockets
        assert "took 2 listening socket(s) over" in b.stderr_text()
    assert ok() >= 800
    assert pidfile.read_text() == "%d\n" % b.pid
    # B took the control socket over: `keepwarm stats` reaches the new master.
    assert b.stats()["info"]["pid"] == b.pid
    with HttpClient(port) as c:
        assert c.request("GET", "/").status == 200
