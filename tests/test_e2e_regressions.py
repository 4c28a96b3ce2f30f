"""Regression tests for defects a review found on the data path (each fixed in "Review fixes").

Slow readers. A client that does not read leaves the end of a large response
waiting in the proxy: the kernel path to the client (the proxy's send buffer
and the client's receive buffer) is full and the rest sits in the proxy's own
output buffer. The fixed defects lived in that state (a lost next request, a
body cut by timeout http-keep-alive or by a graceful stop), and the state
depends on kernel buffer sizes, so the tests measure the path first: a probe
connection asks for more than any send buffer holds, reads nothing, and the
proxy's counters say how much went into the kernel. The real response is then
shaped so that its last piece arrives, in one piece, when that path is nearly
full; before going on, the tests check from the proxy's counters that it has
read the whole response from the server (server ``bout``) while part of it has
not yet gone to the client socket (frontend ``bout``).
"""

import hashlib
import signal
import socket
import threading
import time

from support.backend import Reply, pattern_chunks
from support.checks import assert_html_error
from support.client import HttpClient

# -- slow readers ---------------------------------------------------------------

CLIENT_RCVBUF = 4096
PROBE_LEN = 8 << 20          # more than any send buffer holds (tcp_wmem max is 4 MiB by default)
TAIL = 64000                 # the response's last piece: one proxy read (RECV_SIZE is 64 KiB)
ROOM = 32768                 # room left on the client path when the last piece arrives
SMALL_HEAD = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n"


class SlowReaderScript:
    """The backend's handler for the slow-reader tests: /probe, /big and small answers."""

    def __init__(self):
        self.first = None        # body bytes sent with the head of /big
        self.body = None

    def shape(self, path_bytes):
        """Size /big so that its last TAIL bytes arrive when ROOM bytes are left on the path."""
        self.first = path_bytes - ROOM
        self.body = b"".join(pattern_chunks(self.first + TAIL))
        self.sha256 = hashlib.sha256(self.body).hexdigest()

    def __call__(self, be, req):
        if req.target == "/probe":
            return Reply(stream_len=PROBE_LEN)
        if req.target == "/big":
            head = SMALL_HEAD % len(self.body)
            return Reply(raw=[head + self.body[:self.first], self.body[self.first:]], gap=0.1,
                         keep_open=True)
        return Reply(body=b"small")


def slow_client(port, timeout=5.0):
    """An HttpClient whose socket has a small receive buffer."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, CLIENT_RCVBUF)
    s.settimeout(timeout)
    try:
        s.connect(("127.0.0.1", port))
    except OSError:
        s.close()
        raise
    c = HttpClient(port, timeout=timeout, connect=False)
    c.sock = s
    return c


def byte_counts(stats):
    """(bytes the proxy read from server s1, bytes it handed to client sockets)."""
    return (stats["backends"]["be"]["servers"]["s1"]["bout"], stats["frontends"]["fe"]["bout"])


def measure_client_path(kw):
    """Bytes the kernel path to a non-reading slow client holds (probe connection)."""
    srv0, fe0 = byte_counts(kw.stats())
    c = slow_client(kw.port)
    try:
        c.send(b"GET /probe HTTP/1.1\r\nHost: t\r\n\r\n")
        last, deadline = None, time.monotonic() + 5
        while time.monotonic() < deadline:
            now = byte_counts(kw.stats())
            if now == last and now[1] > fe0:
                break                     # two worker reports alike: the proxy is stalled
            last = now
            time.sleep(0.3)               # workers report every 250 ms
        else:
            raise AssertionError("the proxy never stalled on a non-reading client")
    finally:
        c.close()
    path = last[1] - fe0
    assert path > 2 * ROOM and last[0] - srv0 < PROBE_LEN, (path, last[0] - srv0)
    return path


def request_big_without_reading(kw, script, c):
    """Ask for /big and read nothing until the proxy holds the end of the response."""
    srv0, fe0 = byte_counts(kw.stats())
    total = len(SMALL_HEAD % len(script.body)) + len(script.body)
    c.send(b"GET /big HTTP/1.1\r\nHost: t\r\n\r\n")
    st = kw.wait_stats(lambda s: byte_counts(s)[0] - srv0 >= total, timeout=5,
                       what="the proxy reading the whole response from the server")
    srv, fe = byte_counts(st)
    held = (srv - srv0) - (fe - fe0)
    assert held > 1024, ("the client path took the whole response (%d bytes held in the proxy):"
                         " the slow-reader state was not reached" % held)


def read_slowly(c):
    """Read one response in small pieces (the receive buffer's worth), pausing between them."""
    return c.read_response(sink=lambda piece: time.sleep(0.0005))


def slow_reader_setup(backend_factory, proxy_factory, **kw_options):
    script = SlowReaderScript()
    b = backend_factory("s1", script)
    kw = proxy_factory([b], nbproc=1, **kw_options)
    script.shape(measure_client_path(kw))
    return script, b, kw


def test_next_request_after_a_large_response_read_slowly_is_answered(backend_factory,
                                                                     proxy_factory):
    script, b, kw = slow_reader_setup(backend_factory, proxy_factory,
                                      timeouts=("connect 2s", "client 5s", "server 1s"))
    c = slow_client(kw.port)
    try:
        request_big_without_reading(kw, script, c)
        r = read_slowly(c)
        assert r.status == 200 and r.sha256 == script.sha256
        t0 = time.monotonic()
        r2 = c.request("GET", "/small")
        took = time.monotonic() - t0
    finally:
        c.close()
    assert (r2.status, r2.body) == (200, b"small"), "next request got %d" % r2.status
    assert took < 0.9, "next request answered after %.2f s" % took
    big, small = [q for q in b.requests if q.target in ("/big", "/small")]
    assert small.conn_id == big.conn_id, "the session's server connection was not reused"


def test_response_read_slowly_is_not_cut_by_http_keep_alive_timeout(backend_factory,
                                                                     proxy_factory):
    script, b, kw = slow_reader_setup(backend_factory, proxy_factory,
                                      defaults_lines=["timeout http-keep-alive 1s"])
    c = slow_client(kw.port)
    try:
        request_big_without_reading(kw, script, c)
        time.sleep(1.3)    # the client stays idle longer than timeout http-keep-alive
        r = read_slowly(c)
        assert r.status == 200
        assert r.body_len == len(script.body) and r.sha256 == script.sha256, \
            "got %d of %d body bytes" % (r.body_len, len(script.body))
        # Once the response is sent, the keep-alive timeout does apply.
        assert c.wait_closed(3), "idle connection not closed by timeout http-keep-alive"
    finally:
        c.close()


def test_response_read_slowly_is_not_cut_by_graceful_stop(backend_factory, proxy_factory):
    script, b, kw = slow_reader_setup(backend_factory, proxy_factory)
    c = slow_client(kw.port)
    try:
        request_big_without_reading(kw, script, c)
        kw.send_signal(signal.SIGUSR1)
        time.sleep(0.6)    # still not reading while the workers' ticks (250 ms) pass
        r = read_slowly(c)
        assert r.status == 200
        assert r.body_len == len(script.body) and r.sha256 == script.sha256, \
            "got %d of %d body bytes" % (r.body_len, len(script.body))
        assert c.wait_closed(3), "the stopping proxy kept the idle connection open"
    finally:
        c.close()
    assert kw.proc.wait(timeout=5) == 0


# -- request bodies ---------------------------------------------------------------

def test_pipelined_post_larger_than_64k_sent_during_previous_response_is_forwarded_whole(
        backend_factory, proxy_factory):
    def handler(be, req):
        if req.target == "/slow":
            return Reply(body=b"slow", delay=0.3)
        return Reply(body=b"%d" % req.body_len)

    b = backend_factory("s1", handler)
    kw = proxy_factory([b], nbproc=1, timeouts=("connect 2s", "client 3s", "server 5s"))
    body = b"".join(pattern_chunks(300000))
    with HttpClient(kw.port, timeout=5) as c:
        c.send(b"GET /slow HTTP/1.1\r\nHost: t\r\n\r\n"
               b"POST /upload HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
        r1 = c.read_response()
        r2 = c.read_response()
    assert (r1.status, r1.body) == (200, b"slow")
    assert (r2.status, r2.body) == (200, b"300000"), (r2.status, r2.body[:200])
    up = [q for q in b.requests if q.target == "/upload"]
    assert len(up) == 1 and up[0].body == body


def test_request_refused_mid_body_is_counted_once_without_a_5xx(backend_factory, proxy_factory):
    b = backend_factory("s1")
    kw = proxy_factory([b], nbproc=1, timeouts=("connect 2s", "client 30s", "server 30s"))
    fe0 = kw.stats()["frontends"]["fe"]
    with HttpClient(kw.port, timeout=8) as c:
        c.send(b"POST /up HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n")
        b.wait_for(lambda be: be.conn_count >= 1, what="the request head forwarded")
        c.send(b"zz\r\n" + b"g" * 200000)    # a bad chunk size, then more than one read's worth
        r = c.read_response("POST")
        assert_html_error(r, 400)
        # Keep the connection open until the proxy ends its linger and closes the session
        # (counted 400 and no session left: a snapshot taken after the close).
        st = kw.wait_stats(lambda s: s["frontends"]["fe"]["hrsp_4xx"] > fe0["hrsp_4xx"]
                           and s["frontends"]["fe"]["scur"] == 0, timeout=6,
                           what="the refused session closed")
    fe = st["frontends"]["fe"]
    assert fe["req_tot"] - fe0["req_tot"] == 1
    assert fe["hrsp_4xx"] - fe0["hrsp_4xx"] == 1
    assert fe["hrsp_5xx"] - fe0["hrsp_5xx"] == 0
    assert st["backends"]["be"]["servers"]["s1"]["hrsp_5xx"] == 0


# -- HTTP semantics -----------------------------------------------------------------

def test_upgrade_request_gets_del_header_and_forwardfor(backend_factory, proxy_factory):
    b = backend_factory("s1")      # answers 200: it does not switch protocols
    kw = proxy_factory([b], nbproc=1, defaults_lines=["option forwardfor"],
                       frontend_lines=["http-request del-header X-User"])
    with HttpClient(kw.port) as c:
        r = c.request("GET", "/a", [("X-User", "admin"), ("Upgrade", "anything"),
                                    ("Connection", "upgrade")])
    assert r.status == 200
    req = b.requests[-1]
    assert req.header("X-User") is None, req.raw_head
    assert req.header("X-Forwarded-For") == "127.0.0.1", req.raw_head
    assert req.header("Upgrade") == "anything", req.raw_head


def test_http10_client_gets_chunked_response_decoded_and_closed(backend_factory, proxy_factory):
    body = b"".join(b"piece %03d;" % i for i in range(300))
    b = backend_factory("s1", lambda be, req: Reply(body=body, chunked=True, chunk_size=1000))
    kw = proxy_factory([b], nbproc=1)
    with HttpClient(kw.port, timeout=3) as c:
        r = c.request("GET", "/chunked", [("Connection", "keep-alive")], version="HTTP/1.0")
    assert r.status == 200
    assert r.header("Transfer-Encoding") is None, r.raw_head
    assert "close" in r.connection_tokens, r.raw_head
    assert r.framing == "close" and r.body == body


class EarlyAnswerServer:
    """A raw server: reads a request head, answers 413 at once without reading the body."""

    def __init__(self):
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(8)
        self.listener.settimeout(5)
        self.port = self.listener.getsockname()[1]
        self.done = threading.Event()
        self.heads = []
        self.thread = threading.Thread(target=self.serve, daemon=True)

    def serve(self):
        try:
            conn, _ = self.listener.accept()
        except OSError:
            return
        with conn:
            conn.settimeout(5)
            buf = b""
            try:
                while b"\r\n\r\n" not in buf and len(buf) < 65536:
                    data = conn.recv(65536)
                    if not data:
                        return
                    buf += data
                self.heads.append(buf.split(b"\r\n\r\n", 1)[0])
                conn.sendall(b"HTTP/1.1 413 Payload Too Large\r\nContent-Length: 2\r\n\r\nno")
            except OSError:
                return
            self.done.wait(5)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.done.set()
        self.listener.close()
        self.thread.join(6)


def test_early_response_while_request_body_arrives_says_connection_close(proxy_factory):
    with EarlyAnswerServer() as srv:
        kw = proxy_factory([("s1", srv.port)], nbproc=1)
        with HttpClient(kw.port, timeout=3) as c:
            c.send(b"POST /early HTTP/1.1\r\nHost: t\r\nContent-Length: 1000000\r\n\r\n"
                   + b"z" * 1000)
            r = c.read_response("POST")
            assert (r.status, r.body) == (413, b"no")
            assert "close" in r.connection_tokens, r.raw_head
            assert c.wait_closed(3), "connection left open after the early response"
        assert len(srv.heads) == 1


def test_server_closing_in_the_middle_of_its_response_head_gets_502(backend_factory,
                                                                    proxy_factory):
    b = backend_factory("s1", lambda be, req: Reply(raw=b"HTTP/1.1 200 OK\r\nContent-Le"))
    kw = proxy_factory([b], nbproc=1)
    with HttpClient(kw.port, timeout=3) as c:
        r = c.request("POST", "/a", body=b"z")
    assert_html_error(r, 502)


# -- control socket -----------------------------------------------------------------

def test_silent_control_socket_connections_are_closed_by_the_master(backends, proxy_factory):
    # `stats timeout` (HAProxy's default 10 s) closes them; 2 s keeps the test short
    kw = proxy_factory(backends, nbproc=1, global_lines=["stats timeout 2s"])
    silent = []
    try:
        for _ in range(5):
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            silent.append(s)
            s.settimeout(9)
            s.connect(kw.sock)
        t0 = time.monotonic()
        for s in silent:
            try:
                data = s.recv(1)
            except ConnectionResetError:
                data = b""
            except socket.timeout:
                raise AssertionError("a silent control connection is still open after %.1f s"
                                     % (time.monotonic() - t0))
            assert data == b"", "control socket sent %r to a client that asked nothing" % data
        took = time.monotonic() - t0
    finally:
        for s in silent:
            s.close()
    assert took < 8, "silent control connections closed only after %.1f s" % took
    assert kw.stats()["info"]["workers"], "the master no longer answers after closing them"
