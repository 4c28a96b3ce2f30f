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


class Entry:
    """A certificate as one bind serves it: the names it answers (its own, or a
    crt-list line's SNI filters), the names it must not (`!name` filters), and
    the context factory of its settings (a crt-list line may change them)."""

    __slots__ = ("cert", "names", "excluded", "make")

    def __init__(self, cert: Cert, make: Callable[[], ssl.SSLContext],
                 names: Optional[Tuple[str, ...]] = None, excluded: Tuple[str, ...] = ()):
        self.cert = cert
        self.names = cert.names if names is None else names
        self.excluded = excluded
        self.make = make


class CertStore:
    """The certificates of one `bind` line, and one SSLContext per group of
    certificates that serve the same names with the same settings (RSA and
    ECDSA side by side); the first one's context is the default, whose SNI
    callback points a handshake at the others."""

    def __init__(self, entries: List[Entry], strict_sni: bool = False):
        if not entries:
            raise TLSConfigError("'ssl' on a 'bind' line needs at least one 'crt'",
                                 "e.g. 'bind :443 ssl crt /etc/haproxy/site.pem'")
        self.entries = entries
        self.strict_sni = strict_sni     # no certificate for the SNI (or none sent): refused
        groups: Dict[tuple, List[Entry]] = {}
        for e in entries:
            groups.setdefault((e.names, e.excluded, e.make), []).append(e)
        contexts: Dict[tuple, ssl.SSLContext] = {}
        for key, group in groups.items():
            ctx = group[0].make()
            seen = set()
            for e in group:
                cert = e.cert
                if cert.key_type in seen:
                    continue             # the first of a key type serves these names
                seen.add(cert.key_type)
                try:
                    ctx.load_cert_chain(cert.path, cert.key_path)
                except (ssl.SSLError, OSError) as exc:
                    raise TLSConfigError("unable to load SSL certificate '%s': %s"
                                         % (cert.path, getattr(exc, "reason", None) or exc),
                                         "is the key the certificate's own?") from None
            contexts[key] = ctx
        self.exact: Dict[str, ssl.SSLContext] = {}
        self.wild: Dict[str, List[Tuple[ssl.SSLContext, Tuple[str, ...]]]] = {}
        for e in entries:
            ctx = contexts[(e.names, e.excluded, e.make)]
            for name in e.names:
                name = name.lower()
                if name.startswith("*."):
                    self.wild.setdefault(name[2:], []).append((ctx, e.excluded))
                else:
                    self.exact.setdefault(name, ctx)
        self.contexts = list(contexts.values())
        first = entries[0]
        self.default = contexts[(first.names, first.excluded, first.make)]
        self.default.sni_callback = self._on_sni

    def _find(self, server_name: Optional[str]) -> Optional[ssl.SSLContext]:
        if not server_name:
            return None
        name = server_name.lower().rstrip(".")
        ctx = self.exact.get(name)
        if ctx is not None:
            return ctx
        dot = name.find(".")
        if dot > 0:
            for ctx, excluded in self.wild.get(name[dot + 1:], ()):
                if name not in excluded:
                    return ctx
        return None

    def context_for(self, server_name: Optional[str]) -> ssl.SSLContext:
        """The context whose certificate answers `server_name` (exact, then a
        one-label wildcard, else the default; None: no SNI)."""
        return self._find(server_name) or self.default

    def matches(self, server_name: Optional[str]) -> bool:
        """Does a certificate name `server_name` (not just the default)?"""
        return self._find(server_name) is not None

    def _on_sni(self, sslobj, server_name, ctx):
        sslobj.sni = server_name         # what ssl_fc_sni fetches (OpenSSL keeps it too,
        #                                  but the ssl module does not show it)
        chosen = self._find(server_name)
        if chosen is None:
            if self.strict_sni:
                return ssl.ALERT_DESCRIPTION_UNRECOGNIZED_NAME
            chosen = self.default
        if chosen is not ctx:
            sslobj.context = chosen
        return None
