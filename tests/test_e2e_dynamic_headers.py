"""Header rules with conditions and log-format values (`http-request set-header
X-Client %[src] if ...`), resolved per message through the rule engine; what the
server and the client received was the same through HAProxy 2.6.12 for this
configuration (tests/fixtures/haproxy_dynamic_headers.json, re-recorded by
tests/fixtures/record_dynamic_headers.py)."""

import json
import socket
from pathlib import Path

import pytest

from support.backend import Reply
from support.proxy import free_port

RULES = """\
    http-request set-header X-Client %[src]
    http-request set-header X-Proto https if { path_beg /secure }
    http-request del-header X-Secret unless { src 10.0.0.0/8 }
    http-request add-header X-Path %[path,upper]
    http-response set-header X-Status %[status] if { status 404 }
    http-response del-header X-Internal unless { status 200 }
"""
FIXTURE = Path(__file__).parent / "fixtures" / "haproxy_dynamic_headers.json"
PATHS = ["/", "/secure/a", "/missing"]


def config(port, be_port, sock=None):
    return ("global\n    nbthread 1\n" + ("    stats socket %s\n" % sock if sock else "") +
            "defaults\n    mode http\n    timeout connect 2s\n    timeout client 5s\n"
            "    timeout server 5s\n"
            "frontend fe\n    bind 127.0.0.1:%d\n%s    default_backend be\n"
            "backend be\n    server s1 127.0.0.1:%d\n" % (port, RULES, be_port))


def handler(be, req):
    status = 404 if req.target == "/missing" else 200
    seen = {k.lower(): v for k, v in req.headers
            if k.lower() in ("x-client", "x-proto", "x-secret", "x-path")}
    return Reply(status, headers=[("X-Internal", "1")],
                 body=json.dumps(seen, sort_keys=True).encode())


def exchange(port, path):
    """(what the server saw, the response headers the client got that matter)."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(b"GET %s HTTP/1.1\r\nHost: h\r\nX-Secret: s3\r\nConnection: close\r\n\r\n"
                  % path.encode())
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")[1:]
    got = sorted(l.lower() for l in lines if l.lower().startswith(("x-status", "x-internal")))
    return [json.loads(body), got]


@pytest.fixture
def port(tmp_path, backend_factory, proxy_factory):
    be = backend_factory("s1", handler)
    p = free_port()
    proxy_factory(config=config(p, be.port, tmp_path / "kw0" / "stats.sock"), bind_ports=[p],
                  nbproc=1)
    return p


def test_rules_apply_per_message_as_haproxy_applied_them(port):
    recorded = json.loads(FIXTURE.read_text())["answers"]
    for path in PATHS:
        assert exchange(port, path) == recorded[path], path
