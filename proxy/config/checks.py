"""``option httpchk`` and ``http-check send|expect``: the HTTP health check request."""

from __future__ import annotations

import re
from typing import Dict, List, Optional, Tuple

from . import keywords

_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_STATUS_LIST = re.compile(r"[0-9]{3}(-[0-9]{3})?(,[0-9]{3}(-[0-9]{3})?)*")

DEPRECATED_HDRS = ("'option httpchk' : hiding headers or body at the end of the version "
                   "string is deprecated. Please, consider to use 'http-check send' "
                   "directive instead (HAProxy 2.7 and later reject this form)")


class CheckError(ValueError):
    """A check keyword HAProxy rejects; ``unsupported`` when only keepwarm does."""

    def __init__(self, message: str, hint: Optional[str] = None, unsupported: bool = False):
        super().__init__(message)
        self.hint = hint
        self.unsupported = unsupported


def new_check() -> Dict:
    """The mutable form of an HttpCheck while sections are read."""
    return {"enabled": False, "method": "OPTIONS", "uri": "/", "version": "HTTP/1.0",
            "headers": [], "body": "", "expect_kind": None, "expect_status": None,
            "expect_string": None, "expect_negate": False, "line": 0,
            "expect_line": 0}


def copy_check(chk: Dict) -> Dict:
    out = dict(chk)
    out["headers"] = list(chk["headers"])
    return out


def _split_headers(text: str) -> List[Tuple[str, str]]:
    out = []
    for raw in text.split("\r\n"):
        if not raw:
            continue
        name, sep, value = raw.partition(":")
        if not sep or not _TOKEN.fullmatch(name):
            raise CheckError("'option httpchk' : unable to parse the request header '%s'"
                             % raw, "headers look like 'Name: value' separated by \\r\\n")
        out.append((name, value.strip(" \t")))
    return out


def option_httpchk(chk: Dict, args: List[str], line: int) -> Optional[str]:
    """Apply ``option httpchk [[METHOD] URI [VERSION]]``; return a warning or None."""
    if len(args) > 3:
        raise CheckError("'option httpchk' cannot handle unexpected argument '%s'" % args[3],
                         "syntax: option httpchk [<method>] <uri> [<version>]; use "
                         "'http-check send hdr NAME VALUE' for headers")
    warning = None
    method, uri, version = "OPTIONS", "/", "HTTP/1.0"
    headers: List[Tuple[str, str]] = []
    body = ""
    if len(args) == 1:
        uri = args[0]
    elif len(args) >= 2:
        method, uri = args[0], args[1]
    if len(args) == 3:
        version = args[2]
        body_at = version.find("\r\n\r\n")
        hdrs_at = version.find("\r\n")
        if body_at >= 0 and hdrs_at == body_at:
            hdrs_at = -1
        if hdrs_at >= 0 or body_at >= 0:
            warning = DEPRECATED_HDRS
            cut = hdrs_at if hdrs_at >= 0 else body_at
            if body_at >= 0:
                body = version[body_at + 4:]
                hdr_text = version[cut:body_at]
            else:
                hdr_text = version[cut:]
            headers = _split_headers(hdr_text)
            version = version[:cut]
    _check_method(method)
    _check_uri(uri)
    _check_version(version)
    chk.update(enabled=True, method=method, uri=uri, version=version, headers=headers,
               body=body, line=line)
    return warning


def _check_method(method: str) -> None:
    if not _TOKEN.fullmatch(method):
        raise CheckError("invalid HTTP method '%s' for the health check" % method)


def _check_uri(uri: str) -> None:
    if not uri or any(c in uri for c in " \t\r\n"):
        raise CheckError("invalid URI '%s' for the health check" % uri,
                         "the URI must not be empty nor contain spaces")


def _check_version(version: str) -> None:
    if not re.fullmatch(r"HTTP/[0-9]\.[0-9]", version):
        raise CheckError("invalid HTTP version '%s' for the health check" % version,
                         "use HTTP/1.0 or HTTP/1.1")


def http_check(chk: Dict, args: List[str], line: int, in_section_expect: bool) -> None:
    """Apply ``http-check send ...`` or ``http-check expect ...``."""
    if not args:
        raise CheckError("'http-check' expects 'send' or 'expect' (or another action)",
                         "e.g. 'http-check expect status 200'")
    action, rest = args[0], args[1:]
    if action == "send":
        _send(chk, rest)
    elif action == "expect":
        if in_section_expect:
            raise CheckError("several 'http-check expect' rules are not supported by "
                             "keepwarm (yet)", "see %s" % keywords.DOC, unsupported=True)
        _expect(chk, rest, line)
    elif action in keywords.HTTP_CHECK:
        raise CheckError("'http-check %s' is not supported by keepwarm (yet)" % action,
                         "see %s" % keywords.DOC, unsupported=True)
    else:
        raise CheckError("'http-check' only supports 'comment', 'connect', "
                         "'send', 'expect', 'set-var', 'unset-var', 'disable-on-404' and "
                         "'send-state' (got '%s')" % action)


def _send(chk: Dict, args: List[str]) -> None:
    i = 0
    headers = list(chk["headers"])
    while i < len(args):
        kw = args[i]
        if kw in ("meth", "uri", "ver", "body"):
            if i + 1 >= len(args):
                raise CheckError("'http-check send' : '%s' expects a value" % kw)
            value = args[i + 1]
            if kw == "meth":
                _check_method(value)
                chk["method"] = value
            elif kw == "uri":
                _check_uri(value)
                chk["uri"] = value
            elif kw == "ver":
                _check_version(value)
                chk["version"] = value
            else:
                chk["body"] = value
            i += 2
        elif kw == "hdr":
            if i + 2 >= len(args):
                raise CheckError("'http-check send' : 'hdr' expects <name> and <value>")
            name = args[i + 1]
            if not _TOKEN.fullmatch(name):
                raise CheckError("'http-check send' : invalid header name '%s'" % name)
            headers.append((name, args[i + 2]))
            i += 3
        elif kw in ("uri-lf", "body-lf", "comment"):
            raise CheckError("'http-check send %s' is not supported by keepwarm (yet)" % kw,
                             "see %s" % keywords.DOC, unsupported=True)
        else:
            raise CheckError("'http-check send' : unknown parameter '%s'" % kw,
                             "expects 'meth', 'uri', 'ver', 'hdr' and 'body'")
    chk["headers"] = headers


def _expect(chk: Dict, args: List[str], line: int) -> None:
    negate = False
    if args and args[0] == "!":
        negate = True
        args = args[1:]
    if len(args) < 2:
        raise CheckError("'http-check expect' expects [!] <match> <pattern>",
                         "e.g. 'http-check expect status 200'")
    kind, pattern = args[0], args[1]
    if len(args) > 2:
        raise CheckError("'http-check expect %s' : unexpected argument '%s' (options such "
                         "as min-recv, comment, on-success are not supported by keepwarm "
                         "(yet))" % (kind, args[2]), unsupported=True)
    if kind == "status":
        if not _STATUS_LIST.fullmatch(pattern):
            raise CheckError("'http-check expect status' : invalid status list '%s'" % pattern,
                             "codes or ranges, comma separated: 200,300-399")
        chk.update(expect_kind="status", expect_status=pattern, expect_string=None)
    elif kind == "rstatus":
        _regex(pattern)
        chk.update(expect_kind="rstatus", expect_status=pattern, expect_string=None)
    elif kind in ("string", "rstring"):
        if kind == "rstring":
            _regex(pattern)
        chk.update(expect_kind=kind, expect_string=pattern, expect_status=None)
    elif kind in ("hdr", "fhdr", "string-lf", "status-lf", "custom"):
        raise CheckError("'http-check expect %s' is not supported by keepwarm (yet)" % kind,
                         "see %s" % keywords.DOC, unsupported=True)
    elif kind in ("min-recv", "comment", "ok-status", "error-status", "tout-status",
                  "on-success", "on-error", "status-code"):
        raise CheckError("'http-check expect %s' is not supported by keepwarm (yet)" % kind,
                         "see %s" % keywords.DOC, unsupported=True)
    else:
        raise CheckError("'http-check expect' : unknown match '%s'" % kind,
                         "use status, rstatus, string or rstring")
    chk["expect_negate"] = negate
    chk["expect_line"] = line


def _regex(pattern: str) -> None:
    try:
        re.compile(pattern)
    except re.error as exc:
        raise CheckError("invalid regex '%s': %s" % (pattern, exc)) from None
