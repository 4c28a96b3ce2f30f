"""`http-request allow|deny|return|redirect` and the older `redirect` keyword, end to end,
held to HAProxy 2.6.12's answers for the same configuration (recorded by hand on
2026-12-05 with a request pipelined behind each one: every answer below kept the
connection open and the pipelined request was served next)."""

import socket

import pytest

from support.backend import Reply
from support.proxy import free_port

from proxy.config import ConfigError, parse

RULES = """\
    http-request deny if { path_beg /deny }
    http-request deny deny_status 429 if { path_beg /slow }
    http-request return status 200 content-type text/plain string "ok\\n" if { path /healthz }
    http-request redirect location /new if { path /old }
    http-request redirect scheme https code 301 if { path_beg /secure }
    http-request redirect prefix /p drop-query if { path_beg /pre }
    http-request allow if { path_beg /allowed }
    http-request deny if { path_beg /allowed/nope }
    redirect location /moved code 307 if { path /legacy }
"""

# What HAProxy 2.6.12 sent (its 403 page is keepwarm's, byte for byte; the 429 page's
# text is keepwarm's own, so only its status line and headers are compared).
EXPECTED = {
    "/deny": b"HTTP/1.1 403 Forbidden\r\ncontent-length: 93\r\ncache-control: no-cache\r\n"
             b"content-type: text/html\r\n\r\n<html><body><h1>403 Forbidden</h1>\nRequest "
             b"forbidden by administrative rules.\n</body></html>\n",
    "/healthz": b"HTTP/1.1 200 OK\r\ncontent-length: 3\r\ncontent-type: text/plain\r\n\r\nok\n",
    "/old": b"HTTP/1.1 302 Found\r\ncontent-length: 0\r\nlocation: /new\r\n"
            b"cache-control: no-cache\r\n\r\n",
    "/secure/x?a=1": b"HTTP/1.1 301 Moved Permanently\r\ncontent-length: 0\r\n"
                     b"location: https://h.example/secure/x?a=1\r\n\r\n",
    "/pre/x?a=1": b"HTTP/1.1 302 Found\r\ncontent-length: 0\r\nlocation: /p/pre/x\r\n"
                  b"cache-control: no-cache\r\n\r\n",
}


def config(port, be_port, sock):
    return ("global\n    nbthread 1\n    stats socket %s\n"
            "defaults\n    mode http\n    timeout connect 2s\n    timeout client 5s\n"
            "    timeout server 5s\n"
            "frontend fe\n    bind 127.0.0.1:%d\n%s    default_backend be\n"
            "backend be\n    server s1 127.0.0.1:%d\n" % (sock, port, RULES, be_port))


def pipelined(port, path):
    """`path`, then GET / on the same connection: the bytes until the second answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(b"GET %s HTTP/1.1\r\nHost: h.example\r\n\r\n"
                  b"GET / HTTP/1.1\r\nHost: h\r\n\r\n" % path.encode())
        data = b""
        while data.count(b"HTTP/1.1 ") < 2 or not data.endswith(b"web"):
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    return data


@pytest.fixture
def kw(tmp_path, backend_factory, proxy_factory):
    be = backend_factory("web", lambda b, req: Reply(body=b"web"))
    port = free_port()
    proxy_factory(config=config(port, be.port, tmp_path / "kw0" / "stats.sock"),
                  bind_ports=[port], nbproc=1)
    return port, be


@pytest.mark.parametrize("path", sorted(EXPECTED))
def test_answers_are_haproxys_and_the_connection_goes_on(kw, path):
    port, be = kw
    data = pipelined(port, path)
    assert data.startswith(EXPECTED[path]), data[:300]
    assert data.endswith(b"web") and len(be.requests) == 1      # only the pipelined GET /


def test_deny_status_and_the_older_redirect_keyword(kw):
    port, be = kw
    data = pipelined(port, "/slow")
    assert data.startswith(b"HTTP/1.1 429 Too Many Requests\r\ncontent-length: ")
    data = pipelined(port, "/legacy")
    assert data.startswith(b"HTTP/1.1 307 Temporary Redirect\r\ncontent-length: 0\r\n"
                           b"location: /moved\r\ncache-control: no-cache\r\n\r\n")


def test_allow_ends_the_rules_and_others_reach_the_server(kw):
    port, be = kw
    assert pipelined(port, "/allowed/nope").count(b"\r\n\r\nweb") == 2
    assert pipelined(port, "/other").count(b"\r\n\r\nweb") == 2
    assert len(be.requests) == 4


def test_a_request_with_a_body_is_answered_and_the_connection_closed(kw):
    port, be = kw
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(b"POST /deny HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\n01234")
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    assert data.startswith(b"HTTP/1.1 403 Forbidden\r\n") and b"connection: close" in data
    assert not be.requests


@pytest.mark.parametrize("line,words", [
    ("http-request deny if { nosuchfetch }", "nosuchfetch"),
    ("http-request return status 999", "status code"),
    ("http-request redirect nowhere /x", "'location', 'prefix' or 'scheme'"),
    ("http-request redirect location /x code 404", "301, 302, 303, 307 or 308"),
    ("http-request return string hi", "content-type"),
    ("http-request deny deny_status 418", "no error page"),
])
def test_a_bad_action_is_an_error_at_its_line(line, words):
    text = config(80, 81, "/tmp/x.sock").replace("    default_backend be\n",
                                                 "    %s\n    default_backend be\n" % line)
    lineno = text.splitlines().index("    " + line) + 1
    with pytest.raises(ConfigError) as exc:
        parse(text, "a.cfg", env={})
    assert exc.value.line == lineno and words in exc.value.message, str(exc.value)
