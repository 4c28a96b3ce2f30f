"""userlist / http-errors / errorfiles / http-error sections and lines, `http-request
auth`, and the Basic credentials the `http_auth*` fetches read: parsed, checked
at load (file:line), and verified through libcrypt."""

import base64

import pytest

from proxy.config import userlist
from proxy.config.auth import DEFAULT_401, challenge
from proxy.config.errors import ConfigErrors
from proxy.config.http_actions import run_actions
from proxy.config.parser import parse_text
from proxy.rules import Txn, World, compile_condition, Acls, Ctx
from proxy.rules.fetches import basic_credentials

SHA512 = ("$6$abc$IdWKNKTJEb8LxY7CGg8YBXlvtfZzFw7Mp/r6niK9YB2mdvgY..TKjv1T..8RadRt2qvUHYRLr"
          "/TsVArtr91iR1")          # openssl passwd -6 -salt abc secret
SHA256 = "$5$abc$qsg6EHbUzHQzF1POlD7zUwBINSELQxypPaeDcZe6vH0"   # ... -5 -salt abc secret
MD5 = "$1$abc$iCQ2D3nhptRYi27fDYv2s1"                            # ... -1 -salt abc secret

TAIL = ("defaults\n    mode http\n    timeout connect 1s\n    timeout client 1s\n"
        "    timeout server 1s\n"
        "frontend fe\n    bind 127.0.0.1:8080\n%s    default_backend be\n"
        "backend be\n%s    server s 127.0.0.1:9\n")


def cfg(head="", fe="", be=""):
    return head + TAIL % (fe, be)


def load(text):
    return parse_text(text, "t.cfg", env={})


def errors(text):
    with pytest.raises(ConfigErrors) as exc:
        load(text)
    return [(e.line, e.message) for e in exc.value.errors]


def txn(path=b"/", auth=None, fe=b"fe"):
    headers = [(b"host", b"h")]
    if auth is not None:
        for a in auth if isinstance(auth, list) else [auth]:
            headers.append((b"authorization", a))
    return Txn.from_parts(World(), b"GET", path, headers=headers, fe_name=fe)


def basic(creds: bytes) -> bytes:
    return b"Basic " + base64.b64encode(creds)


# ---------------------------------------------------------------- hashes

@pytest.mark.parametrize("hashed", [SHA512, SHA256, MD5])
def test_a_crypt_hash_is_verified_by_libcrypt(hashed):
    assert userlist.hash_problem(hashed) is None
    assert userlist.crypt(b"secret", hashed.encode()) == hashed.encode()
    assert userlist.crypt(b"Secret", hashed.encode()) != hashed.encode()


@pytest.mark.parametrize("hashed", ["notahash", "$6$", "$6$abc$", "$9$abc$xyz", SHA512[:-1],
                                    SHA512 + "x"])
def test_a_hash_libcrypt_cannot_use_is_found(hashed):
    assert userlist.hash_problem(hashed) is not None


def test_verification_results_are_cached_per_user_and_password(monkeypatch):
    ul, problems = section_of(["user alice password %s" % SHA512]).build()
    assert not problems
    calls = []
    real = userlist.crypt
    monkeypatch.setattr(userlist, "crypt", lambda k, s: calls.append(k) or real(k, s))
    for _ in range(3):
        assert ul.check(b"alice", b"secret")
        assert not ul.check(b"alice", b"nope")
    assert calls == [b"secret", b"nope"]          # crypt ran once per pair


def test_the_cache_is_bounded(monkeypatch):
    monkeypatch.setattr(userlist, "CACHE_SIZE", 4)
    ul, _ = section_of(["user alice password %s" % SHA256]).build()
    for i in range(10):
        ul.check(b"alice", b"guess%d" % i)
    assert len(ul._cache) == 4
    assert ul.check(b"alice", b"secret")


def test_an_insecure_password_is_compared_as_written():
    ul, _ = section_of(["user bob insecure-password hunter2"]).build()
    assert ul.check(b"bob", b"hunter2")
    assert not ul.check(b"bob", b"Hunter2") and not ul.check(b"bob", b"hunter2 ")
    assert not ul.check(b"nobody", b"hunter2")


def section_of(lines):
    s = userlist.UserlistSection("L", 1, "t.cfg")
    for i, line in enumerate(lines, 2):
        s.keyword(i, line.split())
    return s


# ---------------------------------------------------------------- userlist sections

def test_users_and_groups_may_be_named_in_either_order():
    ul, problems = section_of(["user alice insecure-password a groups g1",
                               "group g1", "group g2 users alice,bob",
                               "user bob insecure-password b"]).build()
    assert not problems
    assert ul.groups_of(b"alice") == {b"g1", b"g2"} and ul.groups_of(b"bob") == {b"g2"}
    assert ul.groups == {b"g1", b"g2"}


@pytest.mark.parametrize("lines,line,words", [
    (["user a insecure-password x", "user a insecure-password y"], 3, "duplicated user 'a'"),
    (["group g", "group g"], 3, "duplicated group 'g'"),
    (["user a password notahash"], 2, "cannot be verified"),
    (["user a"], 2, "has no password"),
    (["user a insecure-password"], 2, "expects a value"),
    (["user a secret x"], 2, "unexpected 'secret'"),
    (["member a"], 2, "unknown keyword 'member'"),
])
def test_a_wrong_userlist_line_is_an_error_at_its_line(lines, line, words):
    with pytest.raises(userlist.UserlistError) as exc:
        section_of(lines)
    assert exc.value.line == line and words in exc.value.message


def test_names_a_userlist_cross_references_are_checked_at_the_end():
    errs = errors(cfg("userlist L\n    user a insecure-password x groups nog\n"
                      "    group g users nobody\n"))
    assert errs == [(2, "userlist 'L': no such group 'nog' specified in user 'a'"),
                    (3, "userlist 'L': no such user 'nobody' specified in group 'g'")]


def test_a_userlist_declared_twice_or_without_name_is_an_error():
    errs = errors(cfg("userlist L\nuserlist L\nuserlist\n"))
    assert [line for line, _ in errs] == [2, 3]
    assert "duplicated userlist 'L' (declared at t.cfg:1)" in errs[0][1]


def test_an_unknown_userlist_is_an_error_at_the_line_that_names_it():
    errs = errors(cfg(fe="    acl ok http_auth(NOPE)\n    http-request auth if !ok\n"))
    assert errs == [(8, "unable to find userlist 'NOPE'")]


def test_a_userlist_may_come_after_the_proxy_using_it():
    text = cfg(fe="    http-request auth unless { http_auth(L) }\n") + \
        "userlist L\n    user a insecure-password x\n"
    fe = load(text).frontends[0]
    assert run_actions(fe.request_actions, txn(auth=basic(b"a:x"))) is None
    assert run_actions(fe.request_actions, txn())[0] == 401


def test_an_acl_group_the_userlist_lacks_is_an_error():
    errs = errors(cfg("userlist L\n    group g\n    user a insecure-password x\n",
                      fe="    acl adm http_auth_group(L) g nog\n"))
    assert errs == [(11, "acl: http_auth_group(L): invalid group 'nog'")]


def test_every_mistake_is_reported_at_once():
    errs = errors(cfg("userlist L\n    user a password $6$\n    user a insecure-password x\n"
                      "http-errors E\n    errorfile 503 /nonexistent/503.http\n",
                      fe="    errorfiles NOPE\n", be="    http-error status 503 string x\n"))
    assert [line for line, _ in errs] == [2, 5, 16, 13]     # lines first, then the whole


# ---------------------------------------------------------------- fetches

@pytest.mark.parametrize("value,creds", [
    (basic(b"alice:secret"), (b"alice", b"secret")),
    (b"basic YWxpY2U6c2VjcmV0", (b"alice", b"secret")),
    (b"BASIC   YWxpY2U6c2VjcmV0", (b"alice", b"secret")),
    (basic(b"a:b:c"), (b"a", b"b:c")),
    (basic(b":"), (b"", b"")),
    (basic(b"alice:secret") + b", Bearer x", (b"alice", b"secret")),
    (b"Basic\tYWxpY2U6c2VjcmV0", None),
    (b"Basic YWxpY2U6c2VjcmV0=", None),
    (b"Basic YWxpY2U6c2VjcmV", None),
    (b"Basic !!!!", None),
    (b"Basic", None),
    (b"Basic ", None),
    (basic(b"alice"), None),
    (b"Bearer abc", None),
])
def test_basic_credentials_are_read_as_haproxy_reads_them(value, creds):
    assert basic_credentials(txn(auth=value)) == creds


def test_only_the_first_authorization_header_counts():
    assert basic_credentials(txn(auth=[b"Bearer x", basic(b"a:b")])) is None
    assert basic_credentials(txn(auth=[basic(b"a:b"), b"Bearer x"])) == (b"a", b"b")
    assert basic_credentials(txn()) is None


def rules_ctx():
    ctx = Ctx(env={})
    lists = userlist.Userlists()
    ul, _ = section_of(["group admins users alice", "group ops",
                        "user alice password %s" % SHA512,
                        "user bob insecure-password hunter2 groups ops"]).build()
    lists.lists["L"] = ul
    return ctx.replace(userlists=lists)


def test_http_auth_and_http_auth_group_in_conditions():
    ctx = rules_ctx()
    acls = Acls(ctx)
    acls.add(["admin", "http_auth_group(L)", "admins"])
    ok = compile_condition(["if", "{", "http_auth(L)", "}"], acls, ctx)
    admin = compile_condition(["if", "admin"], acls, ctx)
    for auth, expect_ok, expect_admin in ((basic(b"alice:secret"), True, True),
                                          (basic(b"bob:hunter2"), True, False),
                                          (basic(b"alice:hunter2"), False, False),
                                          (None, False, False)):
        t = txn(auth=auth)
        assert (ok(t), admin(t)) == (expect_ok, expect_admin), auth


def test_http_auth_user_and_pass_read_without_checking():
    from proxy.rules import compile_sample
    t = txn(auth=basic(b"eve:guess"))
    assert compile_sample("http_auth_user").value(t) == b"eve"
    assert compile_sample("http_auth_pass").value(t) == b"guess"
    assert compile_sample("http_auth_group(L)", rules_ctx()).value(t) is None
    t = txn(auth=basic(b"bob:hunter2"))
    assert compile_sample("http_auth_group(L)", rules_ctx()).value(t) == b"bob"


# ---------------------------------------------------------------- http-request auth

def test_the_challenge_names_the_proxy_by_default_and_the_realm_when_given():
    c = load(cfg("userlist L\n    user a insecure-password x\n",
                 fe="    http-request auth if { path /fe }\n"
                    "    http-request auth realm \"my realm\" if { path /r }\n",
                 be="    http-request auth\n"))
    fe_actions, be_actions = c.frontends[0].request_actions, c.backends[0].request_actions
    assert run_actions(fe_actions, txn(b"/fe")) == (401, challenge(DEFAULT_401, b"fe"))
    assert b'\r\nwww-authenticate: Basic realm="my realm"\r\n\r\n' in \
        run_actions(fe_actions, txn(b"/r"))[1]
    assert b'realm="be"' in run_actions(be_actions, txn(b"/x"))[1]


def test_challenge_replaces_every_www_authenticate_and_goes_last():
    page = (b"HTTP/1.1 401 Unauthorized\r\nwww-authenticate: Basic realm=\"a\"\r\nx: 1\r\n"
            b"WWW-Authenticate: Digest x\r\ncontent-length: 2\r\n\r\nno")
    assert challenge(page, b"R") == (b"HTTP/1.1 401 Unauthorized\r\nx: 1\r\ncontent-length: 2"
                                     b"\r\nwww-authenticate: Basic realm=\"R\"\r\n\r\nno")


@pytest.mark.parametrize("rule", ["http-request auth realm", "http-request auth realm a b",
                                  "http-request auth foo"])
def test_a_malformed_auth_rule_is_an_error_at_its_line(rule):
    errs = errors(cfg(fe="    %s\n" % rule))
    assert errs[0][0] == 8 and "auth" in errs[0][1]


# ---------------------------------------------------------------- http-errors, errorfiles

def page(code, text):
    return (b"HTTP/1.1 %d X\r\ncontent-type: text/plain\r\ncontent-length: %d\r\n\r\n%s"
            % (code, len(text), text))


@pytest.fixture
def pages(tmp_path):
    out = {}
    for name, code, text in (("a503", 503, b"a"), ("b503", 503, b"bb"), ("a401", 401, b"c")):
        path = tmp_path / (name + ".http")
        path.write_bytes(page(code, text))
        out[name] = path
    return out


def test_errorfiles_imports_a_section_declared_anywhere(pages):
    c = load(cfg(fe="    errorfiles site\n", be="    errorfiles site 401\n") +
             "http-errors site\n    errorfile 503 %s\n    errorfile 401 %s\n"
             % (pages["a503"], pages["a401"]))
    assert sorted(dict(c.frontends[0].errorfiles)) == [401, 503]
    assert sorted(dict(c.backends[0].errorfiles)) == [401]
    assert dict(c.backends[0].errorfiles)[401].endswith(b"\r\n\r\nc")


def test_the_last_of_errorfile_errorfiles_and_http_error_wins(pages):
    head = "http-errors site\n    errorfile 503 %s\n" % pages["a503"]
    first = load(cfg(head, fe="    errorfile 503 %s\n    errorfiles site\n" % pages["b503"]))
    assert dict(first.frontends[0].errorfiles)[503].endswith(b"\r\n\r\na")
    last = load(cfg(head, fe="    errorfiles site\n    errorfile 503 %s\n" % pages["b503"]))
    assert dict(last.frontends[0].errorfiles)[503].endswith(b"\r\n\r\nbb")
    reset = load(cfg(head, fe="    errorfiles site\n    http-error status 503 "
                              "default-errorfiles\n"))
    assert 503 not in dict(reset.frontends[0].errorfiles)


def test_a_code_missing_from_the_section_is_a_warning(pages):
    c = load(cfg("http-errors site\n    errorfile 503 %s\n" % pages["a503"],
                 fe="    errorfiles site 404\n"))
    assert any("status '404' not declared in http-errors section 'site'" in w
               for w in c.warnings)


@pytest.mark.parametrize("section,line,words", [
    ("http-errors s\n    errorfile 503 /nonexistent.http\n", 2, "cannot read error file"),
    ("http-errors s\n    errorfile 418 /dev/null\n", 2, "status code '418' not handled"),
    ("http-errors s\n    foo\n", 2, "unknown keyword 'foo' in 'http-errors' section"),
    ("http-errors s\nhttp-errors s\n", 2, "http-errors section 's' already exists"),
    ("http-errors\n", 1, "expects <name>"),
])
def test_a_wrong_http_errors_section_is_an_error_at_its_line(section, line, words):
    errs = errors(cfg(section))
    assert errs[0][0] == line and words in errs[0][1], errs


def test_an_unknown_http_errors_section_is_an_error_at_the_line_naming_it():
    errs = errors(cfg(fe="    errorfiles nope\n", be="    http-error status 503 errorfiles "
                                                      "nope\n"))
    assert errs == [(8, "proxy 'fe': unknown http-errors section 'nope'"),
                    (11, "proxy 'be': unknown http-errors section 'nope'")]


def test_http_error_replies_are_laid_out_as_haproxy_sends_them(tmp_path):
    body = tmp_path / "body.txt"
    body.write_bytes(b"file body\n")
    c = load(cfg(fe="    http-error status 401 content-type text/plain string \"custom 401\" "
                    "hdr X-A b\n"
                    "    http-error status 503\n",
                 be="    http-error status 503 content-type text/plain file %s hdr X-One 1 "
                    "hdr X-Two 2\n" % body))
    fe, be = dict(c.frontends[0].errorfiles), dict(c.backends[0].errorfiles)
    # measured on HAProxy 2.6.12
    assert fe[401] == (b"HTTP/1.1 401 Unauthorized\r\nx-a: b\r\ncontent-length: 10\r\n"
                       b"content-type: text/plain\r\n\r\ncustom 401")
    assert fe[503] == b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\n\r\n"
    assert be[503] == (b"HTTP/1.1 503 Service Unavailable\r\nx-one: 1\r\nx-two: 2\r\n"
                       b"content-length: 10\r\ncontent-type: text/plain\r\n\r\nfile body\n")


@pytest.mark.parametrize("rule,words", [
    ("http-error status 503 string x", "a content type must be defined"),
    ("http-error status 418 content-type text/plain string x", "'418' not handled"),
    ("http-error content-type text/plain string x", "expects at least 'status <code>'"),
    ("http-error status 503 content-type text/plain lf-string %[src]", "not supported"),
    ("http-error status 503 content-type text/plain string x hdr X-A %[src]", "not supported"),
    ("http-error status 503 errorfile /nonexistent.http", "cannot read error file"),
    ("http-error status 503 content-type text/plain file /nonexistent", "cannot read file"),
    ("http-error status 503 string x string y", "cannot be used together"),
    ("http-error status 503 bogus x", "unknown argument 'bogus'"),
])
def test_a_wrong_http_error_line_is_an_error_at_its_line(rule, words):
    errs = errors(cfg(be="    %s\n" % rule))
    assert errs[0][0] == 10 and words in errs[0][1], errs


def test_an_auth_rule_answers_with_the_proxys_401_page(pages):
    c = load(cfg("userlist L\n    user a insecure-password x\n",
                 fe="    http-request auth realm R unless { http_auth(L) }\n"
                    "    errorfile 401 %s\n" % pages["a401"]))
    status, answer = run_actions(c.frontends[0].request_actions, txn())
    assert status == 401 and answer == (b"HTTP/1.1 401 X\r\ncontent-type: text/plain\r\n"
                                        b"content-length: 1\r\nwww-authenticate: Basic "
                                        b"realm=\"R\"\r\n\r\nc")
