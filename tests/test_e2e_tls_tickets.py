"""Session-ticket keys end to end (issue 16): `tls-ticket-keys FILE` as HAProxy
2.6 reads it, `show tls-keys` / `set ssl tls-key` in its words (recorded from
HAProxy 2.6.12 with socat), the process's own keys rotated on a schedule and
kept across a reload, and the TLS 1.3 suites and groups that Python's `ssl`
has no call for. Real clients: Python's ssl and openssl s_client, on 127.0.0.1,
against the real process tree with two workers."""

import base64
import os
import shutil
import signal
import socket
import ssl
import subprocess
import time

import pytest

from proxy.control import request_text
from support.backend import Reply
from support.proxy import free_port
from tests.support.certs import CA


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    d = tmp_path_factory.mktemp("pki")
    ca = CA()
    ca.issue(str(d / "site.pem"), ["site.test"])
    return {"ca": ca.write_ca(str(d / "ca.pem")), "site": str(d / "site.pem")}


def start(proxy_factory, backend_factory, pki, tmp_path, bind_opts="", glob=""):
    be = backend_factory("app", lambda be, req: Reply(body=b"ok"))
    port = free_port()
    sock = tmp_path / "kw0" / "stats.sock"
    text = ("global\n    nbthread 2\n    stats socket %s level admin\n%s"
            "defaults\n    mode http\n    timeout connect 2s\n"
            "    timeout client 2s\n    timeout server 5s\n"
            "frontend fe\n    bind 127.0.0.1:%d ssl crt %s %s\n"
            "    http-request set-header X-Pid %%pid\n"
            "    default_backend app\n"
            "backend app\n    server s 127.0.0.1:%d\n"
            % (sock, glob, port, pki["site"], bind_opts, be.port))
    kw = proxy_factory(config=text, bind_ports=[port], nbproc=2)
    return kw, port


def client(pki, version=ssl.TLSVersion.TLSv1_2):
    ctx = ssl.create_default_context(cafile=pki["ca"])
    ctx.maximum_version = version
    return ctx


def fetch(ctx, port, session=None):
    """One request on a new TLS connection: (resumed?, its session)."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        with ctx.wrap_socket(raw, server_hostname="site.test", session=session) as s:
            s.sendall(b"GET / HTTP/1.1\r\nHost: site.test\r\nConnection: close\r\n\r\n")
            got = b""
            for _ in range(100):
                chunk = s.recv(65536)
                if not chunk:
                    break
                got += chunk
            assert got.startswith(b"HTTP/1.1 200"), got[:80]
            return s.session_reused, s.session


def write_keys(path, n, size=80):
    keys = [base64.b64encode(os.urandom(size)).decode() for _ in range(n)]
    path.write_text("\n".join(keys) + "\n")
    return keys


def test_a_key_file_is_shown_rotated_and_resumes_across_workers(pki, proxy_factory,
                                                                 backend_factory, tmp_path):
    keys = write_keys(tmp_path / "tickets.key", 4)
    path = str(tmp_path / "tickets.key")
    kw, port = start(proxy_factory, backend_factory, pki, tmp_path,
                     "tls-ticket-keys %s" % path)
    # HAProxy 2.6.12's answers: the last three keys of the file, oldest first.
    assert request_text(kw.sock, "show tls-keys") == "# id (file)\n0 (%s)\n\n" % path
    dump = "# id secret\n# 0 (%s)\n%s\n" % (path, "".join(
        "0.%d %s\n" % (i, k) for i, k in enumerate(keys[1:])))
    assert request_text(kw.sock, "show tls-keys #0") == dump
    assert request_text(kw.sock, "show tls-keys %s" % path) == dump
    assert request_text(kw.sock, "show tls-keys *") == dump
    assert request_text(kw.sock, "show tls-keys 0") == \
        "'show tls-keys' unable to locate referenced filename\n\n"
    # Both workers seal and open with the file's keys.
    ctx = client(pki, ssl.TLSVersion.TLSv1_3)
    resumed, session = fetch(ctx, port)
    count = 0
    for _ in range(15):
        again, session = fetch(ctx, port, session)
        count += again
    assert count == 15
    # Rotation: the ticket of `first` opens after one new key, not after two.
    ctx = client(pki)
    _, first = fetch(ctx, port)
    assert fetch(ctx, port, first)[0]
    new = base64.b64encode(os.urandom(80)).decode()
    assert request_text(kw.sock, "set ssl tls-key #0 %s" % new) == "TLS ticket key updated!\n\n"
    assert request_text(kw.sock, "show tls-keys #0").splitlines()[-2] == "0.2 %s" % new
    assert all(fetch(ctx, port, first)[0] for _ in range(4))         # both workers
    assert request_text(kw.sock, "set ssl tls-key %s %s" % (
        path, base64.b64encode(os.urandom(80)).decode())) == "TLS ticket key updated!\n\n"
    assert not any(fetch(ctx, port, first)[0] for _ in range(4))
    # What HAProxy refuses, in its words.
    short = base64.b64encode(os.urandom(48)).decode()
    assert request_text(kw.sock, "set ssl tls-key #0 %s" % short) == \
        "'set ssl tls-key' received a key of wrong size.\n\n"
    assert request_text(kw.sock, "set ssl tls-key #0 !!!") == \
        "'set ssl tls-key' received invalid base64 encoded TLS key.\n\n"
    assert request_text(kw.sock, "set ssl tls-key #7 %s" % new) == \
        "'set ssl tls-key' unable to locate referenced filename\n\n"
    assert request_text(kw.sock, "set ssl tls-key #0") == \
        "'set ssl tls-key' expects a filename and the new TLS key in base64 encoding.\n\n"


def test_own_keys_rotate_on_schedule_and_survive_a_reload(pki, proxy_factory,
                                                          backend_factory, tmp_path):
    kw, port = start(proxy_factory, backend_factory, pki, tmp_path,
                     glob="    tune.ssl.ticket-key-rotation 1s\n")
    assert request_text(kw.sock, "show tls-keys") == "# id (file)\n\n"   # no file
    ctx = client(pki)
    _, old = fetch(ctx, port)
    assert fetch(ctx, port, old)[0]
    # Two rotations later (2 s), the ticket no longer opens; a new one does.
    deadline = time.monotonic() + 8
    while fetch(ctx, port, old)[0] and time.monotonic() < deadline:
        time.sleep(0.25)
    assert not fetch(ctx, port, old)[0]
    _, fresh = fetch(ctx, port)
    assert fetch(ctx, port, fresh)[0]


def test_a_reload_keeps_the_workers_keys(pki, proxy_factory, backend_factory, tmp_path):
    kw, port = start(proxy_factory, backend_factory, pki, tmp_path)
    ctx = client(pki)
    _, before = fetch(ctx, port)
    old = set(kw.worker_pids(kw.stats()))
    kw.send_signal(signal.SIGHUP)
    kw.wait_stats(lambda st: {w["pid"] for w in st["info"]["workers"]}.isdisjoint(old)
                  and all(w["ready"] for w in st["info"]["workers"]),
                  timeout=10, what="new workers after reload")
    assert all(fetch(ctx, port, before)[0] for _ in range(4))


def test_a_reload_finishes_the_exchanges_of_established_tls_connections(
        pki, proxy_factory, backend_factory, tmp_path):
    """Certificates are read again at a reload; a TLS connection opened before it
    gets the response it is waiting for, then a clean close."""
    be = backend_factory("app", lambda be, req: Reply(body=b"late", delay=1.0)
                         if req.target == "/slow" else Reply(body=b"ok"))
    port = free_port()
    text = ("global\n    nbthread 2\n    stats socket %s level admin\n"
            "defaults\n    mode http\n    timeout connect 2s\n"
            "    timeout client 5s\n    timeout server 5s\n"
            "frontend fe\n    bind 127.0.0.1:%d ssl crt %s\n    default_backend app\n"
            "backend app\n    server s 127.0.0.1:%d\n"
            % (tmp_path / "kw0" / "stats.sock", port, pki["site"], be.port))
    kw = proxy_factory(config=text, bind_ports=[port], nbproc=2)
    ctx = client(pki)
    raw = socket.create_connection(("127.0.0.1", port), timeout=5)
    with ctx.wrap_socket(raw, server_hostname="site.test") as s:
        s.sendall(b"GET /slow HTTP/1.1\r\nHost: site.test\r\n\r\n")
        time.sleep(0.2)                                  # in flight at the server
        old = set(kw.worker_pids(kw.stats()))
        kw.send_signal(signal.SIGHUP)
        got = b""
        while not got.endswith(b"late"):
            chunk = s.recv(65536)
            assert chunk, got
            got += chunk
        assert got.startswith(b"HTTP/1.1 200")
        # The old worker is stopping: it says so (Connection: close) and closes
        # after the response, cleanly (close_notify), as HAProxy's old process does.
        assert b"\r\nconnection: close\r\n" in got.lower(), got
        assert s.recv(65536) == b""
    kw.wait_stats(lambda st: {w["pid"] for w in st["info"]["workers"]}.isdisjoint(old),
                  timeout=10, what="new workers after reload")
    assert fetch(ctx, port)[0] is False                  # the new workers serve TLS


def test_a_bad_key_file_is_a_load_error_at_its_line(tmp_path):
    from proxy.config import ConfigError, parse
    CA().issue(str(tmp_path / "s.pem"), ["s.test"])
    cases = [(["!!!"] * 3, "unable to decode base64 key on line 1"),
             ([base64.b64encode(os.urandom(n)).decode() for n in (80, 48, 80)],
              "wrong sized key on line 2"),
             ([base64.b64encode(os.urandom(80)).decode()] * 2, "at least 3 keys")]
    for lines, message in cases:
        (tmp_path / "k").write_text("\n".join(lines) + "\n")
        text = ("defaults\n    mode http\nfrontend fe\n"
                "    bind 127.0.0.1:1 ssl crt %s tls-ticket-keys %s\n"
                "    default_backend be\nbackend be\n    server s 127.0.0.1:2\n"
                % (tmp_path / "s.pem", tmp_path / "k"))
        with pytest.raises(ConfigError) as exc:
            parse(text)
        assert exc.value.line == 4 and message in exc.value.message, exc.value


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl not installed")
def test_tls13_suites_and_groups_are_what_the_bind_names(pki, proxy_factory,
                                                         backend_factory, tmp_path):
    kw, port = start(proxy_factory, backend_factory, pki, tmp_path,
                     "ciphersuites TLS_CHACHA20_POLY1305_SHA256 curves P-384:X25519")

    def s_client(*opts):
        out = subprocess.run(["openssl", "s_client", "-connect", "127.0.0.1:%d" % port,
                              "-servername", "site.test", "-CAfile", pki["ca"], *opts],
                             input=b"", capture_output=True, timeout=10)
        return out.returncode, out.stdout.decode(errors="replace")

    rc, text = s_client("-tls1_3")
    assert rc == 0 and "TLS_CHACHA20_POLY1305_SHA256" in text, text[-600:]
    rc, text = s_client("-tls1_3", "-ciphersuites", "TLS_AES_128_GCM_SHA256")
    assert rc != 0                                    # no suite in common
    rc, text = s_client("-tls1_3", "-groups", "P-384")
    assert rc == 0 and "secp384r1" in text, text[-600:]
    rc, _ = s_client("-tls1_3", "-groups", "P-256")
    assert rc != 0                                    # a group the bind does not list


def test_a_ticket_opens_only_on_binds_with_the_same_tls_settings(pki, proxy_factory,
                                                                  backend_factory, tmp_path):
    """Every bind shares the keys, so the session-id context keeps a session to
    the binds it may serve: a client without a certificate, resumed from a public
    bind, must not skip `verify required` on another one."""
    clients = CA("client CA")
    client_ca = clients.write_ca(str(tmp_path / "clients.pem"))
    be = backend_factory("app", lambda be, req: Reply(body=b"secret"))
    public, twin, admin = free_port(), free_port(), free_port()
    text = ("global\n    nbthread 2\n    stats socket %s level admin\n"
            "defaults\n    mode http\n    timeout connect 2s\n"
            "    timeout client 2s\n    timeout server 5s\n"
            "frontend public\n    bind 127.0.0.1:%d ssl crt %s\n"
            "    bind 127.0.0.1:%d ssl crt %s\n    default_backend app\n"
            "frontend admin\n    bind 127.0.0.1:%d ssl crt %s verify required ca-file %s\n"
            "    default_backend app\n"
            "backend app\n    server s 127.0.0.1:%d\n"
            % (tmp_path / "kw0" / "stats.sock", public, pki["site"], twin, pki["site"], admin,
               pki["site"], client_ca, be.port))
    proxy_factory(config=text, bind_ports=[public, twin, admin], nbproc=2)
    for version in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
        ctx = client(pki, version)
        _, session = fetch(ctx, public)
        assert fetch(ctx, twin, session)[0]               # same settings: resumed
        with pytest.raises((ssl.SSLError, OSError, AssertionError)):
            fetch(ctx, admin, session)                    # no certificate: refused
    assert be.request_count == 4


def test_binds_naming_one_key_file_share_its_keys(pki, proxy_factory, backend_factory,
                                                  tmp_path):
    keys = tmp_path / "tickets.key"
    write_keys(keys, 3)
    be = backend_factory("app", lambda be, req: Reply(body=b"ok"))
    a, b = free_port(), free_port()
    text = ("global\n    nbthread 2\n    stats socket %s level admin\n"
            "defaults\n    mode http\n    timeout connect 2s\n"
            "    timeout client 2s\n    timeout server 5s\n"
            "frontend fe\n    bind 127.0.0.1:%d ssl crt %s tls-ticket-keys %s\n"
            "    bind 127.0.0.1:%d ssl crt %s tls-ticket-keys %s\n    default_backend app\n"
            "backend app\n    server s 127.0.0.1:%d\n"
            % (tmp_path / "kw0" / "stats.sock", a, pki["site"], keys, b, pki["site"], keys,
               be.port))
    kw = proxy_factory(config=text, bind_ports=[a, b], nbproc=2)
    assert request_text(kw.sock, "show tls-keys") == "# id (file)\n0 (%s)\n\n" % keys
    ctx = client(pki)
    _, session = fetch(ctx, a)
    for _ in range(2):
        assert request_text(kw.sock, "set ssl tls-key %s %s" % (
            keys, base64.b64encode(os.urandom(80)).decode())) == "TLS ticket key updated!\n\n"
    assert not any(fetch(ctx, port, session)[0] for port in (a, b, a, b))
