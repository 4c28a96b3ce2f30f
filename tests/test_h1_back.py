"""The server-side HTTP/1 endpoint alone: an H1Back over a scripted transport, no sockets.

The transport hands out the response in the chunks a test chooses (one byte at
a time included); a recording stream stands where workers/stream.py's Stream
is, answering the waist's calls (on_head, sink, finish, interim, upgrade,
bad_response, bad_body, server_failed) the way the stream does. What reaches
the stream is what the client side would get.
"""

from selectors import EVENT_READ, EVENT_WRITE

import pytest

from _native import BodyDecoder, Parser
from proxy.http1.rules import BODY_CHUNKED, BODY_CLOSE, BODY_LENGTH, BODY_NONE
from workers.counters import Counters
from workers.h1_back import RS_BODY, RS_HEAD, H1Back


class ScriptedTransport:
    """What H1Back uses of a transport; recv() plays `chunks`, then EOF."""

    tls = None                       # a plain connection (workers/tls.py's have a session)

    def __init__(self, sel, sock, on_io, connecting=False):
        self.chunks = []
        self.sent = []
        self.out = b""
        self.events = 0
        self.data = on_io            # the callback (a transport is its own selector key)
        self.connecting = connecting
        self.closed = False
        self.sock = sock

    def recv(self, _n):
        if not self.chunks:
            return b""
        data = self.chunks.pop(0)
        if data is None:
            raise BlockingIOError
        return data

    def write(self, data):
        self.sent.append(data)
        return len(data)

    def flush(self):
        return 0

    def set_events(self, events):
        self.events = events

    def retarget(self, on_io):
        self.data = on_io

    def failed_connecting(self):
        return False

    def close(self):
        self.closed = True


class Worker:
    transport = ScriptedTransport
    sel = None
    now = 100.0

    def __init__(self):
        self.parser = Parser(max_headers=101, max_head=16384, max_line=8192)

    def new_body_decoder(self):
        return BodyDecoder()


class Pool:
    def __init__(self):
        self.evicted = []

    def evict(self, conn):
        self.evicted.append(conn)


class Server:
    transport = None             # plain: the worker's transport (TLS servers have their own)

    def __init__(self):
        self.backend = type("Backend", (), {"t_server": 30.0})()
        self.counters = Counters()
        self.pool = Pool()


class Stream:
    """Records the waist's calls; answers as workers/stream.py does."""

    def __init__(self):
        self.calls = []
        self.to_client = []
        self.deadline = 0.0

    def on_head(self, data, r, end, kind, whole):
        self.calls.append(("head", kind, whole))
        if whole:
            self.to_client.append(data)
            return None
        return data[:end]

    def sink(self, data):
        self.to_client.append(data)

    def interim(self, head):
        self.calls.append(("interim", head))

    def finish(self, conn):
        self.calls.append(("finish", conn.server_ka))
        conn.stream = None

    def upgrade(self, conn, data, end):
        self.calls.append(("upgrade", data[end:]))
        conn.stream = None

    def bad_response(self):
        self.calls.append(("bad_response",))
        self.back.close()

    def bad_body(self, head_pending):
        self.calls.append(("bad_body", head_pending))
        self.back.close()

    def server_failed(self, conn, connect_error):
        self.calls.append(("server_failed", connect_error))
        conn.close()

    def connected(self):
        self.calls.append(("connected",))

    def request_flushed(self, conn):
        self.calls.append(("flushed",))

    def idle_lost(self, conn, by_server):
        self.calls.append(("idle_lost", by_server))


def exchange(chunks, head_req=False):
    """An H1Back carrying one exchange whose response arrives as `chunks`."""
    back = H1Back(Worker(), Server(), sock=object(), connecting=False)
    st = Stream()
    st.back = back
    back.stream = st
    back.head_req = head_req
    back.rstate = RS_HEAD
    back.xprt.chunks = list(chunks)
    for _ in range(len(chunks)):
        if back.stream is None or back.xprt.closed:
            break
        back.on_event(EVENT_READ)
    return back, st


def one_byte_at_a_time(data):
    return [data[i:i + 1] for i in range(len(data))]


SMALL = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"
CHUNKED = (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
           b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n")


def test_a_whole_small_response_goes_up_in_one_piece_and_ends_the_exchange():
    back, st = exchange([SMALL])
    assert st.calls == [("head", BODY_LENGTH, True), ("finish", True)]
    assert b"".join(st.to_client) == SMALL
    assert back.server.counters.bout == len(SMALL)


@pytest.mark.parametrize("response,kind", [(SMALL, BODY_LENGTH), (CHUNKED, BODY_CHUNKED)])
def test_a_response_read_one_byte_at_a_time_reaches_the_client_whole(response, kind):
    back, st = exchange(one_byte_at_a_time(response))
    assert st.calls[0] == ("head", kind, False)
    assert st.calls[-1] == ("finish", True)
    assert b"".join(st.to_client) == response
    assert back.rstate == RS_BODY


def test_a_partial_head_rearms_the_server_timeout():
    back, st = exchange([SMALL[:10], None])
    assert st.calls == [] and back.rbuf == SMALL[:10]
    assert st.deadline == Worker.now + 30.0


def test_bytes_after_the_body_make_the_connection_unfit_for_reuse():
    back, st = exchange([SMALL[:-2], SMALL[-2:] + b"junk"])
    assert st.calls[-1] == ("finish", False)
    assert b"".join(st.to_client) == SMALL         # the junk is not relayed


def test_a_head_request_gets_no_body_whatever_content_length_says():
    back, st = exchange([b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n"], head_req=True)
    assert st.calls == [("head", BODY_NONE, True), ("finish", True)]


def test_a_body_less_response_followed_by_bytes_is_cut_and_not_reused():
    back, st = exchange([b"HTTP/1.1 204 No Content\r\n\r\nextra"])
    assert st.calls == [("head", BODY_NONE, True), ("finish", False)]
    assert st.to_client == [b"HTTP/1.1 204 No Content\r\n\r\n"]


def test_a_close_delimited_body_ends_at_the_servers_close():
    back, st = exchange([b"HTTP/1.0 200 OK\r\n\r\nsome", b" body", b""])
    assert st.calls[0] == ("head", BODY_CLOSE, False)
    assert st.calls[-1] == ("finish", False)
    assert b"".join(st.to_client) == b"HTTP/1.0 200 OK\r\n\r\nsome body"


def test_interim_responses_go_up_before_the_final_one():
    back, st = exchange([b"HTTP/1.1 100 Continue\r\n\r\n" + SMALL])
    assert st.calls == [("interim", b"HTTP/1.1 100 Continue\r\n\r\n"),
                        ("head", BODY_LENGTH, True), ("finish", True)]


def test_a_101_hands_the_bytes_after_its_head_to_the_stream():
    back, st = exchange([b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                         b"Connection: upgrade\r\n\r\n\x81\x00"])
    assert st.calls == [("upgrade", b"\x81\x00")]


def test_the_keep_alive_hint_and_connection_bound_auth_are_recorded():
    back, st = exchange([b"HTTP/1.1 401 Unauthorized\r\nKeep-Alive: timeout=7, max=3\r\n"
                         b"WWW-Authenticate: NTLM abc\r\nContent-Length: 0\r\n\r\n"])
    assert back.hint_timeout == 7 and back.uses_left == 2 and back.private
    assert st.calls[-1] == ("finish", True)


@pytest.mark.parametrize("response", [b"HTTP/1.1 2x0 OK\r\n\r\n", b"NOT HTTP\r\n\r\n"])
def test_an_unparsable_head_is_a_bad_response(response):
    back, st = exchange([response])
    assert st.calls == [("bad_response",)] and back.xprt.closed


def test_bad_chunk_framing_in_the_first_read_leaves_a_clean_502_possible():
    back, st = exchange([b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"])
    assert st.calls == [("head", BODY_CHUNKED, False), ("bad_body", True)]
    assert st.to_client == []        # nothing reached the client


def test_bad_chunk_framing_later_cuts_the_client():
    back, st = exchange([b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel",
                         b"lo\r\nzz\r\n"])
    assert st.calls[-1] == ("bad_body", False)


def test_a_server_that_closes_before_answering_failed():
    back, st = exchange([b""])
    assert st.calls == [("server_failed", False)] and back.xprt.closed


def test_a_parked_connection_that_turns_readable_is_evicted_from_its_pool():
    back = H1Back(Worker(), Server(), sock=object(), connecting=False)
    assert back.xprt.data == back.on_event
    back.xprt.data = back.idle_io            # what IdlePool.park does
    back.xprt.data(EVENT_READ)
    assert back.server.pool.evicted == [back]


def test_a_private_idle_connection_tells_the_stream_that_keeps_it():
    back = H1Back(Worker(), Server(), sock=object(), connecting=False)
    keeper = Stream()
    back.keeper = keeper
    back.xprt.data = back.idle_io
    back.xprt.data(EVENT_READ)
    assert keeper.calls == [("idle_lost", True)] and back.server.pool.evicted == []


def test_a_connect_that_completes_is_reported_before_the_request_is_flushed():
    back = H1Back(Worker(), Server(), sock=object(), connecting=True)
    back.xprt.connect_error = lambda: 0
    st = back.stream = Stream()
    back.on_event(EVENT_WRITE)
    assert st.calls == [("connected",), ("flushed",)]
