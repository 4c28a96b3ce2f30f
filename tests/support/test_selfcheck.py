"""The test support itself: the raw client against the scripted backend, no proxy in between."""

import pytest

from support.backend import Reply, ScriptedBackend, pattern_chunks, pattern_sha256
from support.client import HttpClient


@pytest.fixture
def backend():
    b = ScriptedBackend("t").start()
    yield b
    b.stop()


def test_backend_keeps_connection_alive_and_stamps_connection_id(backend):
    with HttpClient(backend.port) as c:
        r1 = c.request("GET", "/a")
        r2 = c.request("GET", "/b")
    assert (r1.status, r2.status) == (200, 200)
    assert r1.conn_id == r2.conn_id == "t-1"
    backend.wait_requests(2)
    assert [r.target for r in backend.requests] == ["/a", "/b"]
    assert [r.seq for r in backend.requests] == [1, 2]


def test_backend_closes_after_connection_close(backend):
    with HttpClient(backend.port) as c:
        r = c.request("GET", "/", [("Connection", "close")])
        assert r.status == 200
        assert c.wait_closed(2)


def test_backend_decodes_chunked_request_and_sends_chunked_response():
    b = ScriptedBackend("t", lambda be, req: Reply(body=req.body, chunked=True, chunk_size=3,
                                                  trailers=[("X-T", "1")])).start()
    try:
        with HttpClient(b.port) as c:
            r = c.request("POST", "/", body=b"hello world", chunked=True)
        assert r.framing == "chunked" and r.body == b"hello world"
        assert r.trailers == [("X-T", "1")]
        assert b.requests[0].chunked and b.requests[0].body == b"hello world"
    finally:
        b.stop()


def test_backend_streams_large_bodies_without_keeping_them():
    n = 3 * 1024 * 1024 + 7
    b = ScriptedBackend("t", lambda be, req: Reply(stream_len=n)).start()
    try:
        with HttpClient(b.port) as c:
            c.send_request("PUT", "/", [("Content-Length", str(n))], body=pattern_chunks(n))
            seen = []
            r = c.read_response("PUT", sink=lambda piece: seen.append(len(piece)))
        assert r.body is None and r.body_len == n == sum(seen)
        assert r.sha256 == pattern_sha256(n)
        req = b.requests[0]
        assert req.body is None and req.body_len == n and req.body_sha256 == pattern_sha256(n)
    finally:
        b.stop()


def test_client_frames_head_204_304_and_interim_responses():
    def handler(be, req):
        if req.target == "/204":
            return Reply(204)
        if req.target == "/304":
            return Reply(304)
        if req.target == "/100":
            return Reply(200, body=b"x", interim=[(100, []), (103, [("Link", "</a>")])])
        return Reply(200, body=b"abc")

    b = ScriptedBackend("t", handler).start()
    try:
        with HttpClient(b.port) as c:
            assert c.request("HEAD", "/").body == b""
            assert c.request("GET", "/204").body == b""
            assert c.request("GET", "/304").body == b""
            r = c.request("GET", "/100")
            assert [i.status for i in r.interim] == [100, 103] and r.body == b"x"
            assert c.request("GET", "/").body == b"abc"
    finally:
        b.stop()


def test_client_reads_close_delimited_body_and_misbehaviour_is_scripted():
    def handler(be, req):
        if req.target == "/garbage":
            return Reply(raw=b"NOT HTTP AT ALL\r\n\r\n")
        if req.target == "/drop":
            return Reply(drop=True)
        return Reply(body=b"until close", close_delimited=True)

    b = ScriptedBackend("t", handler).start()
    try:
        with HttpClient(b.port) as c:
            r = c.request("GET", "/")
            assert r.framing == "close" and r.body == b"until close"
        with HttpClient(b.port) as c:
            c.send_request("GET", "/drop")
            assert c.wait_closed(2)
        with HttpClient(b.port) as c:
            c.send_request("GET", "/garbage")
            with pytest.raises(AssertionError):
                c.read_response()
    finally:
        b.stop()
