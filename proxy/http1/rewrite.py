"""Header edits a configuration asks for: http-request/http-response set/add/del-header
and option forwardfor, applied to a head with no I/O.

The input is what the parser's `strip_hop()` returns (the start line and the
end-to-end header lines, each ending in CRLF, without the final empty line),
already validated, so splitting on CRLF is exact: there is no obs-fold.
"""

from _native.constants import F_HOP, R_END, R_FLAGS, R_METHOD_OFF, R_VERSION

SET, ADD, DEL = "set-header", "add-header", "del-header"

# Ends of a rewritten head: what we add, then the empty line.
END = b"\r\n"
END_KEEPALIVE_10 = b"Connection: keep-alive\r\n" + END
END_CLOSE = b"Connection: close\r\n" + END
END_UPGRADE = b"Connection: upgrade\r\n" + END
DROP_TE = ((DEL, "Transfer-Encoding", None),)


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


class Verbatim(bytes):
    """An errorfile a deny answers with (see rule_page)."""


def has_length(page):
    """Does this whole response (a rule's answer, an errorfile) say its length?"""
    return b"\ncontent-length:" in page[:page.find(b"\r\n\r\n")].lower()


def rule_page(page, head_only=False, close=False, errorfile=False):
    """A rule's answer (a whole response) as sent: the head alone to a HEAD request
    (its content-length kept, as HAProxy does); `close`: saying `connection: close`
    (once) when the connection ends after it, which an `errorfile` (or a Verbatim
    page) without a content-length does not say (measured on HAProxy 2.6.12)."""
    end = page.find(b"\r\n\r\n")
    if end < 0:
        return page                      # an empty errorfile: nothing is sent
    if errorfile or page.__class__ is Verbatim:
        close = close and has_length(page)
    if head_only:
        page = page[:end + 4]
    if close and b"\nconnection: close\r" not in page[:end + 2].lower():
        page = page[:end] + b"\r\nconnection: close" + page[end:]
    return page


def forward_head(parser, r, data, upgrading, pair, client_ip, txn, sock):
    """The request head to send when the original bytes will not do: hop-by-hop
    headers to drop, HTTP/1.0, an Upgrade, leading empty lines, or a configuration
    that edits requests (rules, forwardfor, http-server-close/httpclose); `pair`:
    the frontend's Pairing with the request's backend, `parser` the one that just
    parsed `data` (its result: `r`)."""
    version = r[R_VERSION]
    if not (r[R_FLAGS] & F_HOP or version == 10 or pair.rewrite_requests
            or not pair.server_keepalive):
        # RFC 9112 §2.2: empty lines before a request line are skipped, not forwarded.
        return data[r[R_METHOD_OFF]:r[R_END]]
    # RFC 9110 §7.8: Upgrade is hop-by-hop but is what the client asks the
    # server for: an upgrading request keeps it and says so in Connection.
    head = parser.strip_hop(data, upgrading)
    if pair.rewrite_requests:
        head = edit_request(head, pair, client_ip, txn, sock)
    if upgrading:
        return head + END_UPGRADE
    if not pair.server_keepalive:
        # http-server-close / httpclose: tell the server this is the last request.
        return head + END_CLOSE
    return head + (END_KEEPALIVE_10 if version == 10 else END)


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
    if pair.request_steps:
        # The frontend's and the backend's http-request rules ran in order (the
        # routing call); what they changed is replayed here, before the rest.
        t = txn()
        if t.edits is not None:
            head = replay_request(head, t)
    if pair.dynamic_requests:
        rules = resolve_rules(rules, txn())
    return apply_rules(head, rules, extra)


def edit_response(head, pair, txn, status, data, parser):
    """A response head after the response rules of `pair`; `txn` is the request's
    view, given the response (`status`, `data`, the `parser` that parsed it).
    With http-response actions (`pair.respond`): the (status, response) that
    replaces the server's when a deny or return answered."""
    if pair.respond is not None:
        txn.set_response(status, data, parser)
        answer = pair.respond(txn)
        if answer is not None:
            return answer
        if txn.res_edits is None and txn.status == status and txn.reason is None:
            return head
        return replay_response(head, txn, status)
    rules = pair.response_rules
    if pair.dynamic_responses:
        txn.set_response(status, data, parser)
        rules = resolve_rules(rules, txn)
    return apply_rules(head, rules)


# ---------------------------------------------------------------- rule-engine edits
#
# What http-request/http-response rules changed in a message, recorded by the
# rule engine (proxy/rules/txn.py) as edits and replayed here on the head bytes.
# An edit is (action, lower-cased name, a, b), names and values as bytes:
# (SET|ADD, lname, name, value), (DEL, lname, None, None), and
# (REPLACE_HDR|REPLACE_VAL, lname, compiled regex, replacement) where the
# replacement's '\N' refers to the regex's groups.

REPLACE_HDR, REPLACE_VAL = "replace-header", "replace-value"

# HAProxy 2.6's reason phrases (set-status without a reason, return, deny);
# a code it does not know gets its class's word (measured: 299 -> "Success").
REASONS = {
    100: b"Continue", 101: b"Switching Protocols", 200: b"OK", 201: b"Created",
    202: b"Accepted", 203: b"Non-Authoritative Information", 204: b"No Content",
    205: b"Reset Content", 206: b"Partial Content", 300: b"Multiple Choices",
    301: b"Moved Permanently", 302: b"Found", 303: b"See Other", 304: b"Not Modified",
    305: b"Use Proxy", 307: b"Temporary Redirect", 308: b"Permanent Redirect",
    400: b"Bad Request", 401: b"Unauthorized", 402: b"Payment Required", 403: b"Forbidden",
    404: b"Not Found", 405: b"Method Not Allowed", 406: b"Not Acceptable",
    407: b"Proxy Authentication Required", 408: b"Request Timeout", 409: b"Conflict",
    410: b"Gone", 411: b"Length Required", 412: b"Precondition Failed",
    413: b"Request Entity Too Large", 414: b"Request-URI Too Long",
    415: b"Unsupported Media Type", 416: b"Requested range unsatisfiable",
    417: b"Expectation failed", 418: b"I'm a teapot", 421: b"Misdirected Request",
    422: b"Unprocessable Content", 425: b"Too Early", 426: b"Upgrade Required",
    428: b"Precondition Required", 429: b"Too Many Requests",
    431: b"Request Header Fields Too Large", 451: b"Unavailable For Legal Reasons",
    500: b"Internal Server Error", 501: b"Not Implemented", 502: b"Bad Gateway",
    503: b"Service Unavailable", 504: b"Gateway Timeout", 505: b"HTTP Version Not Supported",
}
_CLASS_REASONS = {1: b"Informational", 2: b"Success", 3: b"Redirection", 4: b"Client Error",
                  5: b"Server Error"}


def reason(status):
    """HAProxy's reason phrase for `status`."""
    return REASONS.get(status) or _CLASS_REASONS.get(status // 100, b"Other")


def expand(template, match):
    """The replacement `template` with '\\N' made group N of `match` (empty when
    the group took no part), '\\\\' a backslash, '\\xHH' a byte, HAProxy's
    replace-* syntax; the matched text itself is not kept."""
    if b"\\" not in template:
        return template
    out = []
    i, n = 0, len(template)
    while i < n:
        c = template[i:i + 1]
        if c != b"\\" or i + 1 >= n:
            out.append(c)
            i += 1
            continue
        nxt = template[i + 1:i + 2]
        if nxt.isdigit():
            group = int(nxt)
            got = match.group(group) if group <= match.re.groups else None
            out.append(got or b"")
            i += 2
        elif nxt == b"x" and i + 3 < n and _is_hex(template[i + 2:i + 4]):
            out.append(bytes((int(template[i + 2:i + 4], 16),)))
            i += 4
        else:
            out.append(nxt)
            i += 2
    return b"".join(out)


def _is_hex(two):
    return len(two) == 2 and all(c in b"0123456789abcdefABCDEF" for c in two)


def replace_in(value, regex, template, per_value):
    """A header value after replace-header (the whole value: replaced by the
    expanded template when `regex` finds a match) or replace-value (each
    comma-separated element on its own; the others keep their bytes)."""
    if not per_value:
        m = regex.search(value)
        return value if m is None else expand(template, m)
    parts = value.split(b",")
    for i, part in enumerate(parts):
        core = part.strip(b" \t")
        if not core:
            continue
        m = regex.search(core)
        if m is not None:
            # (measured: a replaced element loses the spaces around it)
            parts[i] = expand(template, m)
    return b",".join(parts)


def edit_pairs(headers, edit):
    """`headers` ((name, value) bytes pairs, what fetches read) after `edit`: a new list."""
    action, lname, a, b = edit
    if action == ADD:
        return headers + [(a, b)]
    if action == SET or action == DEL:
        kept = [h for h in headers if h[0].lower() != lname]
        if action == SET:
            kept.append((a, b))
        return kept
    per_value = action == REPLACE_VAL
    return [(n, replace_in(v, a, b, per_value)) if n.lower() == lname else (n, v)
            for n, v in headers]


def edit_lines(fields, edit):
    """The same edit on header lines ("Name: value", no CRLF): kept lines keep their bytes."""
    action, lname, a, b = edit
    if action == ADD:
        return fields + [a + b": " + b]
    if action == SET or action == DEL:
        kept = [f for f in fields if f.split(b":", 1)[0].lower() != lname]
        if action == SET:
            kept.append(a + b": " + b)
        return kept
    per_value = action == REPLACE_VAL
    out = []
    for f in fields:
        name, _, value = f.partition(b":")
        if name.lower() == lname:
            value = value.strip(b" \t")
            new = replace_in(value, a, b, per_value)
            if new != value:
                f = name + b": " + new
        out.append(f)
    return out


def replay_request(head, txn):
    """A request head (strip_hop form) with what the rules changed in `txn`: the
    start line (set-method, set-path & co) and the header edits, in order."""
    edits = txn.edits
    if txn.new_method is None and txn.new_target is None and all(
            e[0] == ADD for e in edits):
        # Only new fields (the rule engine turns a set of an absent name into an
        # add): appended, nothing else to look at.
        return head + b"".join(b"%s: %s\r\n" % (e[2], e[3]) for e in edits)
    lines = head.split(b"\r\n")[:-1]
    start = lines[0]
    if txn.new_method is not None or txn.new_target is not None:
        # (an untouched part keeps what strip_hop wrote: a normalized target)
        old = start.split(b" ")
        start = b" ".join((txn.new_method or old[0], txn.new_target or old[1], old[-1]))
    fields = lines[1:]
    for edit in edits:
        fields = edit_lines(fields, edit)
    return b"\r\n".join([start] + fields) + b"\r\n"


def replay_response(head, txn, status):
    """A response head (strip_hop form) with what the rules changed in `txn`:
    set-status (received as `status`) and the header edits."""
    lines = head.split(b"\r\n")[:-1]
    start, fields = lines[0], lines[1:]
    if txn.status != status or txn.reason is not None:
        text = txn.reason if txn.reason is not None else reason(txn.status)
        start = b"%s %d %s" % (start.split(b" ", 1)[0], txn.status, text)
    for edit in txn.res_edits or ():
        fields = edit_lines(fields, edit)
    return b"\r\n".join([start] + fields) + b"\r\n"
