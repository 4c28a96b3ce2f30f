"""Header edits a configuration asks for: http-request/http-response set/add/del-header
and option forwardfor, applied to a head with no I/O.

The input is what the parser's `strip_hop()` returns (the start line and the
end-to-end header lines, each ending in CRLF, without the final empty line),
already validated, so splitting on CRLF is exact: there is no obs-fold.
"""

SET, ADD, DEL = "set-header", "add-header", "del-header"


def apply_rules(head, rules, extra=()):
    """Apply `rules` ((action, name, value) in order) to `head`, then append the
    (name, value) pairs of `extra`; return the new head in the same form. Names
    match case-insensitively; kept lines keep their bytes."""
    lines = head.split(b"\r\n")[:-1]
    start, fields = lines[0], lines[1:]
    for action, name, value in rules:
        lname = name.lower().encode("latin-1")
        if action in (SET, DEL):
            fields = [f for f in fields if f.split(b":", 1)[0].lower() != lname]
        if action in (SET, ADD):
            fields.append(b"%s: %s" % (name.encode("latin-1"), value.encode("latin-1")))
    for name, value in extra:
        fields.append(b"%s: %s" % (name, value))
    return b"\r\n".join([start] + fields) + b"\r\n"


def has_header(head, name):
    """Does `head` (strip_hop form) carry a header called `name` (bytes, any case)?"""
    lname = name.lower()
    for line in head.split(b"\r\n")[1:-1]:
        if line.split(b":", 1)[0].lower() == lname:
            return True
    return False


def forwarded_for(head, forwardfor, client_ip):
    """The (name, value) pairs `option forwardfor` adds for this request (HAProxy:
    one new header carrying the client's address, unless the address is excepted,
    or `if-none` and the request already has one)."""
    if forwardfor is None or client_ip is None or forwardfor.excepted(client_ip):
        return ()
    name = forwardfor.header.encode("latin-1")
    if forwardfor.if_none and has_header(head, name):
        return ()
    return ((name, client_ip.encode("ascii")),)


def resolve_rules(rules, txn):
    """Header rules as they apply to this message, in order: a constant rule is an
    (action, name, value) tuple; any other has `resolve(txn)` (a condition, a
    log-format value: proxy/config/http_actions.py), None when it does not apply."""
    out = []
    for rule in rules:
        if rule.__class__ is not tuple:
            rule = rule.resolve(txn)
            if rule is None:
                continue
        out.append(rule)
    return out


def edit_request(head, pair, client_ip, txn, sock=None):
    """A request head (strip_hop form) after the header rules, forwardfor and
    originalto (the address the client connected to: `sock`'s) of `pair` (a
    frontend and its backend); `txn()` gives the rule engine's view of the request,
    asked for only when a rule needs it."""
    extra = forwarded_for(head, pair.forwardfor, client_ip)
    if pair.originalto is not None:
        name = sock.getsockname()
        extra += forwarded_for(head, pair.originalto,
                               name[0] if isinstance(name, tuple) else None)
    rules = pair.request_rules
    if pair.dynamic_requests:
        rules = resolve_rules(rules, txn())
    return apply_rules(head, rules, extra)


def edit_response(head, pair, txn, status, data, parser):
    """A response head after the response rules of `pair`; `txn` is the request's
    view, given the response (`status`, `data`, the `parser` that parsed it)."""
    rules = pair.response_rules
    if pair.dynamic_responses:
        txn.set_response(status, data, parser)
        rules = resolve_rules(rules, txn)
    return apply_rules(head, rules)
