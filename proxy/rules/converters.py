"""The converters: HAProxy 2.6's names, arguments and types (section 7.3.1).

Each ``make(args, ctx)`` returns ``fn(value, txn) -> value or None`` with its
arguments bound and its files read (maps) once, at load.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import re

from . import patterns, refs
from .errors import RuleError
from .sample import (Arg, T_BIN, T_INT, T_IP, T_STR, as_str, compile_regex, converter,
                     CONVERTERS, Conv, var_name)

S, I = Arg.STR, Arg.INT


def _b(text: str) -> bytes:
    return text.encode("utf-8", "surrogateescape")


@converter("lower", T_STR, T_STR)
def _lower(args, ctx):
    return lambda v, txn: v.lower()


@converter("upper", T_STR, T_STR)
def _upper(args, ctx):
    return lambda v, txn: v.upper()


@converter("length", T_STR, T_INT)
def _length(args, ctx):
    # HAProxy 2.6 calls it 'length' ('len' is refused at load, measured).
    return lambda v, txn: len(v)


@converter("hex", T_BIN, T_STR)
def _hex(args, ctx):
    return lambda v, txn: v.hex().upper().encode()


@converter("base64", T_BIN, T_STR)
def _base64(args, ctx):
    return lambda v, txn: base64.b64encode(v)


@converter("b64dec", T_STR, T_BIN)
def _b64dec(args, ctx):
    def dec(v, txn):
        try:
            return base64.b64decode(v, validate=True)
        except (binascii.Error, ValueError):
            return None
    return dec


@converter("bytes", T_BIN, T_BIN, (I, I), 1)
def _bytes(args, ctx):
    off = args[0]
    if off < 0:
        return lambda v, txn: None     # HAProxy accepts it at load; no sample at run time
    if len(args) > 1:
        if args[1] < 0:
            return lambda v, txn: None
        end = off + args[1]
        return lambda v, txn: v[off:end] if off < len(v) else None
    return lambda v, txn: v[off:] if off < len(v) else None


_PCT = re.compile(rb"%([0-9A-Fa-f]{2})")


def url_decode(v: bytes, in_form: bool):
    """%XX decoded; '+' is a space in a form, else only after a '?'; a bad or
    truncated escape makes the conversion fail, as HAProxy's url_decode."""
    if b"%" in v:
        if re.search(rb"%(?![0-9A-Fa-f]{2})", v):
            return None
    if not in_form:
        q = v.find(b"?")
        if q >= 0:
            head, tail = v[:q + 1], v[q + 1:].replace(b"+", b" ")
        else:
            head, tail = v, b""
        return _PCT.sub(lambda m: bytes((int(m.group(1), 16),)), head) + \
            _PCT.sub(lambda m: bytes((int(m.group(1), 16),)), tail)
    return _PCT.sub(lambda m: bytes((int(m.group(1), 16),)), v.replace(b"+", b" "))


@converter("url_dec", T_STR, T_STR, (I,), 0)
def _url_dec(args, ctx):
    in_form = bool(args[0]) if args else False
    return lambda v, txn: url_decode(v, in_form)


@converter("field", T_STR, T_STR, (I, S, I), 2)
def _field(args, ctx):
    return _splitter(args, "field", keep_empty=True)


@converter("word", T_STR, T_STR, (I, S, I), 2)
def _word(args, ctx):
    return _splitter(args, "word", keep_empty=False)


def _splitter(args, name, keep_empty):
    index, delims = args[0], _b(args[1])
    count = args[2] if len(args) > 2 else 1
    if index == 0:
        raise RuleError("converter '%s': the index must not be 0" % name,
                        "indexes start at 1 (from the start) or -1 (from the end)")
    if not delims:
        raise RuleError("converter '%s': empty delimiters list" % name)
    if count < 0:
        raise RuleError("converter '%s': the count must not be negative" % name)
    split = re.compile(b"[" + re.escape(delims) + b"]" + (b"" if keep_empty else b"+"))

    def spans(v):
        out, start = [], 0
        for m in split.finditer(v):
            out.append((start, m.start()))
            start = m.end()
        out.append((start, len(v)))
        if not keep_empty:
            out = [s for s in out if s[1] > s[0]]
        return out

    def convert(v, txn):
        sp = spans(v)
        n = len(sp)
        if index > 0:
            k = index - 1
            if k >= n:
                return b"" if not keep_empty else None
            last = n - 1 if count == 0 else min(n - 1, k + count - 1)
            return v[sp[k][0]:sp[last][1]]
        k = n + index
        if k < 0:
            return b"" if not keep_empty else None
        first = 0 if count == 0 else max(0, k - count + 1)
        return v[sp[first][0]:sp[k][1]]
    return convert


@converter("regsub", T_STR, T_STR, (S, S, S), 2)
def _regsub(args, ctx):
    flags = args[2] if len(args) > 2 else ""
    bad = set(flags) - set("gi")
    if bad:
        raise RuleError("converter 'regsub': invalid regex flag '%s'" % sorted(bad)[0],
                        "flags are 'g' (every match) and 'i' (ignore case)")
    rx = compile_regex(args[0], re.IGNORECASE if "i" in flags else 0, "converter 'regsub'")
    count = 0 if "g" in flags else 1
    subst = _b(args[1])
    # HAProxy's \0..\9 back-references; everything else is literal.
    parts = re.split(rb"\\([0-9])", subst)

    def expand(m):
        out = []
        for i, p in enumerate(parts):
            if i % 2:
                g = m.group(int(p)) if int(p) <= rx.groups else None
                out.append(g or b"")
            else:
                out.append(p)
        return b"".join(out)
    return lambda v, txn: rx.sub(expand, v, count=count)


def _mask(text, version, what):
    """A mask as bits (24) or as an address (255.255.255.0, any bits: HAProxy
    takes a non-contiguous one too) -> the integer to AND with."""
    bits = 32 if version == 4 else 128
    full = (1 << bits) - 1
    if re.fullmatch(r"[0-9]+", text):
        n = int(text)
        if n <= bits:
            return full ^ ((1 << (bits - n)) - 1)
    else:
        try:
            addr = ipaddress.ip_address(text)
            if addr.version == version:
                return int(addr)
        except ValueError:
            pass
    raise RuleError("%s: '%s' is not a valid IPv%d mask" % (what, text, version),
                    "a number of bits (24) or a netmask (255.255.255.0)")


@converter("ipmask", T_IP, T_IP, (S, S), 1)
def _ipmask(args, ctx):
    mask4 = _mask(args[0], 4, "converter 'ipmask'")
    mask6 = _mask(args[1], 6, "converter 'ipmask'") if len(args) > 1 else None

    def convert(ip, txn):
        if ip.version == 4:
            return ipaddress.IPv4Address(int(ip) & mask4)
        if mask6 is None:
            return None          # no mask6: an IPv6 address fails, as in HAProxy
        return ipaddress.IPv6Address(int(ip) & mask6)
    return convert


@converter("concat", T_STR, T_STR, (S, S, S), 0)
def _concat(args, ctx):
    start = _b(args[0]) if args else b""
    var = var_name(args[1], "converter 'concat'") if len(args) > 1 and args[1] else None
    end = _b(args[2]) if len(args) > 2 else b""
    if var is None:
        suffix = start + end
        return lambda v, txn: v + suffix
    scope, name = var

    def convert(v, txn):
        got = txn.vars(scope).get(name)
        return v + start + (b"" if got is None else as_str(got)) + end
    return convert


# ------------------------------------------------------------------ maps

_OUT_TYPES = {"str": T_STR, "int": T_INT, "ip": T_IP}
_IN_TYPES = {"int": T_INT, "ip": T_IP}


def parse_map(text: str, what: str):
    """A map file's (key, value) lines: '#' comments and blank lines skipped,
    leading blanks stripped, the key up to the first blank, the value the rest
    without surrounding blanks."""
    entries = []
    for line in text.splitlines():
        line = line.lstrip(" \t")
        if not line or line.startswith("#"):
            continue
        parts = re.split(r"[ \t]+", line, maxsplit=1)
        value = parts[1].rstrip(" \t") if len(parts) > 1 else ""
        entries.append((parts[0], value))
    return entries


def _map_value(value: str, out_type, what):
    if out_type == T_STR:
        return _b(value)
    if out_type == T_INT:
        if not re.fullmatch(r"-?[0-9]+", value):
            raise RuleError("%s: '%s' is not an integer" % (what, value))
        return int(value)
    try:
        return ipaddress.ip_address(value)
    except ValueError:
        raise RuleError("%s: '%s' is not an IP address" % (what, value)) from None


def _make_map(match, out_type):
    def make(args, ctx):
        name = "map_%s" % match
        what = "converter '%s'" % name
        where = "%s, map file '%s'" % (what, args[0])
        # One entry list per file, which the runtime API may change (proxy/rules/refs.py).
        ref = refs.register(args[0], ctx.read(args[0], "map"), lambda t: parse_map(t, what))

        def compile_find(strict):
            items = []
            for _, k, v in ref.entries:
                try:
                    items.append((k, False, _map_value(v, out_type, where)))
                except RuleError:
                    if strict:
                        raise            # in the file: a load error; added at run time: skipped
            return patterns.build(match, items, where)
        state = [compile_find(True)]

        def rebuild():
            try:
                state[0] = compile_find(True)
            except RuleError:
                return False             # (a pattern or value this map cannot take: refused)
            return True
        ref.users.append(rebuild)
        default = _map_value(args[1], out_type, what + " default") if len(args) > 1 else None
        if default is None:
            return lambda v, txn: state[0](v)

        def lookup(v, txn):
            got = state[0](v)
            return default if got is None else got
        return lookup
    return make


def _register_maps():
    for match in ("str", "beg", "sub", "dir", "dom", "end", "reg", "int", "ip"):
        in_type = _IN_TYPES.get(match, T_STR)
        for out, out_type in _OUT_TYPES.items():
            name = "map_%s" % match if out == "str" else "map_%s_%s" % (match, out)
            CONVERTERS[name] = Conv(name, in_type, out_type, (S, S), 1, _make_map(match, out_type))
    CONVERTERS["map"] = CONVERTERS["map_str"]._replace(name="map")


_register_maps()
