"""Shared pytest fixtures: scripted backends, a running keepwarm; a time limit for e2e tests."""

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from support.backend import ScriptedBackend  # noqa: E402
from support.proxy import ProxyProcess, free_port, make_config  # noqa: E402

E2E_TIME_LIMIT = float(os.environ.get("KEEPWARM_E2E_TIME_LIMIT", "60"))


def pytest_collection_modifyitems(config, items):
    """No end-to-end test may hang: give each a pytest-timeout limit unless it sets its own."""
    for item in items:
        module = getattr(item, "module", None)
        if module is not None and module.__name__.rsplit(".", 1)[-1].startswith("test_e2e_") \
                and item.get_closest_marker("timeout") is None:
            item.add_marker(pytest.mark.timeout(E2E_TIME_LIMIT))


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
              workers="nbproc", sock=True, args=(), **kw):
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
                         workers=workers, env=env, args=args)
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
