"""Converters and casts (proxy/rules): each converter, its arguments, its failures.

Values marked "measured" were read from HAProxy 2.6.12 (an ``lf-string`` of
``%[str(...),conv]`` answered over 127.0.0.1, or ``haproxy -c`` for what it
accepts at load).
"""

import ipaddress

import pytest

from proxy.rules import Ctx, RuleError, Txn, World, compile_sample

MAP = """# a comment
/api  api_be
/a    a_be

   /static static_be  \t
"""


def txn(**kw):
    kw.setdefault("src", ("10.1.2.3", 5555))
    return Txn.from_parts(World(), b"GET", b"/Api/v1/x?a=1", headers=[(b"Host", b"h")], **kw)


def files(**contents):
    """A Ctx whose files are these strings (no disk)."""
    return Ctx(read_file=lambda path: contents[path])


def conv(expr, ctx=None, t=None):
    return compile_sample(expr, ctx or Ctx()).value(t or txn())


def test_lower_upper_len():
    assert conv("path,lower") == b"/api/v1/x"
    assert conv("path,upper") == b"/API/V1/X"
    assert conv("path,length") == 9


def test_hex_base64_and_back():
    assert conv("str(hi),hex") == b"6869"
    assert conv("str(hi),base64") == b"aGk="
    assert conv("str(aGk=),b64dec") == b"hi"
    assert conv("str(%%%),b64dec") is None


def test_bytes():
    assert conv("str(abcdef),bytes(1,2)") == b"bc"
    assert conv("str(abcdef),bytes(4)") == b"ef"
    assert conv("str(abc),bytes(9)") is None


def test_bytes_negative_offset_loads_and_gives_no_sample():
    """Measured: haproxy -c accepts bytes(-1)."""
    assert conv("str(abc),bytes(-1)") is None


def test_url_dec():
    """Measured: 'a+b?c+d' -> 'a+b?c d' ('+' is a space only after '?'); a bad
    escape gives no sample."""
    assert conv("str(a%20b),url_dec") == b"a b"
    assert conv("str(a+b?c+d),url_dec") == b"a+b?c d"
    assert conv("str(a+b),url_dec(1)") == b"a b"
    assert conv("str(a%2Gb),url_dec") is None
    assert conv("str(a%2),url_dec") is None


def test_field():
    """HAProxy's documented examples, and a field out of range gives no sample
    (measured: empty in an lf-string)."""
    s = "str(f1_f2_f3__f5),"
    assert conv(s + "field(5,_)") == b"f5"
    assert conv(s + "field(2,_,0)") == b"f2_f3__f5"
    assert conv(s + "field(2,_,2)") == b"f2_f3"
    assert conv(s + "field(-2,_,3)") == b"f2_f3_"
    assert conv(s + "field(-3,_,0)") == b"f1_f2_f3"
    assert conv(s + "field(4,_)") == b""
    assert conv(s + "field(9,_)") is None
    assert conv("path,field(2,/)") == b"Api"


def test_word():
    s = "str(f1_f2_f3__f5),"
    assert conv(s + "word(4,_)") == b"f5"
    assert conv(s + "word(2,_,0)") == b"f2_f3__f5"
    assert conv(s + "word(-1,_)") == b"f5"
    assert conv(s + "word(9,_)") == b""
    assert conv("path,word(1,/)") == b"Api"


def test_field_and_word_index_zero_is_refused():
    """Measured: haproxy -c says 'Unexpected value 0 for index.'"""
    for expr in ("str(a),field(0,_)", "str(a),word(0,_)"):
        with pytest.raises(RuleError):
            conv(expr)


def test_regsub():
    """Measured: path,regsub(p,P,g) on '/api/v1/x' is '/aPi/v1/x'."""
    assert conv("str(/api/v1/x),regsub(p,P,g)") == b"/aPi/v1/x"
    assert conv("str(//a//b),regsub(/+,/,g)") == b"/a/b"
    assert conv("str(//a//b),regsub(/+,/)") == b"/a//b"
    assert conv("str(AbA),regsub(a,x,gi)") == b"xbx"
    assert conv("str(ab),regsub('(a)(b)','\\2\\1')") == b"ba"


def test_ipmask():
    """Measured: haproxy -c accepts a non-contiguous dotted mask."""
    assert conv("src,ipmask(24)") == ipaddress.ip_address("10.1.2.0")
    assert conv("src,ipmask(255.255.0.0)") == ipaddress.ip_address("10.1.0.0")
    assert conv("src,ipmask(255.0.255.0)") == ipaddress.ip_address("10.0.2.0")
    t = txn(src=("2001:db8::1", 1))
    assert conv("src,ipmask(24)", t=t) is None        # no mask6: IPv6 fails
    assert conv("src,ipmask(24,64)", t=t) == ipaddress.ip_address("2001:db8::")


def test_concat():
    t = txn()
    t.txn_vars["ip"] = b"1.2.3.4"
    t.txn_vars["n"] = 7
    assert conv("str(a),concat(<,txn.ip,>)", t=t) == b"a<1.2.3.4>"
    assert conv("str(a),concat(<,txn.n,>)", t=t) == b"a<7>"
    assert conv("str(a),concat(<,txn.none,>)", t=t) == b"a<>"
    assert conv("str(a),concat(-)", t=t) == b"a-"


def test_concat_refuses_a_bad_variable_name():
    """Measured: concat(a,b) fails at load ('failed to register variable name')."""
    with pytest.raises(RuleError):
        conv("str(1),concat(a,b)")


def test_map_str_with_and_without_default():
    ctx = files(**{"m.map": MAP})
    assert conv("str(/api),map(m.map)", ctx) == b"api_be"
    assert conv("str(/static),map_str(m.map)", ctx) == b"static_be"
    assert conv("str(/none),map(m.map)", ctx) is None
    assert conv("str(/none),map(m.map,dflt)", ctx) == b"dflt"


def test_map_beg_takes_the_first_line_in_file_order():
    """Measured: path,map_beg(m.map,none) on '/api/v1/x' is 'api_be'."""
    ctx = files(**{"m.map": MAP})
    assert conv("str(/api/v1/x),map_beg(m.map,none)", ctx) == b"api_be"
    assert conv("str(/abc),map_beg(m.map,none)", ctx) == b"a_be"
    assert conv("str(/p),map_beg(m.map,none)", ctx) == b"none"


def test_map_end_sub_reg_dom_dir():
    ctx = files(**{"m": "\\.jpg$ img\nexample.com ex\nv1 ver\n.png png\n"})
    assert conv("str(/a/b.jpg),map_reg(m)", ctx) == b"img"
    assert conv("str(www.example.com),map_dom(m)", ctx) == b"ex"
    assert conv("str(/x/v1/y),map_dir(m)", ctx) == b"ver"
    assert conv("str(/x/v12/y),map_dir(m)", ctx) is None
    assert conv("str(a.png),map_end(m)", ctx) == b"png"
    assert conv("str(xxv1xx),map_sub(m)", ctx) == b"ver"


def test_map_ip_is_the_longest_prefix_and_map_int():
    ctx = files(ips="10.0.0.0/8 wide\n10.1.0.0/16 narrow\n", ints="1 one\n2:5 few\n")
    assert conv("src,map_ip(ips)", ctx) == b"narrow"
    assert conv("str(9.9.9.9),map_ip(ips,none)", ctx) == b"none"
    assert conv("int(3),map_int(ints)", ctx) == b"few"
    assert conv("str(/api),map_str_int(n)", files(n="/api 42\n")) == 42


def test_missing_map_file_is_a_compile_error():
    """Measured: haproxy -c says 'failed to open pattern file </nonexist>'."""
    with pytest.raises(RuleError) as e:
        conv("str(a),map(/nonexist)")
    assert "/nonexist" in str(e.value)


def test_map_file_is_read_relative_to_base_dir(tmp_path):
    (tmp_path / "hosts.map").write_text("h backend1\n")
    ctx = Ctx(base_dir=str(tmp_path))
    assert conv("req.hdr(host),map(hosts.map)", ctx) == b"backend1"


def test_casts_follow_haproxys_table():
    """Measured: str(12abc) as an integer is 12."""
    assert conv("str(12abc),map_int(m)", files(m="12 twelve\n")) == b"twelve"
    assert conv("src,lower") == b"10.1.2.3"        # ip -> str
    assert conv("int(5),hex") == b"0000000000000005"  # int -> bin: 8 bytes


def test_a_cast_haproxy_does_not_have_is_a_compile_error():
    with pytest.raises(RuleError) as e:
        conv("str(x),b64dec,ipmask(24)")     # binary -> ip: no such cast
    assert "ipmask" in str(e.value)


def test_converters_apply_to_every_value_in_acl_form():
    t = Txn.from_parts(World(), b"GET", b"/", headers=[(b"X", b"A, B")])
    assert compile_sample("hdr(x),lower").values(t) == [b"a", b"b"]
