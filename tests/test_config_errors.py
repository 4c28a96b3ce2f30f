"""Configuration mistakes: each is a ConfigError naming file and line, with a hint."""

import os
import textwrap

import pytest

from proxy.config import ConfigError, ConfigErrors, load, parse

HEAD = """\
defaults
    mode http
    timeout connect 5s
    timeout client 30s
    timeout server 30s
frontend fe
    bind 127.0.0.1:8080
    default_backend be
backend be
"""
# the first line added after HEAD is line 10
LINE = 10


def error(text, env=None):
    with pytest.raises(ConfigError) as exc:
        parse(textwrap.dedent(text), "bad.cfg", env=env or {})
    err = exc.value
    assert err.file == "bad.cfg"
    assert str(err).startswith("bad.cfg:%d: %s" % (err.line, err.message))
    return err


def backend_error(body):
    return error(HEAD + textwrap.dedent(body))


def test_str_has_file_line_message_and_hint():
    err = ConfigError("a.cfg", 3, "boom", "try this")
    assert str(err) == "a.cfg:3: boom\n  hint: try this"
    assert str(ConfigError("a.cfg", 3, "boom")) == "a.cfg:3: boom"


# ---------------------------------------------------------------- the seed's mistakes

@pytest.mark.parametrize("section", ["global", "defaults", "frontend fe", "backend be"])
def test_keepalive_timeout_is_rejected_with_a_hint_in_any_section(section):
    err = error("%s\n    keepalive-timeout 10s\n" % section)
    assert err.line == 2 and "keepalive-timeout" in err.message
    assert err.hint == "use 'timeout http-keep-alive <time>' in defaults/frontend"


def test_http_server_close_with_a_value_is_rejected_with_a_hint():
    err = backend_error("    http-server-close 10\n")
    assert err.line == LINE and "'http-server-close'" in err.message
    assert "backend be" in err.message
    assert err.hint == ("'option http-server-close' is a switch without a value; idle "
                        "server connections are reaped by 'pool-purge-delay'")


def test_option_http_server_close_with_a_value_gets_the_same_hint():
    err = backend_error("    option http-server-close 10\n")
    assert err.line == LINE and "pool-purge-delay" in err.hint


# ---------------------------------------------------------------- unknown and unsupported

def test_unknown_keyword_names_section_and_suggests_the_closest():
    err = backend_error("    balanse roundrobin\n")
    assert err.line == LINE
    assert err.message == "unknown keyword 'balanse' in 'backend be' section"
    assert err.hint == "did you mean 'balance'?"


def test_unknown_keyword_without_close_match_has_no_hint():
    err = backend_error("    zzzqqq 1\n")
    assert err.hint is None


def test_unknown_global_keyword():
    err = error("global\n    maxcon 10\n")
    assert err.line == 2 and "'global'" in err.message and err.hint == "did you mean 'maxconn'?"


def test_keyword_out_of_section():
    err = error("maxconn 10\n")
    assert err.line == 1 and "out of section" in err.message


@pytest.mark.parametrize("text", [
    "global\n    lua-load /etc/haproxy/x.lua\n",
    "global\n    tune.comp.maxlevel 5\n",
    HEAD + "    stick on src\n",
    HEAD + "    http-request silent-drop\n",
    HEAD + "    http-request set-src src\n",
    HEAD + "    http-response redirect location /x\n",
    HEAD + "    option splice-auto\n",
    HEAD + "    timeout client-fin 1s\n",
    HEAD + "    server s 127.0.0.1:1 track other/s\n",
    HEAD + "    balance url_param id\n",
    HEAD + "    http-check connect\n",
    "peers mypeers\n",
])
def test_haproxy_keywords_keepwarm_lacks_are_refused_as_not_supported(text):
    err = error(text)
    assert "not supported" in err.message
    assert "docs/configuration.md" in err.hint or "supports" in err.hint


def test_mode_tcp_is_refused():
    err = error("frontend fe\n    mode tcp\n")
    assert err.line == 2 and err.message == "keepwarm supports only mode http"


def test_mode_tcp_in_defaults_is_refused_only_where_a_proxy_keeps_it():
    """HAProxy accepts a tcp defaults section whose proxies all say `mode http`."""
    ok = ("defaults\n    mode tcp\n    timeout client 5s\n    timeout connect 5s\n"
          "    timeout server 5s\nfrontend fe\n    mode http\n    bind :80\n"
          "    default_backend be\nbackend be\n    mode http\n    server s 127.0.0.1:1\n")
    parse(ok, "ok.cfg", env={})
    err = error(ok.replace("backend be\n    mode http\n", "backend be\n"))
    assert err.line == 10 and "'mode tcp' (from its defaults section)" in err.message


def test_unknown_mode():
    assert "unknown proxy mode" in error("defaults\n    mode smtp\n").message


AMQP = """\
defaults
    timeout connect 5s
    timeout client 30s
    timeout server 30s
listen amqp
    bind :5672
    server rabbit 127.0.0.1:5672
"""


def test_a_proxy_with_no_mode_anywhere_is_mode_tcp_and_refused():
    # HAProxy: no 'mode' in the section nor in its defaults section is 'mode tcp'
    err = error(AMQP)
    assert isinstance(err, ConfigErrors) and len(err.errors) == 1
    assert err.line == 5
    assert err.message == ("listen 'amqp' has no 'mode' line, nor has its defaults section: "
                           "HAProxy runs it in 'mode tcp', which keepwarm does not support "
                           "(yet)")
    assert "mode http" in err.hint
    # the same file with 'mode http' in its defaults section is accepted
    ok = parse(AMQP.replace("defaults\n", "defaults\n    mode http\n"), "ok.cfg", env={})
    assert ok.frontends[0].name == "amqp" and ok.backend("amqp").servers[0].port == 5672


def test_unknown_option_suggests_a_supported_one():
    err = backend_error("    option http-keepalive\n")
    assert "unknown option 'http-keepalive'" in err.message
    assert err.hint == "did you mean 'option http-keep-alive'?"


def test_unknown_timeout_suggests_the_closest():
    err = backend_error("    timeout keep-alive 1s\n")
    assert err.line == LINE and "got 'keep-alive'" in err.message
    assert err.hint == "did you mean 'timeout http-keep-alive'?"


def test_unknown_server_keyword_suggests_the_closest():
    err = backend_error("    server s 127.0.0.1:1 chek\n")
    assert err.line == LINE and "unknown keyword 'chek'" in err.message
    assert err.hint == "did you mean 'check'?"


def test_negating_a_non_boolean_option_is_refused():
    assert "negation" in backend_error("    no option httpchk\n").message


def test_no_before_a_non_option_is_refused():
    assert "negation/default" in backend_error("    no retries\n").message


# ---------------------------------------------------------------- values

@pytest.mark.parametrize("body,words", [
    ("    timeout connect 5x\n", "unknown time unit"),
    ("    timeout connect 1.5s\n", "unexpected character"),
    ("    timeout connect\n", "expects an integer value"),
    ("    timeout connect 1s 2s\n", "unexpected extra argument"),
    ("    timeout server 30d\n", "overflow"),
    ("    retries many\n", "integer"),
    ("    retries -1\n", ">= 0"),
    ("    http-reuse sometimes\n", "'http-reuse' only supports"),
    ("    server s 127.0.0.1:1 weight 300\n", "within 0 and 256"),
    ("    server s 127.0.0.1:1 rise 0\n", ">= 1"),
    ("    server s 127.0.0.1:1 fall x\n", "integer"),
    ("    server s 127.0.0.1:1 inter 0\n", "must be > 0"),
    ("    server s 127.0.0.1:1 inter\n", "expects a delay"),
    ("    server s 127.0.0.1:1 port 70000\n", "within 1 and 65535"),
    ("    server s 127.0.0.1:1 addr nothost\n", "not an IPv4 or IPv6"),
    ("    server s 127.0.0.1:1 maxconn -2\n", ">= 0"),
    ("    server s 127.0.0.1:1 pool-max-conn -2\n", ">= -1"),
    ("    server s 127.0.0.1:1 check 2000ms\n", "unknown keyword '2000ms'"),
    ("    server s 127.0.0.1:0\n", "invalid port"),
    ("    server s 127.0.0.1:99999\n", "invalid port"),
    ("    server s 127.0.0.1\n", "has no port"),
    ("    server s 127.0.0.1:+1\n", "port offsets"),
    ("    server s bad_host!:80\n", "invalid address"),
    ("    server s /run/app.sock\n", "UNIX socket"),
    ("    server s\n", "expects <name> and <addr>"),
    ("    option httpchk GET / HTTP/1.1 extra\n", "unexpected argument"),
    ("    option httpchk GET / HTTP/1.1\\r\\nbadheader\n", "unable to parse"),
    ("    option httpchk GET / FTP\n", "invalid HTTP version"),
    ("    http-check expect status abc\n", "invalid status list"),
    ("    http-check expect rstatus (\n", "invalid regex"),
    ("    http-check expect status\n", "expects [!] <match> <pattern>"),
    ("    http-check expect status 200\n    http-check expect status 201\n", "several"),
    ("    http-check send meth\n", "expects a value"),
    ("    http-check send foo bar\n", "unknown parameter"),
    ("    http-check frobnicate\n", "only supports"),
    ("    balance\n", "expects an algorithm"),
    ("    balance fastest\n", "unknown load balancing algorithm"),
])
def test_invalid_values_are_errors_on_their_line(body, words):
    err = backend_error(body)
    assert words in err.message
    assert err.line >= LINE


def test_bind_errors():
    for addr, words in [("*:", "missing port"), (":0", "invalid port"), ("a..b:80", "invalid"),
                        (":90-80", "invalid port range"), ("abns@s", "not supported"),
                        ("fd@3", "not supported")]:
        err = error("frontend fe\n    bind %s\n" % addr)
        assert err.line == 2 and words in err.message, (addr, err)


def test_bind_option_is_refused_as_not_supported():
    err = error("frontend fe\n    bind :443 accept-proxy\n")
    assert "'accept-proxy' is not supported" in err.message


def test_bind_ssl_loads_its_certificates_at_its_line():
    err = error("frontend fe\n    bind :443 ssl crt /nonexistent/x.pem\n")
    assert err.line == 2 and "unable to load SSL certificate" in err.message
    err = error("frontend fe\n    bind :443 crt /x.pem\n")
    assert err.line == 2 and "needs 'ssl'" in err.message
    err = error("frontend fe\n    bind :443 ssl\n")
    assert err.line == 2 and "needs a certificate" in err.message


def test_bind_option_after_defer_accept_is_still_checked():
    err = error("frontend fe\n    bind :80 defer-accept backlog 10\n")
    assert err.line == 2 and "'backlog' is not supported" in err.message
    err = error("frontend fe\n    bind :80 defer-accept deferred\n")
    assert "unknown keyword 'deferred'" in err.message and "defer-accept" in err.hint


def test_bind_with_space_separated_addresses_is_refused():
    err = error("frontend fe\n    bind :80 :81\n")
    assert "unknown keyword ':81'" in err.message and "commas" in err.hint


def test_bind_not_allowed_in_defaults():
    assert "not allowed in 'defaults'" in error("defaults\n    bind :80\n").message


def test_server_not_allowed_in_defaults_or_frontend():
    assert "not allowed" in error("defaults\n    server s 127.0.0.1:1\n").message
    err = error("frontend fe\n    server s 127.0.0.1:1\n")
    assert err.line == 2 and "not allowed in frontend" in err.message


def test_global_value_errors():
    assert "integer" in error("global\n    maxconn lots\n").message
    assert "within 1 and 64 (got 0)" in error("global\n    nbthread 0\n").message
    assert "expects a path" in error("global\n    stats socket\n").message
    assert "UNIX socket" in error("global\n    stats socket nowhere\n").hint
    assert "unknown parameter 'lvl'" in error("global\n    stats socket /s lvl admin\n").message
    assert "octal" in error("global\n    stats socket /s mode rw\n").message
    assert "user, operator or admin" in error("global\n    stats socket /s level root\n").message
    assert "integer" in error("global\n    stats maxconn many\n").message
    assert "takes no argument" in error("global x\n").message


# ---------------------------------------------------------------- whole-config checks

def test_frontend_without_bind():
    err = error("frontend fe\n    mode http\n    default_backend be\n"
                "backend be\n    mode http\n")
    assert err.line == 1 and "has no 'bind' directive" in err.message


def test_frontend_without_default_backend_loads_as_in_haproxy():
    # HAProxy 2.6 accepts it and answers 503 (tests/test_e2e_routing.py); a frontend
    # that only redirects or answers is common (port 80 to https), so no warning then.
    bare = parse("frontend fe\n    mode http\n    bind :80\n", "ok.cfg", env={})
    assert any("every request gets a 503" in w for w in bare.warnings)
    redirector = parse("frontend fe\n    mode http\n    bind :80\n"
                       "    http-request redirect scheme https\n", "ok.cfg", env={})
    assert not any("503" in w for w in redirector.warnings)
    assert redirector.frontends[0].default_backend is None


def test_default_backend_naming_a_missing_backend_suggests_the_closest():
    err = error("frontend fe\n    mode http\n    bind :80\n    default_backend web_server\n"
                "backend web_servers\n    mode http\n")
    assert err.line == 4 and "'web_server'" in err.message
    assert err.hint == "did you mean 'web_servers'?"


def test_default_backend_naming_a_frontend_is_an_error():
    err = error("frontend a\n    mode http\n    bind :80\n    default_backend b\n"
                "frontend b\n    mode http\n    bind :81\n    default_backend a\n")
    assert "unable to find required default_backend" in err.message


@pytest.mark.parametrize("text,line", [
    ("backend a\n    mode http\nbackend a\n    mode http\n", 3),
    ("frontend a\n    mode http\n    bind :80\n    default_backend b\n"
     "listen a\n    mode http\n    bind :81\nbackend b\n    mode http\n", 5),
    ("listen a\n    mode http\n    bind :80\nbackend a\n    mode http\n", 4),
])
def test_duplicate_proxy_names(text, line):
    err = error(text)
    assert err.line == line and "same name" in err.message


def test_every_error_of_a_file_is_reported_in_file_order():
    err = error("""\
        global
            maxcon 10
            maxconn lots
        defaults
            mode http
            timeout connect 5s
            timeout client 30s
            timeout server 30s
        frontend fe
            bind 127.0.0.1:8080
            default_backend be
            frobnicate on
        backend be
            balance fastest
            server s1 bad_host!:80
    """)
    assert isinstance(err, ConfigErrors)
    assert [e.line for e in err.errors] == [2, 3, 12, 14, 15]
    expected = ["unknown keyword 'maxcon' in 'global' section",
                "'maxconn' expects an integer argument (got 'lots')",
                "unknown keyword 'frobnicate' in 'frontend fe' section",
                "unknown load balancing algorithm 'fastest'",
                "server 's1': invalid address 'bad_host!:80'"]
    for e, words in zip(err.errors, expected):
        assert e.file == "bad.cfg" and words in e.message, (e.line, e.message)
    # the exception reads as its first error; str() lists them all, one per error
    assert (err.line, err.message) == (err.errors[0].line, err.errors[0].message)
    assert [line.split(":")[1] for line in str(err).splitlines()
            if line.startswith("bad.cfg:")] == ["2", "3", "12", "14", "15"]


def test_duplicate_server_names():
    err = backend_error("    server a 127.0.0.1:1\n    server a 127.0.0.1:2\n")
    assert err.line == LINE + 1 and "two servers named 'a'" in err.message


def test_section_without_name():
    err = error("backend\n")
    assert err.line == 1 and "expects <name>" in err.message


def test_invalid_section_name():
    err = error("backend a/b\n")
    assert "character '/' is not permitted" in err.message


def test_extra_argument_after_section_name():
    err = error("listen web 0.0.0.0:80\n")
    assert "unexpected argument '0.0.0.0:80'" in err.message


def test_from_unknown_defaults():
    assert "not found" in error("backend b from nope\n").message


def test_lexer_errors_carry_the_line():
    err = error("global\n\n    maxconn \"10\n")
    assert err.line == 3 and "unmatched quote" in err.message


# ---------------------------------------------------------------- load()

def test_load_missing_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError) as exc:
        load(str(tmp_path / "nope.cfg"))
    assert "cannot read" in exc.value.message


def test_load_refuses_a_file_without_final_newline(tmp_path):
    path = tmp_path / "a.cfg"
    path.write_text("global\n    maxconn 10")
    with pytest.raises(ConfigError) as exc:
        load(str(path))
    assert exc.value.line == 2 and exc.value.file == str(path)


def test_load_refuses_invalid_utf8(tmp_path):
    path = tmp_path / "a.cfg"
    path.write_bytes(b"global\n  maxconn \xff\n")
    with pytest.raises(ConfigError) as exc:
        load(str(path))
    assert exc.value.line == 2


# Numbers of any length, digits that are not ASCII, nesting of any depth and files of
# any size: one located error, never a Python exception (Python itself refuses
# integer strings past 4300 digits, and recursion past ~1000 levels).
BIG = "9" * 5000


@pytest.mark.parametrize("text, line, words", [
    ("global\n    maxconn %s\n" % BIG, 2, "'maxconn': number too large"),
    ("global\n    nbthread 99999999999999999999\n", 2, "'nbthread': number too large"),
    ("global\n    nbthread 65\n", 2, "'nbthread' must be within 1 and 64 (got 65)"),
    ("defaults\n    timeout connect %s\n" % BIG, 2, "'timeout connect': number too large"),
    ("frontend fe\n    bind 127.0.0.1:%s\n" % BIG, 2, "invalid port"),
    ("frontend fe\n    bind 127.0.0.1:\u0661\u0668\u0661\n", 2, "invalid port"),
])
def test_huge_or_foreign_numbers_are_one_located_error(text, line, words):
    err = error(text)
    assert err.line == line and words in err.message, err.message
    assert len(err.message) < 200


@pytest.mark.parametrize("option, words", [
    ("weight %s" % BIG, "'weight': number too large"),
    ("maxconn %s" % BIG, "'maxconn': number too large"),
    ("weight \u0665", "expects an integer"),
])
def test_huge_server_numbers_are_one_located_error(option, words):
    err = backend_error("    server s1 127.0.0.1:80 %s\n" % option)
    assert words in err.message and err.line >= 8, err.message


def test_huge_server_port_and_retries():
    assert "invalid port" in backend_error("    server s1 127.0.0.1:%s\n" % BIG).message
    assert "'retries': number too large" in backend_error(
        "    retries %s\n    server s1 127.0.0.1:80\n" % BIG).message


def test_a_long_run_of_negations_in_a_condition_is_evaluated():
    text = HEAD + ".if %s1\n    server s1 127.0.0.1:80\n.endif\n"
    even = parse(textwrap.dedent(text % ("!" * 2000)), "t.cfg", env={})
    odd = parse(textwrap.dedent(text % ("!" * 2001)), "t.cfg", env={})
    assert len(even.backend("be").servers) == 1 and not odd.backend("be").servers


def test_conditions_nested_too_deeply_are_refused():
    err = error(".if %s1%s\n.endif\n" % ("(" * 3000, ")" * 3000))
    assert err.line == 1 and "nested too deeply" in err.message
    err = error(".if version_atleast(%s)\n.endif\n" % BIG)
    assert err.line == 1 and "number too large" in err.message


def test_a_file_larger_than_16_mib_is_refused(tmp_path):
    big = tmp_path / "big.cfg"
    with open(big, "wb") as f:
        f.truncate((16 << 20) + 1)
    for path in (str(big), "/dev/zero"):
        if not os.path.exists(path):
            continue
        with pytest.raises(ConfigError) as exc:
            load(path)
        assert "larger than 16 MiB" in exc.value.message


def test_ssl_default_bind_lines_are_checked_at_their_line():
    err = error("global\n    ssl-default-bind-options ssl-min-ver TLSv9\n"
                "frontend fe\n    bind :80\n    default_backend be\nbackend be\n")
    assert err.line == 2 and "unknown version" in err.message
    err = error("global\n    ssl-default-bind-ciphersuites TLS_AES_128_GCM_SHA999\n"
                "frontend fe\n    bind :80\n    default_backend be\nbackend be\n")
    assert err.line == 2 and "OpenSSL takes none" in err.message
    err = error("global\n    ssl-default-server-sigalgs RSA+SHA999\n"
                "frontend fe\n    bind :80\n    default_backend be\nbackend be\n")
    assert err.line == 2 and "ECDSA+SHA256" in err.hint


def test_server_sni_and_verifyhost_must_name_one_host():
    err = error("defaults\n    mode http\nfrontend fe\n    bind :80\n    default_backend be\n"
                "backend be\n    server s 127.0.0.1:443 ssl verify none sni str(a.test) "
                "verifyhost b.test\n")
    assert err.line == 7 and "name different hosts" in err.message and err.hint
