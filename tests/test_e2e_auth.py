"""`userlist`, `http_auth`/`http_auth_group`, `http-request auth`, `http-errors`,
`errorfiles` and `http-error` end to end, held to HAProxy 2.6.12's answers for the
same configuration (site() below), recorded by tests/fixtures/record_auth.py into
haproxy_auth.json: a proxy's own answer byte for byte, a served request by its
status and body (HAProxy rewrites the server's header names in lower case)."""

import base64
import json
import socket
from pathlib import Path

import pytest

from support.backend import Reply
from support.proxy import free_port

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "haproxy_auth.json"

# openssl passwd -6 -salt abc secret / openssl passwd -5 -salt abc secret
SHA512 = ("$6$abc$IdWKNKTJEb8LxY7CGg8YBXlvtfZzFw7Mp/r6niK9YB2mdvgY..TKjv1T..8RadRt2qvUHYRLr"
          "/TsVArtr91iR1")
SHA256 = "$5$abc$qsg6EHbUzHQzF1POlD7zUwBINSELQxypPaeDcZe6vH0"

# The error files, written where the configuration says (the WWW-Authenticate of
# the 401 page is replaced by the rule's challenge).
PAGES = {
    "401.http": b"HTTP/1.1 401 Unauthorized\r\nContent-Type: text/plain\r\n"
                b"WWW-Authenticate: Basic realm=\"old\"\r\nX-Custom: 1\r\n"
                b"Content-Length: 7\r\n\r\ngo away",
    "503.http": b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\n"
                b"Content-Length: 5\r\n\r\nsorry",
}


def site(port, be_port, errdir, sock=None):
    return ("global\n    nbthread 1\n" + ("    stats socket %s\n" % sock if sock else "")) + """\
userlist L1
    group admins users alice
    group ops
    user alice password %(sha512)s
    user bob insecure-password hunter2 groups ops
    user carol password %(sha256)s groups ops
http-errors site
    errorfile 401 %(dir)s/401.http
    errorfile 503 %(dir)s/503.http
defaults
    mode http
    timeout connect 2s
    timeout client 5s
    timeout server 5s
frontend fe
    bind 127.0.0.1:%(port)d
    acl ok http_auth(L1)
    acl admin http_auth_group(L1) admins
    acl ops http_auth_group(L1) ops
    http-request auth if { path_beg /a } !ok
    http-request auth realm "my realm" if { path_beg /r } !ok
    http-request deny if { path_beg /admin } !admin
    http-request deny if { path_beg /ops } !ops
    use_backend paged if { path_beg /paged }
    use_backend custom if { path_beg /custom }
    use_backend down if { path_beg /down }
    use_backend down2 if { path_beg /d2 }
    default_backend web
backend web
    server s 127.0.0.1:%(be)d
backend paged
    errorfiles site 401
    http-request auth realm paged-area unless { http_auth(L1) }
    server s 127.0.0.1:%(be)d
backend custom
    http-error status 401 content-type text/plain string "custom 401" hdr X-A b
    http-request auth unless { http_auth(L1) }
    server s 127.0.0.1:%(be)d
backend down
    errorfiles site
backend down2
    http-error status 503 content-type "text/plain; charset=utf-8" string down hdr X-B c
""" % {"sha512": SHA512, "sha256": SHA256, "dir": errdir, "port": port, "be": be_port}


def basic(credentials: bytes) -> str:
    return "Basic " + base64.b64encode(credentials).decode()


# name -> (path, [(header, value)...])
CASES = {
    "no_authorization": ("/a", []),
    "wrong_password": ("/a", [("Authorization", basic(b"alice:wrong"))]),
    "unknown_user": ("/a", [("Authorization", basic(b"mallory:secret"))]),
    "sha512_right": ("/a", [("Authorization", basic(b"alice:secret"))]),
    "sha256_right": ("/a", [("Authorization", basic(b"carol:secret"))]),
    "insecure_right": ("/a", [("Authorization", basic(b"bob:hunter2"))]),
    "insecure_wrong_case": ("/a", [("Authorization", basic(b"bob:Hunter2"))]),
    "scheme_in_lower_case": ("/a", [("Authorization", "basic YWxpY2U6c2VjcmV0")]),
    "two_spaces_after_scheme": ("/a", [("Authorization", "Basic  YWxpY2U6c2VjcmV0")]),
    "tab_after_scheme": ("/a", [("Authorization", "Basic\tYWxpY2U6c2VjcmV0")]),
    "malformed_base64": ("/a", [("Authorization", "Basic !!!!")]),
    "base64_extra_padding": ("/a", [("Authorization", "Basic YWxpY2U6c2VjcmV0=")]),
    "base64_truncated": ("/a", [("Authorization", "Basic YWxpY2U6c2VjcmV")]),
    "no_colon": ("/a", [("Authorization", basic(b"alice"))]),
    "scheme_alone": ("/a", [("Authorization", "Basic")]),
    "bearer": ("/a", [("Authorization", "Bearer abc")]),
    "first_header_counts": ("/a", [("Authorization", "Bearer abc"),
                                   ("Authorization", basic(b"alice:secret"))]),
    "first_value_counts": ("/a", [("Authorization", basic(b"alice:secret") + ", Bearer x")]),
    "password_with_colon": ("/a", [("Authorization", basic(b"bob:hunter2:"))]),
    "realm_with_spaces": ("/r", []),
    "group_allows": ("/admin", [("Authorization", basic(b"alice:secret"))]),
    "group_denies": ("/admin", [("Authorization", basic(b"bob:hunter2"))]),
    "group_denies_wrong_password": ("/admin", [("Authorization", basic(b"alice:nope"))]),
    "group_by_user_line": ("/ops", [("Authorization", basic(b"carol:secret"))]),
    "group_missing": ("/ops", [("Authorization", basic(b"alice:secret"))]),
    "errorfile_401_challenge": ("/paged", []),
    "errorfile_401_passes": ("/paged", [("Authorization", basic(b"bob:hunter2"))]),
    "http_error_401": ("/custom", []),
    "errorfiles_503": ("/down", []),
    "http_error_503": ("/d2", []),
}


def read_response(s):
    """One response from `s`: (head, body); the body by Content-Length, else to EOF."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = s.recv(65536)
        if not chunk:
            return data, b""
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = None
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    while length is None or len(body) < length:
        chunk = s.recv(65536)
        if not chunk:
            break
        body += chunk
    return head + b"\r\n\r\n", body


def ask(port, path, headers):
    """`path` with `headers` on a fresh connection: what the fixture records."""
    req = "GET %s HTTP/1.1\r\nHost: h.example\r\n" % path
    req += "".join("%s: %s\r\n" % kv for kv in headers) + "\r\n"
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(req.encode())
        head, body = read_response(s)
    status = int(head.split(b" ", 2)[1])
    served = body == b"web"
    return {"status": status, "body": body.decode("latin-1"),
            # A served answer's head is the server's, re-written by each proxy its way.
            "head": None if served else head.decode("latin-1")}


def write_pages(errdir):
    errdir.mkdir(exist_ok=True)
    for name, data in PAGES.items():
        (errdir / name).write_bytes(data)


@pytest.fixture(scope="module")
def recorded():
    return json.loads(FIXTURE.read_text())


@pytest.fixture
def kw(tmp_path, backend_factory, proxy_factory):
    be = backend_factory("web", lambda b, req: Reply(body=b"web"))
    errdir = tmp_path / "errors"
    write_pages(errdir)
    port = free_port()
    proxy_factory(config=site(port, be.port, errdir, tmp_path / "kw0" / "stats.sock"),
                  bind_ports=[port], nbproc=1)
    return port, be


def test_every_case_is_answered_as_haproxy_answered_it(kw, recorded):
    port, _ = kw
    mismatches = {}
    for name, (path, headers) in sorted(CASES.items()):
        got = ask(port, path, headers)
        if got != recorded["cases"][name]:
            mismatches[name] = (got, recorded["cases"][name])
    assert not mismatches, json.dumps(mismatches, indent=1)


def test_the_401_is_haproxys_byte_for_byte(recorded):
    assert recorded["cases"]["no_authorization"]["head"] == (
        "HTTP/1.1 401 Unauthorized\r\ncontent-length: 112\r\ncache-control: no-cache\r\n"
        "content-type: text/html\r\nwww-authenticate: Basic realm=\"fe\"\r\n\r\n")


def test_a_401_keeps_the_connection_and_the_next_request_may_authenticate(kw):
    """Measured on HAProxy 2.6.12: the challenge and the retry on one connection."""
    port, be = kw
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(b"GET /a HTTP/1.1\r\nHost: h\r\n\r\n"
                  b"GET /a HTTP/1.1\r\nHost: h\r\nAuthorization: %s\r\n\r\n"
                  % basic(b"alice:secret").encode())
        head1, _ = read_response(s)
        head2, body2 = read_response(s)
    assert head1.startswith(b"HTTP/1.1 401 ") and b"connection: close" not in head1
    assert head2.startswith(b"HTTP/1.1 200 ") and body2 == b"web"
    assert len(be.requests) == 1


def test_a_keepalive_client_pays_crypt_once(kw):
    """keepwarm's cache (HAProxy runs crypt for each request): the same credentials
    on one connection are all accepted; the cache's effect is measured in the
    unit tests (test_config_userlist.py)."""
    port, be = kw
    auth = basic(b"alice:secret").encode()
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        for _ in range(5):
            s.sendall(b"GET /a HTTP/1.1\r\nHost: h\r\nAuthorization: %s\r\n\r\n" % auth)
            head, body = read_response(s)
            assert head.startswith(b"HTTP/1.1 200 ") and body == b"web"
    assert len(be.requests) == 5
