"""``balance``, ``hash-type`` and ``retry-on``: how a backend picks and retries servers."""

from __future__ import annotations

import re
from typing import FrozenSet, List, Optional, Tuple

from . import keywords
from .lexer import decimal
from .model import BalanceArgs

ALGORITHMS = ("roundrobin", "static-rr", "leastconn", "first", "source", "uri",
              "hdr(<name>)", "random")
HASH_TYPES = ("map-based", "consistent")
HASH_FUNCTIONS = ("sdbm", "djb2", "wt6", "crc32")

# HAProxy 2.6's retry-on keywords; all-retryable-errors stands for the first group.
RETRYABLE = frozenset(("conn-failure", "empty-response", "junk-response", "response-timeout",
                       "0rtt-rejected", "500", "502", "503", "504"))
RETRY_ON = RETRYABLE | frozenset(("401", "403", "404", "408", "425", "501"))

_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_POSITIVE = re.compile(r"[0-9]+")


class LbError(ValueError):
    """A balance/hash-type/retry-on mistake; ``unsupported`` when only keepwarm refuses it."""

    def __init__(self, message: str, hint: Optional[str] = None, unsupported: bool = False):
        super().__init__(message)
        self.hint = hint
        self.unsupported = unsupported


def parse_balance(args: List[str]) -> Tuple[str, BalanceArgs]:
    """``balance <algorithm> [<arguments>]`` -> (algorithm name, its arguments)."""
    if not args:
        raise LbError("'balance' expects an algorithm", "e.g. 'balance roundrobin'")
    algo, rest = args[0], args[1:]
    if algo in ("roundrobin", "static-rr", "leastconn", "first", "source"):
        if rest:
            raise LbError("'balance %s' cannot handle unexpected argument '%s'"
                          % (algo, rest[0]))
        return algo, BalanceArgs()
    if algo == "uri":
        return "uri", _uri_args(rest)
    if algo.startswith("hdr("):
        name = algo[4:-1] if algo.endswith(")") else ""
        if not name or ")" in name:
            raise LbError("hdr requires an http header field name.",
                          "e.g. 'balance hdr(Host)'")
        if not _TOKEN.fullmatch(name):
            raise LbError("'balance %s': '%s' is not a valid header name" % (algo, name))
        domain = False
        if rest:
            if rest[0] != "use_domain_only" or len(rest) > 1:
                raise LbError("%s only accepts 'use_domain_only' modifier (got '%s')."
                              % (algo, rest[0] if rest[0] != "use_domain_only" else rest[1]))
            domain = True
        return "hdr", BalanceArgs(hdr=name, use_domain_only=domain)
    if algo.startswith("random"):
        draws = 2
        tail = algo[6:]
        if tail and tail != "()":
            if not (tail.startswith("(") and tail.endswith(")")):
                raise LbError("random : missing closing parenthesis." if tail.startswith("(")
                              else "unknown load balancing algorithm '%s'" % algo)
            number = tail[1:-1]
            if not re.fullmatch(r"-?[0-9]+", number):
                raise LbError("random : unexpected character in number of draws '%s'."
                              % number)
            draws = decimal(number)
            if draws < 1:
                raise LbError("random : number of draws must be at least 1.")
        if rest:
            raise LbError("'balance %s' cannot handle unexpected argument '%s'"
                          % (algo, rest[0]))
        return "random", BalanceArgs(draws=draws)
    base = algo.split("(", 1)[0]
    if base in keywords.BALANCE:
        raise LbError("'balance %s' is not supported by keepwarm (yet)" % algo,
                      unsupported=True)
    raise LbError("unknown load balancing algorithm '%s'" % algo,
                  "keepwarm supports %s" % ", ".join(ALGORITHMS))


def _uri_args(rest: List[str]) -> BalanceArgs:
    whole = path_only = False
    length = depth = 0
    i = 0
    while i < len(rest):
        word = rest[i]
        if word in ("len", "depth"):
            value = rest[i + 1] if i + 1 < len(rest) else ""
            if not _POSITIVE.fullmatch(value) or decimal(value) <= 0:
                raise LbError("uri : '%s' expects a positive integer (got '%s')."
                              % (word, value))
            if word == "len":
                length = decimal(value)
            else:
                depth = decimal(value)
            i += 2
        elif word == "whole":
            whole = True
            i += 1
        elif word == "path-only":
            path_only = True
            i += 1
        else:
            raise LbError("uri only accepts parameters 'len', 'depth', 'path-only', and "
                          "'whole' (got '%s')." % word)
    return BalanceArgs(whole=whole, path_only=path_only, len=length, depth=depth)


def parse_hash_type(args: List[str]) -> Tuple[str, str, bool]:
    """``hash-type <method> [<function> [avalanche]]`` -> (method, function, avalanche)."""
    if not args or args[0] not in HASH_TYPES:
        if args and args[0] == "avalanche":
            raise LbError("experimental feature 'hash-type avalanche' is not supported "
                          "anymore, please use 'hash-type map-based sdbm avalanche' instead.")
        raise LbError("'hash-type' only supports 'consistent' and 'map-based'.")
    method = args[0]
    if len(args) == 1:
        # HAProxy: sdbm by default; "consistent" alone also gets the avalanche modifier
        return method, "sdbm", method == "consistent"
    function = args[1]
    if function not in HASH_FUNCTIONS:
        raise LbError("'hash-type' only supports 'sdbm', 'djb2', 'crc32', or 'wt6' hash "
                      "functions.")
    avalanche = False
    if len(args) > 2:
        if args[2] != "avalanche":
            raise LbError("'hash-type' only supports 'avalanche' as a modifier for hash "
                          "functions.")
        avalanche = True
    if len(args) > 3:
        raise LbError("'hash-type' cannot handle unexpected argument '%s'" % args[3])
    return method, function, avalanche


def parse_retry_on(args: List[str]) -> FrozenSet[str]:
    """``retry-on <keyword> ...`` -> the set of conditions (``none`` -> empty)."""
    if not args:
        raise LbError("'retry-on' needs at least one keyword to specify when to retry",
                      "e.g. 'retry-on conn-failure empty-response response-timeout'")
    out = set()
    for word in args:
        if word == "none":
            if len(args) != 1:
                raise LbError("'retry-on' 'none' keyword only usable alone")
        elif word == "all-retryable-errors":
            out |= RETRYABLE
        elif word in RETRY_ON:
            out.add(word)
        else:
            raise LbError("'retry-on': unknown keyword '%s'" % word,
                          "keywords: none, conn-failure, empty-response, junk-response, "
                          "response-timeout, 0rtt-rejected, all-retryable-errors, or a "
                          "status among %s" % ", ".join(sorted(s for s in RETRY_ON
                                                              if s.isdigit())))
    return frozenset(out)
