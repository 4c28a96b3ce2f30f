"""`server ... ssl` end to end (issue 16): keepwarm reaching its servers over TLS
on 127.0.0.1, with scripted TLS backends and certificates generated here:
verification against a CA (a wrong CA is a 503, the server never gets the
request), SNI and the name check, idle pools keeping TLS connections warm
(reused: one handshake for many requests), TLS session resumption when a new
connection is needed, and `no-ssl-reuse`."""

import ssl
import time

import pytest

from support.backend import Reply
from support.client import HttpClient
from support.proxy import free_port
from tests.support.certs import CA


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    d = tmp_path_factory.mktemp("pki")
    ca, other = CA(), CA("another CA")
    return {"ca": ca.write_ca(str(d / "ca.pem")), "other_ca": other.write_ca(str(d / "o.pem")),
            "server": ca.issue(str(d / "app.pem"), ["app.internal"])}


def tls_backend(backend_factory, pki, name="app", handler=None):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(pki["server"])
    ctx.sni_callback = lambda sock, sni, c: setattr(sock, "sni", sni)
    seen = []

    def answer(be, req):
        seen.append(req)
        return Reply(body=b"tls ok %s" % req.target.encode())
    be = backend_factory(name, handler or answer, ssl_context=ctx)
    return be


def config(tmp_path, port, be, opts):
    return ("global\n    nbthread 1\n    stats socket %s\n" % (tmp_path / "kw0" / "stats.sock") +
            "defaults\n    mode http\n    timeout connect 2s\n    timeout client 5s\n"
            "    timeout server 5s\n    retries 0\n"
            "frontend fe\n    bind 127.0.0.1:%d\n    default_backend app\n"
            "backend app\n    server s 127.0.0.1:%d ssl %s\n" % (port, be.port, opts))


def test_requests_reach_a_tls_server_and_reuse_its_connection(pki, proxy_factory,
                                                              backend_factory, tmp_path):
    be = tls_backend(backend_factory, pki)
    port = free_port()
    proxy_factory(config=config(tmp_path, port, be,
                                "verify required ca-file %s sni str(app.internal)" % pki["ca"]),
                  bind_ports=[port], nbproc=1)
    for i in range(5):                  # a new client connection each time
        with HttpClient(port) as c:
            r = c.request("GET", "/r%d" % i)
            assert r.status == 200 and r.body == b"tls ok /r%d" % i
    assert be.request_count == 5
    assert len(be.connections) == 1          # one TLS handshake, kept warm in the pool
    assert not be.tls_failures


def test_a_server_whose_certificate_the_ca_did_not_sign_is_a_503(pki, proxy_factory,
                                                                  backend_factory, tmp_path):
    be = tls_backend(backend_factory, pki)
    port = free_port()
    kw = proxy_factory(config=config(tmp_path, port, be, "verify required ca-file %s sni "
                                     "str(app.internal)" % pki["other_ca"]),
                       bind_ports=[port], nbproc=1)
    with HttpClient(port) as c:
        assert c.request("GET", "/").status == 503
    assert be.request_count == 0
    kw.wait_stats(lambda st: st["backends"]["app"]["servers"]["s"]["ssl_handshake_errors"] >= 1,
                  what="the failed handshake counted on the server")


def test_the_name_is_checked_against_sni(pki, proxy_factory, backend_factory, tmp_path):
    be = tls_backend(backend_factory, pki)
    port = free_port()
    proxy_factory(config=config(tmp_path, port, be, "verify required ca-file %s sni "
                                "str(wrong.internal)" % pki["ca"]),
                  bind_ports=[port], nbproc=1)
    with HttpClient(port) as c:
        assert c.request("GET", "/").status == 503
    assert be.request_count == 0


@pytest.mark.parametrize("reuse", [True, False], ids=["ssl-reuse", "no-ssl-reuse"])
def test_new_connections_resume_the_tls_session(pki, proxy_factory, backend_factory, tmp_path,
                                                reuse):
    be = tls_backend(backend_factory, pki)
    port = free_port()
    # No pooling between requests: every request needs a new server connection.
    opts = "verify none pool-max-conn 0%s" % ("" if reuse else " no-ssl-reuse")
    proxy_factory(config=config(tmp_path, port, be, opts), bind_ports=[port], nbproc=1)
    for i in range(4):
        with HttpClient(port) as c:
            assert c.request("GET", "/%d" % i).status == 200
    assert len(be.connections) == 4
    assert be.tls_resumed == ([False, True, True, True] if reuse else [False] * 4)


@pytest.mark.parametrize("ca_key, want_up", [("ca", True), ("other_ca", False)],
                         ids=["right CA", "wrong CA"])
@pytest.mark.parametrize("httpchk", [False, True], ids=["tcp check", "httpchk"])
def test_health_checks_speak_tls_to_a_tls_server(pki, proxy_factory, backend_factory, tmp_path,
                                                 ca_key, want_up, httpchk):
    be = tls_backend(backend_factory, pki)
    port = free_port()
    text = config(tmp_path, port, be, "verify required ca-file %s sni str(app.internal) check "
                  "inter 200ms rise 1 fall 1" % pki[ca_key])
    if httpchk:
        text = text.replace("backend app\n", "backend app\n    option httpchk GET /health\n")
    kw = proxy_factory(config=text, bind_ports=[port], nbproc=1)
    want = ("L7OK" if httpchk else "L6OK") if want_up else "L6RSP"

    def settled(st):
        return st["backends"]["app"]["servers"]["s"]["check_status"] == want
    kw.wait_stats(settled, timeout=5, what="check status %s" % want)
    with HttpClient(port) as c:
        assert c.request("GET", "/").status == (200 if want_up else 503)
    if httpchk and want_up:
        assert any(r.target == "/health" for r in be.requests)


def test_warm_tls_connections_finish_their_handshake_then_serve(pki, proxy_factory,
                                                                backend_factory, tmp_path):
    """pool-warm-conn with ssl: the warm connections are parked while their handshake
    goes on, and serve requests afterwards (they once spun the worker: review)."""
    be = tls_backend(backend_factory, pki)
    port = free_port()
    kw = proxy_factory(config=config(tmp_path, port, be, "verify none pool-warm-conn 2"),
                       bind_ports=[port], nbproc=1)
    deadline = time.monotonic() + 5
    while len(be.connections) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(be.connections) == 2 and not be.tls_failures
    time.sleep(1.2)                       # older than the pool's liveness check age
    (pid,) = kw.worker_pids()
    ticks = _cpu_ticks(pid)
    for i in range(3):
        with HttpClient(port) as c:
            assert c.request("GET", "/w%d" % i).status == 200
    assert len(be.connections) == 2       # served on the warm ones
    time.sleep(1.0)
    assert _cpu_ticks(pid) - ticks < 50   # no busy loop (100 ticks = one CPU second)


def _cpu_ticks(pid):
    fields = open("/proc/%d/stat" % pid).read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def test_sni_read_from_each_request_picks_and_pools_connections_by_name(
        proxy_factory, backend_factory, tmp_path):
    """`sni req.hdr(host),field(1,:)` (HAProxy's recommended form): each host gets
    its own TLS connection, checked against that name and reused only by the
    requests naming it; a host the certificate does not carry is a 503."""
    ca = CA()
    ca_file = ca.write_ca(str(tmp_path / "ca.pem"))
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(ca.issue(str(tmp_path / "srv.pem"), ["a.internal", "b.internal"]))
    names = []
    ctx.sni_callback = lambda sock, sni, c: names.append(sni)
    conn_of = {}

    def answer(be, req):
        host = dict((k.lower(), v) for k, v in req.headers).get("host")
        conn_of.setdefault(host, set()).add(req.conn_id)
        return Reply(body=b"ok")
    be = backend_factory("app", answer, ssl_context=ctx)
    port = free_port()
    proxy_factory(config=config(tmp_path, port, be, "verify required ca-file %s "
                                "sni req.hdr(host),field(1,:)" % ca_file),
                  bind_ports=[port], nbproc=1)
    for host in ["a.internal", "b.internal", "a.internal", "b.internal", "a.internal:8443",
                 "a.internal"]:
        with HttpClient(port) as c:
            assert c.request("GET", "/", host=host).status == 200, host
    # a.internal's connection served its 4 requests. The pool keeps what the traffic
    # needs (one connection at a time here, HAProxy's rule), so b.internal's were
    # closed after use, never given to a request naming a.internal.
    assert names.count("a.internal") == 1 and set(names) == {"a.internal", "b.internal"}
    assert len(conn_of["a.internal"] | conn_of["a.internal:8443"]) == 1
    assert not conn_of["a.internal"] & conn_of["b.internal"]
    with HttpClient(port) as c:                   # not a name of the certificate
        assert c.request("GET", "/", host="c.internal").status == 503
    assert "c.internal" not in conn_of and names[-1] == "c.internal"


def test_an_sni_expression_is_checked_at_load(tmp_path):
    from proxy.config import ConfigError, parse
    base = ("defaults\n    mode http\nfrontend fe\n    bind 127.0.0.1:1\n"
            "    default_backend be\nbackend be\n    server s 127.0.0.1:2 ssl verify none %s\n")
    for opts, message in (("sni req.hdr(host),nosuchconv", "nosuchconv"),
                          ("sni res.hdr(x)", "res.hdr"),
                          ("sni req.hdr(host) verifyhost a.test", "verifyhost"),
                          ("sni req.hdr(host) pool-warm-conn 2", "pool-warm-conn")):
        with pytest.raises(ConfigError) as exc:
            parse(base % opts)
        assert exc.value.line == 7 and message in exc.value.message, exc.value
    parse(base % "sni req.hdr(host),field(1,:),lower check-sni health.internal")


@pytest.mark.parametrize("where, rules", [
    ("frontend", "    http-request set-header Host b.internal\n"),
    ("backend", "    http-request set-header Host b.internal\n"),
    ("backend", "    http-request set-var(txn.x) str(1)\n"
                "    http-request set-header Host b.internal\n")],
    ids=["frontend header rule", "backend header rule", "backend rules"])
def test_the_sni_expression_reads_the_request_after_its_rules(proxy_factory, backend_factory,
                                                               tmp_path, where, rules):
    """HAProxy evaluates `sni` when it connects, after the request rules: a Host
    rewritten by a rule is the name sent, however the rules are compiled."""
    ca = CA()
    ca_file = ca.write_ca(str(tmp_path / "ca.pem"))
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(ca.issue(str(tmp_path / "srv.pem"), ["b.internal"]))
    names = []
    ctx.sni_callback = lambda sock, sni, c: names.append(sni)
    be = backend_factory("app", lambda be, req: Reply(body=b"ok"), ssl_context=ctx)
    port = free_port()
    text = ("global\n    nbthread 1\n    stats socket %s\n" % (tmp_path / "kw0" / "stats.sock") +
            "defaults\n    mode http\n    timeout connect 2s\n    timeout client 5s\n"
            "    timeout server 5s\n    retries 0\n"
            "frontend fe\n    bind 127.0.0.1:%d\n%s    default_backend app\n"
            "backend app\n%s    server s 127.0.0.1:%d ssl verify required ca-file %s "
            "sni req.hdr(host),field(1,:)\n"
            % (port, rules if where == "frontend" else "", rules if where == "backend" else "",
               be.port, ca_file))
    proxy_factory(config=text, bind_ports=[port], nbproc=1)
    for _ in range(2):                          # a second request on the same connection
        with HttpClient(port) as c:
            assert c.request("GET", "/", host="a.internal").status == 200
    assert names == ["b.internal"]
