"""Match methods (``-m str|beg|end|sub|reg|dir|dom|len|int|ip|bin``): patterns
parsed once into a lookup, shared by ACLs (a pattern's payload is True) and by
the ``map_*`` converters (the payload is the map's value).

HAProxy keeps exact strings and addresses in trees ("the first of the finest
match") and everything else in lists ("the first matching occurrence"); the
same answers come from a dict, a longest-prefix list, and ordered lists here.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Callable, List, Optional, Tuple

from .codegen import Frag
from .errors import RuleError, did_you_mean
from .sample import T_BIN, T_BOOL, T_INT, T_IP, T_STR, compile_regex

# The sample type each match method compares (a sample is cast to it first).
MATCH_TYPES = {"found": None, "bool": T_BOOL, "int": T_INT, "ip": T_IP, "bin": T_BIN,
               "len": T_STR, "str": T_STR, "sub": T_STR, "reg": T_STR, "beg": T_STR,
               "end": T_STR, "dir": T_STR, "dom": T_STR, "meth": T_STR}
STRING_METHODS = ("str", "sub", "reg", "beg", "end", "dir", "dom", "len", "bin", "meth")
# RFC 9110's methods and PATCH: the ones HAProxy knows by name (HTTP_METH_*).
KNOWN_METHODS = frozenset(b"GET HEAD POST PUT DELETE OPTIONS TRACE CONNECT PATCH".split())

_DIR_DELIMS = b"/?"
_DOM_DELIMS = b"/?.:"

Item = Tuple[str, bool, object]      # (pattern text, ignore case, payload)


def check_method(name: str) -> str:
    if name not in MATCH_TYPES:
        raise RuleError("unknown matching method '%s'" % name,
                        did_you_mean(name, MATCH_TYPES) or
                        "one of %s" % ", ".join(MATCH_TYPES))
    return name


def build(method: str, items: List[Item], what: str) -> Callable:
    """The lookup ``find(sample) -> payload or None`` for `items` under `method`."""
    if method in ("str", "bin"):
        return _exact(method, items, what)
    if method == "meth":
        return _methods(items)
    if method in ("int", "len"):
        return _ranges(method, items, what)
    if method == "ip":
        return _networks(items, what)
    return _ordered(method, items, what)


def _b(text: str) -> bytes:
    return text.encode("utf-8", "surrogateescape")


def _exact(method, items, what):
    exact, folded = {}, {}
    for text, icase, payload in items:
        if method == "bin":
            try:
                key = bytes.fromhex(text)
            except ValueError:
                raise RuleError("%s: '%s' is not a hex string with an even number of "
                                "digits" % (what, text)) from None
        else:
            key = _b(text)
        if icase:
            folded.setdefault(key.lower(), payload)
        else:
            exact.setdefault(key, payload)
    if not folded:
        return exact.get
    if not exact:
        return lambda v: folded.get(v.lower())

    def find(v):
        p = exact.get(v)
        return folded.get(v.lower()) if p is None else p
    return find


def _methods(items):
    """HAProxy's method match: a known method (GET...) matches only itself, case
    included; '-i' only compares two unknown methods (measured with 2.6.12:
    'method -i get' does not match GET, and matches a request's 'get')."""
    known, other, folded = {}, {}, {}
    for text, icase, payload in items:
        key = _b(text)
        if key in KNOWN_METHODS:
            known.setdefault(key, payload)
        elif icase:
            folded.setdefault(key.lower(), payload)
        else:
            other.setdefault(key, payload)

    def find(v):
        if v in KNOWN_METHODS:
            return known.get(v)
        p = other.get(v)
        return folded.get(v.lower()) if p is None and folded else p
    return find


def parse_range(text: str, what: str) -> Tuple[Optional[int], Optional[int]]:
    lo, colon, hi = text.partition(":")

    def num(s):
        if s == "" and colon:
            return None
        if not re.fullmatch(r"-?[0-9]+", s):
            raise RuleError("%s: '%s' is neither a number nor a supported operator"
                            % (what, text),
                            "integers, ranges 'LOW:HIGH' (either side may be left out), "
                            "or an operator (eq ge gt le lt) before a number")
        return int(s)
    a, b = num(lo), num(hi) if colon else None
    return (a, a) if not colon else (a, b)


def _ranges(method, items, what):
    ranges = [parse_range(text, what) + (payload,) for text, _, payload in items]
    as_len = method == "len"

    def find(v):
        if as_len:
            v = len(v)
        elif v.__class__ is bool:
            v = int(v)
        for lo, hi, payload in ranges:
            if (lo is None or v >= lo) and (hi is None or v <= hi):
                return payload
        return None
    return find


def parse_network(text: str, what: str):
    try:
        return ipaddress.ip_network(text, strict=False)
    except ValueError:
        pass
    addr, slash, mask = text.partition("/")
    if slash and "." in mask:          # 10.0.0.0/255.0.0.0
        try:
            return ipaddress.ip_network("%s/%s" % (addr, mask), strict=False)
        except ValueError:
            pass
    raise RuleError("%s: '%s' is not a valid IPv4 or IPv6 address" % (what, text),
                    "keepwarm does not resolve host names in patterns: write the address")


def _networks(items, what):
    nets = [(parse_network(text, what), payload) for text, _, payload in items]
    # Longest prefix first: a map gives the finest match, as HAProxy's tree.
    nets.sort(key=lambda n: -n[0].prefixlen)
    v4 = [(n, p) for n, p in nets if n.version == 4]
    v6 = [(n, p) for n, p in nets if n.version == 6]

    def find(ip):
        if ip.version == 4:
            for net, payload in v4:
                if ip in net:
                    return payload
            if v6:
                mapped = ipaddress.IPv6Address(b"\0" * 10 + b"\xff\xff" + ip.packed)
                for net, payload in v6:
                    if mapped in net:
                        return payload
            return None
        for net, payload in v6:
            if ip in net:
                return payload
        inner = ip.ipv4_mapped
        if inner is not None:
            for net, payload in v4:
                if inner in net:
                    return payload
        return None
    return find


def _word_regex(pattern: bytes, delims: bytes, icase: bool):
    """HAProxy's word match: the pattern (its own leading and trailing delimiters
    dropped) between delimiters or the sample's ends."""
    pattern = pattern.strip(delims)
    cls = re.escape(delims)
    return re.compile(rb"(?<![^" + cls + rb"])" + re.escape(pattern) + rb"(?![^" + cls + rb"])",
                      re.IGNORECASE if icase else 0)


def _longest_prefix(items):
    """HAProxy keeps exact-case prefixes in a tree: the longest one wins
    (measured: map_beg gives '/ab' before '/a' for '/abc', whatever the order)."""
    exact = sorted(((_b(t), p) for t, c, p in items if not c), key=lambda x: -len(x[0]))
    folded = sorted(((_b(t).lower(), p) for t, c, p in items if c), key=lambda x: -len(x[0]))

    def find(v):
        for prefix, payload in exact:
            if v.startswith(prefix):
                return payload
        if folded:
            low = v.lower()
            for prefix, payload in folded:
                if low.startswith(prefix):
                    return payload
        return None
    return find


def _ordered(method, items, what):
    if method == "beg":
        return _longest_prefix(items)
    tests = []
    for text, icase, payload in items:
        p = _b(text)
        if method == "reg":
            rx = compile_regex(text, re.IGNORECASE if icase else 0, what)
            tests.append((rx.search, False, payload))
            continue
        if method in ("dir", "dom"):
            rx = _word_regex(p, _DIR_DELIMS if method == "dir" else _DOM_DELIMS, icase)
            tests.append((rx.search, False, payload))
            continue
        if icase:
            p = p.lower()
        if method == "beg":
            test = (lambda p: lambda v: v.startswith(p))(p)
        elif method == "end":
            test = (lambda p: lambda v: v.endswith(p))(p)
        else:
            test = (lambda p: lambda v: p in v)(p)
        tests.append((test, icase, payload))
    any_icase = any(t[1] for t in tests)

    def find(v):
        low = v.lower() if any_icase else v
        for test, icase, payload in tests:
            if test(low if icase else v):
                return payload
        return None
    return find


def test_frag(method: str, items: List[Item]) -> Optional[Frag]:
    """An ACL's test of one sample ``{v}`` as an expression (see codegen.py), for
    the common cases; None for the others (the test is then ``find(v)``). An
    ACL only asks whether some pattern matches, so any order of patterns will do."""
    if method not in ("str", "beg", "end", "sub", "reg") or not items:
        return None
    icases = {icase for _, icase, _ in items}
    if len(icases) != 1:
        return None
    icase = icases.pop()
    texts = [_b(text).lower() if icase and method != "reg" else _b(text)
             for text, _, _ in items]
    v = "{v}.lower()" if icase and method != "reg" else "{v}"
    if method == "str":
        return Frag(v + " in {keys}", {"keys": frozenset(texts)})
    if method == "beg":
        return Frag(v + ".startswith({keys})", {"keys": tuple(texts)})
    if method == "end":
        return Frag(v + ".endswith({keys})", {"keys": tuple(texts)})
    if len(texts) != 1:
        return None
    if method == "sub":
        return Frag("{key} in " + v, {"key": texts[0]})
    rx = compile_regex(items[0][0], re.IGNORECASE if icase else 0, "regex")
    return Frag("{search}({v}) is not None", {"search": rx.search})
