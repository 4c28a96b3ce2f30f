"""``http-request``/``http-response`` header rules and ``option forwardfor``."""

from __future__ import annotations

import ipaddress
import re
from typing import List, Optional

from .model import ForwardFor

HEADER_ACTIONS = ("set-header", "add-header", "del-header")
# (the other supported actions are compiled by http_actions.py and http_edits.py)

# HAProxy 2.6's actions keepwarm lacks: known, refused as "not supported yet".
REQUEST_ACTIONS = frozenset("""
add-acl cache-use del-acl del-map disable-l7-retry do-resolve early-hint
normalize-uri reject sc-add-gpc sc-inc-gpc sc-inc-gpc0 sc-inc-gpc1 sc-set-gpt0
send-spoe-group set-bandwidth-limit set-dst set-dst-port set-log-level set-map set-mark
set-nice set-priority-class set-priority-offset set-src set-src-port set-timeout set-tos
silent-drop strict-mode track-sc0 track-sc1 track-sc2 use-service wait-for-body
wait-for-handshake
""".split())
RESPONSE_ACTIONS = frozenset("""
add-acl cache-store del-acl del-map redirect sc-add-gpc sc-inc-gpc sc-inc-gpc0
sc-inc-gpc1 sc-set-gpt0 send-spoe-group set-bandwidth-limit set-log-level set-map
set-mark set-nice set-timeout set-tos silent-drop strict-mode track-sc0 track-sc1
track-sc2 wait-for-body
""".split())

SUPPORTED = {
    "http-request": "allow, deny, tarpit, return, redirect, auth, set/add/del-header, "
                    "replace-header, replace-value, set-path, set-pathq, set-query, set-uri, "
                    "replace-path, replace-pathq, replace-uri, set-method, set-var, "
                    "set-var-fmt, unset-var, capture and use-service prometheus-exporter",
    "http-response": "allow, deny, return, set/add/del-header, replace-header, "
                     "replace-value, set-status, set-var, set-var-fmt, unset-var and "
                     "capture"}

_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")


class RuleError(ValueError):
    """A rule HAProxy rejects; ``unsupported`` when only keepwarm does."""

    def __init__(self, message: str, hint: Optional[str] = None, unsupported: bool = False):
        super().__init__(message)
        self.hint = hint
        self.unsupported = unsupported


def parse_header_rule(keyword: str, args: List[str], dynamic: bool = False):
    """``http-request|http-response <action> <name> [<value>]`` -> (action, name, value);
    with `dynamic`, a condition and a log-format value are allowed and the result is
    (action, name, value, condition words) for the caller to compile."""
    if not args:
        raise RuleError("'%s' expects an action" % keyword,
                        "keepwarm supports %s" % ", ".join(HEADER_ACTIONS))
    action, rest = args[0], args[1:]
    label = "'%s %s'" % (keyword, action)
    if action not in HEADER_ACTIONS:
        known = REQUEST_ACTIONS if keyword == "http-request" else RESPONSE_ACTIONS
        if action in known:
            raise RuleError("%s is not supported by keepwarm (yet)" % label,
                            "keepwarm supports %s" % SUPPORTED[keyword], unsupported=True)
        raise RuleError("'%s' unknown action '%s'" % (keyword, action),
                        "keepwarm supports %s" % SUPPORTED.get(keyword, ""))
    nvalues = 1 if action == "del-header" else 2
    words = rest[:nvalues]
    extra = rest[nvalues:]
    if len(words) < nvalues:
        raise RuleError("%s expects exactly %d argument%s" % (label, nvalues,
                                                             "s" if nvalues > 1 else ""),
                        "e.g. '%s X-Proxy keepwarm'" % label.strip("'")
                        if nvalues == 2 else "e.g. '%s Server'" % label.strip("'"))
    name = words[0]
    if not _TOKEN.fullmatch(name):
        raise RuleError("%s: '%s' is not a valid header name" % (label, name))
    if action == "del-header" and words and extra[:1] == ["-m"]:
        raise RuleError("%s: '-m' matching methods are not supported by keepwarm (yet)"
                        % label, "delete one header name per rule", unsupported=True)
    if extra and dynamic and extra[0] in ("if", "unless"):
        cond_words, extra = extra, []
    else:
        cond_words = []
    if extra:
        if extra[0] in ("if", "unless"):
            raise RuleError("%s: conditions ('%s ...') are not supported by keepwarm (yet)"
                            % (label, extra[0]),
                            "header rules apply to every message; allow, deny, return and "
                            "redirect take conditions", unsupported=True)
        raise RuleError("%s expects 'if' or 'unless' followed by a condition but found "
                        "'%s'" % (label, extra[0]),
                        "quote a value that contains spaces: \"a b\"")
    value = None
    if nvalues == 2:
        value = words[1]
        if "%" in value and not dynamic:
            raise RuleError("%s: log-format expressions ('%%[...]', '%%ci', ...) in values "
                            "are not supported by keepwarm (yet)" % label,
                            "write a constant value", unsupported=True)
        if any(c in value for c in "\r\n\0"):
            raise RuleError("%s: a header value may not contain CR, LF or NUL" % label)
    if dynamic:
        return (action, name, value, cond_words)
    return (action, name, value)


def parse_forwardfor(args: List[str], option: str = "forwardfor") -> ForwardFor:
    """``option forwardfor [except <network>] [header <name>] [if-none]``, or
    ``option originalto [except <network>] [header <name>]`` (`option`)."""
    header = "X-Forwarded-For" if option == "forwardfor" else "X-Original-To"
    nets = ()
    if_none = False
    i = 0
    while i < len(args):
        word = args[i]
        if word == "except":
            raw = args[i + 1] if i + 1 < len(args) else ""
            try:
                nets = (ipaddress.ip_network(raw, strict=False),)
            except ValueError:
                raise RuleError("'option %s except' expects <address>[/mask] as "
                                "argument." % option, "e.g. 'except 127.0.0.0/8'") from None
            i += 2
        elif word == "header":
            if i + 1 >= len(args):
                raise RuleError("'option %s header' expects <header_name> as "
                                "argument." % option)
            header = args[i + 1]
            if not _TOKEN.fullmatch(header):
                raise RuleError("'option %s header': '%s' is not a valid header "
                                "name" % (option, header))
            i += 2
        elif word == "if-none" and option == "forwardfor":
            if_none = True
            i += 1
        else:
            raise RuleError("'option %s' only supports optional values: 'except', "
                            "'header'%s." % (option, " and 'if-none'" if option == "forwardfor"
                                             else ""))
    return ForwardFor(header=header, except_nets=nets, if_none=if_none)
