"""TLS for keepwarm's frontends (issue 16): `bind ... ssl` options, certificates
and their choice by SNI, as SSLContexts made at load. The standard library's
`ssl` (OpenSSL) does the cryptography; `cryptography` reads certificates."""

from .certs import Cert, CertStore, TLSConfigError, load_cert, load_crt
from .options import BindTLS, cert_store, context_factory, parse_bind_tls

__all__ = ["BindTLS", "Cert", "CertStore", "TLSConfigError", "cert_store", "context_factory",
           "load_cert", "load_crt", "parse_bind_tls"]
