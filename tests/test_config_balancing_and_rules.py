"""Configuration of balancing, retries, header rules and passive health (HAProxy 2.6 keywords)."""

import ipaddress
import textwrap

import pytest

from proxy.config import ConfigError, parse
from proxy.config.model import BalanceArgs, ForwardFor

TIMEOUTS = """\
defaults
    mode http
    timeout connect 5s
    timeout client 30s
    timeout server 30s
"""
FE = """\
frontend fe
    bind 127.0.0.1:8080
    default_backend be
"""


def cfg(text):
    return parse(textwrap.dedent(text), "t.cfg", env={})


def backend(body, head=TIMEOUTS):
    return cfg(head + FE + "backend be\n" + textwrap.dedent(body)).backend("be")


def frontend(body, head=TIMEOUTS):
    return cfg(head + "frontend fe\n    bind 127.0.0.1:8080\n    default_backend be\n"
               + textwrap.dedent(body) + "backend be\n").frontends[0]


def server(options, head=TIMEOUTS):
    return backend("server s1 127.0.0.1:9000 " + options + "\n", head).servers[0]


def error(text):
    with pytest.raises(ConfigError) as exc:
        cfg(text)
    return exc.value


def backend_error(body):
    return error(TIMEOUTS + FE + "backend be\n" + textwrap.dedent(body))


# ---------------------------------------------------------------- defaults

def test_new_backend_fields_default_to_haproxys_values():
    be = backend("server s1 127.0.0.1:9000\n")
    assert be.balance == "roundrobin" and be.balance_args == BalanceArgs()
    assert (be.hash_type, be.hash_function, be.hash_avalanche) == ("map-based", "sdbm", False)
    assert be.allbackups is False and be.retry_on == frozenset({"conn-failure"})
    assert be.forwardfor is None and be.request_rules == () and be.response_rules == ()
    s = be.servers[0]
    assert (s.slowstart, s.maxqueue, s.observe, s.error_limit, s.on_error,
            s.on_marked_down, s.on_marked_up) == (0.0, 0, None, 10, "fail-check", None, None)


def test_new_frontend_fields_default_to_none():
    fe = frontend("")
    assert fe.forwardfor is None and fe.request_rules == () and fe.response_rules == ()


# ---------------------------------------------------------------- balance

@pytest.mark.parametrize("line,algo,args", [
    ("balance roundrobin", "roundrobin", BalanceArgs()),
    ("balance static-rr", "static-rr", BalanceArgs()),
    ("balance leastconn", "leastconn", BalanceArgs()),
    ("balance first", "first", BalanceArgs()),
    ("balance source", "source", BalanceArgs()),
    ("balance uri", "uri", BalanceArgs()),
    ("balance uri whole", "uri", BalanceArgs(whole=True)),
    ("balance uri len 10 depth 2", "uri", BalanceArgs(len=10, depth=2)),
    ("balance uri path-only whole", "uri", BalanceArgs(whole=True, path_only=True)),
    ("balance hdr(Host)", "hdr", BalanceArgs(hdr="Host")),
    ("balance hdr(host) use_domain_only", "hdr", BalanceArgs(hdr="host",
                                                             use_domain_only=True)),
    ("balance random", "random", BalanceArgs(draws=2)),
    ("balance random(3)", "random", BalanceArgs(draws=3)),
    ("balance random(1)", "random", BalanceArgs(draws=1)),
])
def test_balance_algorithms_and_their_arguments(line, algo, args):
    be = backend(line + "\n")
    assert (be.balance, be.balance_args) == (algo, args)


def test_balance_is_inherited_from_defaults_and_overridden():
    head = TIMEOUTS + "    balance leastconn\n    hash-type consistent\n"
    assert backend("", head).balance == "leastconn"
    assert backend("balance source\n", head).balance == "source"
    assert backend("balance source\n", head).hash_type == "consistent"


def test_balance_in_a_frontend_is_ignored_with_a_warning():
    c = cfg(TIMEOUTS + FE + "    balance leastconn\nbackend be\n")
    assert any("'balance' ignored" in w for w in c.warnings)


@pytest.mark.parametrize("line,words", [
    ("balance uri len 0", "'len' expects a positive integer"),
    ("balance uri depth", "'depth' expects a positive integer"),
    ("balance uri frobnicate", "only accepts parameters"),
    ("balance hdr()", "hdr requires an http header field name"),
    ("balance hdr(Host", "hdr requires an http header field name"),
    ("balance hdr(Host) use_domain", "only accepts 'use_domain_only'"),
    ("balance random(0)", "number of draws must be at least 1"),
    ("balance random(2", "missing closing parenthesis"),
    ("balance random(x)", "unexpected character"),
    ("balance leastconn now", "unexpected argument 'now'"),
    ("balance fastest", "unknown load balancing algorithm"),
])
def test_balance_errors(line, words):
    err = backend_error(line + "\n")
    assert words in err.message and err.line == 10


@pytest.mark.parametrize("line", ["balance url_param userid", "balance rdp-cookie",
                                  "balance hash req.cookie(id)"])
def test_balance_algorithms_keepwarm_lacks_are_refused_as_not_supported(line):
    err = backend_error(line + "\n")
    assert "not supported by keepwarm (yet)" in err.message
    assert "docs/configuration.md" in err.hint


# ---------------------------------------------------------------- hash-type

@pytest.mark.parametrize("line,expected", [
    ("hash-type map-based", ("map-based", "sdbm", False)),
    # HAProxy: "consistent" alone means sdbm with the avalanche modifier
    ("hash-type consistent", ("consistent", "sdbm", True)),
    ("hash-type consistent sdbm", ("consistent", "sdbm", False)),
    ("hash-type consistent djb2 avalanche", ("consistent", "djb2", True)),
    ("hash-type map-based wt6", ("map-based", "wt6", False)),
    ("hash-type map-based crc32 avalanche", ("map-based", "crc32", True)),
])
def test_hash_type_method_function_and_modifier(line, expected):
    be = backend("balance uri\n" + line + "\n")
    assert (be.hash_type, be.hash_function, be.hash_avalanche) == expected


@pytest.mark.parametrize("line,words", [
    ("hash-type", "only supports 'consistent' and 'map-based'"),
    ("hash-type ring", "only supports 'consistent' and 'map-based'"),
    ("hash-type avalanche", "not supported anymore"),
    ("hash-type consistent md5", "only supports 'sdbm', 'djb2', 'crc32', or 'wt6'"),
    ("hash-type consistent sdbm fast", "only supports 'avalanche'"),
])
def test_hash_type_errors(line, words):
    assert words in backend_error(line + "\n").message


# ---------------------------------------------------------------- allbackups, retry-on

def test_option_allbackups_and_its_negation():
    assert backend("option allbackups\n").allbackups is True
    head = TIMEOUTS + "    option allbackups\n"
    assert backend("", head).allbackups is True
    assert backend("no option allbackups\n", head).allbackups is False
    assert backend("no option allbackups\ndefault option allbackups\n", head).allbackups


def test_option_allbackups_takes_no_argument():
    assert "unexpected argument" in backend_error("option allbackups 2\n").message


@pytest.mark.parametrize("line,expected", [
    ("retry-on conn-failure", {"conn-failure"}),
    ("retry-on conn-failure empty-response response-timeout",
     {"conn-failure", "empty-response", "response-timeout"}),
    ("retry-on 503 504 404", {"503", "504", "404"}),
    ("retry-on none", set()),
    ("retry-on all-retryable-errors", {"conn-failure", "empty-response", "junk-response",
                                       "response-timeout", "0rtt-rejected", "500", "502",
                                       "503", "504"}),
    ("retry-on all-retryable-errors 401", {"conn-failure", "empty-response",
                                           "junk-response", "response-timeout",
                                           "0rtt-rejected", "500", "502", "503", "504",
                                           "401"}),
])
def test_retry_on_keywords(line, expected):
    assert backend(line + "\n").retry_on == frozenset(expected)


@pytest.mark.parametrize("line,words", [
    ("retry-on", "needs at least one keyword"),
    ("retry-on none conn-failure", "'none' keyword only usable alone"),
    ("retry-on 418", "unknown keyword '418'"),
    ("retry-on connect-failure", "unknown keyword 'connect-failure'"),
])
def test_retry_on_errors(line, words):
    assert words in backend_error(line + "\n").message


def test_retry_on_in_a_frontend_is_an_error_as_in_haproxy():
    err = error(TIMEOUTS + FE + "    retry-on conn-failure\nbackend be\n")
    assert "only available in backend or listen section" in err.message and err.line == 9


def test_retry_on_in_defaults_is_inherited():
    assert backend("", TIMEOUTS + "    retry-on 503\n").retry_on == frozenset({"503"})


# ---------------------------------------------------------------- option forwardfor

def test_option_forwardfor_forms():
    assert backend("option forwardfor\n").forwardfor == ForwardFor()
    ff = backend("option forwardfor except 127.0.0.0/8 header X-Client if-none\n").forwardfor
    assert ff == ForwardFor(header="X-Client",
                            except_nets=(ipaddress.ip_network("127.0.0.0/8"),), if_none=True)
    assert ff.excepted("127.0.0.1") and not ff.excepted("10.0.0.1")
    assert not ff.excepted("not-an-ip")
    ff = backend("option forwardfor except 10.1.2.3/255.255.0.0\n").forwardfor
    assert ff.except_nets == (ipaddress.ip_network("10.1.0.0/16"),)
    ff = backend("option forwardfor except ::1\n").forwardfor
    assert ff.excepted("::1") and not ff.excepted("127.0.0.1")


def test_option_forwardfor_in_frontend_and_defaults():
    assert frontend("    option forwardfor header X-Real-IP\n").forwardfor.header == "X-Real-IP"
    head = TIMEOUTS + "    option forwardfor\n"
    c = cfg(head + FE + "backend be\n")
    assert c.frontends[0].forwardfor == ForwardFor() == c.backend("be").forwardfor


@pytest.mark.parametrize("line,words", [
    ("option forwardfor except", "expects <address>[/mask]"),
    ("option forwardfor except nonsense", "expects <address>[/mask]"),
    ("option forwardfor header", "expects <header_name>"),
    ("option forwardfor header bad:name", "not a valid header name"),
    ("option forwardfor always", "only supports optional values"),
    ("no option forwardfor", "negation/default is not supported"),
])
def test_option_forwardfor_errors(line, words):
    assert words in backend_error(line + "\n").message


def test_forwardfor_combines_frontend_and_backend_as_haproxy_does():
    local = (ipaddress.ip_network("127.0.0.0/8"),)
    fe = ForwardFor(header="X-FE", except_nets=local, if_none=True)
    be = ForwardFor(header="X-BE", if_none=False)
    assert ForwardFor.combine(None, None) is None
    assert ForwardFor.combine(fe, None) is fe and ForwardFor.combine(None, be) is be
    both = ForwardFor.combine(fe, be)
    # the backend's header name wins, either side's except applies, if-none only if both
    assert both.header == "X-BE" and both.excepted("127.0.0.1") and not both.if_none


# ---------------------------------------------------------------- http-request / http-response

def test_header_rules_keep_their_order_per_direction():
    be = backend("""\
        http-request set-header X-Proxy keepwarm
        http-request add-header X-Trace "a b"
        http-request del-header Proxy
        http-response del-header Server
        http-response set-header Cache-Control no-store
        """)
    assert be.request_rules == (("set-header", "X-Proxy", "keepwarm"),
                                ("add-header", "X-Trace", "a b"),
                                ("del-header", "Proxy", None))
    assert be.response_rules == (("del-header", "Server", None),
                                 ("set-header", "Cache-Control", "no-store"))


def test_header_rules_in_a_frontend():
    fe = frontend("    http-request set-header X-From fe\n"
                  "    http-response add-header X-Served-By keepwarm\n")
    assert fe.request_rules == (("set-header", "X-From", "fe"),)
    assert fe.response_rules == (("add-header", "X-Served-By", "keepwarm"),)


def test_rules_of_a_named_defaults_come_first():
    c = cfg(TIMEOUTS + FE + TIMEOUTS.replace("defaults", "defaults base")
            + "    http-request set-header X-A 1\n"
            + "backend be from base\n    http-request set-header X-B 2\n")
    assert c.backend("be").request_rules == (("set-header", "X-A", "1"),
                                             ("set-header", "X-B", "2"))
    assert c.frontends[0].request_rules == ()


def test_rules_are_not_allowed_in_an_anonymous_defaults_section():
    err = error(TIMEOUTS + "    http-request set-header X-A 1\n")
    assert err.message == "'http-request' not allowed in anonymous 'defaults' section."
    assert err.line == 6


def test_a_defaults_section_with_rules_serves_frontends_or_backends_not_both():
    head = "defaults base\n    mode http\n    timeout connect 5s\n    timeout client 5s\n" \
           "    timeout server 5s\n    http-response del-header Server\n"
    err = error(head + FE + "backend be\n")
    assert "frontends and backends cannot inherit from the same defaults" in err.message
    assert err.line == 10 and "t.cfg:1" in err.message


def test_a_listen_or_defaults_cannot_inherit_rules():
    head = "defaults base\n    http-response del-header Server\n"
    err = error(head + "listen app\n    bind :8080\n")
    assert "a listen section cannot inherit" in err.message
    err = error(head + "defaults other from base\n")
    assert "a defaults section cannot inherit" in err.message


@pytest.mark.parametrize("line,words", [
    ("http-request", "expects an action"),
    ("http-request set-header X-A", "expects exactly 2 arguments"),
    ("http-request del-header", "expects exactly 1 argument"),
    ("http-request set-header X-A a b", "expects 'if' or 'unless'"),
    ("http-request set-header bad:name v", "not a valid header name"),
    ("http-request set-header X-A a\\r\\nX-B:\\ b", "may not contain CR, LF"),
    ("http-request frobnicate", "unknown action 'frobnicate'"),
    ("http-response set-method GET", "unknown action 'set-method'"),
])
def test_header_rule_errors(line, words):
    err = backend_error(line + "\n")
    assert words in err.message and err.line == 10


@pytest.mark.parametrize("line", [
    "http-request set-src hdr(x-real-ip)",
    "http-request normalize-uri path-merge-slashes",
    "http-request silent-drop",
    "http-response redirect location /x",
    "http-request del-header X-A -m beg",
    "http-request set-timeout server 2s",
    "http-response cache-store c",
])
def test_header_rule_features_keepwarm_lacks_are_refused_as_not_supported(line):
    err = backend_error(line + "\n")
    assert "not supported by keepwarm (yet)" in err.message
    assert "docs/configuration.md" in err.hint


# ---------------------------------------------------------------- server keywords

def test_server_passive_health_and_slowstart_keywords():
    s = server("slowstart 30s maxqueue 20 observe layer7 error-limit 5 on-error "
               "mark-down on-marked-down shutdown-sessions on-marked-up "
               "shutdown-backup-sessions")
    assert (s.slowstart, s.maxqueue, s.observe, s.error_limit, s.on_error) == (
        30.0, 20, "layer7", 5, "mark-down")
    assert s.on_marked_down == "shutdown-sessions"
    assert s.on_marked_up == "shutdown-backup-sessions"
    assert server("observe layer4").observe == "layer4"
    assert server("observe none").observe is None
    assert server("slowstart 0").slowstart == 0.0


def test_default_server_sets_the_new_keywords_for_following_servers():
    be = backend("default-server slowstart 10s on-error sudden-death error-limit 3\n"
                 "server a 127.0.0.1:1\nserver b 127.0.0.1:2 on-error fastinter\n")
    assert [(s.slowstart, s.on_error, s.error_limit) for s in be.servers] == [
        (10.0, "sudden-death", 3), (10.0, "fastinter", 3)]


@pytest.mark.parametrize("options,words", [
    ("observe layer3", "'observe' expects 'none' or 'layer4' or 'layer7' but got 'layer3'"),
    ("on-error retry", "expects 'fastinter' or 'fail-check'"),
    ("on-marked-down kill", "expects 'shutdown-sessions'"),
    ("on-marked-up shutdown-sessions", "expects 'shutdown-backup-sessions'"),
    ("error-limit 0", ">= 1"),
    ("maxqueue -1", ">= 0"),
    ("slowstart fast", "slowstart"),
    ("observe", "expects an argument"),
])
def test_server_keyword_errors(options, words):
    err = backend_error("server s 127.0.0.1:1 " + options + "\n")
    assert words in err.message and err.line == 10


# ------------------------------------------- http-ignore-probes, idle-close-on-response

FE_SWITCHES = pytest.mark.parametrize("opt, attr", [
    ("http-ignore-probes", "ignore_probes"),
    ("idle-close-on-response", "idle_close_on_response"),
])


@FE_SWITCHES
def test_frontend_switch_is_off_by_default_and_set_per_frontend(opt, attr):
    assert getattr(frontend(""), attr) is False
    assert getattr(frontend("    option %s\n" % opt), attr) is True


@FE_SWITCHES
def test_frontend_switch_inherited_from_defaults_and_negated(opt, attr):
    head = TIMEOUTS + "    option %s\n" % opt
    assert getattr(frontend("", head), attr) is True
    assert getattr(frontend("    no option %s\n" % opt, head), attr) is False
    assert getattr(frontend("    no option %s\n    default option %s\n" % (opt, opt), head),
                   attr) is True


@FE_SWITCHES
def test_frontend_switch_in_a_backend_is_ignored_with_a_warning(opt, attr):
    c = cfg(TIMEOUTS + FE + "backend be\n    option %s\n" % opt)
    assert any("'option %s' ignored" % opt in w for w in c.warnings)


@FE_SWITCHES
def test_frontend_switch_takes_no_value(opt, attr):
    e = error(TIMEOUTS + "frontend fe\n    bind 127.0.0.1:8080\n    default_backend be\n"
              "    option %s yes\nbackend be\n" % opt)
    assert "unexpected argument 'yes'" in str(e)
