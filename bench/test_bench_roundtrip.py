"""One request round trip through a real worker's loop, in one process, on 127.0.0.1.

    python3 -m pytest bench/test_bench_roundtrip.py --benchmark-only -q

A `workers.worker.Worker` is built from config text, with a listening socket of ours
for its frontend and a raw listening socket of ours as its only server. Its loop is
not run: the benchmark drives it with the same dispatch function `Worker.run()` uses,
as a client and a backend would, one step at a time:

    client sends a GET -> dispatch(0) until the backend holds the request
    backend sends a 100-byte-body response -> dispatch(0) until the client holds it all

so one timed round trip is the worker's whole per-request path (epoll, recv, parse,
rules, balancer, pool, send, both ways) plus the client's and the backend's four
socket calls. `test_roundtrip_floor_without_proxy` times those four calls alone
(client straight to the backend); the difference is what the worker costs.

Modes: `keep-alive` (one client connection for every request) and `close` (a new
client connection per request, `Connection: close`; the server connection stays
pooled: the backend accepts exactly one connection in either mode).

For the C parser the test also prints, outside pytest-benchmark's table:
  - wall and CPU time (time.process_time: the whole process, client and backend
    included) per round trip over N round trips;
  - Python and C calls made inside the worker's dispatch per request, counted with
    sys.setprofile over 100 round trips, and the 15 most called functions
    (DESIGN.md §4: "count Python calls per request").
"""

import collections
import os
import socket
import statistics
import struct
import sys
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from _native.testing import IMPLEMENTATIONS  # noqa: E402
from proxy.config import parse as parse_config  # noqa: E402
from workers.worker import Worker  # noqa: E402

BODY = b"x" * 100
RESPONSE = (b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n"
            % len(BODY)) + BODY
REQUEST_KA = b"GET /small HTTP/1.1\r\nHost: bench\r\nUser-Agent: bench\r\nAccept: */*\r\n\r\n"
REQUEST_CLOSE = (b"GET /small HTTP/1.1\r\nHost: bench\r\nUser-Agent: bench\r\nAccept: */*\r\n"
                 b"Connection: close\r\n\r\n")

PUMP_LIMIT = 10000            # dispatch/recv attempts per step before the test fails
TIMEVAL_5S = struct.pack("ll", 5, 0)
ROUNDS = {"keep-alive": 3000, "close": 1000}    # timed round trips per benchmark
CPU_ROUNDS = {"keep-alive": 3000, "close": 1000}
PROFILE_ROUNDS = 100

CONFIG = """\
global
    maxconn 1000

defaults
    mode http
    timeout connect 5s
    timeout client 30s
    timeout server 30s
    timeout http-keep-alive 30s

frontend fe
    bind 127.0.0.1:{fe_port}
    default_backend be

backend be
    server s1 127.0.0.1:{be_port}
"""


def blocking_with_timeouts(sock):
    """Blocking at the Python level (no poll() before each call, unlike settimeout),
    but the kernel gives up after 5 s: SO_RCVTIMEO / SO_SNDTIMEO (connect too)."""
    sock.settimeout(None)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, TIMEVAL_5S)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, TIMEVAL_5S)
    return sock


def listening_socket(reuseport=False):
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuseport:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        # As the master does: accepted sockets inherit TCP_NODELAY.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind(("127.0.0.1", 0))
        sock.listen(128)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


def client_socket(addr):
    sock = blocking_with_timeouts(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.connect(addr)
    except OSError:
        sock.close()
        raise
    return sock


def response_complete(buf):
    """Does `buf` hold a whole response head plus the 100-byte body?"""
    end = buf.find(b"\r\n\r\n")
    return end >= 0 and len(buf) >= end + 4 + len(BODY)


class Rig:
    """A Worker driven step by step, a raw backend socket, and their sockets' owner."""

    def __init__(self, impl):
        self.socks = []
        self.worker = None
        self.backend = None
        try:
            self.listener = self.own(listening_socket(reuseport=True))
            self.backend_listener = self.own(listening_socket())
            self.pipe, worker_pipe = socket.socketpair()
            self.own(self.pipe)
            self.own(worker_pipe)
            blocking_with_timeouts(self.pipe)
            worker_pipe.settimeout(5)
            self.fe_addr = self.listener.getsockname()
            be_port = self.backend_listener.getsockname()[1]
            config = parse_config(CONFIG.format(fe_port=self.fe_addr[1], be_port=be_port))
            addrs = {("be", "s1"): (socket.AF_INET, ("127.0.0.1", be_port))}
            self.worker = Worker(config, 0, [(self.listener, "fe")], worker_pipe, addrs, 1)
            if impl == "pure":
                self.worker.parser = IMPLEMENTATIONS["pure"].Parser(
                    max_headers=101, max_head=16384, max_line=8192)
            self.worker.resume_accepting()
            self.dispatch = self.worker.sel.dispatch
            if any(fe.txlog is not None for fe in self.worker.frontends):
                self.dispatch = self.turn_with_logs
            self.backend_accepts = 0
        except BaseException:
            self.close()
            raise

    def turn_with_logs(self, timeout, woke):
        """One turn of Worker.run() for a worker that logs: the events, then the
        turn's log lines (sent when the turn ends, workers/worker.py)."""
        worker = self.worker
        worker.sel.dispatch(timeout, woke)
        if worker.log_held:
            worker.flush_logs()

    def own(self, sock):
        self.socks.append(sock)
        return sock

    # --- the steps of a round trip ---------------------------------------------------

    def to_backend(self):
        """Run the worker until the backend holds a whole request head; return it."""
        worker = self.worker
        dispatch = self.dispatch
        woke = worker.woke      # the loop reads its clock as Worker.run() does
        got = b""
        for _ in range(PUMP_LIMIT):
            dispatch(0, woke)
            be = self.backend
            if be is None:
                be = self.accept_backend()
                if be is None:
                    continue
            try:
                got += be.recv(65536, socket.MSG_DONTWAIT)
            except BlockingIOError:
                continue
            if got.endswith(b"\r\n\r\n"):
                return got
        raise AssertionError("the request did not reach the backend (got %r)" % got)

    def accept_backend(self):
        try:
            sock, _ = self.backend_listener.accept()
        except BlockingIOError:
            return None
        self.own(blocking_with_timeouts(sock))
        self.backend = sock
        self.backend_accepts += 1
        return sock

    def to_client(self, client):
        """Run the worker until `client` holds the whole response; return it."""
        worker = self.worker
        dispatch = self.dispatch
        woke = worker.woke      # the loop reads its clock as Worker.run() does
        got = b""
        for _ in range(PUMP_LIMIT):
            dispatch(0, woke)
            try:
                got += client.recv(65536, socket.MSG_DONTWAIT)
            except BlockingIOError:
                continue
            if response_complete(got):
                return got
        raise AssertionError("the response did not reach the client (got %r)" % got)

    def until_closed(self, client):
        """Run the worker until it closes `client`'s connection (EOF)."""
        worker = self.worker
        dispatch = self.dispatch
        woke = worker.woke      # the loop reads its clock as Worker.run() does
        for _ in range(PUMP_LIMIT):
            try:
                if client.recv(65536, socket.MSG_DONTWAIT) == b"":
                    return
            except BlockingIOError:
                pass
            dispatch(0, woke)
        raise AssertionError("the proxy did not close a Connection: close client")

    def round_trip(self, client):
        """One keep-alive exchange on `client`; returns the response bytes."""
        client.send(REQUEST_KA)
        self.to_backend()
        self.backend.send(RESPONSE)
        return self.to_client(client)

    def round_trip_close(self):
        """Connect, one `Connection: close` exchange, wait for the proxy's close."""
        client = client_socket(self.fe_addr)
        try:
            client.send(REQUEST_CLOSE)
            self.to_backend()
            self.backend.send(RESPONSE)
            got = self.to_client(client)
            self.until_closed(client)
        finally:
            client.close()
        return got

    def more_backend_connections(self):
        """Connections the worker opened to the backend that were never accepted."""
        n = 0
        for _ in range(100):
            if self.accept_backend() is None:
                return n
            n += 1
        return n

    # --- teardown --------------------------------------------------------------------

    def close(self):
        worker = self.worker
        if worker is not None:
            worker.shutdown()        # closes sessions and pooled connections, says "bye"
            worker.sel.close()
            self.worker = None
        for _ in range(100):         # what the worker wrote on its pipe is dropped
            try:
                if not self.pipe.recv(65536, socket.MSG_DONTWAIT):
                    break
            except (BlockingIOError, OSError):
                break
        for sock in self.socks:
            sock.close()
        self.socks = []


@pytest.fixture
def rig_factory():
    rigs = []

    def make(impl):
        rig = Rig(impl)
        rigs.append(rig)
        return rig
    yield make
    for rig in rigs:
        rig.close()


def one_round_trip_function(rig, mode, clients):
    """The function each mode times; keep-alive reuses one client connection."""
    if mode == "close":
        return rig.round_trip_close
    client = client_socket(rig.fe_addr)
    clients.append(client)
    return lambda: rig.round_trip(client)


# --- measurements printed beside pytest-benchmark's table -----------------------------

def time_in_dispatch(rig, fn, n):
    """Median µs per round trip spent inside the worker's dispatch calls (its whole
    share: epoll, socket calls and Python), over `n` calls of `fn`. A median, since
    this is wall time and the machine is shared; perf_counter is a vDSO call, so
    the two readings around each dispatch add ~0.1 µs."""
    inner = rig.dispatch
    perf = time.perf_counter
    spent = [0.0]

    def dispatch(timeout, woke):
        t0 = perf()
        inner(timeout, woke)
        spent[0] += perf() - t0
    rig.dispatch = dispatch
    samples = []
    try:
        for _ in range(n):
            spent[0] = 0.0
            fn()
            samples.append(spent[0])
    finally:
        rig.dispatch = inner
    return statistics.median(samples) * 1e6


def cpu_per_round_trip(fn, n):
    """(wall µs, CPU µs) per call of `fn` over `n` calls; CPU is the whole process's."""
    wall0 = time.perf_counter()
    cpu0 = time.process_time()
    for _ in range(n):
        fn()
    cpu = time.process_time() - cpu0
    wall = time.perf_counter() - wall0
    return wall / n * 1e6, cpu / n * 1e6


def calls_in_dispatch(fn, dispatch, n):
    """Count calls made inside `dispatch` (the worker's loop body) over `n` calls of `fn`.

    Returns (dispatch calls, Python calls, C calls, Counter of name -> calls), the
    dispatch function's own call included in the Python calls.
    """
    code = dispatch.__code__
    counts = collections.Counter()
    state = {"inside": False, "dispatches": 0}

    def hook(frame, event, arg):
        if event == "call":
            fcode = frame.f_code
            if fcode is code:
                state["inside"] = True
                state["dispatches"] += 1
            if state["inside"]:
                counts[fcode] += 1
        elif event == "c_call":
            if state["inside"]:
                counts[getattr(arg, "__qualname__", None) or repr(arg)] += 1
        elif event == "return":
            if frame.f_code is code:
                state["inside"] = False

    sys.setprofile(hook)
    try:
        for _ in range(n):
            fn()
    finally:
        sys.setprofile(None)
    named = collections.Counter()
    py = c = 0
    for key, k in counts.items():
        if isinstance(key, str):
            c += k
            named["{built-in} " + key] += k
        else:
            py += k
            path = os.path.relpath(key.co_filename, ROOT)
            if path.startswith(".."):
                path = os.path.basename(key.co_filename)
            named["%s:%d(%s)" % (path, key.co_firstlineno, key.co_qualname)] += k
    return state["dispatches"], py, c, named


def report(rig, fn, mode, impl, benchmark, capsys):
    wall, cpu = cpu_per_round_trip(fn, CPU_ROUNDS[mode])
    inside = time_in_dispatch(rig, fn, CPU_ROUNDS[mode])
    benchmark.extra_info.update(wall_us_per_round_trip=round(wall, 2),
                                cpu_us_per_round_trip=round(cpu, 2),
                                worker_us_per_round_trip=round(inside, 2))
    lines = ["", "round trip %s %s: %.1f µs wall, %.1f µs CPU (whole process) per round "
             "trip over %d; median %.1f µs inside the worker's dispatch"
             % (mode, impl, wall, cpu, CPU_ROUNDS[mode], inside)]
    if impl == "native":
        dispatches, py, c, named = calls_in_dispatch(fn, rig.dispatch, PROFILE_ROUNDS)
        n = PROFILE_ROUNDS
        benchmark.extra_info.update(
            dispatch_calls_per_request=dispatches / n, python_calls_per_request=py / n,
            c_calls_per_request=c / n,
            top_calls_per_request={name: k / n for name, k in named.most_common(15)})
        lines.append("  inside dispatch, per request: %.1f Python calls + %.1f C calls = %.1f "
                     "(%.1f dispatch calls)" % (py / n, c / n, (py + c) / n, dispatches / n))
        for name, k in named.most_common(15):
            lines.append("    %6.2f  %s" % (k / n, name))
    with capsys.disabled():
        print("\n".join(lines))


# --- benchmarks ---------------------------------------------------------------------

@pytest.mark.parametrize("impl", ["native", "pure"])
@pytest.mark.parametrize("mode", ["keep-alive", "close"])
def test_roundtrip_through_worker(benchmark, rig_factory, capsys, mode, impl):
    if IMPLEMENTATIONS[impl] is None:
        pytest.skip("C module not built (python3 _native/build.py)")
    if impl == "native":
        # The worker imports whichever parser _native picked; this row is the C one.
        import _native
        if _native.IMPLEMENTATION != "native":
            pytest.skip("KEEPWARM_PURE is set: the worker uses the pure parser")
    rig = rig_factory(impl)
    clients = []
    try:
        fn = one_round_trip_function(rig, mode, clients)
        first = fn()
        assert first.startswith(b"HTTP/1.1 200 OK\r\n") and first.endswith(BODY)
        if mode == "close":
            assert b"\r\nConnection: close\r\n" in first
        else:
            assert first == RESPONSE        # forwarded as received: no hop-by-hop header
        benchmark.group = "round trip"
        benchmark.name = "worker %s %s" % (mode, impl)
        got = benchmark.pedantic(fn, rounds=ROUNDS[mode], iterations=1, warmup_rounds=50)
        assert got.endswith(BODY)
        report(rig, fn, mode, impl, benchmark, capsys)
        # Both modes reuse one server connection for every request.
        assert rig.backend_accepts == 1 and rig.more_backend_connections() == 0
        sessions = len(rig.worker.sessions)
        assert sessions == (1 if mode == "keep-alive" else 0)
    finally:
        for client in clients:
            client.close()


def floor_round_trip_function(listener, mode, socks):
    """The client's and the backend's own work for one round trip, with no proxy
    between them: what the worker measurement includes besides the worker."""
    addr = listener.getsockname()

    def accept():
        for _ in range(PUMP_LIMIT):
            try:
                sock, _ = listener.accept()
            except BlockingIOError:
                continue
            sock.setblocking(False)      # used with MSG_DONTWAIT only, as the worker would
            return sock
        raise AssertionError("no connection to accept")

    def read_request(server):
        got = b""
        for _ in range(PUMP_LIMIT):
            try:
                got += server.recv(65536, socket.MSG_DONTWAIT)
            except BlockingIOError:
                continue
            if got.endswith(b"\r\n\r\n"):
                return
        raise AssertionError("no request")

    def read_response(client):
        got = b""
        for _ in range(PUMP_LIMIT):
            try:
                got += client.recv(65536, socket.MSG_DONTWAIT)
            except BlockingIOError:
                continue
            if response_complete(got):
                return got
        raise AssertionError("no response")

    if mode == "keep-alive":
        client = client_socket(addr)
        socks.append(client)
        server = accept()
        socks.append(server)

        def fn():
            client.send(REQUEST_KA)
            read_request(server)
            server.send(RESPONSE)
            return read_response(client)
        return fn

    def fn_close():
        client = client_socket(addr)
        try:
            client.send(REQUEST_CLOSE)
            server = accept()
            try:
                read_request(server)
                server.send(RESPONSE)
            finally:
                server.close()
            got = read_response(client)
            for _ in range(PUMP_LIMIT):
                try:
                    if client.recv(65536, socket.MSG_DONTWAIT) == b"":
                        return got
                except BlockingIOError:
                    continue
            raise AssertionError("no EOF")
        finally:
            client.close()
    return fn_close


@pytest.mark.parametrize("mode", ["keep-alive", "close"])
def test_roundtrip_floor_without_proxy(benchmark, capsys, mode):
    """The client's and backend's own socket calls per round trip, no worker between."""
    listener = listening_socket()
    socks = [listener]
    try:
        fn = floor_round_trip_function(listener, mode, socks)
        benchmark.group = "round trip"
        benchmark.name = "floor %s: client <-> backend, no proxy" % mode
        assert benchmark.pedantic(fn, rounds=ROUNDS[mode], iterations=1,
                                  warmup_rounds=50) == RESPONSE
        wall, cpu = cpu_per_round_trip(fn, CPU_ROUNDS[mode])
        benchmark.extra_info.update(wall_us_per_round_trip=round(wall, 2),
                                    cpu_us_per_round_trip=round(cpu, 2))
        with capsys.disabled():
            print("\nfloor %s (no proxy): %.1f µs wall, %.1f µs CPU per round trip over %d"
                  % (mode, wall, cpu, CPU_ROUNDS[mode]))
    finally:
        for sock in socks:
            sock.close()
