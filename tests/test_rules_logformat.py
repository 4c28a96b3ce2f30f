"""Log-format strings (proxy/rules/logformat.py): samples, flags and aliases, in
both of HAProxy's modes (log lines, and header values / lf-strings).

The two MEASURED lines are what HAProxy 2.6.12 wrote for the same format and
request over 127.0.0.1: the log line received on a UDP syslog socket (without
its syslog header), the header value echoed back by an ``lf-string``.
"""

import pytest

from _native import Parser
from proxy.rules import Ctx, RuleError, Txn, World, compile_logformat

# HAProxy's request also had "X-C: \x01z\tq"#", which keepwarm's parser refuses
# (RFC 9110 §5.5); the variables below hold what its set-var rules stored.
HEAD = b"GET /p?x=1 HTTP/1.1\r\nHost: h\r\nX-E:\r\nX-Q: a\"b\\c]d\r\n\r\n"

LOG_FORMAT = ("A=%[var(txn.nope)] B=%{+Q}[var(txn.nope)] C=%[var(txn.e)] D=%HQ E=%{+Q}r "
              "F=%{+E}[var(txn.q)] G=%{+X}ci:%{+X}cp H=%{+Q}[var(txn.q)]   I=%ST J=%b "
              "K=%[var(txn.c)] L=%HU M=%HP N=%HV O=%HM P=%{+Q}HQ Q=%[method,lower] S=%[str(a)] "
              "T=%ci U=%{+Q}o%f V=%[var(txn.q)]")
LOG_MEASURED = (b'A=- B="" C=- D=?x=1 E="GET /p?x=1 HTTP/1.1" F=a\\"b\\\\c\\]d '
                b'G=7F000001:94AE H="a"b\\c]d" I=200 J=fe K=\x01z\tq"# L=/p?x=1 M=/p '
                b'N=HTTP/1.1 O=GET P="?x=1" Q=get S=a T=127.0.0.1 U="fe" V="a"b\\c]d"')
HTTP_FORMAT = ("a=%[var(txn.nope)] b=%{+Q}[var(txn.nope)] c=%[var(txn.c)] d=%{+Q}[var(txn.q)] "
               "e=%ci f=%{+Q}ci g=%HQ h=%{+Q}r i=%[var(txn.e)] j=%{+E}[var(txn.q)]")
HTTP_MEASURED = (b'a= b= c=%01z\tq"# d=a"b\\c]d e=127.0.0.1 f="127.0.0.1" g=?x=1 '
                 b'h="GET /p?x=1 HTTP/1.1" i= j=a\\"b\\\\c\\]d')


def txn(head=HEAD):
    parser = Parser()
    assert parser.request_rc(head, len(head), 0, 0) > 0
    t = Txn(World(hostname=b"box", pid=42), head, parser, src=("127.0.0.1", 38062),
            dst=("127.0.0.1", 18184), fe_name=b"fe", be_name=b"fe")
    # What the measured configuration's set-var rules stored.
    t.txn_vars.update(e=b"", q=b'a"b\\c]d', c=b'\x01z\tq"#')
    t.status = 200
    return t


def test_log_line_as_haproxy_measured():
    assert compile_logformat(LOG_FORMAT, Ctx(phase="log"))(txn()) == LOG_MEASURED


def test_header_value_as_haproxy_measured():
    assert compile_logformat(HTTP_FORMAT, Ctx(), mode="http")(txn()) == HTTP_MEASURED


def test_percent_percent_and_plain_text():
    assert compile_logformat("100%% of %f")(txn()) == b"100% of fe"
    assert compile_logformat("")(txn()) == b""
    assert compile_logformat("just text")(txn()) == b"just text"


def test_log_mode_merges_spaces_http_mode_keeps_them():
    assert compile_logformat("a   b")(txn()) == b"a b"
    assert compile_logformat("a   b", mode="http")(txn()) == b"a   b"


def test_aliases_of_the_request_and_the_connection():
    t = txn()
    lf = lambda text: compile_logformat(text)(t)    # noqa: E731
    assert lf("%ci:%cp %fi:%fp") == b"127.0.0.1:38062 127.0.0.1:18184"
    assert lf("%f %ft %b") == b"fe fe fe"
    assert lf("%H %pid") == b"box 42"
    assert lf("%r") == b"GET /p?x=1 HTTP/1.1"
    assert lf("%HM %HU %HP %HPO %HQ %HV %ST") == b"GET /p?x=1 /p /p ?x=1 HTTP/1.1 200"


def test_request_line_is_url_encoded_with_hashes():
    """HAProxy's url_encode_map: controls, '"', '#' and bytes >= 127 as #XX."""
    t = Txn.from_parts(World(), b"GET", b'/a"b#c\x7f', src=("::1", 1))
    assert compile_logformat("%r")(t) == b"GET /a#22b#23c#7F HTTP/1.1"


def test_wired_values_come_from_txn_log_or_a_dash():
    t = txn()
    t.log.update(Tt=12, s=b"web1", ID=b"abc")
    assert compile_logformat("%Tt %s %ID %Tw %B")(t) == b"12 web1 abc - -"
    assert compile_logformat("%{+Q}s")(t) == b'"web1"'


def test_hex_flag_on_numbers():
    t = txn()
    t.log["Tt"] = 255
    assert compile_logformat("%{+X}Tt %{+X}cp")(t) == b"FF 94AE"


def test_o_propagates_flags_to_what_follows():
    assert compile_logformat("%f %{+Q}o%f %b")(txn()) == b'fe "fe" "fe"'


def test_sample_types_are_written_as_strings():
    t = txn()
    assert compile_logformat("%[int(7)] %[src] %[always_true] %[str(ab),hex]")(t) == \
        b"7 127.0.0.1 1 6162"


def test_binary_sample_stops_at_nul():
    t = txn()
    t.txn_vars["b"] = b"x"
    assert compile_logformat("[%[str(YQBi),b64dec]]")(t) == b"[a]"


def test_request_headers_are_refused_in_a_log_format():
    """Measured: haproxy -c refuses %[path], %[hdr(x)], %[req.ver] in log-format
    ("needs 'HTTP request headers' which is not available here") and accepts
    %[method], %[status], %[src], %[var(...)]."""
    for expr in ("path", "hdr(x)", "req.ver", "url_param(a)", "res.hdr(x)", "hdr_cnt(x)"):
        with pytest.raises(RuleError):
            compile_logformat("%%[%s]" % expr, Ctx(phase="log"))
    for expr in ("method", "status", "src", "var(txn.x)", "fe_name", "be_name"):
        compile_logformat("%%[%s]" % expr, Ctx(phase="log"))


def test_status_is_refused_in_a_request_header_value():
    """Measured: 'http-request set-header X %[status]' fails at load."""
    with pytest.raises(RuleError):
        compile_logformat("%[status]", Ctx(phase="req"), mode="http")
    compile_logformat("%[status]", Ctx(phase="res"), mode="http")


def test_uses_tells_the_wiring_what_a_format_reads():
    assert compile_logformat("%ci %[src]").uses == frozenset()
    assert "req" in compile_logformat("%r").uses
    assert "req" in compile_logformat("%[path]", mode="http").uses


@pytest.mark.parametrize("text,word", [
    ("%[path", "]"), ("%{+Q", "}"), ("%{+Z}r", "flag"), ("%zz", "no such format variable"),
    ("100%", "'%'"), ("%[nosuch]", "unknown fetch"), ("%[path,nosuch]", "unknown converter"),
])
def test_compile_errors(text, word):
    with pytest.raises(RuleError) as e:
        compile_logformat(text, mode="http")
    assert word in e.value.message


def test_unknown_alias_says_did_you_mean():
    with pytest.raises(RuleError) as e:
        compile_logformat("%cii")
    assert e.value.hint and "ci" in e.value.hint


def test_numbers_are_never_quoted():
    """Measured: HAProxy 2.6.12 logs '%{+Q}o%ST %cp %ci %b %f %HM' as
    '200 56628 "127.0.0.1" "fe" "fe" "GET"': +Q quotes text, never numbers."""
    t = txn()
    t.log.update(Tt=7, s=b"web1")
    assert compile_logformat("%{+Q}o%ST %cp %ci %b %f %HM")(t) == \
        b'200 38062 "127.0.0.1" "fe" "fe" "GET"'
    assert compile_logformat("%{+Q}o%Tt %s")(t) == b'7 "web1"'


def test_a_variable_name_ends_at_an_underscore():
    # HAProxy's common unique-id-format: '_' separates, as any non-alphanumeric.
    from proxy.rules.txn import Txn, World
    fmt = compile_logformat("%ci:%cp_%fi", Ctx(env={}, phase="log"), mode="log")
    txn = Txn.from_parts(World(), b"GET", b"/", src=("10.0.0.1", 5555), dst=("10.0.0.2", 80))
    assert fmt(txn) == b"10.0.0.1:5555_10.0.0.2"
