"""Rewrites, variables, set-status and tarpit at load: what HAProxy 2.6.12's
`haproxy -c` refuses is a load error at the rule's file:line (each case below
was checked against it), and the sans-IO pieces that replay edits on a head."""

import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from proxy.config import ConfigError, parse
from proxy.http1.rewrite import (
    REPLACE_HDR, REPLACE_VAL, SET, edit_lines, edit_pairs, expand, reason, replace_in,
)

ROOT = Path(__file__).resolve().parent.parent
HEAD = """\
defaults
    mode http
    timeout connect 1s
    timeout client 1s
    timeout server 1s
frontend fe
    bind 127.0.0.1:8080
"""
TAIL = """\
    default_backend be
backend be
    server s1 127.0.0.1:9000
"""


def text(line):
    return HEAD + "    " + line + "\n" + TAIL


def error(line):
    with pytest.raises(ConfigError) as info:
        parse(text(line), "t.cfg", env={})
    errs = getattr(info.value, "errors", None) or [info.value]
    return errs[0]


@pytest.mark.parametrize("line,words", [
    ("http-request replace-path /(a /b", "invalid regex '/(a'"),
    ("http-request replace-header X-A ( b", "invalid regex '('"),
    ("http-request replace-path /a", "expects exactly 2 arguments"),
    ("http-request set-path", "expects exactly 1 argument"),
    ("http-request set-path /a /b", "expects exactly 1 argument"),
    ("http-request set-method", "expects exactly 1 argument"),
    ("http-request replace-header X-A (", "expects exactly 3 arguments"),
    ("http-response replace-value X-A a", "expects exactly 3 arguments"),
    ("http-request set-var(foo.x) str(a)", "invalid variable name 'foo.x'"),
    ("http-request set-var(txn.x)", "expects exactly 1 argument"),
    ("http-request set-var(txn.x) nosuchfetch", "unknown fetch method 'nosuchfetch'"),
    ("http-request unset-var(txn.x) str(a)", "takes no argument"),
    ("http-request set-var(txn.x) res.hdr(x)", "may not be used here"),
    ("http-response set-var(txn.x) req.hdr(x)", "may not be used here"),
    ("http-response set-status abc", "between 100 and 999"),
    ("http-response set-status 200 reason", "expects 'reason <text>'"),
    ("http-response redirect location /x", "not supported by keepwarm"),
])
def test_rules_haproxy_refuses_are_load_errors_at_their_line(line, words):
    err = error(line)
    assert words in err.message and err.line == 8, err.message


@pytest.mark.parametrize("line", [
    "http-request set-var(res.x) str(a)",
    "http-request tarpit deny_status 404",
    "http-request set-var-fmt(txn.x) %[src]",
    "http-request set-uri %[url,lower] if { path /x }",
    'http-response set-status 503 reason "Slow down" if { status 500 }',
])
def test_rules_haproxy_accepts_load(line):
    parse(text(line), "t.cfg", env={})


def test_keepwarm_check_names_the_file_and_line(tmp_path):
    cfg = tmp_path / "k.cfg"
    cfg.write_text(text("http-request replace-path /(a /b"))
    out = subprocess.run([sys.executable, "-m", "proxy", "check", "-f", str(cfg)], cwd=ROOT,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode != 0
    assert re.search(r"k\.cfg:8\b.*invalid regex", out.stdout + out.stderr)


def test_timeout_tarpit_defaults_to_timeout_connect():
    cfg = parse(HEAD + "    http-request tarpit\n" + TAIL, "t.cfg", env={})
    assert cfg.frontends[0].timeout_tarpit == 1.0
    cfg = parse(HEAD.replace("timeout connect 1s", "timeout connect 1s\n    timeout tarpit 3s")
                + TAIL, "t.cfg", env={})
    assert cfg.frontends[0].timeout_tarpit == 3.0


def test_header_rules_join_the_actions_only_beside_another_kind_of_rule():
    only = parse(HEAD + "    http-request set-header X-A 1\n" + TAIL, "t.cfg", env={})
    assert only.frontends[0].request_rules and not only.frontends[0].request_actions
    mixed = parse(HEAD + "    http-request set-header X-A 1\n    http-request set-path /x\n"
                  + TAIL, "t.cfg", env={})
    fe = mixed.frontends[0]
    assert not fe.request_rules and len(fe.request_actions) == 2


# ---------------------------------------------------------------- sans-IO replay

def test_expand_takes_groups_and_escapes():
    m = re.compile(rb"/api/(v\d)/(.*)").search(b"/api/v1/users")
    assert expand(rb"/\2/\1\\x\x41", m) == b"/users/v1\\xA"
    assert expand(rb"\9", m) == b""


def test_replace_header_replaces_the_whole_value_with_the_expansion():
    rx = re.compile(rb"^(.*)-(.*)$")
    assert replace_in(b"left-right", rx, rb"\2-\1", False) == b"right-left"
    assert replace_in(b"plain", rx, rb"\2-\1", False) == b"plain"


def test_replace_value_edits_each_element_the_others_keep_their_bytes():
    # measured on HAProxy 2.6.12: 'a , b, a ,c,  a  ' -> 'z, b,z,c,z'
    assert replace_in(b"a , b, a ,c,  a  ", re.compile(rb"^a$"), b"z", True) == b"z, b,z,c,z"
    assert replace_in(b"a1, c2,a3", re.compile(rb"^a(.*)$"), rb"b\1", True) == b"b1, c2,b3"


def test_an_edit_gives_the_same_headers_as_fields_and_as_lines():
    pairs = [(b"Host", b"h"), (b"X-A", b"1-2")]
    lines = [b"Host: h", b"X-A:  1-2"]
    for edit in [(REPLACE_HDR, b"x-a", re.compile(rb"(.)-(.)"), rb"\2\1"),
                 (REPLACE_VAL, b"x-a", re.compile(rb"1"), b"9"),
                 (SET, b"x-a", b"X-A", b"new")]:
        got = [tuple(l.split(b": ", 1)) for l in edit_lines(lines, edit)]
        assert got == edit_pairs(pairs, edit)


def test_reason_phrases_are_haproxys():
    assert reason(418) == b"I'm a teapot" and reason(299) == b"Success"
    assert reason(413) == b"Request Entity Too Large" and reason(799) == b"Other"


def test_a_log_format_value_cannot_break_the_head():
    """%[...,url_dec] can make CR, LF or spaces: the log-format escapes them, and
    what is left is dropped from a header value, and from a start line's part
    where a space becomes %20."""
    from proxy.config.http_actions import DynamicRule, compile_action
    from proxy.config.http_edits import header_step
    from proxy.rules import Acls, Ctx, Txn, World, compile_logformat

    ctx = Ctx()
    txn = Txn.from_parts(World(), b"GET", b"/a%20b%0d%0aX-Evil:%201", headers=[(b"Host", b"h")])
    _, set_path = compile_action(["set-path", "%[path,url_dec]"], Acls(ctx), ctx)
    fmt = compile_logformat("%[path,url_dec]", ctx, mode="http")
    _, set_hdr = header_step(DynamicRule("set-header", "X-P", "%[path,url_dec]", None, fmt))
    set_hdr(txn)
    set_path(txn)
    assert not re.search(rb"[\r\n\0 ]", txn.target)
    value = dict(txn.headers())[b"X-P"]
    assert value.startswith(b"/a") and not re.search(rb"[\r\n\0]", value)
