"""Certificates made by the tests (never committed keys): a CA, and server or
client certificates it signs, written as HAProxy's PEM files (cert, chain, key)."""

import datetime
import os

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


def _key(kind):
    if kind == "ecdsa":
        return ec.generate_private_key(ec.SECP256R1())
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _pem_key(key):
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


class CA:
    """A throwaway certificate authority."""

    def __init__(self, name="keepwarm test CA"):
        self.key = _key("ecdsa")
        self.name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        now = datetime.datetime.now(datetime.timezone.utc)
        self.cert = (x509.CertificateBuilder().subject_name(self.name).issuer_name(self.name)
                     .public_key(self.key.public_key()).serial_number(x509.random_serial_number())
                     .not_valid_before(now - datetime.timedelta(days=1))
                     .not_valid_after(now + datetime.timedelta(days=30))
                     .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
                     .sign(self.key, hashes.SHA256()))

    def pem(self):
        return self.cert.public_bytes(serialization.Encoding.PEM)

    def write_ca(self, path):
        with open(path, "wb") as f:
            f.write(self.pem())
        return path

    def issue(self, path, names=(), cn=None, kind="rsa", client=False, key_apart=False):
        """Write a certificate for `names` (SAN DNS names; `cn` the subject's CN),
        its chain (the CA) and its key to `path` (the key to PATH.key if
        `key_apart`); returns `path`."""
        key = _key(kind)
        now = datetime.datetime.now(datetime.timezone.utc)
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME,
                                                cn or (names[0] if names else "client"))])
        b = (x509.CertificateBuilder().subject_name(subject).issuer_name(self.name)
             .public_key(key.public_key()).serial_number(x509.random_serial_number())
             .not_valid_before(now - datetime.timedelta(days=1))
             .not_valid_after(now + datetime.timedelta(days=30)))
        if names:
            b = b.add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]),
                                False)
        usage = ExtendedKeyUsageOID.CLIENT_AUTH if client else ExtendedKeyUsageOID.SERVER_AUTH
        b = b.add_extension(x509.ExtendedKeyUsage([usage]), False)
        cert = b.sign(self.key, hashes.SHA256())
        body = cert.public_bytes(serialization.Encoding.PEM) + self.pem()
        if key_apart:
            with open(path + ".key", "wb") as f:
                f.write(_pem_key(key))
        else:
            body += _pem_key(key)
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        with open(path, "wb") as f:
            f.write(body)
        return path
