"""ACLs, match methods, operators, conditions and predefined ACLs (proxy/rules).

The cases marked "measured" come from HAProxy 2.6.12: one ``acl`` per case,
``http-request set-var(txn.NAME) int(1) if NAME`` for each, and a ``return``
whose lf-string printed them, for requests sent over 127.0.0.1 and ::1.
"""

import pytest

from _native import Parser
from proxy.rules import PREDEFINED, Acls, Ctx, RuleError, Txn, World, compile_condition

REQ1 = (b"GET /abc HTTP/1.1\r\nHost: www.example.COM\r\nX-E:\r\nX-B: 0\r\nX-F: abc\r\n"
        b"X-N: 2\r\n\r\n")
REQ2 = (b"get /a/b/c HTTP/1.0\r\nX-B: 12x\r\nX-F: ab, abc\r\nX-N: 0\r\n"
        b"Content-Length: 1\r\n\r\nx")
REQ3 = b"GET http://h/abc HTTP/1.1\r\nHost: h\r\nX-B: abc\r\n\r\n"
REQ4 = b"OPTIONS * HTTP/1.1\r\nHost: h\r\nX-B: -1\r\n\r\n"

# The measured ACLs, as written in the HAProxy configuration.
MEASURED_ACLS = """\
fe_ hdr(x-e) -m found
bo hdr(x-b) -m bool
ln hdr(x-f) -m len 3
lh hdr_len(x-f) 1:2
v6 src ::1
v4m src 127.0.0.0/8
mg method get
mgi method -i get
mG method GET
ms method -m sub ET
rx path_reg ^/a.c$
rxi path_reg -i ^/A.C$
ex path -i /ABC
dm hdr_dom(host) -i EXAMPLE.com
dd path_dir -i B
ends path_end .c bc
bn req.hdr(x-f) -m bin 616263
gtop hdr_val(x-n) ge 3 lt 1
mul1 hdr(x-f) abc
mul1 hdr(x-f) zzz
"""
MEASURED_NAMES = ["fe_", "bo", "ln", "lh", "v6", "v4m", "mg", "mgi", "mG", "ms", "rx", "rxi",
                  "ex", "dm", "dd", "ends", "bn", "gtop", "mul1", "HTTP_1.1", "METH_GET",
                  "HTTP_URL_ABS", "HTTP_URL_STAR", "HTTP_CONTENT", "LOCALHOST"]
# What HAProxy 2.6.12 answered (the names that matched), per request.
MEASURED = {
    (REQ1, "127.0.0.1"): "bn dm ends ex fe_ ln mG ms mul1 rx rxi v4m HTTP_1.1 METH_GET LOCALHOST",
    (REQ2, "127.0.0.1"): "bn bo dd gtop lh ln mg mgi mul1 v4m HTTP_CONTENT LOCALHOST",
    (REQ3, "::1"): "ends ex mG ms rx rxi v6 HTTP_1.1 METH_GET HTTP_URL_ABS LOCALHOST",
    (REQ4, "127.0.0.1"): "bo v4m HTTP_1.1 HTTP_URL_STAR LOCALHOST",
}


def txn(head, src="127.0.0.1"):
    parser = Parser()
    assert parser.request_rc(head, len(head), 0, 0) > 0
    return Txn(World(), head, parser, src=(src, 40000), dst=("127.0.0.1", 80))


def acls_of(text, ctx=None):
    acls = Acls(ctx)
    for line in text.splitlines():
        if line.strip():
            acls.add(line.split())
    return acls


def cond(text, acls=None, ctx=None):
    return compile_condition(text.split(), acls or Acls(ctx), ctx)


@pytest.mark.parametrize("head,src", list(MEASURED))
def test_acls_match_as_haproxy_measured(head, src):
    acls = acls_of(MEASURED_ACLS)
    t = txn(head, src)
    matched = {name for name in MEASURED_NAMES if cond("if " + name, acls)(t)}
    assert matched == set(MEASURED[(head, src)].split())


def test_str_exact_and_ignore_case():
    t = txn(REQ1)
    assert cond("if { path /abc }")(t)
    assert not cond("if { path /ABC }")(t)
    assert cond("if { path -i /ABC }")(t)
    assert cond("if { path /x /abc /y }")(t)          # any pattern


def test_beg_end_sub_reg():
    t = txn(REQ1)
    assert cond("if { path_beg /a }")(t)
    assert cond("if { path_end bc }")(t)
    assert cond("if { path_sub b }")(t)
    assert cond("if { path_reg ^/[a-c]+$ }")(t)
    assert not cond("if { path_beg /b }")(t)
    assert cond("if { path -m beg /ab }")(t)


def test_dir_and_dom_are_delimited():
    t = txn(b"GET /img/v1/x.png HTTP/1.1\r\nHost: www.example.com:8080\r\n\r\n")
    assert cond("if { path_dir v1 }")(t)
    assert cond("if { path_dir /img/v1 }")(t)
    assert not cond("if { path_dir v }")(t)
    assert cond("if { hdr_dom(host) example.com }")(t)
    assert cond("if { hdr_dom(host) www }")(t)
    assert cond("if { hdr_dom(host) 8080 }")(t)
    assert not cond("if { hdr_dom(host) ample.com }")(t)


def test_len_found_bool():
    t = txn(REQ1)
    assert cond("if { path_len 4 }")(t)
    assert cond("if { path -m len 1:4 }")(t)
    assert cond("if { hdr(x-e) -m found }")(t)
    assert not cond("if { hdr(x-nope) -m found }")(t)
    assert not cond("if { hdr(x-b) -m bool }")(t)        # "0"


def test_integer_operators_and_ranges():
    t = txn(REQ1)                                         # X-N: 2
    for text, want in (("eq 2", True), ("2", True), ("ge 2", True), ("gt 2", False),
                       ("le 2", True), ("lt 2", False), ("1:3", True), ("3:", False),
                       (":2", True), ("gt 5 lt 3", True), ("5 6", False)):
        assert cond("if { hdr_val(x-n) %s }" % text)(t) is want, text
    assert cond("if { hdr_cnt(x-f) eq 1 }")(t)
    assert cond("if { hdr(x-n) -m int 2 }")(t)


def test_ip_networks_both_families():
    assert cond("if { src 10.0.0.0/8 }")(txn(REQ1, "10.9.8.7"))
    assert cond("if { src 10.0.0.0/255.0.0.0 }")(txn(REQ1, "10.9.8.7"))
    assert not cond("if { src 10.0.0.0/8 }")(txn(REQ1, "11.0.0.1"))
    assert cond("if { src 2001:db8::/32 }")(txn(REQ1, "2001:db8::5"))
    assert cond("if { src 10.0.0.1 }")(txn(REQ1, "::ffff:10.0.0.1"))
    assert cond("if { hdr_ip(x-ip) 192.168.0.0/16 }")(
        txn(b"GET / HTTP/1.1\r\nX-IP: 192.168.1.1\r\n\r\n"))


def test_pattern_files_and_flags_before_patterns():
    ctx = Ctx(read_file={"p.lst": "/foo\n  # comment\n#x\n\n  /bar\n"}.__getitem__)
    t = txn(b"GET /bar/x HTTP/1.1\r\n\r\n")
    assert cond("if { path_beg -f p.lst }", ctx=ctx)(t)
    assert cond("if { path_beg -i -f p.lst }", ctx=ctx)(txn(b"GET /BAR HTTP/1.1\r\n\r\n"))
    assert not cond("if { path_beg -f p.lst }", ctx=ctx)(txn(b"GET /BAR HTTP/1.1\r\n\r\n"))


def test_map_file_as_patterns_with_M():
    ctx = Ctx(read_file={"m.map": "/api be1\n/web be2\n"}.__getitem__)
    assert cond("if { path_beg -M -f m.map }", ctx=ctx)(txn(b"GET /api/x HTTP/1.1\r\n\r\n"))


def test_double_dash_ends_flags():
    t = txn(b"GET / HTTP/1.1\r\nX: -i\r\n\r\n")
    assert cond("if { hdr(x) -- -i }")(t)


def test_a_flag_after_a_pattern_is_a_pattern():
    """Measured: 'path_beg a -m str' loads (the -m is a pattern there)."""
    t = txn(b"GET /x HTTP/1.1\r\nX: -m\r\n\r\n")
    assert cond("if { hdr(x) a -m str }")(t)
    assert cond("if { path_beg /x -m }")(t)


def test_conditions_and_or_not_unless():
    acls = acls_of("a path_beg /a\nb hdr(x-f) abc\nz path /zzz\n")
    t = txn(REQ1)
    assert cond("if a b", acls)(t)
    assert not cond("if a z", acls)(t)
    assert cond("if z || a", acls)(t)
    assert cond("if z or a b", acls)(t)
    assert not cond("if !a", acls)(t)
    assert cond("if ! z", acls)(t)
    assert cond("if !z !z", acls)(t)
    assert not cond("unless a", acls)(t)
    assert cond("unless z", acls)(t)
    assert cond("if z or !{ path /nope }", acls)(t)


def test_trailing_or_is_ignored():
    """Measured: HAProxy 2.6.12 loads 'if { path /a } or'."""
    assert not cond("if { path /a } or")(txn(REQ1))
    assert cond("if { path /abc } ||")(txn(REQ1))


def test_lines_with_one_name_are_ored():
    acls = acls_of("x path /nope\nx path /abc\n")
    assert cond("if x", acls)(txn(REQ1))


def test_terms_short_circuit():
    calls = []
    acls = Acls()
    acls.add("t always_true".split())
    acls.named["spy"] = [[["always_true"], acls.ctx, None]]
    acls._compiled[("spy", "req", None, None)] = lambda txn: calls.append(1) or True
    cond("if t || spy", acls)(txn(REQ1))
    cond("if !t spy", acls)(txn(REQ1))
    assert calls == []


@pytest.mark.parametrize("name", sorted(PREDEFINED))
def test_every_predefined_acl_compiles(name):
    cond("if " + name)(txn(REQ1))


def test_predefined_truth_values():
    t = txn(REQ1)
    assert cond("if TRUE")(t) and not cond("if FALSE")(t)
    assert cond("if HTTP")(t) and cond("if HTTP_1.1")(t) and not cond("if HTTP_1.0")(t)
    assert cond("if HTTP_URL_SLASH")(t) and not cond("if HTTP_URL_ABS")(t)
    assert cond("if METH_GET")(t) and not cond("if METH_POST")(t)
    assert cond("if METH_HEAD")(txn(b"HEAD / HTTP/1.1\r\n\r\n"))
    assert cond("if METH_GET")(txn(b"HEAD / HTTP/1.1\r\n\r\n"))   # GET HEAD, as HAProxy
    for m in ("PUT", "DELETE", "OPTIONS", "CONNECT", "TRACE", "POST"):
        head = (b"%s %s HTTP/1.1\r\nHost: h\r\n\r\n"
                % (m.encode(), b"h:443" if m == "CONNECT" else b"/"))
        assert cond("if METH_" + m)(txn(head)), m
    assert cond("if WAIT_END")(t)
    assert not cond("if REQ_CONTENT")(t)
    assert cond("if REQ_CONTENT")(txn(REQ2))
    assert cond("if LOCALHOST")(txn(REQ1, "::1"))
    assert not cond("if LOCALHOST")(txn(REQ1, "10.0.0.1"))


def test_response_acl_reads_response_headers():
    acls = acls_of("x hdr(x-r) 1\n")
    t = txn(REQ1)
    rp = Parser()
    res = b"HTTP/1.1 200 OK\r\nX-R: 1\r\nContent-Length: 0\r\n\r\n"
    rp.response_rc(res, len(res), 0, 0)
    t.set_response(200, res, rp)
    res_ctx = Ctx(phase="res")
    assert cond("if x", acls, res_ctx)(t)
    assert not cond("if x", acls)(t)                   # the request has no X-R
    assert cond("if { status 200 }", ctx=res_ctx)(t)


def test_a_response_fetch_in_a_request_condition_never_matches_with_a_warning():
    """Measured: HAProxy warns "anonymous acl will never match because it uses
    keyword 'status' ..." and loads the configuration."""
    acls = Acls()
    c = cond("if { status 200 }", acls)
    assert not c(txn(REQ1))
    assert any("never match" in w for w in acls.warnings)


def test_an_acl_without_patterns_warns_and_never_matches():
    acls = Acls()
    acls.add("x path_beg".split())
    assert not cond("if x", acls)(txn(REQ1))
    assert acls.warnings


def test_unknown_acl_name_says_did_you_mean():
    acls = acls_of("is_api path_beg /api\n")
    with pytest.raises(RuleError) as e:
        cond("if is_apl", acls)
    assert "no such ACL" in e.value.message and "is_api" in e.value.hint
    with pytest.raises(RuleError) as e:
        cond("if METH_GETT")
    assert "METH_GET" in e.value.hint


def test_no_warning_when_dash_dash_says_no_pattern_is_meant():
    acls = Acls(Ctx(read_file=lambda path: "# nothing yet\n"))
    acls.add("x path_beg --".split())
    acls.add("y path_beg -f empty.lst".split())
    assert not cond("if x || y", acls)(txn(REQ1))
    assert acls.warnings == []
