"""http-request/http-response rules that change the message or the variables:
set-path, set-pathq, set-query, set-uri, replace-path, replace-pathq, replace-uri,
set-method, replace-header, replace-value, set-var, set-var-fmt, unset-var,
set-status, capture, and header rules (set/add/del-header) run among them in order.

Each compiles at load into an action `action(txn) -> None` (go on with the next
rule) for `http_actions.run_actions`; an action that changes the head carries
`edits = True`. The change goes into the txn (proxy/rules/txn.py): later rules'
fetches see it, and proxy/http1/rewrite.py replays it on the head bytes.
Behaviour measured on HAProxy 2.6.12 (tests/fixtures/haproxy_rewrites.json):
a replace-* regex is searched (not anchored) and the whole part is replaced by
the expanded format; set-method leaves the `method` fetch as received; a
variable is not set when its sample is missing.
"""

from __future__ import annotations

import re

from proxy.http1.rewrite import ADD, DEL, REPLACE_HDR, REPLACE_VAL, SET, edit_pairs, expand
from proxy.rules import RuleError, compile_logformat, compile_sample
from proxy.rules.sample import as_str, var_name

URI_ACTIONS = ("set-path", "set-pathq", "set-query", "set-uri", "replace-path",
               "replace-pathq", "replace-uri", "set-method")
REQUEST_EDITS = URI_ACTIONS + ("replace-header", "replace-value", "capture")
RESPONSE_EDITS = ("replace-header", "replace-value", "set-status", "capture")
VAR_ACTIONS = ("set-var", "set-var-fmt", "unset-var")


def is_edit(keyword, kind):
    """Is `kind` (an action word, 'set-var(txn.x)' included) compiled here?"""
    base = kind.split("(", 1)[0]
    if base in VAR_ACTIONS:
        return True
    return kind in (REQUEST_EDITS if keyword == "http-request" else RESPONSE_EDITS)


def compile_edit(kind, args, ctx, keyword):
    """`kind args...` (the condition already taken off) -> action(txn)."""
    base = kind.split("(", 1)[0]
    if base in VAR_ACTIONS:
        return _var_action(kind, base, args, ctx, keyword)
    label = "'%s %s'" % (keyword, kind)
    if kind == "capture":
        return _capture(args, ctx, keyword, label)
    if kind in ("replace-header", "replace-value"):
        _count(label, args, 3, "NAME REGEX FORMAT")
        return _replace_header(kind, args, ctx, label, keyword == "http-response")
    if kind == "set-status":
        return _set_status(args, label)
    if kind.startswith("replace-"):
        _count(label, args, 2, "REGEX FORMAT")
        return _uri_action(kind, _regex(args[0], label), _fmt(args[1], ctx, True), label)
    _count(label, args, 1, "FORMAT")
    return _uri_action(kind, None, _fmt(args[0], ctx, True), label)


def _capture(args, ctx, keyword, label):
    """`capture SAMPLE id N` (a slot of `declare capture`, or of the proxy's captures
    in the order written), or for a request `capture SAMPLE len N` (a new slot):
    the sample as text into the slot, cut at its length when the line is written
    (proxy/config/parser.py numbers and checks the slots; workers/txlog.py reads
    them). A missing sample leaves the slot as it was (HAProxy)."""
    if len(args) != 3 or args[1] not in ("id", "len"):
        raise RuleError("%s expects <expression> [ 'len' <length> | 'id' <idx> ]" % label,
                        "e.g. '%s req.hdr(X-Request-Id) len 32'" % label.strip("'"))
    if args[1] == "len" and keyword == "http-response":
        raise RuleError("%s : expects 'id', found 'len'" % label.strip("'"),
                        "declare the slot: 'declare capture response len N', then "
                        "'http-response capture SAMPLE id N'")
    if not args[2].isdigit() or args[1] == "len" and int(args[2]) == 0:
        raise RuleError("%s: '%s' expects a %s number, found '%s'"
                        % (label, args[1], "positive" if args[1] == "len" else "slot",
                           args[2]))
    value = compile_sample(args[0], ctx).value
    side = 0 if keyword == "http-request" else 1
    slot = [int(args[2]) if args[1] == "id" else None]   # a len's: set by the parser

    def capture(txn):
        v = value(txn)
        if v is not None:
            caps = txn.captures
            if caps is None:
                caps = txn.captures = {}
            caps[side, slot[0]] = as_str(v)
    capture.capture = (side, args[1], int(args[2]), slot)
    return capture


def _count(label, args, n, what):
    if len(args) != n:
        raise RuleError("%s expects exactly %d argument%s (%s), found %d"
                        % (label, n, "s" if n > 1 else "", what, len(args)),
                        "quote an argument that contains spaces: \"a b\"")


def _regex(text, label):
    try:
        return re.compile(text.encode("latin-1"))
    except (re.error, UnicodeEncodeError) as exc:
        raise RuleError("%s: invalid regex '%s': %s" % (label, text, exc)) from None


_CTL = re.compile(rb"[\r\n\0]")
_CTL_SP = re.compile(rb"[\r\n\0 ]")


def _fmt(text, ctx, line=False):
    """A log-format argument -> fmt(txn) -> bytes (a constant costs nothing). What
    it makes may not break the head: CR, LF and NUL are dropped from a header
    value, and from a start line's part, where a space becomes %20 (a url_dec
    converter can make them all)."""
    if "%" not in text:
        value = _clean(text.encode("latin-1"), line)
        return lambda txn: value
    fmt = compile_logformat(text, ctx, mode="http")
    return lambda txn: _clean(fmt(txn), line)


def _clean(value, line):
    if (_CTL_SP if line else _CTL).search(value) is None:
        return value
    value = value.replace(b"\r", b"").replace(b"\n", b"").replace(b"\0", b"")
    return value.replace(b" ", b"%20") if line else value


def _split(target):
    """(scheme://authority, path, '?query' or b'') of a request target."""
    start = 0
    if not target.startswith(b"/"):
        s = target.find(b"://")
        if s > 0:
            slash = target.find(b"/", s + 3)
            start = len(target) if slash < 0 else slash
    q = target.find(b"?", start)
    if q < 0:
        return target[:start], target[start:], b""
    return target[:start], target[start:q], target[q:]


def _uri_action(kind, regex, fmt, label):
    if kind == "set-method":
        def action(txn):
            txn.set_method(fmt(txn))
    elif kind == "set-uri":
        def action(txn):
            txn.set_target(fmt(txn))
    elif kind == "replace-uri":
        def action(txn):
            m = regex.search(txn.target)
            if m is not None:
                txn.set_target(expand(fmt(txn), m))
    else:
        part = {"set-path": 1, "replace-path": 1, "set-query": 2}.get(kind, 3)   # 3: pathq

        def action(txn):
            auth, path, query = _split(txn.target)
            if part == 1:
                old = path
            elif part == 2:
                old = query[1:]
            else:
                old = path + query
            new = fmt(txn)
            if regex is not None:
                m = regex.search(old)
                if m is None:
                    return
                new = expand(new, m)
            if part == 1:
                txn.set_target(auth + new + query)
            elif part == 2:
                txn.set_target(auth + path + b"?" + new)
            else:
                txn.set_target(auth + new)
    action.edits = True
    return action


def _replace_header(kind, args, ctx, label, response):
    name, regex, fmt = args[0], _regex(args[1], label), _fmt(args[2], ctx)
    lname = name.lower().encode("latin-1")
    how = REPLACE_HDR if kind == "replace-header" else REPLACE_VAL

    def action(txn):
        edit = (how, lname, regex, fmt(txn))
        if response:
            txn.edit_res_headers(edit, edit_pairs)
        else:
            txn.edit_headers(edit, edit_pairs)
    action.edits = True
    return action


def _set_status(args, label):
    if not args or not args[0].isdigit() or not 100 <= int(args[0]) <= 999:
        raise RuleError("%s expects a status code between 100 and 999" % label,
                        "e.g. 'http-response set-status 503 reason \"Slow Down\"'")
    status = int(args[0])
    text = None
    if len(args) > 1:
        if args[1] != "reason" or len(args) != 3:
            raise RuleError("%s: expects 'reason <text>' after the status, found '%s'"
                            % (label, " ".join(args[1:])))
        text = args[2].encode("latin-1")

    def action(txn):
        txn.status = status
        txn.reason = text
    action.edits = True
    return action


def _var_action(kind, base, args, ctx, keyword):
    label = "'%s %s'" % (keyword, kind)
    m = re.fullmatch(r"[a-z-]+\((.*)\)", kind)
    if m is None:
        raise RuleError("%s: expects '%s(SCOPE.NAME)'" % (label, base),
                        "e.g. '%s set-var(txn.user) req.hdr(x-user)'" % keyword)
    scope, name = var_name(m.group(1), "'%s'" % base)
    attr = {"sess": "sess_vars", "txn": "txn_vars", "req": "req_vars", "res": "res_vars",
            "proc": None}[scope]
    if base == "unset-var":
        if args:
            raise RuleError("%s takes no argument (found '%s')" % (label, args[0]))

        def unset(txn):
            (txn.world.proc_vars if attr is None else getattr(txn, attr)).pop(name, None)
        return unset
    if len(args) != 1:
        raise RuleError("%s expects exactly 1 argument (%s), found %d"
                        % (label, "a sample expression" if base == "set-var" else "a format",
                           len(args)), "quote an argument that contains spaces: \"a b\"")
    if base == "set-var":
        value = compile_sample(args[0], ctx).value
    else:
        value = compile_logformat(args[0], ctx, mode="http")

    def set_var(txn):
        v = value(txn)
        if v is not None:               # a missing sample sets nothing (HAProxy)
            (txn.world.proc_vars if attr is None else getattr(txn, attr))[name] = v
    return set_var


def header_step(rule, response=False):
    """A set/add/del-header rule (a constant (action, name, value) or a DynamicRule)
    as a (condition, action) pair that runs among the other actions, in order."""
    if rule.__class__ is tuple:
        (kind, name, value), cond, fmt = rule, None, None
    else:
        kind, name, value, cond, fmt = rule.action, rule.name, rule.value, rule.cond, rule.fmt
    how = {"set-header": SET, "add-header": ADD, "del-header": DEL}[kind]
    lname = name.lower().encode("latin-1")
    bname = name.encode("latin-1")
    constant = value.encode("latin-1") if value is not None else None
    if how == DEL:
        bname = None

    def action(txn):
        edit = (how, lname, bname, constant if fmt is None else _clean(fmt(txn), False))
        if response:
            txn.edit_res_headers(edit, edit_pairs)
        else:
            txn.edit_headers(edit, edit_pairs)
    action.edits = True
    return cond, action
