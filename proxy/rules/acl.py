"""ACLs and conditions: ``acl NAME CRITERION [flags] [operator] VALUE...`` and
``if|unless [!]ACL ... [|| ...]``, compiled into ``cond(txn) -> bool``.

An ACL is true when any sample of its criterion (every header occurrence for
``hdr()`` without an occurrence, every cookie...) matches any of its patterns;
several ``acl`` lines with one name are OR'ed. A condition is OR of AND
groups, evaluated left to right with short circuits (HAProxy 7.2).
"""

from __future__ import annotations

import re
from typing import Callable, Dict, List, Optional

from . import patterns, refs
from .codegen import Frag, build, build_pred, combine, frag_of, substitute
from .errors import RuleError, did_you_mean
from .sample import (FETCHES, T_BIN, T_BOOL, T_INT, T_IP, T_STR, Ctx, PhaseError, caster,
                     compile_sample, split_call)

# <fetch>_<match> keywords (path_beg, hdr_sub(host)...): fetch -> its derived matches.
_STR_DERIVED = ("beg", "dir", "dom", "end", "len", "reg", "sub")
DERIVED_BASES = {
# (Measured: url_param_beg, req.fhdr_beg and urlp_ip are unknown to HAProxy 2.6.12.)
    "path": _STR_DERIVED, "url": _STR_DERIVED, "base": _STR_DERIVED,
    "hdr": _STR_DERIVED, "req.hdr": _STR_DERIVED,
    "res.hdr": _STR_DERIVED, "shdr": _STR_DERIVED,      # hdr_ip & co are fetches
    "cook": _STR_DERIVED, "req.cook": _STR_DERIVED, "res.cook": _STR_DERIVED,
    "scook": _STR_DERIVED, "urlp": _STR_DERIVED,
}
DERIVED: Dict[str, tuple] = {}
for _base, _matches in DERIVED_BASES.items():
    for _m in _matches:
        DERIVED["%s_%s" % (_base, _m)] = (_base, _m)

# HAProxy's predefined ACLs (7.4), compiled on first use.
PREDEFINED = {
    "TRUE": "always_true", "FALSE": "always_false",
    "HTTP": "req.proto_http", "HTTP_1.0": "req.ver 1.0", "HTTP_1.1": "req.ver 1.1",
    "HTTP_2.0": "req.ver 2.0",
    "HTTP_CONTENT": "req.hdr_val(content-length) gt 0",
    "HTTP_URL_ABS": "url_reg ^[^/:]*://", "HTTP_URL_SLASH": "url_beg /",
    "HTTP_URL_STAR": "url *", "LOCALHOST": "src 127.0.0.1/8 ::1",
    "METH_CONNECT": "method CONNECT", "METH_DELETE": "method DELETE",
    "METH_GET": "method GET HEAD", "METH_HEAD": "method HEAD",
    "METH_OPTIONS": "method OPTIONS", "METH_POST": "method POST",
    "METH_PUT": "method PUT", "METH_TRACE": "method TRACE",
    "REQ_CONTENT": "req.len gt 0", "WAIT_END": "wait_end",
}
_OPERATORS = ("eq", "ge", "gt", "le", "lt")
_NAME_OK = re.compile(r"[A-Za-z0-9_.:-]+")


def _default_match(fetch_match: Optional[str], typ: str, criterion: str) -> str:
    if fetch_match is not None:
        return fetch_match
    if typ == T_BOOL:
        return "bool"
    if typ == T_INT:
        return "int"
    if typ == T_IP:
        return "ip"
    if typ == T_STR:
        return "str"
    raise RuleError("matching method must be specified first (using '-m') when using a "
                    "sample fetch of this type ('%s')" % criterion,
                    "e.g. '%s -m found' or '-m str'" % criterion)


def _operator_pattern(op: str, text: str, what: str) -> str:
    """HAProxy's integer operators as ranges: 'gt 5' is '6:'."""
    if ":" in text or op == "eq":
        return text
    lo, hi = patterns.parse_range(text, what)
    n = lo
    return {"ge": "%d:" % n, "gt": "%d:" % (n + 1), "le": ":%d" % n,
            "lt": ":%d" % (n - 1)}[op]


def _never(txn):
    return False


_never.frag = Frag("False")


def compile_acl(words: List[str], ctx: Optional[Ctx] = None,
                warnings: Optional[List[str]] = None) -> Callable:
    """``CRITERION [flags] [operator] VALUE...`` -> ``match(txn) -> bool``."""
    ctx = ctx or Ctx()
    if not words:
        raise RuleError("missing ACL criterion", "e.g. 'acl is_api path_beg /api'")
    criterion = words[0]
    name, _, _ = split_call(criterion, 0, "ACL keyword '%s'" % criterion)
    forced = None
    fetch_def = None
    if name in DERIVED and name not in FETCHES:
        base, forced = DERIVED[name]
        fetch_def = FETCHES[base]._replace(name=name)
    elif name not in FETCHES:
        raise RuleError("unknown fetch method '%s' in ACL expression '%s'" % (name, criterion),
                        did_you_mean(name, list(FETCHES) + list(DERIVED)))
    try:
        expr = compile_sample(criterion, ctx, fetch_def=fetch_def)
    except PhaseError as exc:
        # HAProxy loads it with a warning: the ACL never matches in these rules.
        if warnings is not None:
            warnings.append("ACL '%s' will never match because it uses keyword '%s' "
                            "which is not available here (%s)" % (
                                criterion, exc.fetch_name, exc.message))
        return _never
    except RuleError as exc:
        raise RuleError("%s in ACL expression '%s'" % (exc.message, criterion),
                        exc.hint) from None
    method = None
    icase = False
    items: List[patterns.Item] = []
    map_mode = False             # -M: a -f file is a map, its first column the pattern
    files = 0
    file_refs = []               # (-f file's ref, -i, -M): patterns the runtime API may change
    dashdash = False
    args = words[1:]
    i = 0
    while i < len(args):
        word = args[i]
        if not word.startswith("-") or word == "-":
            break
        if word == "--":
            dashdash = True
            i += 1
            break
        if word == "-i":
            icase = True
        elif word == "-n":
            pass                     # no DNS: keepwarm never resolves patterns anyway
        elif word in ("-m", "-f", "-M", "-u"):
            if word == "-M":
                map_mode = True
                i += 1
                continue
            if i + 1 >= len(args):
                raise RuleError("ACL option '%s' expects an argument" % word)
            value = args[i + 1]
            if word == "-m":
                if items or files:
                    raise RuleError("'-m' must only be specified before patterns and files "
                                    "in parsing ACL expression")
                method = patterns.check_method(value)
            elif word == "-u":
                if not re.fullmatch(r"-?[0-9]+", value):
                    raise RuleError("the argument of -u must be an integer")
            else:
                files += 1
                # One entry list per file, which the runtime API may change (refs.py).
                file_refs.append((refs.register(value, ctx.read(value, "pattern"),
                                                _pattern_lines, kind="acl"), icase, map_mode))
            i += 1
        else:
            raise RuleError("'%s' is not a valid ACL option. Please use '--' before any "
                            "pattern beginning with a '-'" % word)
        i += 1
    if method is None:
        method = forced or _default_match(
            expr.fetch.match if expr.type == expr.fetch.type else None, expr.type, criterion)
    values = args[i:]
    what = "ACL '%s'" % criterion
    op = "eq"
    for text in values:
        if method in ("int", "len") and text in _OPERATORS:
            op = text
            continue
        if method in ("int", "len"):
            text = _operator_pattern(op, text, what)
        items.append((text, icase, True))
    want = patterns.MATCH_TYPES[method]
    if want is not None:
        if method in patterns.STRING_METHODS and expr.type in (T_STR, T_BIN):
            cast = None
        elif method == "bool" and expr.type == T_INT:
            cast = None
        else:
            try:
                cast = caster(expr.type, want, what)
            except RuleError:
                raise RuleError("matching method '%s' cannot be used with fetch keyword '%s'"
                                % (method, name)) from None
    else:
        cast = None
    get = expr.values
    if method == "found":
        return build(combine("bool($0)", (frag_of(get),)), "acl")
    if method == "bool":
        if cast is None:
            return lambda txn: any(get(txn))
        return lambda txn: any(cast(v) for v in get(txn))
    if not items and not file_refs:
        # HAProxy's warning, unless '--' or a (maybe empty) pattern file says it is meant.
        if warnings is not None and not dashdash and not files:
            warnings.append("parsing acl keyword '%s': no pattern to match against were "
                            "provided, so this ACL will never match (add '--' to say it "
                            "is meant, or use '-m found' to test for existence)" % criterion)
        return _never
    if file_refs:
        find = _rebuildable(method, items, file_refs, what)
        test = None
    else:
        find = patterns.build(method, items, what)
        test = patterns.test_frag(method, items) if cast is None else None
    if test is None:
        test = Frag("{find}({v}) is not None", {"find": find})
        if cast is not None:
            test = Frag("(({v} := {cast}({v})) is not None and {find}({v}) is not None)",
                        {"find": find, "cast": cast})
    if expr.fetch.many is None and not expr.multi:
        # One sample at most (path, src, method...): no list to walk.
        one = Frag("(({v} := {value}) is not None and %s)" % test.src, test.env)
        return build(substitute(one, "value", frag_of(expr.value)), "acl")
    # Every sample (each header value...): true when one matches.
    many = Frag("any(map({match}, {values}))", {"match": build_pred(test)})
    return build(substitute(many, "values", frag_of(get)), "acl")


def _pattern_lines(text):
    """A pattern file's patterns: one a line, '#' comments and blank lines skipped."""
    out = []
    for line in text.splitlines():
        line = line.lstrip(" \t").rstrip("\r")
        if line and not line.startswith("#"):
            out.append((line, ""))
    return out


def _rebuildable(method, inline, file_refs, what):
    """The lookup of an ACL with -f files: rebuilt when the runtime API changes one."""
    def items():
        return inline + [(k.split()[0] if map_mode else k, icase, True)
                         for ref, icase, map_mode in file_refs for _, k, _ in ref.entries]
    state = [patterns.build(method, items(), what)]

    def rebuild():
        try:
            state[0] = patterns.build(method, items(), what)
        except RuleError:
            return False                 # (a pattern this match cannot take: refused)
        return True
    find = lambda v: state[0](v)        # noqa: E731
    for ref, icase, _ in file_refs:
        ref.users.append(rebuild)
        if ref.probe is None:            # what `get acl` answers with
            ref.probe = (method, icase, find)
    return find


class Acls:
    """The named ACLs of one proxy (lines with one name are OR'ed).

    Each line is compiled when added (its errors belong to its own line), for
    request rules; a response rule's use compiles it again for the response
    (``hdr()`` there reads the response's headers), once."""

    def __init__(self, ctx: Optional[Ctx] = None):
        self.ctx = ctx or Ctx()
        self.named: Dict[str, List[list]] = {}
        self.warnings: List[str] = []
        self._compiled: Dict[tuple, Callable] = {}

    def add(self, words: List[str], ctx: Optional[Ctx] = None) -> None:
        """The words after ``acl``: NAME CRITERION [flags] [operator] VALUE..."""
        if not words:
            raise RuleError("'acl' expects an ACL name", "e.g. 'acl is_api path_beg /api'")
        name = words[0]
        bad = next((c for c in name if not _NAME_OK.fullmatch(c)), None)
        if bad is not None:
            raise RuleError("invalid character in ACL name : '%s'" % bad,
                            "ACL names use letters, digits, '-', '_', '.' and ':'")
        if len(words) < 2:
            raise RuleError("missing ACL criterion after ACL name '%s'" % name,
                            "e.g. 'acl %s path_beg /api'" % name)
        ctx = ctx or self.ctx
        test = compile_acl(words[1:], ctx.replace(phase="any"), self.warnings)
        self.named.setdefault(name, []).append([words[1:], ctx, test])
        self._compiled = {k: v for k, v in self._compiled.items() if k[0] != name}

    def get(self, name: str, ctx: Optional[Ctx] = None) -> Optional[Callable]:
        """The named ACL as the condition compiled in `ctx` uses it (its phase,
        proxy and rule decide what its fetches may read)."""
        ctx = ctx or self.ctx
        key = (name, ctx.phase, ctx.proxy, ctx.rule)
        got = self._compiled.get(key)
        if got is not None:
            return got
        lines = self.named.get(name)
        if lines is None:
            return predefined(name, ctx.phase)
        tests = tuple(compile_acl(w, c.replace(phase=ctx.phase, proxy=ctx.proxy,
                                              rule=ctx.rule), self.warnings)
                      for w, c, _ in lines)
        got = any_of(list(tests))
        self._compiled[key] = got
        return got


_PREDEFINED_CACHE: Dict[str, Callable] = {}


def predefined(name: str, phase: str = "req") -> Optional[Callable]:
    f = _PREDEFINED_CACHE.get((name, phase))
    if f is None:
        text = PREDEFINED.get(name)
        if text is None:
            return None
        f = _PREDEFINED_CACHE[(name, phase)] = compile_acl(text.split(),
                                                           Ctx(env={}, phase=phase))
    return f


def compile_condition(words: List[str], acls: Optional[Acls] = None,
                      ctx: Optional[Ctx] = None) -> Callable:
    """``if|unless TERM...`` -> ``cond(txn) -> bool``; a TERM is ``[!]NAME`` or
    ``[!]{ CRITERION ... }``; terms AND, ``||``/``or`` separates OR groups."""
    acls = acls if acls is not None else Acls(ctx)
    ctx = ctx or acls.ctx
    if not words or words[0] not in ("if", "unless"):
        raise RuleError("conditions must start with either 'if' or 'unless'",
                        "e.g. 'if is_api' or 'unless { src 10.0.0.0/8 }'")
    negate_all = words[0] == "unless"
    groups: List[List[Callable]] = [[]]
    i, n = 1, len(words)
    while i < n:
        word = words[i]
        if word in ("||", "or"):
            # HAProxy starts a group only when a term comes: 'if a or' is 'if a'.
            if groups[-1]:
                groups.append([])
            i += 1
            continue
        neg = False
        while word.startswith("!"):
            neg = not neg
            word = word[1:]
            if not word:
                i += 1
                if i >= n:
                    raise RuleError("missing ACL name after '!' in condition")
                word = words[i]
        if word == "{":
            end = i + 1
            while end < n and words[end] != "}":
                end += 1
            if end >= n:
                raise RuleError("missing closing '}' in condition")
            test = compile_acl(words[i + 1:end], ctx, acls.warnings)
            i = end + 1
        else:
            test = acls.get(word, ctx)
            if test is None:
                raise RuleError("no such ACL : '%s'" % word,
                                did_you_mean(word, list(acls.named) + list(PREDEFINED)))
            i += 1
        groups[-1].append(_negate(test) if neg else test)
    if not groups[-1]:
        groups.pop()
    if not groups:
        raise RuleError("missing ACL in condition after '%s'" % words[-1],
                        "e.g. '%s is_api'" % words[0])
    cond = any_of([all_of(g) for g in groups])
    return _negate(cond) if negate_all else cond


def _negate(f):
    return build(combine("not $0", (frag_of(f),)))


def all_of(tests):
    """The tests AND'ed, left to right, as one function (codegen.py)."""
    if len(tests) == 1:
        return tests[0]
    return build(combine("(" + " and ".join("$%d" % i for i in range(len(tests))) + ")",
                         [frag_of(t) for t in tests]))


def any_of(tests):
    """The tests OR'ed, left to right, as one function."""
    if len(tests) == 1:
        return tests[0]
    return build(combine("(" + " or ".join("$%d" % i for i in range(len(tests))) + ")",
                         [frag_of(t) for t in tests]))
