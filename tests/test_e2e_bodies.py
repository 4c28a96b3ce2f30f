"""Message bodies through the proxy: framing both ways, streaming, bodiless responses, hop-by-hop headers."""

import pytest

from support.backend import Reply, pattern_chunks, pattern_sha256
from support.client import HttpClient
from support.proxy import memory_kib

MIB = 1024 * 1024
BIG = 100 * MIB
WORKER_PEAK_LIMIT_KIB = 100 * 1024


def echo(be, req):
    return Reply(body=req.body or b"", headers=[("X-Body-Len", str(req.body_len))])


def test_content_length_request_body_reaches_backend_intact(backend_factory, proxy_factory):
    b = backend_factory("s1", echo)
    kw = proxy_factory([b], nbproc=1)
    body = bytes(range(256)) * 40
    with HttpClient(kw.port) as c:
        r = c.request("POST", "/upload", body=body)
    assert r.status == 200 and r.body == body
    assert b.requests[0].body == body and not b.requests[0].chunked


def test_chunked_request_body_reaches_backend_intact(backend_factory, proxy_factory):
    b = backend_factory("s1", echo)
    kw = proxy_factory([b], nbproc=1)
    pieces = [b"a" * 10, b"b" * 5000, b"c"]
    with HttpClient(kw.port) as c:
        c.send_request("POST", "/upload", chunked=True, body=iter(pieces))
        r = c.read_response("POST")
        assert r.status == 200 and r.body == b"".join(pieces)
        assert c.request("GET", "/next").status == 200
    assert b.requests[0].body == b"".join(pieces)


def test_empty_chunked_request_body_is_forwarded(backend_factory, proxy_factory):
    b = backend_factory("s1", echo)
    kw = proxy_factory([b], nbproc=1)
    with HttpClient(kw.port) as c:
        c.send_request("POST", "/empty", chunked=True)
        assert c.read_response("POST").status == 200
        assert c.request("GET", "/next").status == 200
    assert b.requests[0].body_len == 0


def test_content_length_response_body_is_relayed_intact(backend_factory, proxy_factory):
    body = b"0123456789" * 3000
    b = backend_factory("s1", lambda be, req: Reply(body=body))
    kw = proxy_factory([b], nbproc=1)
    with HttpClient(kw.port) as c:
        r = c.request("GET", "/")
    assert r.framing == "length" and r.body == body


def test_chunked_response_body_is_relayed_intact(backend_factory, proxy_factory):
    body = b"chunky" * 5000
    b = backend_factory("s1", lambda be, req: Reply(body=body, chunked=True, chunk_size=777))
    kw = proxy_factory([b], nbproc=1)
    with HttpClient(kw.port) as c:
        r = c.request("GET", "/")
        assert r.framing == "chunked" and r.body == body
        assert c.request("GET", "/again").body == body


@pytest.mark.parametrize("status", [204, 304])
def test_bodiless_status_is_relayed_without_body_and_connection_stays_usable(
        status, backend_factory, proxy_factory):
    b = backend_factory("s1", lambda be, req: Reply(status) if req.target == "/x" else None)
    kw = proxy_factory([b], nbproc=1)
    with HttpClient(kw.port) as c:
        r = c.request("GET", "/x")
        assert r.status == status and r.body == b""
        assert r.header("Transfer-Encoding") is None
        assert c.request("GET", "/next").status == 200


def test_head_response_has_no_body_and_connection_stays_usable(backend_factory, proxy_factory):
    b = backend_factory("s1", lambda be, req: Reply(body=b"x" * 1000))
    kw = proxy_factory([b], nbproc=1)
    with HttpClient(kw.port) as c:
        r = c.request("HEAD", "/")
        assert r.status == 200 and r.body == b""
        assert r.header("Content-Length") == "1000"
        r2 = c.request("GET", "/")
        assert r2.status == 200 and r2.body == b"x" * 1000


def test_interim_1xx_responses_carry_no_body_and_final_follows(backend_factory, proxy_factory):
    b = backend_factory("s1", lambda be, req: Reply(body=b"final", interim=[(103, [("Link", "</s>")])]))
    kw = proxy_factory([b], nbproc=1)
    with HttpClient(kw.port) as c:
        r = c.request("GET", "/")
        assert r.status == 200 and r.body == b"final"
        assert all(i.status == 103 for i in r.interim)
        assert c.request("GET", "/next").body == b"final"


def test_close_delimited_response_is_relayed_then_client_closed(backend_factory, proxy_factory):
    body = b"runs until the server closes\n" * 100
    b = backend_factory("s1", lambda be, req: Reply(body=body, close_delimited=True))
    kw = proxy_factory([b], nbproc=1)
    with HttpClient(kw.port) as c:
        r = c.request("GET", "/")
        assert r.status == 200 and r.body == body
        assert r.framing == "close" or c.wait_closed(2)


def test_hop_by_hop_headers_are_removed_both_ways(backend_factory, proxy_factory):
    b = backend_factory("s1", lambda be, req: Reply(body=b"ok", headers=[
        ("Connection", "X-Server-Secret"), ("X-Server-Secret", "1"),
        ("Keep-Alive", "timeout=99"), ("X-End-To-End", "kept")]))
    kw = proxy_factory([b], nbproc=1)
    with HttpClient(kw.port) as c:
        r = c.request("GET", "/", [("Connection", "keep-alive, X-Client-Secret"),
                                   ("X-Client-Secret", "1"), ("Keep-Alive", "timeout=5"),
                                   ("Proxy-Connection", "keep-alive"), ("X-Forward-Me", "yes")])
    sent = b.requests[0].header_names()
    for name in ("x-client-secret", "keep-alive", "proxy-connection"):
        assert name not in sent, "hop-by-hop %s reached the server" % name
    assert b.requests[0].header("X-Forward-Me") == "yes"
    got = r.header_names()
    for name in ("x-server-secret", "keep-alive"):
        assert name not in got, "hop-by-hop %s reached the client" % name
    assert r.header("X-End-To-End") == "kept"


def worker_peaks(kw):
    return {pid: memory_kib(pid, "VmHWM") for pid in kw.worker_pids(kw.stats())}


@pytest.mark.timeout(120)
def test_100mib_request_body_streams_through_with_bounded_worker_memory(backend_factory,
                                                                          proxy_factory):
    b = backend_factory("s1", lambda be, req: Reply(body=str(req.body_len).encode()))
    kw = proxy_factory([b], nbproc=1)
    with HttpClient(kw.port, timeout=30) as c:
        c.send_request("PUT", "/big", chunked=True, body=pattern_chunks(BIG))
        r = c.read_response("PUT")
    assert r.status == 200 and r.body == str(BIG).encode()
    assert b.requests[0].body_sha256 == pattern_sha256(BIG)
    peaks = worker_peaks(kw)
    print("worker peak RSS after a 100 MiB upload: %s KiB" % peaks)
    assert all(v is not None and v < WORKER_PEAK_LIMIT_KIB for v in peaks.values()), peaks


@pytest.mark.timeout(120)
def test_100mib_response_body_streams_through_with_bounded_worker_memory(backend_factory,
                                                                           proxy_factory):
    b = backend_factory("s1", lambda be, req: Reply(stream_len=BIG) if req.target == "/big"
                        else Reply(body=b"small"))
    kw = proxy_factory([b], nbproc=1)
    with HttpClient(kw.port, timeout=30) as c:
        r = c.request("GET", "/big", sink=lambda piece: None)
        assert r.status == 200 and r.body_len == BIG
        assert r.sha256 == pattern_sha256(BIG)
        assert c.request("GET", "/small").body == b"small"
    peaks = worker_peaks(kw)
    print("worker peak RSS after a 100 MiB download: %s KiB" % peaks)
    assert all(v is not None and v < WORKER_PEAK_LIMIT_KIB for v in peaks.values()), peaks
