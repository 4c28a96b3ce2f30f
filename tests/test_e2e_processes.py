"""The process tree: master, workers, restarts, boot failure, signals (issue 2, "Processes")."""

import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest

from support.client import HttpClient, get
from support.proxy import REPO_ROOT, alive, make_config, pids_running, proc_status, run_cli


def ppid(pid):
    return int(proc_status(pid).get("PPid", "0"))


def test_master_forks_the_configured_number_of_workers(backends, proxy_factory):
    kw = proxy_factory(backends, nbproc=3)
    info = kw.stats()["info"]
    assert info["pid"] == kw.pid
    assert info["nbproc"] == 3
    assert [w["slot"] for w in info["workers"]] == [0, 1, 2]
    pids = [w["pid"] for w in info["workers"]]
    assert len(set(pids)) == 3 and kw.pid not in pids
    assert all(ppid(p) == kw.pid for p in pids)


def test_version_prints_version_and_active_parser():
    r = run_cli("version")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].startswith("keepwarm ") and lines[0].split()[1].count(".") == 2
    assert "parser: native" in lines or "parser: python" in lines


def test_pure_python_parser_is_used_when_asked():
    r = run_cli("version", env={"KEEPWARM_PURE": "1"})
    assert r.returncode == 0, r.stderr
    assert "parser: python" in r.stdout.splitlines()


@pytest.mark.skipif(shutil.which("keepwarm") is None, reason="keepwarm console script not installed")
def test_console_script_runs_the_same_cli():
    r = subprocess.run(["keepwarm", "version"], capture_output=True, text=True, timeout=15)
    assert r.returncode == 0 and r.stdout.startswith("keepwarm ")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_stop_signal_ends_the_whole_tree_within_one_second(sig, backends, proxy_factory):
    kw = proxy_factory(backends, nbproc=2)
    workers = kw.worker_pids()
    with HttpClient(kw.port) as idle_client:       # an open keep-alive client must not delay the stop
        assert idle_client.request("GET", "/").status == 200
        res = kw.stop(sig, timeout=5)
    print("%s: tree of %d processes gone in %.3f s" % (sig.name, len(res.pids), res.elapsed))
    assert set(workers) <= set(res.pids)
    assert res.survivors == []
    assert res.returncode == 0
    assert res.elapsed < 1.0, "tree took %.2f s to exit" % res.elapsed
    assert not any(alive(p) for p in res.pids)


def test_killed_worker_is_replaced_while_clients_keep_connecting(backends, proxy_factory,
                                                                  record_property):
    kw = proxy_factory(backends, nbproc=2)
    old = kw.worker_pids()
    stop = threading.Event()
    counts = {"ok": 0, "reset": 0, "other": 0}
    lock = threading.Lock()

    def client(i):
        n = 0
        while not stop.is_set() and n < 5000:
            n += 1
            try:
                r = get(kw.port, "/k%d" % n, timeout=5)
                key = "ok" if r.status == 200 else "other"
            except ConnectionResetError:
                key = "reset"
            except (OSError, AssertionError):
                key = "other"
            with lock:
                counts[key] += 1

    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(2)]
    for t in threads:
        t.start()
    try:
        kw.wait_stats(lambda s: s["frontends"]["fe"]["req_tot"] >= 50, what="traffic flowing")
        os.kill(old[0], signal.SIGKILL)
        st = kw.wait_stats(lambda s: s["info"]["workers"][0]["pid"] not in old
                           and s["info"]["workers"][0]["ready"], what="replacement worker ready")
        with lock:
            ok_at_restart = counts["ok"]
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:   # the port keeps answering after the restart
            with lock:
                if counts["ok"] >= ok_at_restart + 50:
                    break
            time.sleep(0.05)
    finally:
        stop.set()
        for t in threads:
            t.join(10)
    print("kill -9 under load: %r" % counts)
    record_property("kill9_client_outcomes", repr(counts))
    assert st["info"]["workers"][0]["restarts"] == 1
    assert st["info"]["worker_restarts"] == 1
    assert counts["ok"] >= ok_at_restart + 50
    # Only exchanges the dead worker had already accepted may fail (one per client thread)
    assert counts["reset"] + counts["other"] <= len(threads), counts


def test_connections_waiting_for_a_dead_worker_are_served_by_its_replacement(backends,
                                                                              proxy_factory):
    # The worker is frozen, clients queue in its slot's backlog, then it is
    # killed: the master kept the listener, so the replacement serves them all.
    kw = proxy_factory(backends, nbproc=1)
    worker = kw.worker_pids()[0]
    os.kill(worker, signal.SIGSTOP)
    clients = []
    try:
        for i in range(20):
            c = HttpClient(kw.port, timeout=10)
            c.send_request("GET", "/queued%d" % i, [("Connection", "close")])
            clients.append(c)
        os.kill(worker, signal.SIGKILL)
        statuses, resets = [], 0
        for c in clients:
            try:
                statuses.append(c.read_response().status)
            except ConnectionResetError:
                resets += 1
    finally:
        for c in clients:
            c.close()
    assert resets == 0
    assert statuses == [200] * 20
    st = kw.wait_stats(lambda s: s["info"]["workers"][0]["pid"] != worker, what="new worker")
    assert st["info"]["worker_restarts"] == 1


def test_master_keeps_totals_across_a_worker_restart(backends, proxy_factory):
    kw = proxy_factory(backends, nbproc=1)
    with HttpClient(kw.port) as c:
        for i in range(30):
            assert c.request("GET", "/%d" % i).status == 200
    kw.wait_stats(lambda s: s["backends"]["be"]["req_tot"] == 30, what="req_tot 30")
    old = kw.worker_pids()[0]
    os.kill(old, signal.SIGKILL)
    kw.wait_stats(lambda s: s["info"]["workers"][0]["pid"] != old and s["info"]["workers"][0]["ready"],
                  what="replacement worker")
    with HttpClient(kw.port) as c:
        for i in range(20):
            assert c.request("GET", "/%d" % i).status == 200
    st = kw.wait_stats(lambda s: s["backends"]["be"]["req_tot"] >= 50, what="req_tot 50")
    assert st["backends"]["be"]["req_tot"] == 50
    assert st["frontends"]["fe"]["req_tot"] == 50
    assert st["frontends"]["fe"]["hrsp_2xx"] == 50


def test_worker_that_cannot_bind_makes_master_exit_nonzero(tmp_path, backends):
    taken = socket.socket(socket.AF_INET, socket.SOCK_STREAM)   # no SO_REUSEPORT
    taken.bind(("127.0.0.1", 0))
    taken.listen(8)
    port = taken.getsockname()[1]
    cfg = tmp_path / "busy.cfg"
    cfg.write_text(make_config(port=port, servers=backends, sock=tmp_path / "s.sock", nbproc=2))
    t0 = time.monotonic()
    p = subprocess.Popen([sys.executable, "-m", "proxy", "run", "-f", str(cfg)], cwd=str(REPO_ROOT),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    try:
        out, err = p.communicate(timeout=10)
        took = time.monotonic() - t0
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)   # its own session: only our processes
        p.communicate(timeout=5)
        pytest.fail("master still running 10 s after its workers could not bind")
    finally:
        taken.close()
    assert p.returncode not in (0, None), err
    assert took < 5, "took %.1f s to give up" % took
    assert str(port) in err.decode(errors="replace"), "stderr does not name the port: %s" % err[-500:]
    assert not [q for q in pids_running(str(cfg), " run ") if alive(q)], "orphan workers left"
