"""Options of ``server`` and ``default-server`` lines."""

from __future__ import annotations

import difflib
import re
from typing import Dict, List, Optional, Tuple

from proxy.tls.server import SERVER_TLS_WORDS

from . import keywords
from .addresses import AddressError, parse_ip
from .values import Ctx, int_arg, time_arg

_INT = re.compile(r"-?[0-9]+")

# server keyword -> (Server field, kind, value for flags)
_SERVER_OPTIONS: Dict[str, Tuple[str, str, object]] = {
    "check": ("check", "flag", True),
    "no-check": ("check", "flag", False),
    "disabled": ("disabled", "flag", True),
    "enabled": ("disabled", "flag", False),
    "backup": ("backup", "flag", True),
    "no-backup": ("backup", "flag", False),
    "inter": ("inter", "time", None),
    "fastinter": ("fastinter", "time", None),
    "downinter": ("downinter", "time", None),
    "rise": ("rise", "int", None),
    "fall": ("fall", "int", None),
    "weight": ("weight", "int", None),
    "maxconn": ("maxconn", "int", None),
    "port": ("check_port", "int", None),
    "addr": ("check_addr", "addr", None),
    "pool-max-conn": ("pool_max_conn", "int", None),
    "pool-purge-delay": ("pool_purge_delay", "time", None),
    "max-reuse": ("max_reuse", "int", None),
    "pool-idle-timeout": ("pool_idle_timeout", "time", None),
    "pool-warm-conn": ("pool_warm_conn", "int", None),
    "slowstart": ("slowstart", "time", None),
    "maxqueue": ("maxqueue", "int", None),
    "error-limit": ("error_limit", "int", None),
    "observe": ("observe", "choice", None),
    "on-error": ("on_error", "choice", None),
    "on-marked-down": ("on_marked_down", "choice", None),
    "on-marked-up": ("on_marked_up", "choice", None),
}
# Keywords taking one word among a few: keyword -> (accepted words, how HAProxy lists them).
_CHOICES = {
    "observe": ("none", "layer4", "layer7"),
    "on-error": ("fastinter", "fail-check", "sudden-death", "mark-down"),
    "on-marked-down": ("shutdown-sessions",),
    "on-marked-up": ("shutdown-backup-sessions",),
}
_INT_RANGES = {
    "rise": (1, None), "fall": (1, None), "weight": (0, 256), "maxconn": (0, None),
    "port": (1, 65535), "pool-max-conn": (-1, None), "max-reuse": (-1, None),
    "pool-warm-conn": (0, None), "maxqueue": (0, None), "error-limit": (1, None),
}
_KIND_WORDS = {"time": "a delay", "int": "an integer", "addr": "an IPv4 or IPv6 address",
               "choice": "an argument"}
# Times for which 0 is a valid value ("none").
_ZERO_TIMES = ("pool_purge_delay", "slowstart")


def server_options(ctx: Ctx, lineno: int, name: Optional[str], args: List[str],
                   fields: Dict) -> None:
    """Apply server/default-server options ``args`` to ``fields`` (Server field values)."""
    who = "server '%s'" % name if name else "'default-server'"
    i = 0
    while i < len(args):
        kw = args[i]
        spec = _SERVER_OPTIONS.get(kw)
        if kw in SERVER_TLS_WORDS:
            # TLS words are kept in order (default-server's first) and parsed
            # together when the server line is complete (proxy/tls/server.py).
            n = 2 if SERVER_TLS_WORDS[kw] else 1
            if i + n > len(args):
                raise ctx.error(lineno, "%s: '%s' expects an argument" % (who, kw))
            fields["tls_words"] = tuple(fields.get("tls_words", ())) + tuple(args[i:i + n])
            i += n
            continue
        if spec is None:
            if kw in keywords.SERVER:
                raise ctx.error(lineno, "%s: '%s' is not supported by keepwarm (yet)"
                                % (who, kw), keywords.UNSUPPORTED_HINT)
            close = difflib.get_close_matches(kw, sorted(_SERVER_OPTIONS), n=1,
                                              cutoff=0.6)
            hint = "did you mean '%s'?" % close[0] if close else None
            if _INT.fullmatch(kw) or re.fullmatch(r"[0-9]+[a-z]+", kw):
                hint = "a value must follow its keyword, e.g. 'inter 2s'"
            raise ctx.error(lineno, "%s: unknown keyword '%s'" % (who, kw), hint)
        field, kind, value = spec
        if kind == "flag":
            fields[field] = value
            i += 1
            continue
        if i + 1 >= len(args):
            raise ctx.error(lineno, "%s: '%s' expects %s as argument"
                            % (who, kw, _KIND_WORDS[kind]),
                            "one of: %s" % ", ".join(_CHOICES[kw]) if kind == "choice"
                            else None)
        raw = args[i + 1]
        label = "%s: '%s'" % (who, kw)
        if kind == "time":
            seconds = time_arg(ctx, lineno, label, raw)
            if seconds <= 0 and field not in _ZERO_TIMES:
                raise ctx.error(lineno, "%s: invalid value %s for '%s' (must be > 0)"
                                % (who, raw, kw))
            fields[field] = seconds
        elif kind == "choice":
            words = _CHOICES[kw]
            if raw not in words:
                raise ctx.error(lineno, "%s: '%s' expects %s but got '%s'"
                                % (who, kw, " or ".join("'%s'" % w for w in words), raw))
            fields[field] = None if raw == "none" else raw
        elif kind == "addr":
            try:
                fields[field] = parse_ip(raw)
            except AddressError as exc:
                raise ctx.error(lineno, "%s: '%s' %s" % (who, kw, exc)) from None
        else:
            low, high = _INT_RANGES[kw]
            fields[field] = int_arg(ctx, lineno, label, [raw], minimum=low, maximum=high)
        if kw in ("pool-idle-timeout", "pool-warm-conn"):
            ctx.warn(lineno, "'%s' is a keepwarm extension: HAProxy would reject this "
                     "configuration" % kw)
        i += 2
