"""Shared pytest fixtures: scripted backends, a running keepwarm, a hard time limit for e2e tests."""

import os
import signal
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from support.backend import ScriptedBackend  # noqa: E402
from support.proxy import ProxyProcess, free_port, make_config  # noqa: E402

E2E_TIME_LIMIT = float(os.environ.get("KEEPWARM_E2E_TIME_LIMIT", "60"))


def pytest_configure(config):
    config.addinivalue_line("markers", "time_limit(seconds): hard limit for one end-to-end test")


class TestTookTooLong(Exception):
    pass


@pytest.fixture(autouse=True)
def _e2e_time_limit(request):
    """No end-to-end test may hang: SIGALRM after the limit (only for test_e2e_* modules)."""
    if not request.module.__name__.rsplit(".", 1)[-1].startswith("test_e2e_"):
        yield
        return
    marker = request.node.get_closest_marker("time_limit")
    limit = marker.args[0] if marker else E2E_TIME_LIMIT

    def expire(signum, frame):
        raise TestTookTooLong("test exceeded its %.0f s limit" % limit)

    old = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, limit)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


@pytest.fixture
def backend_factory():
    """``make(name, handler=None, **kw)`` -> a started ScriptedBackend, stopped at teardown."""
    made = []

    def make(name="b1", handler=None, **kw):
        b = ScriptedBackend(name, handler, **kw).start()
        made.append(b)
        return b

    yield make
    for b in made:
        b.stop()


@pytest.fixture
def backends(backend_factory):
    """Two default scripted backends named s1 and s2."""
    return [backend_factory("s1"), backend_factory("s2")]


@pytest.fixture
def proxy_factory(tmp_path):
    """``start(servers, nbproc=2, wait=True, **make_config kwargs)`` -> running ProxyProcess.

    Also accepts ``config=TEXT`` with ``bind_ports=[...]`` for a hand-written
    config. Every instance is stopped at teardown and no process may survive.
    """
    made = []

    def start(servers=(), *, nbproc=2, wait=True, config=None, bind_ports=None, env=None,
              workers="nbproc", sock=True, **kw):
        n = len(made)
        workdir = tmp_path / ("kw%d" % n)
        workdir.mkdir()
        sock_path = workdir / "stats.sock" if sock else None
        if config is None:
            port = free_port()
            config = make_config(port=port, servers=servers, sock=sock_path, nbproc=nbproc, **kw)
            bind_ports = [port]
        if workers == "nbproc":
            workers = nbproc
        p = ProxyProcess(config, workdir, bind_ports=bind_ports or [], sock=sock_path,
                         workers=workers, env=env)
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
