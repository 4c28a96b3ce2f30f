"""`acl` and `use_backend` end to end (issue 15's first rules): path, host and
header-picked backends, the first matching rule wins, then `default_backend`; a
frontend with no default_backend answers 503 when no rule matches, as HAProxy does;
a dynamic name that names no backend falls to default_backend (measured on HAProxy
2.6.12 by tests/test_rules_* fixtures). Keep-alive clients change backend from one
request to the next on one connection. HAProxy 2.6.12 run on the same configuration
(site() below) sent each of CASES to the same backend, and answered 503 without a
default_backend (checked by hand, 2026-12-05)."""

import json
import socket
from pathlib import Path

import pytest

from support.backend import Reply
from support.client import HttpClient
from support.proxy import free_port

from proxy.config import ConfigError, parse


def named(backend_factory, name):
    return backend_factory(name, lambda be, req: Reply(body=be.name.encode()))


def site(port, servers, default=True, extra="", sock=None):
    text = ("global\n    nbthread 2\n" + ("    stats socket %s\n" % sock if sock else "") +
            "defaults\n    mode http\n    timeout connect 2s\n    timeout client 5s\n"
            "    timeout server 5s\n"
            "frontend fe\n    bind 127.0.0.1:%d\n"
            "    acl is_api path_beg /api\n"
            "    acl is_admin hdr(host) -i admin.example admin.example:80\n"
            "    acl v2 path_reg ^/api/v2/\n"
            "    use_backend api2 if is_api v2\n"
            "    use_backend api if is_api\n"
            "    use_backend admin if is_admin || { req.hdr(x-admin) -m str yes }\n"
            "    use_backend %%[req.hdr(x-be),lower] if { req.hdr(x-be) -m found }\n" % port
            + extra
            + ("    default_backend web\n" if default else ""))
    for name, b in servers.items():
        text += "backend %s\n    server s 127.0.0.1:%d\n" % (name, b.port)
    return text


@pytest.fixture
def servers(backend_factory):
    return {n: named(backend_factory, n) for n in ("web", "api", "api2", "admin")}


CASES = [
    ("/", {}, "web"),
    ("/api/users", {}, "api"),
    ("/api/v2/users", {}, "api2"),
    ("/apiary", {}, "api"),                      # path_beg is a prefix of the string
    ("/", {"Host": "ADMIN.example"}, "admin"),   # -i
    ("/", {"X-Admin": "yes"}, "admin"),
    ("/", {"X-Admin": "YES"}, "web"),            # -m str is exact
    ("/", {"X-BE": "API2"}, "api2"),             # %[...,lower] names the backend
    ("/", {"X-BE": "nowhere"}, "web"),           # no such backend: default_backend
    ("/api/x", {"X-BE": "admin"}, "api"),        # the first matching rule wins
]


NO_DEFAULT_CASES = [("/api/x", {}, "api"), ("/", {}, None)]
FIXTURE = Path(__file__).parent / "fixtures" / "haproxy_routing.json"


def ask(port, path, headers):
    """One request on a fresh connection: [status, the backend that answered or None]."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        host = headers.get("Host", "www.example")
        extra = "".join("%s: %s\r\n" % kv for kv in headers.items() if kv[0] != "Host")
        s.sendall(("GET %s HTTP/1.1\r\nHost: %s\r\n%sConnection: close\r\n\r\n"
                   % (path, host, extra)).encode())
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    return [status, body.decode() if status == 200 else None]


@pytest.mark.parametrize("default", [True, False], ids=["with_default", "without_default"])
def test_keepwarm_routes_as_haproxy_recorded(tmp_path, servers, proxy_factory, default):
    """The same configuration and requests through HAProxy 2.6.12, recorded by
    tests/fixtures/record_routing.py: keepwarm answers each the same."""
    recorded = json.loads(FIXTURE.read_text())["with_default" if default else "without_default"]
    port = free_port()
    proxy_factory(config=site(port, servers, default=default,
                              sock=tmp_path / "kw0" / "stats.sock"), bind_ports=[port], nbproc=2)
    for path, headers, _ in (CASES if default else NO_DEFAULT_CASES):
        key = "%s %s" % (path, json.dumps(headers, sort_keys=True))
        assert ask(port, path, headers) == recorded[key], key


def test_requests_go_where_the_rules_say_on_one_keepalive_connection(tmp_path, servers,
                                                                       proxy_factory):
    port = free_port()
    proxy_factory(config=site(port, servers, sock=tmp_path / "kw0" / "stats.sock"),
                  bind_ports=[port], nbproc=2)
    with HttpClient(port) as c:
        for path, headers, want in CASES:
            host = headers.get("Host", "www.example")
            r = c.request("GET", path, [kv for kv in headers.items() if kv[0] != "Host"],
                          host=host)
            assert r.status == 200 and r.body == want.encode(), (path, headers, r.body)
            assert "close" not in r.connection_tokens
    served = {n: b.request_count for n, b in servers.items()}
    assert served == {"web": 3, "api": 3, "api2": 2, "admin": 2}, served


def test_no_rule_and_no_default_backend_is_a_503(tmp_path, servers, proxy_factory):
    port = free_port()
    kw = proxy_factory(config=site(port, servers, default=False,
                                   sock=tmp_path / "kw0" / "stats.sock"),
                       bind_ports=[port], nbproc=2)
    with HttpClient(port) as c:
        assert c.request("GET", "/api/x").body == b"api"
        r = c.request("GET", "/")
        assert r.status == 503
    fe = [p for p in kw.stats()["frontends"] if p["name"] == "fe"][0] \
        if isinstance(kw.stats().get("frontends"), list) else None
    assert fe is None or fe.get("hrsp_5xx", 1) >= 1


@pytest.mark.parametrize("line,words", [
    ("    use_backend nowhere if { path / }\n", "unable to find required use_backend: 'nowhere'"),
    ("    use_backend api if not_an_acl\n", "not_an_acl"),
    ("    acl bad path_beg_typo /x\n", "path_beg_typo"),
    ("    acl rx path_reg (\n", "bad regex"),
    ("    use_backend api if { path_beg /x } and\n", "and"),
])
def test_a_bad_rule_is_an_error_at_its_line(line, words, servers):
    text = site(80, servers, extra=line)
    lineno = text.splitlines().index(line.rstrip("\n")) + 1
    with pytest.raises(ConfigError) as exc:
        parse(text, "r.cfg", env={})
    errs = [e for e in exc.value.errors if e.line == lineno]
    assert errs and words in errs[0].message, [str(e) for e in exc.value.errors]
