"""use_backend rules (proxy/rules/routing.py): order, conditions, dynamic names.

HAProxy 2.6's documented behaviour: the first matching rule wins; a log-format
name that names no backend stops the evaluation and default_backend applies;
a fixed name must exist at load.
"""

import pytest

from proxy.rules import Acls, Ctx, RuleError, Txn, World
from proxy.rules.routing import Routes


def txn(target=b"/", host=b"h"):
    return Txn.from_parts(World(), b"GET", target, headers=[(b"Host", host)])


def routes(*lines, acl_lines=()):
    acls = Acls(Ctx(proxy="frontend"))
    for line in acl_lines:
        acls.add(line.split())
    r = Routes(acls)
    for line in lines:
        r.add(line.split())
    return r


BACKENDS = {"api": "API", "web": "WEB", "be_static": "STATIC"}


def test_first_matching_rule_wins_else_default():
    r = routes("api if is_api", "web if { path_beg /a }", "web",
               acl_lines=["is_api path_beg /api"]).compile(BACKENDS, "DEFAULT")
    assert r(txn(b"/api/x")) == "API"
    assert r(txn(b"/abc")) == "WEB"
    assert r(txn(b"/zzz")) == "WEB"


def test_no_rule_matches_gives_the_default():
    r = routes("api if { path_beg /api }").compile(BACKENDS, "DEFAULT")
    assert r(txn(b"/x")) == "DEFAULT"
    assert routes("api unless { path_beg /api }").compile(BACKENDS, None)(txn(b"/api")) is None


def test_dynamic_names():
    r = routes("be_%[req.hdr(host),lower]").compile(BACKENDS, "DEFAULT")
    assert r(txn(host=b"Static")) == "STATIC"
    assert r(txn(host=b"nope")) == "DEFAULT"
    r = routes("be_%[req.hdr(host)] if { hdr(host) nope }", "web").compile(BACKENDS, "D")
    assert r(txn(host=b"nope")) == "D"      # a dynamic miss stops at the default


def test_fixed_names_are_checked_at_load():
    r = routes("apii")
    with pytest.raises(RuleError) as e:
        r.check(BACKENDS)
    assert "did you mean 'api'" in e.value.hint


def test_syntax_errors():
    with pytest.raises(RuleError):
        routes("")
    with pytest.raises(RuleError):
        routes("api when x")
    with pytest.raises(RuleError):
        routes("api if nosuchacl")


def test_be_name_never_matches_in_a_use_backend_condition():
    r = routes("api if { be_name x }")
    assert r.acls.warnings
    assert r.compile(BACKENDS, "D")(txn()) == "D"


def test_a_dynamic_miss_skips_the_later_rules_as_haproxy_measured():
    """Measured on HAProxy 2.6.12 with
    'use_backend be_%[req.hdr(x-b)] if { req.hdr(x-b) -m found }',
    'use_backend be_b if { always_true }', 'default_backend dflt':
    X-B: a -> be_a; X-B: zz -> dflt (not be_b); no X-B -> be_b."""
    r = routes("be_%[req.hdr(x-b)] if { req.hdr(x-b) -m found }",
               "be_b if { always_true }")
    route = r.compile({"be_a": "be_a", "be_b": "be_b", "dflt": "dflt"}, "dflt")

    def t(headers):
        return Txn.from_parts(World(), b"GET", b"/", headers=headers)
    assert route(t([(b"X-B", b"a")])) == "be_a"
    assert route(t([(b"X-B", b"zz")])) == "dflt"
    assert route(t([])) == "be_b"
