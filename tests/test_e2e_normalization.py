"""HAProxy's request normalization, end to end (issue 15): HTTP/1.x > 1 forwarded as
HTTP/1.1, an absolute-form target checked against Host (400 when they differ) and
forwarded without its scheme's default port; and RFC 9112 §3.2's Host syntax, where
keepwarm is stricter than HAProxy on purpose (docs/configuration.md §7).

HAProxy 2.6.12's answers to CASES on the same configuration (status, the request
line and Host the server received) are recorded by tests/fixtures/
record_normalization.py in haproxy_normalization.json; keepwarm must give the same,
but for the cases in DIFFERENCES, each with keepwarm's answer and the reason."""

import json
import socket
import time
from pathlib import Path

from support.backend import Reply
from support.proxy import free_port, make_config

FIXTURE = Path(__file__).parent / "fixtures" / "haproxy_normalization.json"

H = b"Host: x\r\n"
CASES = [
    ("version-1.2", b"GET /a HTTP/1.2\r\n" + H),
    ("version-1.9", b"GET /a HTTP/1.9\r\n" + H),
    ("version-1.0", b"GET /a HTTP/1.0\r\n" + H),
    ("absolute-same", b"GET http://x/a HTTP/1.1\r\n" + H),
    ("absolute-default-port", b"GET http://x:80/a HTTP/1.1\r\n" + H),
    ("absolute-https-default-port", b"GET https://x:443/a HTTP/1.1\r\n" + H),
    ("absolute-case", b"GET http://X/a HTTP/1.1\r\n" + H),
    ("absolute-host-port", b"GET http://x/a HTTP/1.1\r\nHost: x:80\r\n"),
    ("absolute-userinfo", b"GET http://u@x/a HTTP/1.1\r\n" + H),
    ("absolute-no-path", b"GET http://x HTTP/1.1\r\n" + H),
    ("absolute-other-port", b"GET http://x:8080/a HTTP/1.1\r\nHost: x:8080\r\n"),
    ("absolute-version-1.2", b"GET http://x:80/a HTTP/1.2\r\n" + H),
    ("absolute-http10-no-host", b"GET http://x/a HTTP/1.0\r\n"),
    ("absolute-host-differs", b"GET http://y/a HTTP/1.1\r\n" + H),
    ("absolute-port-differs", b"GET http://x:81/a HTTP/1.1\r\n" + H),
    ("absolute-scheme-port-differs", b"GET https://x/a HTTP/1.1\r\nHost: x:80\r\n"),
    ("absolute-query-no-path", b"GET http://x?q HTTP/1.1\r\n" + H),
    ("host-space", b"GET /a HTTP/1.1\r\nHost: a b\r\n"),
    ("host-port-letters", b"GET /a HTTP/1.1\r\nHost: a:xyz\r\n"),
    ("host-port-too-big", b"GET /a HTTP/1.1\r\nHost: a:99999\r\n"),
    ("host-slash", b"GET /a HTTP/1.1\r\nHost: a/b\r\n"),
    ("host-at", b"GET /a HTTP/1.1\r\nHost: a@b\r\n"),
    ("host-open-bracket", b"GET /a HTTP/1.1\r\nHost: [::1\r\n"),
    ("host-non-ascii", b"GET /a HTTP/1.1\r\nHost: caf\xc3\xa9\r\n"),
    ("host-empty-port", b"GET /a HTTP/1.1\r\nHost: a:\r\n"),
    ("host-empty", b"GET /a HTTP/1.1\r\nHost: \r\n"),
    ("host-ipv6", b"GET /a HTTP/1.1\r\nHost: [::1]:80\r\n"),
    ("host-underscore", b"GET /a HTTP/1.1\r\nHost: a_b.example\r\n"),
    ("host-port-zero-led", b"GET /a HTTP/1.1\r\nHost: a:080\r\n"),
]

_MUST = "RFC 9112 §3.2: a Host that is not uri-host [\":\" port] MUST get a 400; HAProxy forwards it"
DIFFERENCES = {
    "host-space": (400, _MUST),
    "host-port-letters": (400, _MUST),
    "host-port-too-big": (400, _MUST + " (port above 65535)"),
    "host-slash": (400, _MUST),
    "host-at": (400, _MUST),
    "host-open-bracket": (400, _MUST),
    "host-non-ascii": (400, _MUST + " (reg-name is ASCII; non-ASCII is percent-encoded)"),
    "absolute-query-no-path": (200, "RFC 3986 §3.2: the authority ends at '?' as well as "
                                    "'/'; HAProxy reads up to '/' and answers 400"),
}


def config(port, server, sock=None):
    return make_config(port=port, servers=[server], sock=sock, nbproc=None,
                       global_lines=("nbthread 1",))


def echo(backend, req):
    """The server's answer: the request line and Host it received, in the body."""
    host = req.header("host")
    line = "%s %s %s" % (req.method, req.target, req.version)
    return Reply(body=json.dumps([line, host]).encode())


def ask(port, raw):
    """One request on a fresh connection (closed after it): [status, [request line,
    Host] as the server received them, or None when no server was asked]."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(raw + b"Connection: close\r\n\r\n")
        data = b""
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    return [status, json.loads(body) if status == 200 else None]


def test_every_difference_is_a_case():
    assert set(DIFFERENCES) <= {name for name, _ in CASES}


def test_keepwarm_normalizes_requests_as_haproxy_recorded(tmp_path, backend_factory,
                                                          proxy_factory):
    recorded = json.loads(FIXTURE.read_text())["answers"]
    assert set(recorded) == {name for name, _ in CASES}, "re-record the fixture"
    server = backend_factory("s1", echo)
    port = free_port()
    proxy_factory(config=config(port, server, tmp_path / "kw0" / "stats.sock"),
                  bind_ports=[port], nbproc=1)
    mismatches = []
    for name, raw in CASES:
        got = ask(port, raw)
        if name in DIFFERENCES:
            want_status, reason = DIFFERENCES[name]
            assert recorded[name][0] != want_status, "%s: HAProxy now agrees" % name
            if got[0] != want_status:
                mismatches.append((name, got, want_status))
        elif got != recorded[name]:
            mismatches.append((name, got, recorded[name]))
    assert not mismatches, mismatches
