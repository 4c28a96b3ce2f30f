"""TLS towards servers: `server ... ssl [verify ...] [ca-file ...] [sni ...]`,
parsed once into a `ServerTLS`, and the client SSLContext it describes.

HAProxy 2.6's rules: `ssl` turns TLS on for the connections and, unless
`no-check-ssl`, for the health checks; `verify` defaults to `required`
(global `ssl-server-verify`), which needs a `ca-file` (a load error
otherwise, as in HAProxy); `sni` names the server: a constant, `str(NAME)`, or
an expression read from each request (`req.hdr(host),field(1,:)`: the config
parser compiles it, and a connection then serves only requests that name the
same host); with `verify required` the certificate must match that name, or
`verifyhost` when given. `check-sni` is a plain name, as in HAProxy.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass, field
from typing import List, Optional, Tuple

from .certs import TLSConfigError
from .options import LISTS, VERSIONS, _load_verify, apply_lists, check_list, options, path_in

# Words of a server line that belong to TLS (and whether they take an argument).
SERVER_TLS_WORDS = {
    "ssl": False, "no-ssl": False, "verify": True, "ca-file": True, "crl-file": True,
    "crt": True, "sni": True, "alpn": True, "no-ssl-reuse": False, "ssl-reuse": False,
    "ssl-min-ver": True, "ssl-max-ver": True, "ciphers": True, "ciphersuites": True,
    "curves": True, "sigalgs": True, "client-sigalgs": True,
    "verifyhost": True, "check-ssl": False, "no-check-ssl": False, "check-sni": True,
    "no-tls-tickets": False, "tls-tickets": False,
}


@dataclass(frozen=True)
class ServerTLS:
    """What one server line asks of TLS towards its server."""

    verify: bool = True
    ca_file: Optional[str] = None
    crl_file: Optional[str] = None
    crt: Optional[str] = None             # a client certificate (PEM: cert + key)
    sni: Optional[str] = None
    verifyhost: Optional[str] = None
    alpn: Tuple[str, ...] = ()
    reuse: bool = True                    # resume TLS sessions on new connections
    min_ver: Optional[str] = None
    max_ver: Optional[str] = None
    ciphers: Optional[str] = None
    suites: Optional[str] = None          # TLS 1.3 (ciphersuites)
    curves: Optional[str] = None
    sigalgs: Optional[str] = None
    client_sigalgs: Optional[str] = None
    tickets: bool = True
    check: bool = True                    # health checks over TLS too
    check_sni: Optional[str] = None
    sni_expr: Optional[str] = None        # `sni <expression>`, read per request
    sni_fetch: object = field(default=None, compare=False)   # its compiled Expr

    @property
    def hostname(self) -> Optional[str]:
        """The name sent as SNI, which the certificate must carry when verified
        (`verifyhost` takes its place when given; None: neither SNI nor a
        name check, the chain alone is verified, as in HAProxy)."""
        return self.verifyhost or self.sni


def parse_server_tls(words: List[str], defaults=(), ca_base: Optional[str] = None,
                     crt_base: Optional[str] = None,
                     server_verify: str = "required") -> Optional[ServerTLS]:
    """The TLS words of a server line (default-server's first), over global's
    ssl-default-server-*; None when the server is not reached over TLS."""
    v = {"alpn": (), "verify": server_verify != "none"}
    for kw, args in defaults:
        if kw == "ssl-default-server-options":
            _apply(v, list(args), ca_base, crt_base, "ssl-default-server-options")
        elif kw == "ssl-default-server-ciphers":
            v["ciphers"] = args[0] if args else None
        elif kw.startswith("ssl-default-server-") and kw[19:] in LISTS:
            v[LISTS[kw[19:]]] = check_list(kw[19:], args[0] if args else "")
    _apply(v, words, ca_base, crt_base, "server")
    if not v.get("ssl"):
        return None
    if v.get("verifyhost") and v.get("sni_expr"):
        raise TLSConfigError("'verifyhost %s' with 'sni %s': keepwarm checks the certificate "
                             "against the name it sends" % (v["verifyhost"], v["sni_expr"]),
                             "leave 'verifyhost' out: with 'verify required' each "
                             "connection's SNI name is checked")
    if v.get("verifyhost") and v.get("sni") and v["verifyhost"] != v["sni"]:
        raise TLSConfigError("'verifyhost %s' and 'sni str(%s)' name different hosts"
                             % (v["verifyhost"], v["sni"]),
                             "keepwarm checks the certificate against the name it sends as "
                             "SNI (Python's ssl does both with one name): name one host")
    if v["verify"] and not v.get("ca_file"):
        raise TLSConfigError("verify is enabled by default but no CA file specified",
                             "add 'ca-file FILE' (the CA that signed the server's "
                             "certificate), or 'verify none' to accept any certificate")
    return ServerTLS(verify=v["verify"], ca_file=v.get("ca_file"), crl_file=v.get("crl_file"),
                     crt=v.get("crt"), sni=v.get("sni"), verifyhost=v.get("verifyhost"),
                     alpn=tuple(v["alpn"]), reuse=v.get("reuse", True),
                     min_ver=v.get("min_ver"), max_ver=v.get("max_ver"),
                     ciphers=v.get("ciphers"), suites=v.get("suites"),
                     curves=v.get("curves"), sigalgs=v.get("sigalgs"),
                     client_sigalgs=v.get("client_sigalgs"), tickets=v.get("tickets", True),
                     check=v.get("check", True), check_sni=v.get("check_sni"),
                     sni_expr=v.get("sni_expr"))


def _apply(v, words, ca_base, crt_base, where):
    for kw, arg in options(words, SERVER_TLS_WORDS, where):
        if kw in ("ssl", "no-ssl"):
            v["ssl"] = kw == "ssl"
        elif kw == "verify":
            if arg not in ("none", "required"):
                raise TLSConfigError("'verify' expects 'none' or 'required', found '%s'" % arg)
            v["verify"] = arg == "required"
        elif kw in ("ca-file", "crl-file"):
            v[kw.replace("-", "_")] = path_in(ca_base, arg)
        elif kw == "crt":
            v["crt"] = path_in(crt_base, arg)
        elif kw == "sni":
            name = _constant_sni(arg)
            v["sni"], v["sni_expr"] = (name, None) if name is not None else (None, arg)
        elif kw == "check-sni":
            v["check_sni"] = arg
        elif kw == "verifyhost":
            v["verifyhost"] = arg
        elif kw == "alpn":
            protos = arg.split(",")
            if any(p != "http/1.1" for p in protos):
                raise TLSConfigError("'alpn %s': keepwarm speaks HTTP/1.1 to servers" % arg,
                                     "use 'alpn http/1.1', or leave it out")
            v["alpn"] = protos
        elif kw in ("no-ssl-reuse", "ssl-reuse"):
            v["reuse"] = kw == "ssl-reuse"
        elif kw in ("ssl-min-ver", "ssl-max-ver"):
            if arg not in VERSIONS:
                raise TLSConfigError("'%s': unknown version '%s'" % (kw, arg),
                                     "one of %s" % ", ".join(VERSIONS))
            v["min_ver" if kw == "ssl-min-ver" else "max_ver"] = arg
        elif kw == "ciphers":
            v["ciphers"] = arg
        elif kw in LISTS:
            v[LISTS[kw]] = check_list(kw, arg)
        elif kw in ("check-ssl", "no-check-ssl"):
            v["check"] = kw == "check-ssl"
        elif kw in ("no-tls-tickets", "tls-tickets"):
            v["tickets"] = kw == "tls-tickets"


def _constant_sni(arg):
    """The name of `sni str(NAME)`; None for another expression."""
    if arg.startswith("str(") and arg.endswith(")") and "," not in arg:
        return arg[4:-1]
    return None


_CONTEXTS: List[Tuple[ServerTLS, bool, ssl.SSLContext]] = []   # by identity, as certs'


def client_context(tls: ServerTLS, named: bool) -> ssl.SSLContext:
    """The client SSLContext for `tls` (made once per parsed server line) for
    connections that send a name (`named`: the certificate must carry it, with
    `verify required`), or none (an `sni` expression that found nothing, a
    health check without `check-sni`): then the chain alone is verified, as in
    HAProxy."""
    for known, kind, ctx in _CONTEXTS:
        if known is tls and kind == named:
            return ctx
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = bool(tls.verify and named)
    ctx.verify_mode = ssl.CERT_REQUIRED if tls.verify else ssl.CERT_NONE
    try:
        if tls.min_ver:
            ctx.minimum_version = VERSIONS[tls.min_ver]
        if tls.max_ver:
            ctx.maximum_version = VERSIONS[tls.max_ver]
    except ValueError as exc:
        raise TLSConfigError("this OpenSSL cannot use %s: %s" % (tls.min_ver, exc)) from None
    if tls.ciphers:
        try:
            ctx.set_ciphers(tls.ciphers)
        except ssl.SSLError:
            raise TLSConfigError("'ciphers %s': no cipher can be selected" % tls.ciphers) \
                from None
    apply_lists(ctx, tls)
    if not tls.tickets:
        ctx.options |= ssl.OP_NO_TICKET
    if tls.alpn:
        ctx.set_alpn_protocols(list(tls.alpn))
    if tls.ca_file:
        _load_verify(ctx, tls.ca_file, "ca-file")
    if tls.crl_file:
        _load_verify(ctx, tls.crl_file, "crl-file")
        ctx.verify_flags |= ssl.VERIFY_CRL_CHECK_LEAF
    if tls.crt:
        try:
            ctx.load_cert_chain(tls.crt)
        except (OSError, ssl.SSLError) as exc:
            raise TLSConfigError("'crt %s': %s" % (tls.crt, getattr(exc, "strerror", None)
                                                   or getattr(exc, "reason", None) or exc),
                                 "the file holds the client certificate and its key, PEM") \
                from None
    _CONTEXTS.append((tls, named, ctx))
    del _CONTEXTS[:-256]
    return ctx
