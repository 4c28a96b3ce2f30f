"""`bind ... ssl` options and certificates (proxy/tls): real TLS handshakes on
127.0.0.1 between the contexts keepwarm makes and Python's ssl client, with
certificates the tests generate."""

import shutil
import socket
import subprocess
import ssl
import threading

import pytest

from proxy.tls import TLSConfigError, cert_store, parse_bind_tls
from tests.support.certs import CA

DEBIAN_DEFAULTS = (
    ("ssl-default-bind-ciphers", ("ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
                                  "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384",)),
    ("ssl-default-bind-ciphersuites", ("TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:"
                                       "TLS_CHACHA20_POLY1305_SHA256",)),
    ("ssl-default-bind-options", ("ssl-min-ver", "TLSv1.2", "no-tls-tickets")),
)


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    d = tmp_path_factory.mktemp("pki")
    ca = CA()
    files = {
        "ca": ca.write_ca(str(d / "ca.pem")),
        "default": ca.issue(str(d / "certs" / "00-default.pem"), ["default.test"]),
        "www": ca.issue(str(d / "certs" / "10-www.pem"), ["www.example.test"]),
        "wild": ca.issue(str(d / "certs" / "20-wild.pem"), ["*.apps.test"]),
        "dual_rsa": ca.issue(str(d / "dual-rsa.pem"), ["dual.test"], kind="rsa"),
        "dual_ec": ca.issue(str(d / "dual-ec.pem"), ["dual.test"], kind="ecdsa"),
        "apart": ca.issue(str(d / "apart.pem"), ["apart.test"], key_apart=True),
        "client": ca.issue(str(d / "client.pem"), [], cn="alice", client=True),
    }
    files["dir"] = str(d / "certs")
    return files


def handshake(store, sni=None, ca=None, client_ctx=None, client_cert=None, alpn=None):
    """One TLS handshake on 127.0.0.1: (the server's certificate names, the
    negotiated version, ALPN, cipher) as the client sees them, or the server's
    error (an exception) when it fails."""
    lsock = socket.socket()
    lsock.settimeout(5)
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(1)
    result = {}

    def serve():
        try:
            conn, _ = lsock.accept()
            conn.settimeout(5)
            with store.default.wrap_socket(conn, server_side=True) as tls:
                result["server_peer"] = tls.getpeercert()
                tls.sendall(b"ok")
        except (OSError, ssl.SSLError) as exc:
            result["server_error"] = exc

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    ctx = client_ctx or ssl.create_default_context(cafile=ca)
    if client_cert:
        ctx.load_cert_chain(client_cert)
    if alpn:
        ctx.set_alpn_protocols(alpn)
    if sni is None:
        ctx.check_hostname = False
    try:
        with socket.create_connection(lsock.getsockname(), timeout=5) as raw:
            with ctx.wrap_socket(raw, server_hostname=sni) as tls:
                cert = tls.getpeercert()
                got = (tuple(v for k, v in cert.get("subjectAltName", ()) if k == "DNS"),
                       tls.version(), tls.selected_alpn_protocol(), tls.cipher()[0])
                tls.recv(2)
    except (OSError, ssl.SSLError) as exc:
        got = exc
    finally:
        t.join(5)
        lsock.close()
    return got, result


def test_sni_picks_exact_then_wildcard_then_the_first_loaded(pki):
    store = cert_store(parse_bind_tls(["ssl", "crt", pki["dir"]]))
    assert handshake(store, "www.example.test", pki["ca"])[0][0] == ("www.example.test",)
    assert handshake(store, "WWW.Example.Test", pki["ca"])[0][0] == ("www.example.test",)
    assert handshake(store, "x.apps.test", pki["ca"])[0][0] == ("*.apps.test",)
    # Not the wildcard's: two labels deep; and no SNI at all: the first file's.
    ctx = ssl.create_default_context(cafile=pki["ca"])
    ctx.check_hostname = False
    assert handshake(store, "a.b.apps.test", client_ctx=ctx)[0][0] == ("default.test",)
    assert handshake(store, None, pki["ca"])[0][0] == ("default.test",)


def test_rsa_and_ecdsa_for_one_name_each_to_the_client_that_takes_it(pki):
    store = cert_store(parse_bind_tls(["ssl", "crt", pki["dual_rsa"], "crt", pki["dual_ec"]]))
    for suite, want in (("ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-ECDSA"),
                        ("ECDHE-RSA-AES128-GCM-SHA256", "ECDHE-RSA")):
        ctx = ssl.create_default_context(cafile=pki["ca"])
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
        ctx.set_ciphers(suite)
        got, _ = handshake(store, "dual.test", client_ctx=ctx)
        assert got[0] == ("dual.test",) and got[3].startswith(want), got


def test_the_key_may_sit_beside_the_certificate(pki):
    store = cert_store(parse_bind_tls(["ssl", "crt", pki["apart"]]))
    assert handshake(store, "apart.test", pki["ca"])[0][0] == ("apart.test",)


def test_a_certificate_without_its_key_is_a_load_error(pki, tmp_path):
    only_cert = tmp_path / "nokey.pem"
    only_cert.write_bytes(open(pki["www"], "rb").read().split(b"-----BEGIN PRIVATE")[0])
    with pytest.raises(TLSConfigError, match="private key"):
        cert_store(parse_bind_tls(["ssl", "crt", str(only_cert)]))
    with pytest.raises(TLSConfigError, match="unable to load"):
        cert_store(parse_bind_tls(["ssl", "crt", str(tmp_path / "missing.pem")]))
    with pytest.raises(TLSConfigError, match="needs a certificate"):
        parse_bind_tls(["ssl"])


def test_the_protocol_floor_refuses_an_older_client(pki):
    ctx = ssl.create_default_context(cafile=pki["ca"])
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    store = cert_store(parse_bind_tls(["ssl", "crt", pki["www"]]))
    assert handshake(store, "www.example.test", client_ctx=ctx)[0][1] == "TLSv1.2"
    store = cert_store(parse_bind_tls(["ssl", "crt", pki["www"], "ssl-min-ver", "TLSv1.3"]))
    got, server = handshake(store, "www.example.test", client_ctx=ctx)
    assert isinstance(got, (OSError, ssl.SSLError))
    assert isinstance(server.get("server_error"), ssl.SSLError)


def test_debian_defaults_load_and_negotiate(pki):
    tls = parse_bind_tls(["ssl", "crt", pki["www"]], DEBIAN_DEFAULTS)
    assert tls.min_ver == "TLSv1.2" and not tls.tickets
    got, _ = handshake(cert_store(tls), "www.example.test", pki["ca"])
    assert got[1] == "TLSv1.3"


def test_lists_openssl_does_not_take_are_refused_with_a_hint():
    for opt, bad in (("ciphersuites", "TLS_AES_999_GCM"), ("curves", "X25519:NOPE"),
                     ("sigalgs", "RSA+MD99"), ("client-sigalgs", "nothing")):
        with pytest.raises(TLSConfigError, match="OpenSSL takes none") as exc:
            parse_bind_tls(["ssl", "crt", "x.pem", opt, bad])
        assert exc.value.hint
    with pytest.raises(TLSConfigError, match="not supported"):
        parse_bind_tls(["ssl", "crt", "x.pem", "ocsp-update", "on"])
    with pytest.raises(TLSConfigError, match="unknown version"):
        parse_bind_tls(["ssl", "crt", "x.pem", "ssl-min-ver", "TLSv9"])


def test_alpn_offers_http11_only_and_says_so(pki):
    tls = parse_bind_tls(["ssl", "crt", pki["www"], "alpn", "h2,http/1.1"])
    assert tls.alpn == ("http/1.1",) and "HTTP/1.1 only" in tls.warnings[0]
    store = cert_store(tls)
    assert handshake(store, "www.example.test", pki["ca"],
                     alpn=["h2", "http/1.1"])[0][2] == "http/1.1"
    assert handshake(store, "www.example.test", pki["ca"], alpn=["h2"])[0][2] is None


def test_client_certificates_when_verify_required(pki):
    tls = parse_bind_tls(["ssl", "crt", pki["www"], "verify", "required", "ca-file", pki["ca"]])
    store = cert_store(tls)
    got, server = handshake(store, "www.example.test", pki["ca"], client_cert=pki["client"])
    assert got[0] == ("www.example.test",)
    assert dict(x[0] for x in server["server_peer"]["subject"])["commonName"] == "alice"
    got, server = handshake(store, "www.example.test", pki["ca"])
    assert isinstance(server.get("server_error"), ssl.SSLError)
    with pytest.raises(TLSConfigError, match="ca-file"):
        cert_store(parse_bind_tls(["ssl", "crt", pki["www"], "verify", "optional"]))


def test_strict_sni_refuses_a_name_no_certificate_has(pki):
    store = cert_store(parse_bind_tls(["ssl", "crt", pki["dir"], "strict-sni"]))
    assert handshake(store, "x.apps.test", pki["ca"])[0][0] == ("*.apps.test",)
    ctx = ssl.create_default_context(cafile=pki["ca"])
    ctx.check_hostname = False
    got, server = handshake(store, "nobody.test", client_ctx=ctx)
    assert isinstance(got, ssl.SSLError) and isinstance(server.get("server_error"), ssl.SSLError)
    got, server = handshake(store, None, client_ctx=ctx)
    assert isinstance(got, ssl.SSLError)


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl not installed")
def test_dh_parameters_load_at_the_bind_and_a_weak_file_is_refused(pki, tmp_path):
    weak = tmp_path / "dh1024.pem"
    subprocess.run(["openssl", "dhparam", "-out", str(weak), "1024"], capture_output=True,
                   timeout=60, check=True)
    tls = parse_bind_tls(["ssl", "crt", pki["www"]], dh_file=str(weak))
    with pytest.raises(TLSConfigError, match="ssl-dh-param-file.*too small"):
        cert_store(tls)
    with pytest.raises(TLSConfigError, match="ssl-dh-param-file"):
        cert_store(parse_bind_tls(["ssl", "crt", pki["www"]], dh_file=str(tmp_path / "no")))


def test_crt_list_lines_with_sni_filters_and_alpn(pki, tmp_path):
    listing = tmp_path / "certs.list"
    listing.write_text(
        "# default first\n"
        "%s\n"
        "%s [alpn http/1.1] www.example.test alias.test\n"
        "%s *.apps.test !secret.apps.test\n" % (pki["default"], pki["www"], pki["wild"]))
    store = cert_store(parse_bind_tls(["ssl", "crt-list", str(listing)]))
    ctx = ssl.create_default_context(cafile=pki["ca"])
    ctx.check_hostname = False
    names = lambda sni: handshake(store, sni, client_ctx=ctx)[0][0]   # noqa: E731
    assert names("alias.test") == ("www.example.test",)        # the filter, not the cert
    assert names("x.apps.test") == ("*.apps.test",)
    assert names("secret.apps.test") == ("default.test",)      # excluded: the default
    assert names("none.test") == ("default.test",)
    # The line's ALPN applies to its certificate only.
    alpn_ctx = ssl.create_default_context(cafile=pki["ca"])
    alpn_ctx.check_hostname = False
    alpn_ctx.set_alpn_protocols(["http/1.1"])
    assert handshake(store, "alias.test", client_ctx=alpn_ctx)[0][2] == "http/1.1"
    assert handshake(store, "none.test", client_ctx=alpn_ctx)[0][2] is None


def test_crt_list_refuses_what_a_line_cannot_change(pki, tmp_path):
    listing = tmp_path / "bad.list"
    listing.write_text("%s [ssl-min-ver TLSv1.3] www.example.test\n" % pki["www"])
    with pytest.raises(TLSConfigError, match="line 1.*ssl-min-ver") as exc:
        cert_store(parse_bind_tls(["ssl", "crt-list", str(listing)]))
    assert "bind line" in exc.value.hint
    with pytest.raises(TLSConfigError, match="unable to open crt-list"):
        cert_store(parse_bind_tls(["ssl", "crt-list", str(tmp_path / "missing")]))
