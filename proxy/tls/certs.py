"""Certificates for `bind ... ssl crt FILE|DIR`, and the choice of one by SNI.

HAProxy's rules (configuration manual, `crt`): a PEM file holds the certificate,
its chain and its key (or the key is in FILE.key beside it); a directory loads
every certificate file in it, in name order; a client's SNI picks the
certificate whose names (SAN DNS names, else the CN) match it exactly, else by
wildcard (`*.example.com` for one label), else the first certificate loaded is
the default. One name may have an RSA and an ECDSA certificate: the client gets
the one its signature algorithms allow (OpenSSL chooses, both are in one
context).

Reading a certificate's names and key type is X.509 parsing, done by the
`cryptography` package; the TLS itself is the standard library's `ssl`.
Everything here happens at load: a bad file is a `TLSConfigError` with the
reason, never a worker that fails later.
"""

from __future__ import annotations

import os
import ssl
from typing import Callable, Dict, List, Optional, Tuple

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

# Files a `crt DIR` skips: keys, chains and OCSP/sctl extras sit beside certificates.
_SKIPPED = (".key", ".ocsp", ".issuer", ".sctl", ".csr")


class TLSConfigError(Exception):
    def __init__(self, message: str, hint: Optional[str] = None):
        super().__init__(message)
        self.message = message
        self.hint = hint


class Cert:
    """One certificate file: its path, the key's path, names and key type."""

    __slots__ = ("path", "key_path", "names", "key_type")

    def __init__(self, path: str, key_path: Optional[str], names: Tuple[str, ...],
                 key_type: str):
        self.path = path
        self.key_path = key_path
        self.names = names
        self.key_type = key_type


def _read(path: str) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as exc:
        raise TLSConfigError("unable to load SSL certificate from PEM file '%s': %s"
                             % (path, exc.strerror)) from None


def load_cert(path: str) -> Cert:
    """Read `path` (PEM: certificate first, then its chain, the key here or in
    PATH.key) into a Cert; TLSConfigError when it is not one."""
    data = _read(path)
    try:
        cert = x509.load_pem_x509_certificate(data)
    except ValueError:
        raise TLSConfigError("unable to load SSL certificate from PEM file '%s': no "
                             "certificate found" % path,
                             "the file holds the certificate, its chain and its key, PEM") \
            from None
    key_path = None
    if b"PRIVATE KEY-----" not in data:
        key_path = path + ".key"
        if not os.path.exists(key_path):
            base = os.path.splitext(path)[0] + ".key"
            key_path = base if os.path.exists(base) else None
        if key_path is None:
            raise TLSConfigError("unable to load SSL private key from PEM file '%s'" % path,
                                 "put the key in the same file, or in '%s.key'" % path)
    names: List[str] = []
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
        names = [n.lower() for n in san.value.get_values_for_type(x509.DNSName)]
    except x509.ExtensionNotFound:
        pass
    if not names:
        names = [a.value.lower() for a in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
                 if isinstance(a.value, str)]
    pub = cert.public_key()
    key_type = "ecdsa" if isinstance(pub, ec.EllipticCurvePublicKey) else \
        "rsa" if isinstance(pub, rsa.RSAPublicKey) else "other"
    return Cert(path, key_path, tuple(names), key_type)


def load_crt(path: str) -> List[Cert]:
    """`crt PATH`: one file, or every certificate file of a directory in name order."""
    if os.path.isdir(path):
        certs = []
        for name in sorted(os.listdir(path)):
            full = os.path.join(path, name)
            if name.startswith(".") or name.endswith(_SKIPPED) or not os.path.isfile(full):
                continue
            certs.append(load_cert(full))
        if not certs:
            raise TLSConfigError("no certificate found in directory '%s'" % path)
        return certs
    return [load_cert(path)]


class CertStore:
    """The certificates of one `bind` line, and one SSLContext per group of
    certificates that serve the same names (RSA and ECDSA side by side).

    ``make_context()`` gives a fresh server context with the bind's settings
    (protocol versions, ciphers, verify...); the store loads certificates into
    copies of it and points the default one's SNI callback at the others."""

    def __init__(self, certs: List[Cert], make_context: Callable[[], ssl.SSLContext],
                 strict_sni: bool = False):
        if not certs:
            raise TLSConfigError("'ssl' on a 'bind' line needs at least one 'crt'",
                                 "e.g. 'bind :443 ssl crt /etc/haproxy/site.pem'")
        self.certs = certs
        self.strict_sni = strict_sni     # no certificate for the SNI (or none sent): refused
        groups: Dict[Tuple[str, ...], List[Cert]] = {}
        for cert in certs:
            groups.setdefault(cert.names, []).append(cert)
        self.contexts: Dict[Tuple[str, ...], ssl.SSLContext] = {}
        for names, group in groups.items():
            ctx = make_context()
            seen = set()
            for cert in group:
                if cert.key_type in seen:
                    continue             # the first of a key type serves these names
                seen.add(cert.key_type)
                try:
                    ctx.load_cert_chain(cert.path, cert.key_path)
                except (ssl.SSLError, OSError) as exc:
                    raise TLSConfigError("unable to load SSL certificate '%s': %s"
                                         % (cert.path, getattr(exc, "reason", None) or exc),
                                         "is the key the certificate's own?") from None
            self.contexts[names] = ctx
        self.exact: Dict[str, ssl.SSLContext] = {}
        self.wild: Dict[str, ssl.SSLContext] = {}
        for cert in certs:
            ctx = self.contexts[cert.names]
            for name in cert.names:
                if name.startswith("*."):
                    self.wild.setdefault(name[2:], ctx)
                else:
                    self.exact.setdefault(name, ctx)
        self.default = self.contexts[certs[0].names]
        self.default.sni_callback = self._on_sni

    def context_for(self, server_name: Optional[str]) -> ssl.SSLContext:
        """The context whose certificate answers `server_name` (None: no SNI)."""
        if server_name:
            name = server_name.lower().rstrip(".")
            ctx = self.exact.get(name)
            if ctx is not None:
                return ctx
            dot = name.find(".")
            if dot > 0:
                ctx = self.wild.get(name[dot + 1:])
                if ctx is not None:
                    return ctx
        return self.default

    def matches(self, server_name: Optional[str]) -> bool:
        """Does a certificate name `server_name` (not just the default)?"""
        if not server_name:
            return False
        name = server_name.lower().rstrip(".")
        dot = name.find(".")
        return name in self.exact or (dot > 0 and name[dot + 1:] in self.wild)

    def _on_sni(self, sslobj, server_name, ctx):
        sslobj.sni = server_name         # what ssl_fc_sni fetches (OpenSSL keeps it too,
        #                                  but the ssl module does not show it)
        if self.strict_sni and not self.matches(server_name):
            return ssl.ALERT_DESCRIPTION_UNRECOGNIZED_NAME
        chosen = self.context_for(server_name)
        if chosen is not ctx:
            sslobj.context = chosen
        return None
