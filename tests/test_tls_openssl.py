"""proxy/tls/openssl.py on real TLS handshakes over 127.0.0.1 (Python's ssl on
both sides): ticket keys shared by two contexts (as by two workers), a key ring
that fails (the handshake goes on without a ticket, nothing printed), and the
lists Python's ssl has no call for."""

import os
import socket
import ssl
import threading

import pytest

from proxy.tls import openssl
from tests.support.certs import CA

pytestmark = pytest.mark.skipif(openssl.unavailable() is not None,
                                reason="no access to Python's OpenSSL here")


@pytest.fixture(scope="module")
def pem(tmp_path_factory):
    return CA().issue(str(tmp_path_factory.mktemp("c") / "s.pem"), ["s.test"])


def server(pem, ring):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(pem)
    openssl.use_ticket_keys(ctx, ring)
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    listener.settimeout(5)

    def serve():
        with listener:
            for _ in range(3):
                try:
                    conn, _ = listener.accept()
                except OSError:
                    return
                conn.settimeout(5)
                try:
                    with ctx.wrap_socket(conn, server_side=True) as tls:
                        tls.recv(10)
                        tls.sendall(b"ok")
                except (ssl.SSLError, OSError):
                    pass
    threading.Thread(target=serve, daemon=True).start()
    return listener.getsockname()[1]


_CLIENTS = {}


def hello(port, version, session=None):
    ctx = _CLIENTS.get(version)
    if ctx is None:                     # one per version: a session resumes with its own
        ctx = _CLIENTS[version] = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
        ctx.maximum_version = version
    with ctx.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=5),
                         session=session) as s:
        s.sendall(b"hi")
        assert s.recv(10) == b"ok"
        return s.session_reused, s.session


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3])
def test_two_contexts_with_one_ring_resume_each_others_sessions(pem, version):
    keys = tuple(openssl.TicketKey(os.urandom(n)) for n in (80, 80, 80))
    a, b = server(pem, lambda: keys), server(pem, lambda: keys)
    reused, session = hello(a, version)
    assert not reused
    assert hello(b, version, session)[0] and hello(a, version, session)[0]
    other = tuple(openssl.TicketKey(os.urandom(48)) for _ in range(3))
    c = server(pem, lambda: other)                # other keys: a full handshake
    assert not hello(c, version, session)[0]


def test_a_failing_ring_costs_the_ticket_not_the_handshake(pem, capfd):
    def broken():
        raise RuntimeError("no keys")
    port = server(pem, broken)
    reused, session = hello(port, ssl.TLSVersion.TLSv1_2)
    assert not reused and not hello(port, ssl.TLSVersion.TLSv1_2, session)[0]
    assert "no keys" not in capfd.readouterr().err


def test_lists_openssl_does_not_take_are_reported():
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    assert openssl.set_ciphersuites(ctx, "TLS_CHACHA20_POLY1305_SHA256")
    assert not openssl.set_ciphersuites(ctx, "TLS_NOPE")
    assert openssl.set_groups(ctx, "X25519:P-256") and not openssl.set_groups(ctx, "P-999")
    assert openssl.set_sigalgs(ctx, "ECDSA+SHA256:RSA-PSS+SHA256")
    assert not openssl.set_sigalgs(ctx, "RSA+MD99", client=True)
    with pytest.raises(ValueError):
        openssl.TicketKey(b"short")
