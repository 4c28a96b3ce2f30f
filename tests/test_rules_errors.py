"""Everything a rule can get wrong is a RuleError(message, hint) at compile time.

Each case below is one HAProxy 2.6.12 refuses too (checked with ``haproxy -c``
on a one-rule configuration); the message says what is wrong in keepwarm's
words and the hint, where there is one, how to fix it.
"""

import pytest

from proxy.rules import Acls, Ctx, RuleError, compile_condition, compile_sample


def sample_error(text, **ctx):
    with pytest.raises(RuleError) as e:
        compile_sample(text, Ctx(**ctx))
    return e.value


def acl_error(words, ctx=None):
    with pytest.raises(RuleError) as e:
        Acls(ctx).add(["x"] + words.split())
    return e.value


def cond_error(text, acls=None):
    with pytest.raises(RuleError) as e:
        compile_condition(text.split(), acls or Acls())
    return e.value


def test_unknown_fetch_says_did_you_mean():
    e = sample_error("hdrr(host)")
    assert "unknown fetch method 'hdrr'" in e.message
    assert e.hint == "did you mean 'hdr'?"


def test_unknown_converter_says_did_you_mean():
    e = sample_error("path,lowr")
    assert "unknown converter 'lowr'" in e.message
    assert e.hint == "did you mean 'lower'?"


@pytest.mark.parametrize("text,words", [
    ("hdr(a,b)", "not an integer"),                # measured: "failed to parse 'b' ..."
    ("int(x)", "not an integer"),
    ("str", "expects 1 argument"),
    ("path(1)", "does not take any argument"),     # measured: "expected ')' before '1)]'"
    ("path,lower(1)", "does not take any argument"),
    ("hdr(a,1,2)", "at most 2 arguments"),
    ("str(a),regsub(a)", "at least 2 arguments"),  # measured: "missing arguments (got 1/2)"
    ("str(a),field(1)", "at least 2 arguments"),
    ("str(a),field(0,_)", "index"),                # measured: "Unexpected value 0 for index."
    ("str(a),ipmask(33)", "mask"),                 # measured: "... type 'IPv4 mask'"
    ("str(a),ipmask(24,129)", "mask"),
    ("str(a),regsub(a,b,x)", "flag"),              # measured: "invalid regex flag 'x'"
    ("var(foo)", "invalid variable name"),         # measured: "... start by its scope"
    ("var(glob.x)", "invalid variable name"),
    ("hdr(a", "missing closing ')'"),
    ("path lower", "unexpected"),
    ("", "missing sample fetch"),
])
def test_argument_errors(text, words):
    assert words in sample_error(text).message


def test_len_is_called_length_in_haproxy_26():
    """Measured: haproxy -c refuses 'str(abc),len' (the converter is 'length')."""
    e = sample_error("str(abc),len")
    assert "unknown converter 'len'" in e.message and "length" in e.hint


def test_bad_regex():
    """Measured: "regex '[' is invalid (error=missing terminating ] ...)"."""
    assert "bad regex '['" in sample_error("str(a),regsub([,b)").message
    assert "bad regex" in acl_error("path_reg ([").message


def test_nbsrv_of_an_unknown_backend():
    """Measured: "unable to find backend 'nope' referenced in arg 1 of sample fetch
    keyword 'nbsrv'"."""
    e = sample_error("nbsrv(nope)", backends={"web", "api"})
    assert "no such backend 'nope'" in e.message


def test_missing_map_and_pattern_files():
    assert "failed to open map file 'nope.map'" in sample_error("path,map(nope.map)",
                                                               base_dir="/nonexistent").message
    assert "failed to open pattern file" in acl_error("path_beg -f /nonexistent/p.lst").message


def test_bad_map_values_for_typed_maps():
    ctx = Ctx(read_file={"m": "a notanint\n"}.__getitem__)
    with pytest.raises(RuleError) as e:
        compile_sample("path,map_str_int(m)", ctx)
    assert "not an integer" in e.value.message


def test_acl_errors_as_haproxy_words_them():
    """Measured messages: "unknown matching method 'foo' when parsing ACL expression",
    "'-x' is not a valid ACL option. Please use '--' ...", "'bad.host.invalid' is not
    a valid IPv4 or IPv6 address", "'x' is neither a number nor a supported operator",
    "an even number of hex digit is expected", "unknown fetch method 'path_foo' in ACL
    expression 'path_foo'"."""
    assert "unknown matching method 'foo'" in acl_error("path -m foo x").message
    assert "not a valid ACL option" in acl_error("path -x x").message
    assert "not a valid IPv4 or IPv6 address" in acl_error("src bad.host.invalid").message
    assert "not a valid IPv4 or IPv6 address" in acl_error("src 10.0.0.0/33").message
    assert "neither a number nor a supported operator" in acl_error("hdr_cnt(x) gt x").message
    assert "hex" in acl_error("str(a) -m bin 4").message
    e = acl_error("path_foo x")
    assert "unknown fetch method 'path_foo'" in e.message and "path_" in e.hint
    assert "'-m' must only be specified before" in acl_error(
        "path -f /dev/null -m str x", Ctx(read_file=lambda p: "")).message


def test_acl_option_without_its_argument():
    assert "expects an argument" in acl_error("path -m").message
    assert "expects an argument" in acl_error("path -f").message


def test_binary_sample_needs_a_match_method():
    """HAProxy: "matching method must be specified first (using '-m') when using a
    sample fetch of this type"."""
    assert "matching method must be specified" in acl_error("str(YQ==),b64dec x").message


def test_acl_name_and_criterion():
    with pytest.raises(RuleError) as e:
        Acls().add(["bad/name", "path", "/"])
    assert "invalid character in ACL name : '/'" in e.value.message
    with pytest.raises(RuleError):
        Acls().add(["lonely"])
    with pytest.raises(RuleError):
        Acls().add([])


def test_condition_errors():
    """Measured: "no such ACL : 'nope'", "missing closing '}' in condition"."""
    assert "no such ACL : 'nope'" in cond_error("if nope").message
    assert "missing closing '}'" in cond_error("if { path /a").message
    assert "must start with either 'if' or 'unless'" in cond_error("when x").message
    assert "missing ACL" in cond_error("if").message
    assert "missing ACL name after '!'" in cond_error("if !").message


def test_an_error_from_an_anonymous_acl_names_its_expression():
    e = cond_error("if { hdr(a,b) x }")
    assert "hdr(a,b)" in e.message


def test_backend_fetches_where_no_backend_is_chosen_yet():
    """Measured: be_name in a frontend's http-request rule is refused ("needs
    'backend' which is not available here"), accepted in its http-response rules
    and in a listen section; nbsrv without a name is refused in a frontend ("has
    not backend capability"); in a use_backend condition be_name never matches."""
    with pytest.raises(RuleError):
        compile_sample("be_name", Ctx(proxy="frontend", phase="req"))
    compile_sample("be_name", Ctx(proxy="frontend", phase="res"))
    compile_sample("be_name", Ctx(proxy="listen", phase="req"))
    with pytest.raises(RuleError):
        compile_sample("nbsrv", Ctx(proxy="frontend"))
    compile_sample("nbsrv", Ctx(proxy="listen"))
    compile_sample("nbsrv(b)", Ctx(proxy="frontend"))
    acls = Acls(Ctx(proxy="listen"))
    acls.add("mine be_name x".split())
    cond = compile_condition("if mine".split(), acls,
                             Ctx(proxy="listen", rule="use_backend"))
    assert any("never match" in w for w in acls.warnings)
    from proxy.rules import Txn, World
    assert not cond(Txn.from_parts(World(), b"GET", b"/", be_name=b"x"))


@pytest.mark.parametrize("keyword", ["url_param_beg(a)", "req.fhdr_beg(a)", "urlp_ip(a)"])
def test_derived_keywords_haproxy_does_not_have(keyword):
    """Measured: unknown fetch methods for HAProxy 2.6.12."""
    assert "unknown fetch method" in acl_error(keyword + " x").message
