"""Sample expressions: types, casts, arguments, and ``fetch(args),conv(args),...``
compiled once into closures.

A sample is a plain Python value whose type is known at compile time:
``bool``, ``int``, ``ip`` (an ``ipaddress`` object), ``str`` and ``bin`` (both
``bytes``); ``any`` is a variable's, resolved from the Python type when read.
A fetch or a converter that finds nothing returns ``None`` ("no sample").
Casts between types follow HAProxy 2.6's table (``sample_casts``); one that
HAProxy has not is a compile-time error.
"""

from __future__ import annotations

import ipaddress
import os
import re
from typing import Callable, Dict, List, Mapping, NamedTuple, Optional, Sequence

from .errors import RuleError, did_you_mean

T_ANY, T_BOOL, T_INT, T_IP, T_STR, T_BIN = "any", "bool", "integer", "ip", "string", "binary"

_IP = (ipaddress.IPv4Address, ipaddress.IPv6Address)


class Ctx:
    """What compiling needs from the configuration around an expression.

    ``env``: the environment as the parser sees it (after ``setenv``) for
    ``env()``; ``backends``: the backend names, to check ``nbsrv(NAME)`` (None:
    not checked); ``base_dir``: where relative map and pattern files are;
    ``read_file``: how a file is read (a test may pass a dict's ``__getitem__``);
    ``phase``: 'req' (http-request, use_backend), 'res' (http-response), 'log'
    (log-format), or 'any' (no check: a named ACL before its use)."""

    def __init__(self, env: Optional[Mapping[str, str]] = None, backends=None,
                 base_dir: str = "", read_file: Optional[Callable[[str], str]] = None,
                 phase: str = "req", proxy: Optional[str] = None, rule: Optional[str] = None):
        self.env = os.environ if env is None else env
        self.backends = backends
        self.base_dir = base_dir
        self.read_file = read_file or _read_file
        self.phase = phase
        self.proxy = proxy           # 'frontend', 'backend', 'listen' (None: not checked)
        self.rule = rule             # 'use_backend' for its condition (no backend yet)

    def replace(self, **kw) -> "Ctx":
        new = Ctx.__new__(Ctx)
        new.__dict__.update(self.__dict__)
        new.__dict__.update(kw)
        return new

    def read(self, name: str, what: str) -> str:
        path = name if os.path.isabs(name) or not self.base_dir else \
            os.path.join(self.base_dir, name)
        try:
            return self.read_file(path)
        except (OSError, KeyError) as exc:
            reason = getattr(exc, "strerror", None) or "not found"
            raise RuleError("failed to open %s file '%s': %s" % (what, name, reason),
                            "the path is relative to the directory keepwarm runs in"
                            if not os.path.isabs(name) else None) from None


def _read_file(path: str) -> str:
    with open(path, encoding="utf-8", errors="surrogateescape") as f:
        return f.read()


# ------------------------------------------------------------------ casts

def type_of(v) -> str:
    if v.__class__ is bool:
        return T_BOOL
    if v.__class__ is int:
        return T_INT
    if isinstance(v, _IP):
        return T_IP
    return T_STR


def read_int(b: bytes) -> Optional[int]:
    """HAProxy's string to integer: an optional sign, the leading digits (none: 0),
    clamped to 64 bits; an empty string is no integer."""
    if not b:
        return None
    m = re.match(rb"[-+]?([0-9]*)", b)
    digits = m.group(1)
    n = int(digits) if digits else 0
    if b[:1] == b"-":
        return max(-n, -(1 << 63))
    return min(n, (1 << 63) - 1)


def _str2ip(b):
    try:
        return ipaddress.ip_address(b.decode("ascii"))
    except (ValueError, UnicodeDecodeError):
        return None


def _bin2str(b):
    i = b.find(b"\0")
    return b if i < 0 else b[:i]


_IP_TEXTS: Dict[object, bytes] = {}    # address -> its text (str() of one costs ~1 µs)


def ip_text(ip) -> bytes:
    """An address as HAProxy writes it, e.g. b'10.0.0.1' or b'::1'."""
    t = _IP_TEXTS.get(ip)
    if t is None:
        if len(_IP_TEXTS) >= 4096:
            _IP_TEXTS.clear()
        t = _IP_TEXTS[ip] = str(ip).encode()
    return t


def _ip2int(ip):
    return int(ip) if ip.version == 4 else None


_CASTS: Dict[tuple, Optional[Callable]] = {
    (T_BOOL, T_INT): int, (T_BOOL, T_STR): lambda v: b"1" if v else b"0",
    (T_BOOL, T_BIN): lambda v: int(v).to_bytes(8, "big"),
    (T_INT, T_BOOL): bool, (T_INT, T_STR): lambda v: b"%d" % v,
    (T_INT, T_IP): lambda v: ipaddress.IPv4Address(v & 0xFFFFFFFF),
    (T_INT, T_BIN): lambda v: (v & 0xFFFFFFFFFFFFFFFF).to_bytes(8, "big"),
    (T_IP, T_INT): _ip2int, (T_IP, T_STR): ip_text,
    (T_IP, T_BIN): lambda v: v.packed,
    (T_STR, T_BOOL): lambda v: None if (n := read_int(v)) is None else bool(n),
    (T_STR, T_INT): read_int, (T_STR, T_IP): _str2ip, (T_STR, T_BIN): None,
    (T_BIN, T_STR): _bin2str,
}


_AN = {T_BOOL: "a boolean", T_INT: "an integer", T_IP: "an IP address", T_STR: "a string",
       T_BIN: "binary"}


def caster(src: str, dst: str, what: str) -> Optional[Callable]:
    """The function turning a `src` sample into a `dst` one (None: nothing to do);
    a RuleError when HAProxy cannot cast it."""
    if src == dst or dst == T_ANY:
        return None
    if src == T_ANY:
        return lambda v: _dynamic(v, dst)
    try:
        return _CASTS[(src, dst)]
    except KeyError:
        raise RuleError("%s: a sample of type %s cannot be used as %s"
                        % (what, src, _AN.get(dst, dst))) from None


def _dynamic(v, dst):
    src = type_of(v)
    if src == dst:
        return v
    f = _CASTS.get((src, dst), False)
    if f is False:
        return None
    return v if f is None else f(v)


def as_str(v) -> bytes:
    """Any sample as the string HAProxy prints (log-format, headers)."""
    if v.__class__ is bytes:
        return v
    return _dynamic(v, T_STR) or b""


# ------------------------------------------------------------------ arguments

def split_call(text: str, pos: int, what: str):
    """Read ``name`` or ``name(args)`` at text[pos:]; return (name, args or None, end)."""
    m = re.compile(r"[A-Za-z0-9_.]+").match(text, pos)
    if not m:
        raise RuleError("%s: expected a keyword at '%s'" % (what, text[pos:] or text))
    name, pos = m.group(0), m.end()
    if pos >= len(text) or text[pos] != "(":
        return name, None, pos
    args: List[str] = []
    cur: List[str] = []
    quote = None
    pos += 1
    while True:
        if pos >= len(text):
            raise RuleError("%s: missing closing ')' after arguments to '%s'" % (what, name),
                            "quote or backslash-escape a ',' or ')' inside an argument")
        c = text[pos]
        if quote:
            if c == "\\" and quote == '"' and pos + 1 < len(text):
                cur.append(text[pos + 1])
                pos += 2
                continue
            if c == quote:
                quote = None
            else:
                cur.append(c)
        elif c == "\\" and pos + 1 < len(text):
            cur.append(text[pos + 1])
            pos += 1
        elif c in "'\"":
            quote = c
        elif c == ",":
            args.append("".join(cur))
            cur = []
        elif c == ")":
            args.append("".join(cur))
            pos += 1
            break
        else:
            cur.append(c)
        pos += 1
    # 'str()' is one empty argument to HAProxy (measured: str(),concat(x) is 'x');
    # check_args drops it for a keyword that takes none.
    return name, args, pos


class Arg:
    """Argument kinds; each turns the written argument into the value used."""
    STR, INT, VAR, BACKEND, REGEX = "string", "integer", "variable name", "backend", "regex"


VAR_SCOPES = ("proc", "sess", "txn", "req", "res")


def var_name(text: str, what: str):
    scope, dot, name = text.partition(".")
    if not dot or scope not in VAR_SCOPES or not name:
        raise RuleError("%s: invalid variable name '%s'" % (what, text),
                        "a variable is SCOPE.NAME with SCOPE one of %s"
                        % ", ".join(VAR_SCOPES))
    if not re.fullmatch(r"[A-Za-z0-9_.]+", name):
        raise RuleError("%s: invalid variable name '%s'" % (what, text),
                        "a variable name has letters, digits, '_' and '.'")
    return scope, name


def check_args(args: Optional[List[str]], spec: Sequence[str], nmin: int, what: str,
               ctx: Ctx) -> list:
    """Count and convert the arguments of a fetch or converter by its spec."""
    args = args or []
    if args == [""] and not spec:
        args = []
    if len(args) < nmin:
        raise RuleError("%s expects %s%d argument%s (%s), got %d"
                        % (what, "at least " if nmin < len(spec) else "", nmin,
                           "" if nmin == 1 else "s", ", ".join(spec), len(args)))
    if len(args) > len(spec):
        raise RuleError("%s expects at most %d argument%s, got %d"
                        % (what, len(spec), "" if len(spec) == 1 else "s", len(args)))
    out = []
    for i, (raw, kind) in enumerate(zip(args, spec)):
        where = "%s, argument %d" % (what, i + 1)
        if kind == Arg.INT:
            if not re.fullmatch(r"[-+]?[0-9]+", raw):
                raise RuleError("%s: '%s' is not an integer" % (where, raw))
            out.append(int(raw))
        elif kind == Arg.VAR:
            out.append(var_name(raw, where))
        elif kind == Arg.BACKEND:
            if ctx.backends is not None and raw not in ctx.backends:
                raise RuleError("%s: no such backend '%s'" % (where, raw),
                                did_you_mean(raw, ctx.backends))
            out.append(raw)
        elif kind == Arg.REGEX:
            out.append(compile_regex(raw, 0, where))
        else:
            out.append(raw)
    return out


def compile_regex(text: str, flags: int, what: str):
    try:
        return re.compile(text.encode("utf-8", "surrogateescape"), flags)
    except re.error as exc:
        raise RuleError("%s: bad regex '%s': %s" % (what, text, exc)) from None


# ------------------------------------------------------------------ registries

class Fetch(NamedTuple):
    """A sample fetch: ``make(args, ctx)`` gives ``fn(txn) -> value or None``;
    ``many(args, ctx)``, when set, ``fn(txn) -> [values]`` for ACLs (every
    header occurrence, every cookie...); ``match`` the ACL's default match;
    ``use``: 'req', 'res', or '' (available everywhere)."""
    name: str
    type: str
    spec: tuple
    nmin: int
    make: Callable
    many: Optional[Callable] = None
    match: Optional[str] = None
    use: str = ""


class Conv(NamedTuple):
    """A converter: ``make(args, ctx)`` gives ``fn(value, txn) -> value or None``."""
    name: str
    in_type: str
    out_type: str
    spec: tuple
    nmin: int
    make: Callable


FETCHES: Dict[str, Fetch] = {}
CONVERTERS: Dict[str, Conv] = {}


def fetch(name, type_, spec=(), nmin=0, many=None, match=None, use="", aliases=()):
    def register(make):
        f = Fetch(name, type_, tuple(spec), nmin, make, many, match, use)
        for n in (name,) + tuple(aliases):
            FETCHES[n] = f._replace(name=n)
        return make
    return register


def converter(name, in_type, out_type, spec=(), nmin=0):
    def register(make):
        CONVERTERS[name] = Conv(name, in_type, out_type, tuple(spec), nmin, make)
        return make
    return register


# ------------------------------------------------------------------ expressions

class Expr:
    """A compiled sample expression: ``value(txn)`` (the sample, or None) and
    ``values(txn)`` (every sample, for ACLs); ``type`` the final type, ``uses``
    the fetch's need ('req', 'res' or '')."""

    __slots__ = ("text", "type", "value", "values", "fetch", "uses", "multi")

    def __init__(self, text, type_, value, values, fetch_def, uses, multi=False):
        self.multi = multi           # values() may give more than one sample
        self.text = text
        self.type = type_
        self.value = value
        self.values = values
        self.fetch = fetch_def
        self.uses = uses


# Where a fetch's data exists (HAProxy's SMP_USE_* against SMP_VAL_*, measured with
# haproxy -c): request headers and URL in request rules only, response headers in
# response rules only; the method and the status also in response rules and logs.
USABLE_IN = {"req": ("req", "any"), "res": ("res", "any"),
             "req_info": ("req", "res", "log", "any"), "res_info": ("res", "log", "any")}
_NEEDS = {"req": "the HTTP request headers", "res": "the HTTP response headers",
          "req_info": "the HTTP request", "res_info": "the HTTP response",
          "be": "the backend"}
_PHASES = {"req": "request rules do not have", "res": "response rules do not have",
           "log": "a log-format does not have",
           "use_backend": "is not chosen yet in a use_backend condition"}


class PhaseError(RuleError):
    """A fetch whose data the rule does not have: the response's in a request
    rule, request headers in a response rule or a log line (HAProxy refuses
    them in samples, and warns that an ACL using them never matches)."""

    def __init__(self, name: str, use: str, phase: str):
        hint = None
        if use == "req":
            hint = ("keep what is needed later in a variable: http-request "
                    "set-var(txn.NAME) %s, then var(txn.NAME)" % name)
        super().__init__("sample fetch '%s' may not be used here: it needs %s, which %s"
                         % (name, _NEEDS[use], _PHASES.get(phase, phase)), hint)
        self.fetch_name = name


def find_fetch(name: str, ctx: Ctx) -> Fetch:
    f = FETCHES.get(name)
    if f is None:
        raise RuleError("unknown fetch method '%s'" % name, did_you_mean(name, FETCHES))
    return f


def compile_sample(text: str, ctx: Optional[Ctx] = None, end: Optional[int] = None,
                   fetch_def: Optional[Fetch] = None) -> Expr:
    """``fetch[(args)][,conv[(args)]]...`` -> Expr. Raises RuleError."""
    ctx = ctx or Ctx()
    if not text:
        raise RuleError("missing sample fetch expression")
    name, args, pos = split_call(text, 0, "sample fetch '%s'" % text)
    f = fetch_def or find_fetch(name, ctx)
    label = "fetch method '%s'" % name
    if f.use:
        use = f.use
        if use == "dir":                     # hdr() & co: the request's, or the response's
            use = "res" if ctx.phase == "res" else "req"
        if use == "be":
            # Measured: be_name is refused in a frontend's http-request rules and
            # never matches in a use_backend condition: no backend is chosen yet.
            if ctx.rule == "use_backend" or (ctx.phase == "req" and ctx.proxy == "frontend"):
                raise PhaseError(name, use, "use_backend" if ctx.rule else ctx.phase)
        elif ctx.phase not in USABLE_IN[use]:
            raise PhaseError(name, use, ctx.phase)
    if args is None and f.nmin:
        raise RuleError("%s expects %d argument%s (%s)" % (label, f.nmin,
                        "" if f.nmin == 1 else "s", ", ".join(f.spec[:f.nmin])),
                        "e.g. '%s(%s)'" % (name, ",".join(f.spec[:f.nmin])))
    if args and args != [""] and not f.spec:
        raise RuleError("%s does not take any argument" % label)
    argv = check_args(args, f.spec, f.nmin, label, ctx)
    value = f.make(argv, ctx)
    values = f.many(argv, ctx) if f.many is not None else None
    typ = f.type
    convs = []
    while pos < len(text):
        if text[pos] != ",":
            raise RuleError("sample fetch '%s': unexpected '%s' after '%s'"
                            % (text, text[pos:], text[:pos]),
                            "converters follow the fetch, separated by commas")
        before = text[:pos]
        cname, cargs, pos = split_call(text, pos + 1, "sample fetch '%s'" % text)
        c = CONVERTERS.get(cname)
        if c is None:
            raise RuleError("unknown converter '%s'" % cname, did_you_mean(cname, CONVERTERS))
        clabel = "converter '%s'" % cname
        if cargs and cargs != [""] and not c.spec:
            raise RuleError("%s does not take any argument" % clabel)
        cargv = check_args(cargs, c.spec, c.nmin, clabel, ctx)
        cast = caster(typ, c.in_type, "converter '%s' after '%s'" % (cname, before))
        convs.append((cast, c.make(cargv, ctx)))
        typ = c.out_type
    if convs:
        chain = _chain(convs)
        value = _then(value, chain)
        values = _then_many(values, chain) if values is not None else None
    if values is None:
        values = _one(value)
    return Expr(text, typ, value, values, f, f.use, multi=f.many is not None)


def _chain(convs):
    def run(v, txn):
        for cast, conv in convs:
            if cast is not None:
                v = cast(v)
                if v is None:
                    return None
            v = conv(v, txn)
            if v is None:
                return None
        return v
    if len(convs) == 1:
        cast, conv = convs[0]
        if cast is None:
            return conv
    return run


def _then(value, chain):
    def run(txn):
        v = value(txn)
        return None if v is None else chain(v, txn)
    return run


def _then_many(values, chain):
    def run(txn):
        out = []
        for v in values(txn):
            v = chain(v, txn)
            if v is not None:
                out.append(v)
        return out
    return run


def _one(value):
    def run(txn):
        v = value(txn)
        return () if v is None else (v,)
    return run
