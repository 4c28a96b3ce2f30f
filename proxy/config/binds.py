"""The options of a `bind` line after its address: `defer-accept`, and the TLS
ones (`ssl crt FILE ...`, proxy/tls), checked at load: a certificate that does
not load is an error at the bind's line, never a worker that fails later."""

from __future__ import annotations

from typing import List, Optional, Tuple

from proxy.tls import TLSConfigError, cert_store, parse_bind_tls
from proxy.tls.options import FLAGS, TAKES_ARG

from . import keywords

UNSUPPORTED_HINT = keywords.UNSUPPORTED_HINT


class BindError(Exception):
    def __init__(self, message: str, hint: Optional[str] = None):
        super().__init__(message)
        self.message = message
        self.hint = hint


def bind_options(words: List[str], global_) -> Tuple[bool, object, Tuple[str, ...]]:
    """(defer_accept, BindTLS or None, warnings) for the words after the address;
    `global_` the global section's model (crt-base, ca-base, ssl-default-bind-*)."""
    defer_accept = False
    tls_words: List[str] = []
    i = 0
    while i < len(words):
        opt = words[i]
        if opt == "defer-accept":
            defer_accept = True
        elif opt in TAKES_ARG:
            if i + 1 >= len(words):
                raise BindError("'bind' option '%s' expects an argument" % opt)
            tls_words += words[i:i + 2]
            i += 1
        elif opt in FLAGS:
            tls_words.append(opt)
        elif opt in keywords.BIND:
            raise BindError("'bind' option '%s' is not supported by keepwarm (yet)" % opt,
                            UNSUPPORTED_HINT)
        else:
            raise BindError("unknown keyword '%s' on 'bind' line" % opt,
                            "several addresses are separated by commas, not spaces; the "
                            "options keepwarm knows are 'defer-accept' and the TLS ones "
                            "(ssl, crt, alpn, ssl-min-ver...)")
        i += 1
    if not tls_words:
        return defer_accept, None, ()
    if "ssl" not in tls_words:
        raise BindError("'bind' option '%s' needs 'ssl' on the same line" % tls_words[0],
                        "e.g. 'bind :443 ssl crt /etc/haproxy/site.pem'")
    try:
        tls = parse_bind_tls(tls_words, global_.ssl_defaults, global_.crt_base,
                             global_.ca_base, global_.ssl_dh_param_file)
        cert_store(tls)                 # loads every certificate now: errors at this line
    except TLSConfigError as exc:
        raise BindError(exc.message, exc.hint) from None
    return defer_accept, tls, tls.warnings
