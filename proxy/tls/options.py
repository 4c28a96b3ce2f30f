"""The TLS options of a `bind` line (and `global`'s ssl-default-bind-*), parsed
once into a `BindTLS`, and the server SSLContext they describe.

HAProxy 2.6's names and meanings (configuration manual 5.1). What the standard
library's `ssl` module has no call for (TLS 1.3 suites, the groups and
signature algorithm lists, session-ticket keys) is set through
proxy/tls/openssl.py; where that cannot work, it is refused with why, never
accepted and ignored. `npn` is obsolete: warned about, not offered.
"""

from __future__ import annotations

import hashlib
import os
import ssl
from dataclasses import dataclass, field, replace
from typing import Callable, List, Optional, Tuple

from . import openssl, tickets
from .certs import CertStore, Entry, TLSConfigError, load_crt

VERSIONS = {"SSLv3": ssl.TLSVersion.SSLv3, "TLSv1.0": ssl.TLSVersion.TLSv1,
            "TLSv1.1": ssl.TLSVersion.TLSv1_1, "TLSv1.2": ssl.TLSVersion.TLSv1_2,
            "TLSv1.3": ssl.TLSVersion.TLSv1_3}
_NO_VERSION = {"no-sslv3": "SSLv3", "no-tlsv10": "TLSv1.0", "no-tlsv11": "TLSv1.1",
               "no-tlsv12": "TLSv1.2", "no-tlsv13": "TLSv1.3"}
_ORDER = list(VERSIONS)
# Options that take one argument, and the flags; both on bind lines and in
# ssl-default-bind-options (which takes the flags and ssl-min-ver/ssl-max-ver).
TAKES_ARG = ("crt", "crt-list", "alpn", "npn", "ssl-min-ver", "ssl-max-ver", "ciphers", "ciphersuites",
             "curves", "ecdhe", "sigalgs", "client-sigalgs", "verify", "ca-file", "crl-file",
             "tls-ticket-keys")
FLAGS = ("ssl", "no-tls-tickets", "prefer-client-ciphers", "strict-sni") + tuple(_NO_VERSION)


@dataclass(frozen=True)
class BindTLS:
    """What one `bind ... ssl` line asks of TLS."""

    crts: Tuple[Tuple[str, str], ...] = ()   # ("crt" | "crt-list", path), in order
    alpn: Tuple[str, ...] = ()            # offered: only what keepwarm serves (http/1.1)
    min_ver: Optional[str] = None
    max_ver: Optional[str] = None
    disabled: Tuple[str, ...] = ()        # no-tlsv10 ...
    ciphers: Optional[str] = None
    suites: Optional[str] = None          # TLS 1.3 (ciphersuites)
    curves: Optional[str] = None          # groups, in order (curves, ecdhe)
    sigalgs: Optional[str] = None
    client_sigalgs: Optional[str] = None
    tickets: bool = True
    ticket_ring: Optional[tickets.KeyRing] = field(default=None, compare=False)
    prefer_client_ciphers: bool = False
    strict_sni: bool = False
    verify: str = "none"                  # client certificates: none, optional, required
    ca_file: Optional[str] = None
    crl_file: Optional[str] = None
    dh_file: Optional[str] = None         # global ssl-dh-param-file (DHE ciphers)
    warnings: Tuple[str, ...] = field(default=(), compare=False)


def parse_bind_tls(words: List[str], defaults: Tuple[Tuple[str, Tuple[str, ...]], ...] = (),
                   crt_base: Optional[str] = None, ca_base: Optional[str] = None,
                   dh_file: Optional[str] = None) -> BindTLS:
    """The TLS words of a bind line (`words`: option, argument... in order) over
    global's ssl-default-bind-* (`defaults`: (keyword, words) pairs)."""
    v = {"crts": [], "alpn": (), "disabled": [], "warnings": []}
    for kw, args in defaults:
        if kw == "ssl-default-bind-options":
            _apply(v, list(args), crt_base, ca_base, "ssl-default-bind-options")
        elif kw == "ssl-default-bind-ciphers":
            v["ciphers"] = args[0] if args else None
        elif kw.startswith("ssl-default-bind-") and kw[17:] in LISTS:
            v[LISTS[kw[17:]]] = check_list(kw[17:], args[0] if args else "")
    _apply(v, words, crt_base, ca_base, "bind")
    if not v["crts"]:
        raise TLSConfigError("'ssl' on a 'bind' line needs a certificate: 'crt FILE|DIR' or "
                             "'crt-list FILE'",
                             "e.g. 'bind :443 ssl crt /etc/haproxy/certs/site.pem'")
    return BindTLS(crts=tuple(v["crts"]), alpn=tuple(v["alpn"]), min_ver=v.get("min_ver"),
                   max_ver=v.get("max_ver"), disabled=tuple(v["disabled"]),
                   ciphers=v.get("ciphers"), suites=v.get("suites"), curves=v.get("curves"),
                   sigalgs=v.get("sigalgs"), client_sigalgs=v.get("client_sigalgs"),
                   tickets=v.get("tickets", True), ticket_ring=v.get("ticket_ring"),
                   prefer_client_ciphers=v.get("prefer_client_ciphers", False),
                   strict_sni=v.get("strict_sni", False), verify=v.get("verify", "none"),
                   ca_file=v.get("ca_file"), crl_file=v.get("crl_file"), dh_file=dh_file,
                   warnings=tuple(v["warnings"]))


def path_in(base, name):
    """`name` relative to `base` (crt-base, ca-base) unless absolute."""
    return name if os.path.isabs(name) or not base else os.path.join(base, name)


def options(words, takes_arg, where, hint=None):
    """(option, argument or None) in order; an option not in `takes_arg` (name ->
    takes an argument) is refused."""
    i = 0
    while i < len(words):
        opt = words[i]
        if opt not in takes_arg:
            raise TLSConfigError("'%s' option '%s' is not supported by keepwarm (yet)"
                                 % (where, opt), hint)
        arg = None
        if takes_arg[opt]:
            if i + 1 >= len(words):
                raise TLSConfigError("'%s' expects an argument" % opt)
            arg = words[i + 1]
            i += 1
        i += 1
        yield opt, arg


_BIND_WORDS = dict([(w, True) for w in TAKES_ARG] + [(w, False) for w in FLAGS])


def _apply(v, words, crt_base, ca_base, where):
    for opt, arg in options(words, _BIND_WORDS, where,
                            "keepwarm's TLS options: %s" % ", ".join(TAKES_ARG + FLAGS)):
        if opt == "crt":
            v["crts"].append(("crt", path_in(crt_base, arg)))
        elif opt == "crt-list":
            v["crts"].append(("crt-list", path_in(crt_base, arg)))
        elif opt == "alpn":
            protos = arg.split(",")
            served = [p for p in protos if p == "http/1.1"]
            if len(served) != len(protos):
                v["warnings"].append(
                    "'alpn %s': keepwarm speaks HTTP/1.1 only, so it offers 'http/1.1' "
                    "alone (a client asking only for another protocol gets no ALPN)" % arg)
            v["alpn"] = served
        elif opt == "npn":
            v["warnings"].append("'npn' is obsolete and not offered: keepwarm negotiates "
                                 "with ALPN ('alpn http/1.1')")
        elif opt in ("ssl-min-ver", "ssl-max-ver"):
            if arg not in VERSIONS:
                raise TLSConfigError("'%s': unknown version '%s'" % (opt, arg),
                                     "one of %s" % ", ".join(VERSIONS))
            v["min_ver" if opt == "ssl-min-ver" else "max_ver"] = arg
        elif opt in _NO_VERSION:
            v["disabled"].append(_NO_VERSION[opt])
        elif opt == "ciphers":
            v["ciphers"] = arg
        elif opt in LISTS:
            v[LISTS[opt]] = check_list(opt, arg)
        elif opt == "tls-ticket-keys":
            v["ticket_ring"] = tickets.load_file(arg)      # (no crt-base: HAProxy's)
        elif opt == "no-tls-tickets":
            v["tickets"] = False
        elif opt == "prefer-client-ciphers":
            v["prefer_client_ciphers"] = True
        elif opt == "strict-sni":
            v["strict_sni"] = True
        elif opt == "verify":
            if arg not in ("none", "optional", "required"):
                raise TLSConfigError("'verify' expects none, optional or required, found '%s'"
                                     % arg)
            v["verify"] = arg
        elif opt == "ca-file":
            v["ca_file"] = path_in(ca_base, arg)
        elif opt == "crl-file":
            v["crl_file"] = path_in(ca_base, arg)


# The list settings Python's ssl has no call for, set on the SSL_CTX itself
# (proxy/tls/openssl.py): keyword -> BindTLS/ServerTLS field, and the setter.
LISTS = {"ciphersuites": "suites", "curves": "curves", "ecdhe": "curves",
         "sigalgs": "sigalgs", "client-sigalgs": "client_sigalgs"}
_SETTERS = {"suites": openssl.set_ciphersuites, "curves": openssl.set_groups,
            "sigalgs": openssl.set_sigalgs,
            "client_sigalgs": lambda ctx, text: openssl.set_sigalgs(ctx, text, client=True)}


def check_list(kw: str, text: str) -> str:
    """`text` if OpenSSL takes it for `kw`; TLSConfigError with why if not."""
    why = openssl.unavailable()
    if why:
        raise TLSConfigError("'%s' cannot be set here: %s" % (kw, why),
                             "remove the line: OpenSSL's defaults then apply")
    if not text or not _SETTERS[LISTS[kw]](ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER), text):
        raise TLSConfigError("'%s %s': OpenSSL takes none of these" % (kw, text),
                             _LIST_HINTS[kw])
    return text


_LIST_HINTS = {
    "ciphersuites": "TLS 1.3 suites separated by ':', e.g. "
                    "'TLS_AES_128_GCM_SHA256:TLS_CHACHA20_POLY1305_SHA256'",
    "curves": "groups separated by ':', e.g. 'X25519:P-256'",
    "ecdhe": "a group, e.g. 'prime256v1'",
    "sigalgs": "algorithms separated by ':', e.g. 'ECDSA+SHA256:RSA-PSS+SHA256'",
    "client-sigalgs": "algorithms separated by ':', e.g. 'ECDSA+SHA256:RSA+SHA256'",
}


def apply_lists(ctx: ssl.SSLContext, settings) -> None:
    """Set the lists `settings` (a BindTLS or ServerTLS) names on `ctx`."""
    for name, setter in _SETTERS.items():
        text = getattr(settings, name, None)
        if text and not setter(ctx, text):
            raise TLSConfigError("OpenSSL refused %s '%s'" % (name, text))


def context_factory(tls: BindTLS) -> Callable[[], ssl.SSLContext]:
    """``make()``: a new server SSLContext with `tls`'s settings (no certificate)."""
    lowest = tls.min_ver or "TLSv1.2"
    highest = tls.max_ver or "TLSv1.3"
    allowed = [v for v in _ORDER[_ORDER.index(lowest):_ORDER.index(highest) + 1]
               if v not in tls.disabled]
    if not allowed:
        raise TLSConfigError("no TLS version is left between ssl-min-ver %s and ssl-max-ver "
                             "%s" % (lowest, highest))

    def make():
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        try:
            ctx.minimum_version = VERSIONS[allowed[0]]
            ctx.maximum_version = VERSIONS[allowed[-1]]
        except ValueError as exc:
            raise TLSConfigError("this OpenSSL cannot use %s: %s" % (allowed[0], exc)) \
                from None
        if tls.ciphers:
            try:
                ctx.set_ciphers(tls.ciphers)
            except ssl.SSLError:
                raise TLSConfigError("'ciphers %s': no cipher can be selected"
                                     % tls.ciphers) from None
        apply_lists(ctx, tls)
        if tls.dh_file:
            try:
                ctx.load_dh_params(tls.dh_file)
            except (OSError, ssl.SSLError) as exc:
                raise TLSConfigError("ssl-dh-param-file '%s': %s" % (
                    tls.dh_file, getattr(exc, "strerror", None) or getattr(exc, "reason", None)
                    or exc)) from None
        ring = None if not tls.tickets else tls.ticket_ring or tickets.own_ring()
        if not tls.tickets:
            ctx.options |= ssl.OP_NO_TICKET
        elif ring is not None:
            try:
                openssl.use_ticket_keys(ctx, lambda: ring.keys)
            except (ValueError, MemoryError) as exc:
                raise TLSConfigError("cannot install the session-ticket keys: %s" % exc,
                                     "add 'no-tls-tickets' to the bind line") from None
        if openssl.unavailable() is None:
            # Binds share the ticket keys: a session resumes only on a bind with the
            # same TLS settings (a ticket of a bind without client certificates
            # never opens one that requires them), also after a reload.
            openssl.set_session_context(ctx, session_context(tls))
        if tls.prefer_client_ciphers:
            ctx.options &= ~ssl.OP_CIPHER_SERVER_PREFERENCE
        else:
            ctx.options |= ssl.OP_CIPHER_SERVER_PREFERENCE
        ctx.options |= ssl.OP_NO_RENEGOTIATION
        if tls.alpn:
            ctx.set_alpn_protocols(list(tls.alpn))
        if tls.verify != "none":
            if not tls.ca_file:
                raise TLSConfigError("'verify %s' needs a 'ca-file' to check client "
                                     "certificates against" % tls.verify)
            ctx.verify_mode = ssl.CERT_REQUIRED if tls.verify == "required" \
                else ssl.CERT_OPTIONAL
        if tls.ca_file:
            _load_verify(ctx, tls.ca_file, "ca-file")
        if tls.crl_file:
            _load_verify(ctx, tls.crl_file, "crl-file")
            ctx.verify_flags |= ssl.VERIFY_CRL_CHECK_LEAF
        return ctx
    return make


def session_context(tls: BindTLS) -> bytes:
    """What a session of this bind may be resumed with: a digest of its TLS
    settings and of the CA and CRL files' contents."""
    h = hashlib.sha256(repr((tls.crts, tls.min_ver, tls.max_ver, tls.disabled, tls.ciphers,
                             tls.suites, tls.curves, tls.sigalgs, tls.client_sigalgs,
                             tls.verify, tls.ca_file, tls.crl_file, tls.strict_sni,
                             tls.alpn)).encode())
    for path in (tls.ca_file, tls.crl_file):
        if path:
            try:
                with open(path, "rb") as f:
                    h.update(f.read())
            except OSError:
                h.update(b"?")           # (load_verify_locations says why)
    return b"kw" + h.digest()[:30]


def _load_verify(ctx, path, what):
    try:
        ctx.load_verify_locations(cafile=path)
    except (OSError, ssl.SSLError) as exc:
        raise TLSConfigError("'%s %s': %s" % (what, path, getattr(exc, "strerror", None)
                                              or getattr(exc, "reason", None) or exc)) from None


_STORES: List[Tuple[BindTLS, CertStore]] = []     # the latest loads, by identity


def cert_store(tls: BindTLS) -> CertStore:
    """Load `tls`'s certificates into their contexts. The configuration's parser
    loads them (errors at the bind's line); the workers it forks find that load
    here, by the very BindTLS object (a reload parses anew: new objects, files
    read again)."""
    for known, store in _STORES:
        if known is tls:
            return store
    make = context_factory(tls)
    entries: List[Entry] = []
    for kind, path in tls.crts:
        if kind == "crt":
            entries.extend(Entry(c, make) for c in load_crt(path))
        else:
            entries.extend(crt_list_entries(path, tls, make))
    store = CertStore(entries, tls.strict_sni)
    _STORES.append((tls, store))
    del _STORES[:-64]
    return store


# What a crt-list line may change of its bind's settings: OpenSSL settles the
# versions, ciphers, tickets and client verification before the SNI callback
# switches contexts, so only what it reads later (the certificate, ALPN) can
# differ per line.
_LINE_OPTIONS = ("alpn", "npn")


def crt_list_entries(path: str, tls: BindTLS, make) -> List[Entry]:
    """`crt-list FILE`: one certificate (file or directory) a line, then its
    settings in [brackets] and its SNI filters (`!name` excludes); `#` comments."""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            lines = f.read().splitlines()
    except OSError as exc:
        raise TLSConfigError("unable to open crt-list '%s': %s" % (path, exc.strerror)) \
            from None
    entries: List[Entry] = []
    base = os.path.dirname(path)
    for n, line in enumerate(lines, 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        where = "crt-list '%s' line %d" % (path, n)
        crt, _, rest = line.partition(" ")
        rest = rest.strip()
        options: List[str] = []
        if rest.startswith("["):
            inside, close, rest = rest[1:].partition("]")
            if not close:
                raise TLSConfigError("%s: missing ']'" % where)
            options = inside.split()
        bad = [o for i, o in enumerate(options) if o not in _LINE_OPTIONS
               and (i == 0 or options[i - 1] not in _LINE_OPTIONS)]
        if bad:
            raise TLSConfigError("%s: '%s' is not supported in a crt-list line by keepwarm"
                                 % (where, bad[0]),
                                 "a line may set 'alpn'; put the other settings on the bind "
                                 "line (OpenSSL settles them before SNI picks the line)")
        filters = rest.split()
        line_make = make
        if options:
            try:
                line_make = context_factory(_override(tls, options))
            except TLSConfigError as exc:
                raise TLSConfigError("%s: %s" % (where, exc.message), exc.hint) from None
        names = tuple(f.lower() for f in filters if not f.startswith("!")) or None
        excluded = tuple(f[1:].lower() for f in filters if f.startswith("!"))
        crt_path = crt if os.path.isabs(crt) else os.path.join(base, crt)
        if not os.path.exists(crt_path) and not os.path.isabs(crt):
            crt_path = crt               # relative to where keepwarm runs, as HAProxy tries
        for cert in load_crt(crt_path):
            entries.append(Entry(cert, line_make, names, excluded))
    if not entries:
        raise TLSConfigError("crt-list '%s' names no certificate" % path)
    return entries


def _override(tls: BindTLS, words: List[str]) -> BindTLS:
    """`tls` with a crt-list line's settings."""
    v = {"crts": [], "alpn": tls.alpn, "disabled": [], "warnings": []}
    _apply(v, words, None, None, "crt-list")
    return replace(tls, alpn=tuple(v["alpn"]))


def bind_for(binds, sockname):
    """Which of a frontend's `binds` a listening socket (its `getsockname()`) is."""
    if isinstance(sockname, (str, bytes)):
        path = sockname.decode() if isinstance(sockname, bytes) else sockname
        return next((b for b in binds if b.path == path), None)
    host, port = sockname[0], sockname[1]
    same_port = [b for b in binds if not b.path and b.port == port]
    exact = [b for b in same_port if b.host == host]
    return (exact or same_port or [None])[0]
