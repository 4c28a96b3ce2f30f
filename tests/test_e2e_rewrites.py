"""Request and response rewrites (set-path, set-uri, replace-path, set-method,
replace-header/-value, set-status...), variables carried from the request to the
response, response deny/return and tarpit, end to end; what the server and the
client received was the same through HAProxy 2.6.12 for this configuration
(tests/fixtures/haproxy_rewrites.json, re-recorded by
tests/fixtures/record_rewrites.py)."""

import json
import socket
import time
from pathlib import Path

import pytest

from support.backend import Reply
from support.proxy import free_port

FRONTEND_RULES = r"""
    http-request set-var(txn.orig) path
    http-request set-var(sess.first) path if !{ var(sess.first) -m found }
    http-request set-var(req.m) method
    http-request set-var(proc.host) req.hdr(host),upper
    http-request set-header X-Orig %[var(txn.orig)]
    http-request set-header X-Req-Var %[var(req.m)]
    http-request set-header X-Sess %[var(sess.first)]
    http-request deny deny_status 429 if { path_beg /deny }
    http-request tarpit deny_status 403 if { path_beg /tarpit }
    http-request replace-path /api/v1/(.*) /v2/\1
    http-request set-path /p%[path] if { path_beg /setpath }
    http-request set-query q=%[query] if { path_beg /setquery }
    http-request set-pathq /pq?z=1 if { path_beg /spq }
    http-request set-uri /u?x=1 if { path_beg /seturi }
    http-request replace-uri ^/ru/(.*)$ /ru2/\1
    http-request replace-pathq ^/rpq/([^?]*)\?(.*)$ /rpq2/\2/\1
    http-request set-method PUT if { path_beg /setmethod }
    http-request replace-header X-Rep ^(.*)-(.*)$ \2-\1
    http-request replace-value X-Val ^a(.*)$ b\1
    http-request set-header X-After %[path] if { hdr(X-Rep) -m found }
    http-request set-var(txn.n) req.hdr(host),length if { path_beg /int }
    http-request set-header X-Int %[var(txn.n)] if { path_beg /int }
    http-request del-header X-Del
    http-request set-header X-Del-Seen %[req.hdr(X-Del)] if { path_beg /del }
    http-request allow if { path_beg /allowed }
    http-request set-header X-Method %[method]
    http-request unset-var(txn.orig) if { path_beg /unset }
    http-request set-header X-Gone %[var(txn.orig)] if { path_beg /unset }
    use_backend be2 if { path_beg /be2 }
    default_backend be
    http-response set-header X-Var %[var(txn.orig)]
    http-response set-header X-Req-Var-Gone %[var(req.m)]
    http-response set-header X-Proc %[var(proc.host)] if { status 404 }
    http-response set-status 299 reason "Fine Then" if { status 404 }
    http-response set-status 418 if { res.hdr(X-Teapot) -m found }
    http-response replace-header X-Srv ^(.*)$ srv-\1
    http-response replace-value X-List ^x(.*)$ y\1
    http-response deny deny_status 502 if { res.hdr(X-Bad) -m found }
    acl ret res.hdr(X-Ret) -m found
    http-response return status 203 content-type text/plain string swapped if ret
    http-response set-var(res.r) res.hdr(X-Srv)
    http-response set-header X-Res-Var %[var(res.r)]
"""

BACKENDS = r"""
backend be
    http-request set-header X-Be %[var(txn.orig)]
    http-response set-header X-Be-Status %[status]
    server s1 127.0.0.1:BE_PORT
backend be2
    http-request set-path /be2-rewritten
    http-request set-var(txn.be2) str(yes)
    http-response set-header X-Be2 %[var(txn.be2)]
    server s1 127.0.0.1:BE_PORT
"""

FIXTURE = Path(__file__).parent / "fixtures" / "haproxy_rewrites.json"

# Header rules alone in a frontend that routes: they run before use_backend.
HEADER_ROUTING = r"""
    http-request set-header X-Dest be2 if { path_beg /two }
    http-request del-header X-Secret
    use_backend be2 if { req.hdr(X-Dest) be2 }
    default_backend be
backend be
    http-request set-header X-Be be
    server s1 127.0.0.1:BE_PORT
backend be2
    http-request set-header X-Be be2-%[req.hdr(X-Dest)]
    server s1 127.0.0.1:BE_PORT
"""
ROUTING_CASES = {
    "routed-by-a-set-header": ("GET", "/two", [("X-Secret", "s")]),
    "routed-by-the-client": ("GET", "/", [("X-Dest", "be2")]),
    "default": ("GET", "/", [("X-Secret", "s")]),
}

# name: (method, target, extra request headers)
CASES = {
    "plain": ("GET", "/", []),
    "replace-path": ("GET", "/api/v1/users?id=3", []),
    "set-path": ("GET", "/setpath/a?k=v", []),
    "set-query": ("GET", "/setquery/a?k=v", []),
    "set-query-none": ("GET", "/setquery/a", []),
    "set-pathq": ("GET", "/spq/a?k=v", []),
    "set-uri": ("GET", "/seturi/a?k=v", []),
    "replace-uri": ("GET", "/ru/x/y?k=v", []),
    "replace-pathq": ("GET", "/rpq/a?b=c", []),
    "set-method": ("GET", "/setmethod", []),
    "replace-header": ("GET", "/rh", [("X-Rep", "left-right"), ("X-Rep", "one-two")]),
    "replace-value": ("GET", "/rv", [("X-Val", "a1, c2,a3")]),
    "unset-var": ("GET", "/unset", []),
    "deny": ("GET", "/deny", []),
    "backend-rules": ("GET", "/be2/x", []),
    "set-status-404": ("GET", "/missing", []),
    "set-status-418": ("GET", "/teapot", []),
    "response-replace": ("GET", "/srv", []),
    "response-deny": ("GET", "/bad", []),
    "response-return": ("GET", "/ret", []),
    "absolute-uri": ("GET", "http://h.example/api/v1/x?y=1", []),
    "int-var": ("GET", "/int", []),
    "deleted-header-unseen": ("GET", "/del", [("X-Del", "1")]),
    "allow-ends-the-frontend-rules": ("GET", "/allowed/x", []),
    "post-body-after-rewrite": ("POST", "/api/v1/post", [], b"hello"),
    "http10": ("GET", "/api/v1/old", [], b"", "1.0"),
    "chunked-set-status": ("GET", "/chunk/missing", []),
    "chunked-response-deny": ("GET", "/chunk/bad", []),
}
TARPIT = "/tarpit"
TARPIT_MS = 300

# Headers whose values are the proxies' own business, not the rules'.
SKIP = ("connection", "x-conn-id", "content-length")


def config(port, be_port, sock=None, rules=None):
    return ("global\n    nbthread 1\n" + ("    stats socket %s\n" % sock if sock else "") +
            "defaults\n    mode http\n    timeout connect 2s\n    timeout client 5s\n"
            "    timeout server 5s\n    timeout tarpit %dms\n" % TARPIT_MS +
            "frontend fe\n    bind 127.0.0.1:%d\n" % port +
            (rules or FRONTEND_RULES + BACKENDS).replace("BE_PORT", str(be_port)))


def handler(be, req):
    """Echo what arrived; answer as the path asks."""
    seen = {"line": "%s %s %s" % (req.method, req.target, req.version),
            "headers": [[k.lower(), v] for k, v in req.headers if k.lower() not in SKIP],
            "body": (req.body or b"").decode("latin-1")}
    status, headers = 200, [("X-Srv", "origin"), ("X-List", "x1, z2,x3")]
    if "missing" in req.target:
        status = 404
    if "teapot" in req.target:
        headers.append(("X-Teapot", "1"))
    if "bad" in req.target:
        headers.append(("X-Bad", "1"))
    if "ret" in req.target:
        headers.append(("X-Ret", "1"))
    return Reply(status, headers=headers, body=json.dumps(seen, sort_keys=True).encode(),
                 chunked="chunk" in req.target)


def fetch(port, method, target, headers, body=b"", version="1.1"):
    """Send one request on a fresh connection; the whole answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        extra = "".join("%s: %s\r\n" % kv for kv in headers)
        if body:
            extra += "Content-Length: %d\r\n" % len(body)
        s.sendall(("%s %s HTTP/%s\r\nHost: h.example\r\n%sConnection: close\r\n\r\n"
                   % (method, target, version, extra)).encode() + body)
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    return data


def exchange(port, case, cases=CASES):
    """(status line, response headers that matter, what the server saw or the body)."""
    data = fetch(port, *cases[case])
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    got = [[k.lower(), v.strip()] for k, _, v in (l.partition(":") for l in lines[1:])
           if k.lower() not in SKIP]
    if ["transfer-encoding", "chunked"] in got:
        body = dechunk(body)
    try:
        seen = json.loads(body)
    except ValueError:
        seen = body.decode("latin-1")[:200] if not body.startswith(b"<html>") else "<page>"
    return [lines[0], got, seen]


def dechunk(body):
    out = b""
    while body:
        size, _, body = body.partition(b"\r\n")
        n = int(size.split(b";")[0], 16)
        if n == 0:
            break
        out, body = out + body[:n], body[n + 2:]
    return out


def tarpit(port):
    """(status line, seconds the answer took)."""
    t0 = time.monotonic()
    data = fetch(port, "GET", TARPIT, [])
    return data.split(b"\r\n", 1)[0].decode(), time.monotonic() - t0


@pytest.fixture
def port(tmp_path, backend_factory, proxy_factory):
    be = backend_factory("s1", handler)
    p = free_port()
    proxy_factory(config=config(p, be.port, tmp_path / "kw0" / "stats.sock"), bind_ports=[p],
                  nbproc=1)
    return p


@pytest.mark.parametrize("case", sorted(CASES))
def test_rewrites_match_haproxy(port, case):
    recorded = json.loads(FIXTURE.read_text())["answers"]
    assert exchange(port, case) == recorded[case]


def test_tarpit_holds_then_answers_as_haproxy(port):
    recorded = json.loads(FIXTURE.read_text())["tarpit"]
    status, took = tarpit(port)
    assert status == recorded[0]
    assert took >= TARPIT_MS / 1000.0 * 0.9


@pytest.fixture
def routing_port(tmp_path, backend_factory, proxy_factory):
    be = backend_factory("s1", handler)
    p = free_port()
    proxy_factory(config=config(p, be.port, tmp_path / "kw0" / "stats.sock", HEADER_ROUTING),
                  bind_ports=[p], nbproc=1)
    return p


def test_a_frontends_header_rules_run_before_use_backend(routing_port):
    recorded = json.loads(FIXTURE.read_text())["routing"]
    for case in sorted(ROUTING_CASES):
        assert exchange(routing_port, case, ROUTING_CASES) == recorded[case], case


def test_variables_survive_keepalive_requests(port):
    """sess.* lives for the connection, txn.* for one request (HAProxy's scopes)."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        seen = []
        for path in ("/first", "/second"):
            s.sendall(b"GET %s HTTP/1.1\r\nHost: h\r\n\r\n" % path.encode())
            data = b""
            while b"\r\n\r\n" not in data or not data.endswith(b"}"):
                data += s.recv(65536)
            body = json.loads(data.partition(b"\r\n\r\n")[2])
            seen.append(dict(body["headers"]))
    assert seen[0]["x-sess"] == seen[1]["x-sess"] == "/first"
    assert seen[1]["x-orig"] == "/second"


def test_a_listen_sections_rules_run_once(tmp_path, backend_factory, proxy_factory):
    """A listen is both sides of one proxy: its rules run as the frontend's only
    (measured on HAProxy 2.6.12: one x-a, one x-r, one x-p)."""
    be = backend_factory("s1", handler)
    p = free_port()
    sock = tmp_path / "kw0" / "stats.sock"
    proxy_factory(config="global\n    nbthread 1\n    stats socket %s\n" % sock
                  + "defaults\n    mode http\n    timeout connect 2s\n"
                  "    timeout client 5s\n    timeout server 5s\n"
                  "listen li\n    bind 127.0.0.1:%d\n    http-request add-header X-A 1\n"
                  "    http-request set-var(txn.p) path\n    http-response add-header X-R 1\n"
                  "    http-response add-header X-P %%[var(txn.p)]\n"
                  "    server s1 127.0.0.1:%d\n" % (p, be.port), bind_ports=[p], nbproc=1)
    head, _, body = fetch(p, "GET", "/a", []).partition(b"\r\n\r\n")
    names = [l.split(b":")[0].lower() for l in head.split(b"\r\n")[1:]]
    assert names.count(b"x-r") == 1 and names.count(b"x-p") == 1
    assert [k for k, _ in json.loads(body)["headers"]].count("x-a") == 1


@pytest.mark.parametrize("first,status", [(TARPIT, b"403"), ("/bad", b"502"), ("/ret", b"203")])
def test_the_connection_goes_on_after_a_rules_answer(port, first, status):
    """Measured on HAProxy 2.6.12: after a tarpit, an http-response deny or return,
    the request pipelined behind is served on the same connection."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(b"GET %s HTTP/1.1\r\nHost: h\r\n\r\nGET /next HTTP/1.1\r\nHost: h\r\n\r\n"
                  % first.encode())
        data = b""
        while b'"line": "GET /next' not in data:
            chunk = s.recv(65536)
            assert chunk, data
            data += chunk
    assert data.startswith(b"HTTP/1.1 " + status) and data.count(b"HTTP/1.1 200") == 1
