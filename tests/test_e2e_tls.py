"""`bind ... ssl crt` end to end (issue 16): the real proxy process tree
terminating TLS on 127.0.0.1, checked with curl, openssl s_client and Python's
ssl; certificates generated here. Plain and TLS binds in one frontend, with the
rules real sites write (`redirect scheme https unless { ssl_fc }`,
X-Forwarded-Proto), SNI choosing the certificate, ALPN, the protocol floor, a
failed handshake counted and never sent to a server, a stalled handshake
closed by `timeout client`."""

import shutil
import os
import signal
import struct
import socket
import ssl
import subprocess
import time

import pytest

from support.backend import Reply
from support.proxy import free_port
from tests.support.certs import CA

needs_curl = pytest.mark.skipif(shutil.which("curl") is None, reason="curl not installed")
needs_openssl = pytest.mark.skipif(shutil.which("openssl") is None,
                                   reason="openssl not installed")


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    d = tmp_path_factory.mktemp("pki")
    ca = CA()
    ca.issue(str(d / "certs" / "10-site.pem"), ["site.test"])
    ca.issue(str(d / "certs" / "20-other.pem"), ["other.test"], kind="ecdsa")
    return {"ca": ca.write_ca(str(d / "ca.pem")), "dir": str(d / "certs")}


def echo(be, req):
    """The backend answers with the headers it received, one per line."""
    body = "".join("%s: %s\n" % (k.lower(), v) for k, v in req.headers).encode()
    return Reply(body=body)


def start(proxy_factory, backend_factory, pki, tmp_path, tls_opts="", extra=""):
    be = backend_factory("app", echo)
    plain, tls = free_port(), free_port()
    sock = tmp_path / "kw0" / "stats.sock"
    text = ("global\n    nbthread 2\n    stats socket %s\n" % sock +
            ("defaults\n    mode http\n    timeout connect 2s\n"
            "    timeout client 2s\n    timeout server 5s\n"
            "frontend fe\n    bind 127.0.0.1:%d\n"
            "    bind 127.0.0.1:%d ssl crt %s alpn h2,http/1.1 %s\n"
            "    http-request redirect scheme https unless { ssl_fc }\n"
            "    http-request set-header X-Forwarded-Proto https if { ssl_fc }\n"
            "    http-request set-header X-SNI %%[ssl_fc_sni]\n"
            "    http-request set-header X-TLS %%[ssl_fc_protocol]\n%s"
            "    default_backend app\n"
            "backend app\n    server s 127.0.0.1:%d\n"
            % (plain, tls, pki["dir"], tls_opts, extra, be.port)))
    kw = proxy_factory(config=text, bind_ports=[plain, tls], nbproc=2)
    return kw, be, plain, tls


def headers_seen(body):
    return dict(line.split(": ", 1) for line in body.decode().splitlines() if ": " in line)


@needs_curl
def test_curl_over_tls_and_the_rules_that_read_it(pki, proxy_factory, backend_factory,
                                                  tmp_path):
    kw, be, plain, tls = start(proxy_factory, backend_factory, pki, tmp_path)
    out = subprocess.run(["curl", "-sS", "--max-time", "5", "--cacert", pki["ca"],
                          "--resolve", "site.test:%d:127.0.0.1" % tls,
                          "https://site.test:%d/x" % tls], capture_output=True, timeout=10)
    assert out.returncode == 0, out.stderr
    seen = headers_seen(out.stdout)
    assert seen["x-forwarded-proto"] == "https" and seen["x-sni"] == "site.test"
    assert seen["x-tls"] == "TLSv1.3"
    # The plain bind of the same frontend: redirected, never sent to the server.
    served = be.request_count
    out = subprocess.run(["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code} %{redirect_url}",
                          "--max-time", "5", "-H", "Host: site.test",
                          "http://127.0.0.1:%d/x?y=1" % plain], capture_output=True, timeout=10)
    assert out.stdout.decode() == "302 https://site.test/x?y=1", out
    assert be.request_count == served


@needs_openssl
def test_openssl_sees_the_certificate_its_sni_asks_for_and_alpn(pki, proxy_factory,
                                                                 backend_factory, tmp_path):
    kw, be, plain, tls = start(proxy_factory, backend_factory, pki, tmp_path)

    def s_client(*args):
        p = subprocess.run(["openssl", "s_client", "-connect", "127.0.0.1:%d" % tls,
                            "-CAfile", pki["ca"], *args], input=b"", capture_output=True,
                           timeout=10)
        return p.stdout.decode(errors="replace")
    out = s_client("-servername", "other.test", "-alpn", "h2,http/1.1")
    assert "subject=CN = other.test" in out or "subject=CN=other.test" in out, out
    assert "ALPN protocol: http/1.1" in out
    assert "Verify return code: 0 (ok)" in out
    out = s_client("-servername", "unknown.test")
    assert "CN = site.test" in out or "CN=site.test" in out   # the first loaded: default
    out = s_client("-servername", "site.test", "-alpn", "h2")
    assert "No ALPN negotiated" in out


def tls_connect(port, server_hostname="site.test", ca=None, **ctx_kw):
    ctx = ssl.create_default_context(cafile=ca)
    for k, v in ctx_kw.items():
        setattr(ctx, k, v)
    raw = socket.create_connection(("127.0.0.1", port), timeout=5)
    return ctx.wrap_socket(raw, server_hostname=server_hostname)


def read_responses(sock, n):
    data = b""
    deadline = time.monotonic() + 5
    while data.count(b"HTTP/1.1 200") < n or not data.endswith(b"\n"):
        if time.monotonic() > deadline:
            break
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def test_keepalive_and_pipelining_over_one_tls_connection(pki, proxy_factory, backend_factory,
                                                          tmp_path):
    kw, be, plain, tls = start(proxy_factory, backend_factory, pki, tmp_path)
    with tls_connect(tls, ca=pki["ca"]) as s:
        req = b"GET /%d HTTP/1.1\r\nHost: site.test\r\n\r\n"
        s.sendall(req % 1 + req % 2)           # pipelined, one record
        got = read_responses(s, 2)
        assert got.count(b"HTTP/1.1 200") == 2, got
        s.sendall(req % 3)
        assert b"HTTP/1.1 200" in read_responses(s, 1)
    assert be.request_count == 3


def test_a_floor_refuses_older_clients_and_failures_are_counted(pki, proxy_factory,
                                                                backend_factory, tmp_path):
    kw, be, plain, tls = start(proxy_factory, backend_factory, pki, tmp_path,
                               tls_opts="ssl-min-ver TLSv1.3")
    with pytest.raises((ssl.SSLError, OSError)):
        with tls_connect(tls, ca=pki["ca"], maximum_version=ssl.TLSVersion.TLSv1_2) as s:
            s.sendall(b"GET / HTTP/1.1\r\nHost: site.test\r\n\r\n")
            s.recv(100)
    # Plain HTTP to the TLS port: no answer, nothing reaches the server.
    with socket.create_connection(("127.0.0.1", tls), timeout=5) as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: site.test\r\n\r\n")
        try:
            got = s.recv(100)
        except OSError:
            got = b""                         # reset: also no answer
        assert b"HTTP" not in got
    assert be.request_count == 0
    st = kw.wait_stats(lambda st: _fe(st).get("ssl_handshake_errors", 0) >= 2,
                       what="two handshake failures counted")
    assert _fe(st)["ssl_handshake_errors"] >= 2


def _fe(st):
    return st["frontends"]["fe"]


def test_a_stalled_handshake_is_closed_by_timeout_client(pki, proxy_factory, backend_factory,
                                                         tmp_path):
    kw, be, plain, tls = start(proxy_factory, backend_factory, pki, tmp_path)
    with socket.create_connection(("127.0.0.1", tls), timeout=8) as s:
        t0 = time.monotonic()
        got = s.recv(100)                       # we never send a ClientHello
        waited = time.monotonic() - t0
    assert got == b"" and 1.5 <= waited < 6, (got, waited)


def test_tickets_resume_sessions_on_every_worker(pki, proxy_factory, backend_factory,
                                                 tmp_path):
    """The ticket keys are made once, before the workers fork: a client resumes
    its session whichever worker accepts the next connection."""
    kw, be, plain, tls = start(proxy_factory, backend_factory, pki, tmp_path,
                               extra="    http-request set-header X-Pid %pid\n")
    for version in (ssl.TLSVersion.TLSv1_3, ssl.TLSVersion.TLSv1_2):
        ctx = ssl.create_default_context(cafile=pki["ca"])
        ctx.maximum_version = version
        session, resumed, pids = None, 0, set()
        for _ in range(24):
            with socket.create_connection(("127.0.0.1", tls), timeout=5) as raw:
                with ctx.wrap_socket(raw, server_hostname="site.test", session=session) as s:
                    s.sendall(b"GET / HTTP/1.1\r\nHost: site.test\r\nConnection: close\r\n\r\n")
                    got = b""
                    for _ in range(100):
                        chunk = s.recv(65536)
                        if not chunk:
                            break
                        got += chunk
                    resumed += s.session_reused
                    session = s.session
            pids.add(headers_seen(got.partition(b"\r\n\r\n")[2])["x-pid"])
        assert len(pids) == 2, pids                       # both workers took connections
        assert resumed == 23, (version, resumed)


def wait_reloaded(kw, old, timeout=10.0):
    return kw.wait_stats(lambda st: {w["pid"] for w in st["info"]["workers"]}.isdisjoint(old)
                         and all(w["ready"] for w in st["info"]["workers"]),
                         timeout=timeout, what="new workers after reload")


def served_names(port, ca, sni="site.test"):
    ctx = ssl.create_default_context(cafile=ca)
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        with ctx.wrap_socket(raw, server_hostname=sni) as s:
            cert = s.getpeercert()
    return {v for k, v in cert.get("subjectAltName", ()) if k == "DNS"}


def test_reload_reads_certificates_again_and_keeps_the_old_ones_on_a_bad_file(
        proxy_factory, backend_factory, tmp_path):
    ca = CA()
    ca_file = ca.write_ca(str(tmp_path / "ca.pem"))
    certs = tmp_path / "certs"
    ca.issue(str(certs / "site.pem"), ["site.test"])
    kw, be, plain, tls = start(proxy_factory, backend_factory, {"dir": str(certs)}, tmp_path)
    assert served_names(tls, ca_file) == {"site.test"}
    old = set(kw.worker_pids(kw.stats()))
    ca.issue(str(certs / "site.pem"), ["site.test", "new.site.test"])    # renewed
    kw.send_signal(signal.SIGHUP)
    wait_reloaded(kw, old)
    assert served_names(tls, ca_file) == {"site.test", "new.site.test"}
    current = set(kw.worker_pids(kw.stats()))
    (certs / "site.pem").write_bytes(b"-----BEGIN CERTIFICATE-----\nbroken\n")
    kw.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 5
    while "reload failed" not in kw.stderr_text() and time.monotonic() < deadline:
        time.sleep(0.05)
    err = kw.stderr_text()
    assert "reload failed" in err and "site.pem" in err and "Traceback" not in err, err[-2000:]
    assert served_names(tls, ca_file) == {"site.test", "new.site.test"}
    assert set(kw.worker_pids(kw.stats())) == current


def test_tls_connections_are_logged_as_haproxy_logs_them(pki, proxy_factory, backend_factory,
                                                         tmp_path):
    """What HAProxy 2.6.12 wrote for the same four connections (checked by hand
    with this configuration, 2026-12-06): plain HTTP to the TLS port, a client
    that closes before its ClientHello, a stalled handshake, a normal request."""
    import re
    rx_path = tmp_path / "log.sock"
    rx = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    rx.bind(str(rx_path))
    rx.settimeout(5)
    try:
        kw, be, plain, tls = start(proxy_factory, backend_factory, pki, tmp_path, extra=(
            "    log %s format raw local0\n    option httplog\n" % rx_path))
        rx.settimeout(0.5)                      # the start-up probes' lines: drained
        for _ in range(100):
            try:
                rx.recv(65536)
            except socket.timeout:
                break
        rx.settimeout(5)
        with socket.create_connection(("127.0.0.1", tls), timeout=5) as s:
            s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            try:
                s.recv(100)
            except OSError:
                pass
        socket.create_connection(("127.0.0.1", tls), timeout=5).close()
        with socket.create_connection(("127.0.0.1", tls), timeout=8) as s:
            s.recv(100)                         # until timeout client (2 s) closes it
        with tls_connect(tls, ca=pki["ca"]) as s:
            s.sendall(b"GET / HTTP/1.1\r\nHost: site.test\r\nConnection: close\r\n\r\n")
            for _ in range(100):                # until keepwarm closes: the exchange is over
                if not s.recv(65536):
                    break
        lines = [rx.recv(65536).decode().rstrip("\n") for _ in range(4)]
    finally:
        rx.close()
    masked = sorted(re.sub(r"^127\.0\.0\.1:\d+ \[[^]]+\] ", "ADDR [DATE] ", line)
                    for line in lines)
    assert masked[:3] == ["ADDR [DATE] fe/2: Connection closed during SSL handshake",
                          "ADDR [DATE] fe/2: SSL handshake failure",
                          "ADDR [DATE] fe/2: Timeout during SSL handshake"], lines
    assert re.match(r'ADDR \[DATE\] fe~ app/s \S+ 200 \d+ - - ---- .* "GET / HTTP/1.1"$',
                    masked[3]), lines


@needs_openssl
def test_a_tls11_client_is_refused_under_ssl_min_ver_tls12(pki, proxy_factory, backend_factory,
                                                           tmp_path):
    """The issue's own case: openssl s_client -tls1_1 (its security level lowered so
    that it offers TLS 1.1 at all) against a bind with ssl-min-ver TLSv1.2."""
    kw, be, plain, tls = start(proxy_factory, backend_factory, pki, tmp_path,
                               tls_opts="ssl-min-ver TLSv1.2")

    def s_client(*args):
        p = subprocess.run(["openssl", "s_client", "-connect", "127.0.0.1:%d" % tls,
                            "-servername", "site.test", "-CAfile", pki["ca"], *args],
                           input=b"", capture_output=True, timeout=10)
        return p.returncode, (p.stdout + p.stderr).decode(errors="replace")
    rc, out = s_client("-tls1_1", "-cipher", "DEFAULT@SECLEVEL=0")
    # Refused with a protocol_version alert: no certificate, no cipher.
    assert "alert protocol version" in out and "Cipher is (NONE)" in out, out
    rc, out = s_client("-tls1_2")
    assert rc == 0 and "Protocol  : TLSv1.2" in out, out
    assert be.request_count == 0


def test_a_client_reset_before_its_tls_wrap_costs_no_worker(pki, proxy_factory, tmp_path):
    """A connection the client resets before the worker accepts it (with a few bytes,
    or none) makes wrap_socket fail; the worker counts it and goes on (it died of it
    once: found in review)."""
    port = free_port()
    cfg = ("global\n    nbthread 1\n    stats socket %s\n" % (tmp_path / "kw0" / "stats.sock") +
           "defaults\n    mode http\n    timeout connect 2s\n    timeout client 5s\n"
           "    timeout server 5s\n"
           "frontend fe\n    bind 127.0.0.1:%d ssl crt %s\n"
           "    http-request return status 200\n    default_backend b\n"
           "backend b\n    server s 127.0.0.1:1\n" % (port, pki["dir"]))
    kw = proxy_factory(config=cfg, bind_ports=[port], nbproc=1)
    (pid,) = kw.worker_pids()
    os.kill(pid, signal.SIGSTOP)                  # the connections wait in the backlog
    try:
        for data in (b"\x16\x03\x01\x00\x05hello", b""):
            s = socket.create_connection(("127.0.0.1", port), timeout=5)
            if data:
                s.sendall(data)
            time.sleep(0.05)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            s.close()
    finally:
        os.kill(pid, signal.SIGCONT)
    with tls_connect(port, ca=pki["ca"]) as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: site.test\r\n\r\n")
        assert s.recv(100).startswith(b"HTTP/1.1 200")
    assert kw.worker_pids() == [pid]
    kw.wait_stats(lambda st: st["frontends"]["fe"]["ssl_handshake_errors"] >= 1,
                  what="the reset connections counted")
