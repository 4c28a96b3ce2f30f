"""The rules that answer a message themselves, compiled at load into
`(condition, action)` pairs: `http-request allow|deny|tarpit|return|redirect`
(and the older `redirect` keyword), `http-response allow|deny|return`; the
actions that change the message or the variables come from http_edits.py, and
`run_actions` runs a section's pairs in the order written.

An action is ALLOW (stop evaluating this section's rules), or a callable
`action(txn)` returning None (go on) or an answer `(status, response bytes)`:
the whole response, built as HAProxy 2.6.12 puts it on the wire (measured:
status line, `content-length` first, a 302/303/307 redirect with
`cache-control: no-cache`, a 301/308 one without); a tarpit's answer has a
third item, its delay. The connection stays open after such an answer when the
client's request allows it, as HAProxy does.
"""

from __future__ import annotations

from typing import Callable, List, Optional, Tuple

from proxy import prometheus
from proxy.haproxy_stats import stat_rows
from proxy.http1.errors import error_response
from proxy.http1.rewrite import Verbatim, reason as reason_phrase
from proxy.rules import RuleError, compile_condition, compile_logformat

from .auth import compile_auth

from .http_edits import compile_edit, is_edit

ALLOW = "allow"
# The actions that answer (or stop the section), per keyword; set-path & co: http_edits.
ACTIONS = {"http-request": ("allow", "deny", "return", "redirect", "tarpit", "use-service"),
           "http-response": ("allow", "deny", "return")}
DENY_PAGES = {}             # status -> the built-in page a deny answers (one object each)
TARPIT = "tarpit"           # third item of a tarpit's answer, made its delay at run time
REDIRECT_CODES = {301: "Moved Permanently", 302: "Found", 303: "See Other",
                  307: "Temporary Redirect", 308: "Permanent Redirect"}

def _split_condition(words: List[str]) -> Tuple[List[str], List[str]]:
    for i, w in enumerate(words):
        if w in ("if", "unless"):
            return words[:i], words[i:]
    return words, []


def compile_action(words: List[str], acls, ctx, keyword: str = "http-request"):
    """`words` after `http-request` (or after `redirect` for the older keyword, then
    starting at location|prefix|scheme): (condition or None, action)."""
    head, cond_words = _split_condition(words)
    cond = compile_condition(cond_words, acls, ctx) if cond_words else None
    kind, args = head[0], head[1:]
    if kind == "allow":
        if args:
            raise RuleError("'%s allow' takes no argument (found '%s')" % (keyword, args[0]))
        return cond, ALLOW
    if kind == "deny":
        return cond, _deny(args, keyword, 502 if keyword == "http-response" else 403)
    if kind == "tarpit" and keyword == "http-request":
        deny = _deny(args, keyword, 500)
        # Held for the proxy's `timeout tarpit` (runtime.make_decider knows which),
        # then answered as a deny (measured: 500 by default, the connection kept).
        return cond, lambda txn: deny(txn) + (TARPIT,)
    if is_edit(keyword, kind):
        return cond, compile_edit(kind, args, ctx, keyword)
    if kind == "return":
        return cond, _return(args, ctx, keyword)
    if kind == "redirect" and keyword == "http-request":
        return cond, _redirect(args, ctx, keyword)
    if kind == "auth":               # proxy/config/auth.py
        return cond, compile_auth(args, ctx, keyword)
    if kind == "use-service" and keyword == "http-request":
        return cond, _use_service(args, keyword)
    raise RuleError("'%s' unknown action '%s'" % (keyword, kind))


def _use_service(args, keyword):
    """`use-service prometheus-exporter`: the statistics for Prometheus (proxy/prometheus.py),
    from the report the worker holds (`txn.world.stats()`: the master's, at most ~1 s old)."""
    if args != ["prometheus-exporter"]:
        raise RuleError("'%s use-service' knows only 'prometheus-exporter' in keepwarm "
                        "(found '%s')" % (keyword, " ".join(args)),
                        "e.g. 'http-request use-service prometheus-exporter if "
                        "{ path /metrics }'")

    def serve(txn):
        doc, config = txn.world.stats()
        if doc is None:
            doc = {"info": {}, "frontends": {}, "backends": {}}
        body = prometheus.render(doc, stat_rows(doc, config), txn.query)
        return (200, b"HTTP/1.1 200 OK\r\ncache-control: no-cache\r\ncontent-type: %s\r\n"
                b"content-length: %d\r\n\r\n" % (prometheus.CONTENT_TYPE, len(body)) + body)
    serve.stats_service = True       # the master sends the workers its report (master.py)
    return serve


def _deny(args, keyword, status):
    if args[:1] == ["deny_status"]:
        if len(args) < 2 or not args[1].isdigit():
            raise RuleError("'%s deny deny_status' expects a status code" % keyword)
        status, args = int(args[1]), args[2:]
    if args:
        raise RuleError("'%s deny' option '%s' is not supported by keepwarm (yet)"
                        % (keyword, args[0]), "keepwarm supports 'deny [deny_status N]'")
    try:
        page = DENY_PAGES.setdefault(status, error_response(status, close=False))
    except KeyError:
        raise RuleError("'%s deny deny_status %d': no error page for this status"
                        % (keyword, status), "use 400, 403, 405, 408, 413, 429, 500, "
                        "501, 502, 503 or 504") from None
    return lambda txn: (status, page)


def with_errorfile(answer, *errorfiles):
    """A deny's (or tarpit's) answer with the proxy's `errorfile` for its status
    instead of the built-in page (HAProxy: the backend's, then the frontend's)."""
    status = answer[0]
    if answer[1] is DENY_PAGES.get(status):
        for pages in errorfiles:
            page = pages.get(status)
            if page is not None:
                return (status, Verbatim(page)) + answer[2:]
    return answer


def _return(args, ctx, keyword):
    status, ctype, body, fmt, headers = 200, None, b"", None, []
    i = 0
    while i < len(args):
        opt = args[i]
        val = args[i + 1] if i + 1 < len(args) else None
        if val is None and opt != "default-errorfiles":
            raise RuleError("'%s return %s' expects a value" % (keyword, opt))
        if opt == "status":
            if not val.isdigit() or not 200 <= int(val) <= 599:
                raise RuleError("'%s return status' expects a status code (200-599)" % keyword)
            status = int(val)
        elif opt == "content-type":
            ctype = val
        elif opt == "string":
            body = val.encode()
        elif opt == "lf-string":
            fmt = compile_logformat(val, ctx, mode="http")
        elif opt == "file":
            body = _read_payload(val, keyword)
        elif opt == "hdr":
            if i + 2 >= len(args):
                raise RuleError("'%s return hdr' expects a name and a value" % keyword)
            value = args[i + 2]
            headers.append((val.lower().encode(), compile_logformat(value, ctx, mode="http")
                            if "%" in value else value.encode()))
            i += 1
        else:
            raise RuleError("'%s return' option '%s' is not supported by keepwarm (yet)"
                            % (keyword, opt), "keepwarm supports status, content-type, "
                            "string, lf-string, file and hdr")
        i += 2
    if (body or fmt is not None) and ctype is None:
        raise RuleError("'%s return': a body needs a 'content-type'" % keyword)
    reason = reason_phrase(status).decode()
    ctype_line = b"content-type: %s\r\n" % ctype.encode() if ctype else b""
    no_length = status in (204, 304)
    # HAProxy 2.6.12's layout (tests/corpus/20-return-options.cfg): the status line,
    # the hdr fields, content-length (none for 204/304), content-type.
    dynamic = [(n, v) for n, v in headers if callable(v)]

    def build(payload, txn=None):
        extra = b"".join(b"%s: %s\r\n" % (n, v(txn) if callable(v) else v)
                         for n, v in headers)
        length = b"" if no_length else b"content-length: %d\r\n" % len(payload)
        return (b"HTTP/1.1 %d %s\r\n%s%s%s\r\n"
                % (status, reason.encode(), extra, length, ctype_line) + payload)

    if fmt is None and not dynamic:
        whole = build(body)
        return lambda txn: (status, whole)
    if fmt is None:
        return lambda txn: (status, build(body, txn))
    return lambda txn: (status, build(fmt(txn), txn))


def _read_payload(path, keyword):
    """`return file PATH`: the file's bytes, read once at load."""
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as exc:
        raise RuleError("'%s return file': cannot read '%s': %s"
                        % (keyword, path, exc.strerror)) from None


def _redirect(args, ctx, keyword):
    if not args or args[0] not in ("location", "prefix", "scheme") or len(args) < 2:
        raise RuleError("'%s redirect' expects 'location', 'prefix' or 'scheme' and a value"
                        % keyword, "e.g. '%s redirect scheme https'" % keyword)
    how, target = args[0], args[1]
    code, drop_query, append_slash = 302, False, False
    rest = args[2:]
    i = 0
    while i < len(rest):
        opt = rest[i]
        if opt == "code":
            if i + 1 >= len(rest) or not rest[i + 1].isdigit() \
                    or int(rest[i + 1]) not in REDIRECT_CODES:
                raise RuleError("'%s redirect code' expects 301, 302, 303, 307 or 308" % keyword)
            code = int(rest[i + 1])
            i += 2
        elif opt == "drop-query":
            drop_query, i = True, i + 1
        elif opt == "append-slash":
            append_slash, i = True, i + 1
        else:
            raise RuleError("'%s redirect' option '%s' is not supported by keepwarm (yet)"
                            % (keyword, opt), "keepwarm supports code, drop-query and "
                            "append-slash")
    fmt = compile_logformat(target, ctx, mode="http") if how == "location" else None
    fixed = target.encode()
    head = b"HTTP/1.1 %d %s\r\ncontent-length: 0\r\nlocation: " % (code,
                                                                   REDIRECT_CODES[code].encode())
    tail = b"\r\ncache-control: no-cache\r\n\r\n" if code in (302, 303, 307) else b"\r\n\r\n"

    def where(txn):
        if fmt is not None:
            return fmt(txn)
        path = txn.path or b"/"
        if append_slash and not path.endswith(b"/"):
            path += b"/"
        query = txn.query
        rest = path if drop_query or not query else path + b"?" + query
        if how == "prefix":
            return (fixed.rstrip(b"/") if fixed != b"/" else b"") + rest
        host = txn.index().get(b"host", [b""])[0]
        return fixed + b"://" + host + rest

    return lambda txn: (code, head + where(txn) + tail)


def run_actions(actions, txn) -> Optional[Tuple[int, bytes]]:
    """Evaluate one section's actions in order: the answer of the first answering
    one, or None (all ran, or an `allow` ended them). An action that does not
    answer (a rewrite, set-var...) returns None and the next one runs."""
    for cond, action in actions:
        if cond is None or cond(txn):
            if action is ALLOW:
                return None
            answer = action(txn)
            if answer is not None:
                return answer
    return None


Action = Tuple[Optional[Callable], object]


class DynamicRule:
    """A header rule with a condition or a log-format value (`http-request set-header
    X-Client %[src] if !local`): resolved per message into the (action, name, value)
    form `proxy.http1.rewrite.apply_rules` applies; None when its condition fails."""

    __slots__ = ("action", "name", "value", "cond", "fmt")

    def __init__(self, action, name, value, cond, fmt):
        self.action, self.name, self.value, self.cond, self.fmt = action, name, value, cond, fmt

    def resolve(self, txn):
        if self.cond is not None and not self.cond(txn):
            return None
        if self.fmt is None:
            return (self.action, self.name, self.value)
        return (self.action, self.name, self.fmt(txn).decode("latin-1"))


MONITOR_PAGE = (b"HTTP/1.1 200 OK\r\ncontent-length: 58\r\ncache-control: no-cache\r\n"
                b"content-type: text/html\r\n\r\n"
                b"<html><body><h1>200 OK</h1>\nService ready.\n</body></html>\n")


def monitor_action(uri, page=None, fail=None, fail_page=None):
    """`monitor-uri URI` as the first of a frontend's actions: a request whose target is
    exactly URI gets 200 (HAProxy's page layout, or `errorfile 200`'s `page`); with
    `monitor fail if|unless COND` (`fail`: the compiled condition), 503 instead
    while COND holds (HAProxy's 503 page, or `errorfile 503`'s `fail_page`)."""
    if uri is None:
        return ()
    target = uri.encode()
    answer = (200, page if page else MONITOR_PAGE)
    is_monitor = lambda txn: txn.target == target    # noqa: E731
    if fail is None:
        return ((is_monitor, lambda txn: answer),)
    failed = (503, fail_page if fail_page else error_response(503, close=False))
    return ((is_monitor, lambda txn: failed if fail(txn) else answer),)
