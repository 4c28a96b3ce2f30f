"""Converters side by side with HAProxy 2.6.12 (proxy/rules).

Each expression was written as ``%[EXPR]`` in one ``http-request return ...
lf-string`` of HAProxy 2.6.12 (with ``http-request set-var(txn.v) str(VV)``
before it, the maps below as files), and the answer to a request from
127.0.0.1 recorded here; keepwarm must write the same bytes. An empty answer
is "no sample" or an empty string: an lf-string writes both as nothing.
"""

import pytest

from proxy.rules import Ctx, Txn, World, compile_logformat

FILES = {'m.map': '\\.jpg$ img\nexample.com ex\nv1 ver\n.png png\n/a first\n/ab second\n',
         'ip.map': '10.0.0.0/8 wide\n10.1.0.0/16 narrow\n',
         'int.map': '12 twelve\n1:5 low\n'}

MEASURED = [
    ('str(www.example.com:8080),map_dom(m.map,none)', b'ex'),
    ('str(/x/v1/y),map_dir(m.map,none)', b'ver'),
    ('str(/x/v12/y),map_dir(m.map,none)', b'none'),
    ('str(/abc),map_beg(m.map,none)', b'second'),
    ('str(a.jpg.png),map_end(m.map,none)', b'png'),
    ('str(a.jpg.png),map_reg(m.map,none)', b'png'),
    ('str(10.1.2.3),map_ip(ip.map,none)', b'narrow'),
    ('src,map_ip(ip.map,none)', b'none'),
    ('str(f1_f2_f3__f5),field(-2,_,3)', b'f2_f3_'),
    ('str(f1_f2_f3__f5),field(2,_,9)', b'f2_f3__f5'),
    ('str(f1_f2_f3__f5),word(2,_,0)', b'f2_f3__f5'),
    ('str(f1_f2_f3__f5),word(-2,_)', b'f3'),
    ('str(_a__b_),word(1,_)', b'a'),
    ('str(_a__b_),field(1,_)', b''),
    ('str(abc),regsub(b,X)', b'aXc'),
    ('str(aaa),regsub(a,X,g)', b'XXX'),
    ('str(aBA),regsub(a,X,gi)', b'XBX'),
    ('str(a%41%2b+),url_dec', b'aA++'),
    ('str(a%41%2b+),url_dec(1)', b'aA+ '),
    ('str(YWJj),b64dec', b'abc'),
    ('str(YWJ),b64dec', b''),
    ('str(abc),base64', b'YWJj'),
    ('str(abc),hex', b'616263'),
    ('str(abc),bytes(1)', b'bc'),
    ('str(abc),bytes(3)', b''),
    ('str(abc),bytes(0,0)', b''),
    ('str(abc),length', b'3'),
    ('str(AbC),lower', b'abc'),
    ('str(AbC),upper', b'ABC'),
    ('src,ipmask(16)', b'127.0.0.0'),
    ('str(x),concat(a,,b)', b'xab'),
    ('str(x),concat(,txn.v,)', b'xVV'),
    ('str(),concat(x)', b'x'),
    ('int(-12),hex', b'FFFFFFFFFFFFFFF4'),
    ('int(5),ipmask(8)', b'0.0.0.0'),
    ('str(1.2.3.4),ipmask(255.255.0.0)', b'1.2.0.0'),
    ('str(12),map_int(int.map,none)', b'twelve'),
    ('int(3),map_int(int.map,none)', b'low'),
    ('env(NOPE_ZZ)', b''),
    ('str(abc),field(1,b)', b'a'),
    ("str(a b),regsub(' ','_',g)", b'a_b'),
]


@pytest.mark.parametrize("expr,haproxy", MEASURED)
def test_same_bytes_as_haproxy(expr, haproxy):
    ctx = Ctx(env={}, read_file=FILES.__getitem__)
    fmt = compile_logformat("%%[%s]" % expr, ctx, mode="http")
    txn = Txn.from_parts(World(), b"GET", b"/", headers=[(b"Host", b"h")],
                         src=("127.0.0.1", 40000))
    txn.txn_vars["v"] = b"VV"
    assert fmt(txn) == haproxy
