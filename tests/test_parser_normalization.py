"""Request normalization decided by the head parsers (both, with the same answers):
RFC 9112 §3.2's Host syntax (a MUST HAProxy 2.6 does not apply: keepwarm is stricter
on purpose), an absolute-form target against Host (400 when they differ, as HAProxy
2.6), and F_NORMALIZE for the request lines forwarded rewritten (HTTP/1.x > 1 as
HTTP/1.1, an absolute-form target without its scheme's default port). The answers
on the wire are compared with HAProxy's in tests/test_e2e_normalization.py."""

import pytest

from _native import constants as K
from _native.testing import IMPLEMENTATIONS

IMPLS = [pytest.param(m, id=n, marks=[] if m is not None else
                      [pytest.mark.skip(reason="C module not built")])
         for n, m in IMPLEMENTATIONS.items()]


def verdict_and_flag(impl, line, host=b"x"):
    head = line + b"\r\n" + (b"Host: " + host + b"\r\n" if host is not None else b"") + b"\r\n"
    r = impl.Parser().parse_request(head, 0, 0)
    assert isinstance(r, list), K.ERROR_NAMES.get(r, r)
    return r[K.R_VERDICT], bool(r[K.R_FLAGS] & K.F_NORMALIZE)


VALID_HOSTS = [b"x", b"a.example", b"a_b.example", b"a-b~c", b"x:80", b"x:080", b"x:",
               b"x:0", b"x:65535", b"[::1]", b"[::1]:8080", b"[2001:db8::1]", b"127.0.0.1:81",
               b"a,b", b"%41b", b"", b"a!$&'()*+;="]
INVALID_HOSTS = [b"a b", b"a:xyz", b"a:99999", b"a:65536", b"a/b", b"a@b", b"[::1",
                 b"[]", b"[::1]x", b"caf\xc3\xa9", b"a:8:8", b"a%4", b"a%zz", b"a:-1",
                 b"a?b", b"a#b", b"a\tb"]


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("host", VALID_HOSTS)
def test_a_valid_host_is_forwarded(impl, host):
    assert verdict_and_flag(impl, b"GET /a HTTP/1.1", host) == (0, False)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("host", INVALID_HOSTS)
def test_an_invalid_host_gets_a_400(impl, host):
    # RFC 9112 §3.2: "a Host header field with an invalid field value" -> 400.
    assert verdict_and_flag(impl, b"GET /a HTTP/1.1", host)[0] == 400


ABSOLUTE = [
    # (target, Host, verdict, F_NORMALIZE)
    (b"http://x/a", b"x", 0, False),
    (b"http://X/a", b"x", 0, False),                  # host names compare without case
    (b"http://x:80/a", b"x", 0, True),                # default port: dropped when forwarded
    (b"https://x:443/a", b"x", 0, True),
    (b"HTTP://x:80/a", b"x", 0, True),
    (b"http://x/a", b"x:80", 0, False),               # Host's default port is the same place
    (b"https://x/a", b"x:443", 0, False),
    (b"http://x:8080/a", b"x:8080", 0, False),
    (b"http://u:p@x/a", b"x", 0, False),              # userinfo is not repeated in Host
    (b"http://x", b"x", 0, False),
    (b"http://x?q", b"x", 0, False),                  # RFC 3986: the authority ends at '?'
    (b"http://[::1]:80/", b"[::1]", 0, True),
    (b"ftp://x:21/a", b"x:21", 0, False),             # no default port known: kept
    (b"http://y/a", b"x", 400, False),
    (b"http://x:81/a", b"x", 400, False),
    (b"https://x/a", b"x:80", 400, False),
    (b"http://x/a", b"x:443", 400, False),
    (b"ftp://x/a", b"x:21", 400, False),
    (b"http:///a", b"x", 400, False),
    (b"http://x y/a", b"x", None, False),             # not a target at all (parse error)
]


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("target,host,verdict,normalize", ABSOLUTE,
                         ids=[("%s|%s" % (t.decode(), h.decode())) for t, h, _, _ in ABSOLUTE])
def test_an_absolute_form_target_is_checked_against_host(impl, target, host, verdict,
                                                         normalize):
    if verdict is None:
        head = b"GET " + target + b" HTTP/1.1\r\nHost: " + host + b"\r\n\r\n"
        assert impl.Parser().parse_request(head, 0, 0) in (K.E_TARGET, K.E_VERSION)
        return
    assert verdict_and_flag(impl, b"GET " + target + b" HTTP/1.1", host) == (verdict, normalize)


@pytest.mark.parametrize("impl", IMPLS)
def test_http10_absolute_form_without_host_is_forwarded(impl):
    assert verdict_and_flag(impl, b"GET http://x/a HTTP/1.0", None) == (0, False)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("version,flag", [(b"1.0", False), (b"1.1", False), (b"1.2", True),
                                          (b"1.9", True)])
def test_a_higher_minor_version_is_rewritten(impl, version, flag):
    assert verdict_and_flag(impl, b"GET /a HTTP/" + version) == (0, flag)


@pytest.mark.parametrize("impl", IMPLS)
def test_several_hosts_still_get_400_before_any_syntax_check(impl):
    head = b"GET http://y/ HTTP/1.1\r\nHost: x\r\nHost: a b\r\n\r\n"
    assert impl.Parser().parse_request(head, 0, 0)[K.R_VERDICT] == 400


@pytest.mark.parametrize("impl", IMPLS)
def test_responses_are_not_judged(impl):
    r = impl.Parser().parse_response(b"HTTP/1.1 200 OK\r\nHost: a b\r\nContent-Length: 0\r\n\r\n",
                                     0, 0)
    assert r[K.R_VERDICT] == 0 and not r[K.R_FLAGS] & K.F_NORMALIZE


FORWARDED = [
    (b"GET /a HTTP/1.2", b"GET /a HTTP/1.1"),
    (b"GET /a HTTP/1.9", b"GET /a HTTP/1.1"),
    (b"GET http://x:80/a HTTP/1.1", b"GET http://x/a HTTP/1.1"),
    (b"GET http://x:80 HTTP/1.1", b"GET http://x HTTP/1.1"),
    (b"GET http://x:080?q HTTP/1.1", b"GET http://x?q HTTP/1.1"),
    (b"GET https://u@x:443/a HTTP/1.3", b"GET https://u@x/a HTTP/1.1"),
    (b"GET http://[::1]:80/a HTTP/1.1", b"GET http://[::1]/a HTTP/1.1"),
    (b"GET http://x:8080/a HTTP/1.2", b"GET http://x:8080/a HTTP/1.1"),
    (b"GET /a HTTP/1.1", b"GET /a HTTP/1.1"),
]


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("line,sent", FORWARDED, ids=[l.decode() for l, _ in FORWARDED])
def test_the_forwarded_request_line_is_normalized(impl, line, sent):
    host = b"[::1]" if b"[" in line else b"x:8080" if b"8080" in line else b"x"
    head = b"\r\n" + line + b"\r\nHost: " + host + b"\r\nConnection: close\r\nX: y\r\n\r\n"
    p = impl.Parser()
    r = p.parse_request(head, 0, 0)
    assert r[K.R_VERDICT] == 0
    out = p.strip_hop(head)
    assert out == sent + b"\r\nHost: " + host + b"\r\nX: y\r\n"
    assert p.rewrite(head, b"\r\n") == out + b"\r\n"
