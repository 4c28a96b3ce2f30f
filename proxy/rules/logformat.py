"""Log-format strings (HAProxy 8.2.6): ``%[sample,conv...]``, ``%{+Q}`` flags and
the ``%ci``-style aliases, compiled once into ``fmt(txn) -> bytes``.

One implementation for both uses HAProxy has:

- ``mode="log"`` (``log-format``, ``unique-id-format``): an empty or missing
  value is written '-' (unless quoted: ``""``), and runs of spaces in the
  literal text are merged;
- ``mode="http"`` (``http-request set-header``, ``lf-string``, ``redirect``...):
  a missing value is written as nothing, and the control characters of a
  ``%[...]`` value are %-encoded so that a header stays one line.

Aliases read the txn; the ones only the wiring knows (timers ``Tt``/``Tw``/...,
``s`` the server, ``ID`` the unique id, byte counts, termination state, dates)
are read from ``txn.log[NAME]`` and written '-' when absent there.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Callable, List, Optional

from .errors import RuleError, did_you_mean
from .sample import T_BIN, T_IP, T_STR, Ctx, _bin2str, as_str, compile_sample, ip_text

# HAProxy's url_encode_map (%r, %HU...: '#XX'), http_encode_map (a %[...] in a
# header: '%XX'), and the characters +E escapes with a backslash.
_URL_ENCODE = re.compile(rb'[\x00-\x1f"#\x7f-\xff]')
_HTTP_ENCODE = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")
_RFC5424_ESCAPE = re.compile(rb'(["\\\]])')


def _encode(value: bytes, rx, escape: bytes) -> bytes:
    if rx.search(value) is None:
        return value
    return rx.sub(lambda m: escape + b"%02X" % m.group()[0], value)


def _escape(value: bytes) -> bytes:
    return _RFC5424_ESCAPE.sub(rb"\\\1", value)


# ------------------------------------------------------------------ aliases

def _ft(txn):
    """%ft: the frontend's name, with '~' after it on a TLS connection (HAProxy)."""
    x = txn.xprt
    return txn.fe_name + b"~" if x is not None and x.tls is not None else txn.fe_name


def _request_line(txn):
    if txn.method is None:
        return b"<BADREQ>"              # no request was parsed (HAProxy's word)
    return b"%s %s HTTP/%s" % (txn.method, txn.target, txn.version)


def _path_part(txn):
    t = txn.target
    q = t.find(b"?")
    return t if q < 0 else t[:q]


def _query_part(txn):
    t = txn.target
    q = t.find(b"?")
    return b"" if q < 0 else t[q:]


# name -> (getter(txn), kind): kind 'str', 'url' (url-encoded with '#'),
# 'ip', 'port', 'int'.
ALIASES = {
    "ci": (lambda txn: txn.src, "ip"), "cp": (lambda txn: txn.src_port, "port"),
    "fi": (lambda txn: txn.dst, "ip"), "fp": (lambda txn: txn.dst_port, "port"),
    "f": (lambda txn: txn.fe_name, "str"), "ft": (_ft, "str"),
    "b": (lambda txn: txn.be_name, "str"),
    "H": (lambda txn: txn.world.hostname, "str"), "pid": (lambda txn: txn.world.pid, "int"),
    "r": (_request_line, "url"), "HM": (lambda txn: txn.method, "url"),
    "HU": (lambda txn: txn.target, "url"), "HP": (_path_part, "url"),
    "HPO": (lambda txn: txn.path, "url"), "HQ": (_query_part, "url"),
    "HV": (lambda txn: b"HTTP/" + txn.version, "url"),
    "ST": (lambda txn: txn.status, "int"),
}
# Values the wiring fills into txn.log (timers, counters, names, dates, states).
WIRED = ("s", "ID", "T", "Ta", "Tc", "Td", "Th", "Ti", "Tl", "Tq", "TR", "Tr", "Ts", "Tt",
         "Tu", "Tw", "B", "U", "ac", "bc", "bi", "bp", "bq", "fc", "lc", "ms", "rc", "rt",
         "sc", "si", "sp", "sq", "t", "tr", "trg", "trl", "ts", "tsc", "CC", "CS", "hr",
         "hrl", "hs", "hsl", "sslc", "sslv")
# Wired values HAProxy never quotes, even under +Q: dates, the termination state,
# and numbers that may carry a '+' (%B, %Tt... under logasap, %rc after a redispatch).
_UNQUOTED = frozenset(("t", "tr", "trg", "trl", "T", "Tl", "ts", "tsc", "ms", "B", "rc",
                       "Ta", "Tt", "Tu", "Th", "Ti", "Tq", "TR", "Tw", "Tc", "Tr", "Td", "Ts",
                       "U", "ac", "fc", "bc", "sc", "sq", "bq", "rt", "lc", "bp", "sp"))
# Captured headers (txn.log[NAME]: a tuple of values, None for a header not seen;
# no tuple: the proxy captures nothing, and the field and a separator vanish).
_CAPTURES = frozenset(("hr", "hs", "hrl", "hsl"))
_HDR_ENCODE = re.compile(rb'[\x00-\x1f"#{|}\x7f-\xff]')
_FLAGS = {"Q": "quote", "X": "hex", "E": "escape", "M": "mandatory"}


class _Opts:
    __slots__ = ("quote", "hex", "escape", "mandatory")

    def __init__(self, quote=False, hex=False, escape=False, mandatory=False):
        self.quote, self.hex, self.escape, self.mandatory = quote, hex, escape, mandatory

    def copy(self):
        return _Opts(self.quote, self.hex, self.escape, self.mandatory)


def _parse_flags(text: str, base: _Opts) -> _Opts:
    opts = base.copy()
    for flag in text.split(","):
        if len(flag) != 2 or flag[0] not in "+-" or flag[1] not in _FLAGS:
            raise RuleError("log-format: unknown flag '%s' in '%%{%s}'" % (flag, text),
                            "flags are +Q (quote), +X (hex), +E (escape), +M (mandatory), "
                            "or '-' to remove one")
        setattr(opts, _FLAGS[flag[1]], flag[0] == "+")
    return opts


def _text(raw_fn, opts: _Opts, http: bool, url: bool = False, sample: bool = False):
    """A string value written with its flags: quotes, escapes, '-' when empty."""
    # Measured with 2.6.12: in a header or lf-string, %{+Q}[...] is not quoted
    # (HAProxy's lf_encode_chunk writes no quotes) while %{+Q}ci is.
    quote = opts.quote and not (http and sample)
    esc, dash = opts.escape, opts.mandatory and not quote

    def write(txn):
        v = raw_fn(txn)
        if v:
            if url:
                v = _encode(v, _URL_ENCODE, b"#")
            elif sample and http:
                v = _encode(v, _HTTP_ENCODE, b"%")
            if esc:
                v = _escape(v)
        elif dash:
            v = b"-"
        else:
            v = b""
        return b'"' + v + b'"' if quote else v
    return write


def _captures(name: str, opts: _Opts):
    """%hr/%hs: ``{a|b}``; %hrl/%hsl: ``a b`` ('-' for a header not seen, or
    each one quoted under +Q). Nothing at all when the proxy captures nothing."""
    quote, esc = opts.quote, opts.escape
    braces = name in ("hr", "hs")

    def one(v):
        if v is None:
            return b"" if braces or quote else b"-"
        v = _encode(v, _HDR_ENCODE, b"#")
        return _escape(v) if esc else v

    def write(txn):
        caps = txn.log.get(name)
        if caps is None:
            return b""
        if braces:
            out = b"{" + b"|".join([one(v) for v in caps]) + b"}"
            return b'"' + out + b'"' if quote else out
        if quote:
            return b" ".join([b'"' + one(v) + b'"' for v in caps])
        return b" ".join([one(v) for v in caps])
    write.optional = True
    return write


def _bare(get, empty: bytes):
    """A number, a date or a state: never quoted nor escaped, '-' when missing."""
    def write(txn):
        v = get(txn)
        if v is None:
            return empty
        c = v.__class__
        if c is int:
            return b"%d" % v
        v = v.encode() if c is str else v if c is bytes else as_str(v)
        return v or empty
    return write


def _alias(name: str, opts: _Opts, http: bool, wired=None):
    if name in _CAPTURES:
        return _captures(name, opts)
    if name in ALIASES:
        get, kind = ALIASES[name]
    elif wired is not None and name in wired:
        get, kind = wired[name], "any"
    else:
        def get(txn, name=name):
            return txn.log.get(name)
        kind = "any"
    if kind == "str" or kind == "url":
        return _text(get, opts, http, url=kind == "url")
    hexa = opts.hex
    if not hexa and (kind in ("port", "int") or name in _UNQUOTED):
        return _bare(get, b"-" if opts.mandatory else b"")

    def raw(txn):
        v = get(txn)
        if v is None:
            return None
        c = v.__class__
        if not hexa:
            if c is int:
                return b"%d" % v
            if c is bytes:
                return v
        if c is str and hexa and kind == "ip":
            v = ipaddress.ip_address(v)
        if hexa and kind == "ip" and v.version == 4:
            return b"%08X" % int(v)
        if hexa and v.__class__ is int:
            return (b"%04X" if kind == "port" else b"%X") % v
        return v.encode() if isinstance(v, str) else as_str(v)
    # HAProxy writes numbers (ports, status, timers, counters) without quotes,
    # whatever +Q says; addresses and names are quoted.
    bare = opts.copy()
    bare.quote = False
    if kind in ("port", "int") or name in _UNQUOTED:
        return _text(raw, bare, http)
    if kind == "ip":
        return _text(raw, opts, http)
    quoted, unquoted = _text(raw, opts, http), _text(raw, bare, http)

    def write(txn):
        return unquoted(txn) if get(txn).__class__ is int else quoted(txn)
    return write


# ------------------------------------------------------------------ compiling

_NAME = re.compile(r"[A-Za-z0-9]+")     # HAProxy: a name ends at the first non-alphanumeric


def compile_logformat(text: str, ctx: Optional[Ctx] = None, mode: str = "log",
                      wired=None) -> Callable:
    """``text`` -> ``fmt(txn) -> bytes``; ``uses`` on the result: 'req'/'res' when
    a ``%[...]`` reads request or response headers. ``wired``: NAME -> getter(txn)
    for the values otherwise read from ``txn.log`` (proxy/log/httplog.py)."""
    ctx = ctx or Ctx(phase="log" if mode == "log" else "req")
    http = mode == "http"
    base = _Opts(mandatory=not http)
    parts: List[object] = []
    literal: List[str] = []
    uses = set()
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c != "%":
            if c == " " and not http and literal and literal[-1] == " ":
                i += 1                       # LOG_OPT_MERGE_SPACES
                continue
            literal.append(c)
            i += 1
            continue
        if i + 1 < n and text[i + 1] == "%":
            literal.append("%")
            i += 2
            continue
        start = i
        i += 1
        opts = base
        if i < n and text[i] == "{":
            end = text.find("}", i)
            if end < 0:
                raise RuleError("log-format: missing '}' after '%s'" % text[start:],
                                "flags are written %{+Q}")
            opts = _parse_flags(text[i + 1:end], base)
            i = end + 1
        if i < n and text[i] == "[":
            end = text.find("]", i)
            if end < 0:
                raise RuleError("log-format: missing ']' after '%s'" % text[start:start + 40],
                                "a sample expression is written %[fetch,converter]")
            expr = compile_sample(text[i + 1:end], ctx)
            if expr.uses:
                uses.add(expr.uses)
            value = expr.value
            if expr.type == T_BIN:
                def raw(txn, value=value):
                    v = value(txn)
                    return None if v is None else _bin2str(v)
            elif expr.type == T_STR:
                raw = value                  # bytes already
            elif expr.type == T_IP:
                def raw(txn, value=value):
                    v = value(txn)
                    return None if v is None else ip_text(v)
            else:
                def raw(txn, value=value):
                    v = value(txn)
                    return None if v is None else as_str(v)
            part = _text(raw, opts, http, sample=True)
            i = end + 1
        else:
            m = _NAME.match(text, i)
            if not m:
                raise RuleError("log-format: a '%%' must be followed by a variable, '[', "
                                "'{' or another '%%' (at '%s')" % text[start:start + 20],
                                "write '%%' for a literal '%'")
            name = m.group(0)
            i = m.end()
            if name == "o":
                base = opts                  # %o: its flags apply to what follows
                continue
            if name not in ALIASES and name not in WIRED:
                raise RuleError("log-format: no such format variable '%%%s'" % name,
                                did_you_mean(name, list(ALIASES) + list(WIRED)))
            if ALIASES.get(name, (None, ""))[1] == "url" or name in ("HPO",):
                uses.add("req")
            part = _alias(name, opts, http, wired)
        if literal:
            parts.append("".join(literal).encode("utf-8", "surrogateescape"))
            literal = []
        parts.append(part)
    if literal:
        parts.append("".join(literal).encode("utf-8", "surrogateescape"))
    if not http:
        parts = _separators(parts)
    fmt = _assemble(parts)
    fmt.uses = frozenset(uses)
    return fmt


def _separators(parts):
    """HAProxy's rule for the spaces of a log-format: a space is a separator,
    written only when something was written since the last one (none at the
    start). Only a capture field (%hr...) can write nothing; so a capture
    between two separators takes the second one with it when it writes."""
    if parts and parts[0].__class__ is bytes:
        parts[0] = parts[0].lstrip(b" ")
        if not parts[0]:
            parts = parts[1:]
    out: List[object] = []
    i = 0
    while i < len(parts):
        p = parts[i]
        if getattr(p, "optional", False):
            group = [p]
            while i + 1 < len(parts) and getattr(parts[i + 1], "optional", False):
                i += 1
                group.append(parts[i])
            before = out[-1] if out else b" "
            after = parts[i + 1] if i + 1 < len(parts) else None
            at_sep = getattr(before, "ends_sep", False) or (
                before.__class__ is bytes and before.endswith(b" "))
            if at_sep and after.__class__ is bytes and after.startswith(b" "):
                parts[i + 1] = after[1:]
                out.append(_then_space(group))
            elif len(group) > 1:
                out.append(_then_space(group, space=b""))
            else:
                out.append(p)
            if i + 1 < len(parts) and parts[i + 1] == b"":
                i += 1
        else:
            out.append(p)
        i += 1
    return out


def _then_space(group, space=b" "):
    def write(txn):
        v = b"".join([g(txn) for g in group])
        return v + space if v else b""
    write.ends_sep = bool(space)       # afterwards the line ends at a separator
    return write


def _assemble(parts):
    if not parts:
        def empty(txn):
            return b""
        return empty
    if len(parts) == 1 and parts[0].__class__ is bytes:
        const = parts[0]

        def constant(txn):
            return const
        return constant
    if len(parts) == 1:
        only = parts[0]
        if getattr(only, "uses", None) is None:
            return only                  # (a part of its own: fmt.uses may be set on it)

        def single(txn):
            return only(txn)
        return single
    plan = tuple(parts)

    def fmt(txn):
        return b"".join([p if p.__class__ is bytes else p(txn) for p in plan])
    return fmt
