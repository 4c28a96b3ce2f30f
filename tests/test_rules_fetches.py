"""Sample fetches and the lazy Txn (proxy/rules): each fetch on a real parsed head.

Values marked "measured" were read from HAProxy 2.6.12 with an
``http-request return ... lf-string "A=%[hdr(x-f)]|..."`` rule and requests
sent over 127.0.0.1.
"""

import ipaddress

import pytest

from _native import Parser
from proxy.rules import Ctx, RuleError, Txn, World, compile_sample

HEAD = (b"GET /api/v1/x?a=1&b=two&b=3 HTTP/1.1\r\n"
        b"Host: www.Example.com\r\n"
        b"X-F: a, \"b,c\" , d\r\n"
        b"X-F: e\r\n"
        b"X-N: 7\r\n"
        b"Cookie: s=1; t=2; s=3\r\n"
        b"Content-Length: 0\r\n\r\n")


def txn(head=HEAD, **kw):
    parser = Parser()
    assert parser.request_rc(head, len(head), 0, 0) > 0     # as the worker parses
    kw.setdefault("src", ("10.1.2.3", 5555))
    kw.setdefault("dst", ("127.0.0.1", 8080))
    kw.setdefault("fe_name", b"fe")
    kw.setdefault("be_name", b"be")
    world = kw.pop("world", None) or World(nbsrv=lambda name: {"web": 2}.get(name, 0))
    return Txn(world, head, parser, **kw)


def value(expr, t=None, **ctx):
    return compile_sample(expr, Ctx(**ctx)).value(t or txn())


def test_request_line_fetches():
    t = txn()
    assert value("method", t) == b"GET"
    assert value("path", t) == b"/api/v1/x"
    assert value("url", t) == b"/api/v1/x?a=1&b=two&b=3"
    assert value("query", t) == b"a=1&b=two&b=3"
    assert value("req.ver", t) == b"1.1"


def test_base_is_the_host_and_the_path():
    assert value("base") == b"www.Example.com/api/v1/x"


def test_absolute_uri_path_and_base():
    """Measured: 'http://h.com/foo/bar;z=9?b' has path '/foo/bar;z=9'; 'http://h.com'
    has no path and base is the Host alone."""
    t = txn(b"GET http://h.com/foo/bar;z=9?b HTTP/1.1\r\nHost: h.com\r\n\r\n")
    assert value("path", t) == b"/foo/bar;z=9"
    assert value("base", t) == b"h.com/foo/bar;z=9"
    t = txn(b"GET http://h.com HTTP/1.1\r\nHost: h.com\r\n\r\n")
    assert value("path", t) is None
    assert value("base", t) == b"h.com"


def test_query_of_a_bare_question_mark_is_empty_and_absent_without_one():
    """Measured: '/p?' gives an empty query."""
    assert value("query", txn(b"GET /p? HTTP/1.0\r\n\r\n")) == b""
    assert value("query", txn(b"GET /p HTTP/1.0\r\n\r\n")) is None


def test_hdr_is_the_last_comma_separated_value():
    """Measured: X-F: a, "b,c" , d / X-F: e -> hdr(x-f) 'e', hdr(x-f,-2) 'd'."""
    t = txn()
    assert value("hdr(x-f)", t) == b"e"
    assert value("req.hdr(X-F)", t) == b"e"
    assert value("hdr(x-f,1)", t) == b"a"
    assert value("hdr(x-f,2)", t) == b'"b,c"'
    assert value("hdr(x-f,-2)", t) == b"d"
    assert value("hdr(x-f,9)", t) is None
    assert value("hdr(nope)", t) is None


def test_hdr_in_an_acl_sees_every_value():
    t = txn()
    assert compile_sample("hdr(x-f)").values(t) == [b"a", b'"b,c"', b"d", b"e"]
    assert compile_sample("req.fhdr(x-f)").values(t) == [b'a, "b,c" , d', b"e"]


def test_fhdr_keeps_whole_lines():
    assert value("req.fhdr(x-f)") == b"e"
    assert value("req.fhdr(x-f,1)") == b'a, "b,c" , d'


def test_hdr_cnt_and_hdr_val():
    t = txn()
    assert value("hdr_cnt(x-f)", t) == 4
    assert value("req.hdr_cnt(host)", t) == 1
    assert value("hdr_cnt(nope)", t) == 0
    assert value("hdr_val(x-n)", t) == 7
    assert value("req.hdr_val(content-length)", t) == 0


def test_cookies_last_occurrence_and_first_without_name():
    """Measured: 'Cookie: s=1; t=2; s=3' -> cook(s) is '3' (the last)."""
    t = txn()
    assert value("cook(s)", t) == b"3"
    assert value("req.cook(t)", t) == b"2"
    assert value("req.cook", t) == b"1"
    assert value("req.cook(none)", t) is None
    assert compile_sample("req.cook(s)").values(t) == [b"1", b"3"]
    assert value("req.cook_cnt(s)", t) == 2


def test_url_param_first_occurrence():
    """Measured: url_param(b) on '?a=1&b=two&b=3' is 'two'; urlp alone is '1'."""
    t = txn()
    assert value("url_param(b)", t) == b"two"
    assert value("urlp(a)", t) == b"1"
    assert value("urlp", t) == b"1"
    assert value("urlp(zz)", t) is None
    assert value("urlp_val(a)", t) == 1


def test_url_param_with_a_delimiter():
    """Measured: urlp(z,;) on '/foo/bar;z=9?b' is '9?b'."""
    t = txn(b"GET /foo/bar;z=9?b HTTP/1.1\r\nHost: h\r\n\r\n")
    assert value("urlp(z,;)", t) == b"9?b"


def test_addresses_and_names():
    t = txn()
    assert value("src", t) == ipaddress.ip_address("10.1.2.3")
    assert value("src_port", t) == 5555
    assert value("dst", t) == ipaddress.ip_address("127.0.0.1")
    assert value("dst_port", t) == 8080
    assert value("fe_name", t) == b"fe"
    assert value("be_name", t) == b"be"


def test_ipv6_client():
    t = txn(src=("::1", 4000))
    assert value("src", t) == ipaddress.ip_address("::1")


def test_nbsrv_goes_through_the_world():
    assert value("nbsrv(web)") == 2
    assert value("nbsrv(web)", backends={"web"}) == 2
    with pytest.raises(RuleError) as e:
        value("nbsrv(wbe)", backends={"web"})
    assert "did you mean 'web'" in e.value.hint


def test_constants_and_env():
    assert value("int(-5)") == -5
    assert value("str(abc)") == b"abc"
    assert value("str()") == b""          # measured: one empty argument to HAProxy
    assert value("always_true") is True
    assert value("always_false") is False
    assert value("env(HOME_X)", env={"HOME_X": "/x"}) == b"/x"
    assert value("env(NOPE)", env={}) is None


def test_tls_fetches_are_reserved():
    assert value("ssl_fc") is False
    assert value("ssl_fc_sni") is None


def test_variables_by_scope():
    t = txn(sess_vars={"user": b"bob"})
    t.txn_vars["n"] = 3
    t.world.proc_vars["p"] = b"x"
    assert value("var(sess.user)", t) == b"bob"
    assert value("var(txn.n)", t) == 3
    assert value("var(proc.p)", t) == b"x"
    assert value("var(req.none)", t) is None
    assert value("var(req.none,dflt)", t) == b"dflt"


def test_response_fetches():
    t = txn()
    rp = Parser()
    res = b"HTTP/1.1 404 Not Found\r\nX-R: 1\r\nX-R: 2\r\nContent-Length: 0\r\n\r\n"
    assert rp.response_rc(res, len(res), 0, 0) > 0
    t.set_response(404, res, rp)
    assert value("status", t, phase="res") == 404
    assert value("res.hdr(x-r)", t, phase="res") == b"2"
    assert value("hdr(x-r)", t, phase="res") == b"2"     # hdr() is the response's there
    assert value("hdr(x-f)", t, phase="req") == b"e"


def test_detach_keeps_headers_when_the_parser_moves_on():
    parser = Parser()
    parser.request_rc(HEAD, len(HEAD), 0, 0)
    t = Txn(World(), HEAD, parser)
    t.detach()
    other = b"GET / HTTP/1.1\r\nHost: other\r\n\r\n"
    parser.request_rc(other, len(other), 0, 0)
    assert value("hdr(host)", t) == b"www.Example.com"


def test_nothing_is_parsed_until_asked():
    t = txn()
    assert t._hdrs is None and t._index is None and t._path is None
    value("path", t)
    assert t._hdrs is None
    value("hdr(host)", t)
    assert t._index is not None


def test_set_target_changes_what_path_sees():
    t = txn()
    t.set_target(b"/new?q=1")
    assert value("path", t) == b"/new"
    assert value("query", t) == b"q=1"


def test_txn_from_parts():
    t = Txn.from_parts(World(), b"POST", b"/x?y", headers=[(b"Host", b"h")])
    assert value("method", t) == b"POST"
    assert value("base", t) == b"h/x"


def test_url_ip_and_url_port_of_an_absolute_uri():
    t = Txn.from_parts(World(), b"GET", b"http://10.0.0.1:8080/x")
    assert value("url_ip", t) == ipaddress.ip_address("10.0.0.1")
    assert value("url_port", t) == 8080
    t = Txn.from_parts(World(), b"GET", b"http://[::1]/x")
    assert value("url_ip", t) == ipaddress.ip_address("::1")
    assert value("url_port", t) == 80
    assert value("url_ip", Txn.from_parts(World(), b"GET", b"/x")) is None


def test_hdr_ip_reads_rfc7239_forms_and_drops_an_ipv4_port():
    head = (b"GET / HTTP/1.1\r\nX-FF: 10.0.0.1, 10.0.0.2:8080\r\nX-FF: [2001:db8::1]\r\n"
            b"X-Bad: nonsense\r\n\r\n")
    t = txn(head)
    assert value("req.hdr_ip(x-ff)", t) == ipaddress.ip_address("2001:db8::1")
    assert value("hdr_ip(x-ff,2)", t) == ipaddress.ip_address("10.0.0.2")
    assert value("hdr_ip(x-bad)", t) is None
    assert compile_sample("hdr_ip(x-ff)").values(t) == [
        ipaddress.ip_address(a) for a in ("10.0.0.1", "10.0.0.2", "2001:db8::1")]
