"""The configuration parser: every supported keyword, defaults and fallbacks."""

import textwrap

import pytest

from proxy.config import (Backend, Bind, Config, HttpCheck, Server,
                          load, parse)

TIMEOUTS = """
defaults
    mode http
    timeout connect 5s
    timeout client 30s
    timeout server 30s
"""

MINIMAL_FE = """
frontend fe
    bind 127.0.0.1:8080
    default_backend be
"""


def cfg(text, env=None):
    return parse(textwrap.dedent(text), "t.cfg", env=env or {})


def backend(body, head=TIMEOUTS):
    c = cfg(head + MINIMAL_FE + "backend be\n" + textwrap.dedent(body))
    return c.backend("be")


def frontend(body, head=TIMEOUTS):
    c = cfg(head + "frontend fe\n" + textwrap.dedent(body) + "\nbackend be\n")
    return c.frontends[0]


def server(options, head=TIMEOUTS):
    return backend("server s1 127.0.0.1:9000 " + options + "\n", head).servers[0]


SEED = """\
frontend http_frontend
    bind 127.0.0.1:8081
    mode http
    default_backend web_servers

backend web_servers
    mode http
    balance roundrobin
    server web1 127.0.0.1:9001 check inter 2000ms
    server web2 127.0.0.1:9002 check inter 2000ms
    # HAProxy's default is to *not* reuse connections to backends.
    # We need to explicitly tell it to.
    option httpchk GET /health HTTP/1.1\\r\\nHost:\\ www.example.com
"""


# ---------------------------------------------------------------- the seed

def test_seed_snippet_loads_from_a_file(tmp_path):
    path = tmp_path / "seed.cfg"
    path.write_text(SEED)
    c = load(str(path))
    assert isinstance(c, Config) and c.path == str(path)
    fe = c.frontends[0]
    assert fe.name == "http_frontend" and fe.binds == (Bind("127.0.0.1", 8081, 2),)
    assert fe.default_backend == "web_servers" and fe.http_keep_alive
    be = c.backend("web_servers")
    assert [(s.name, s.host, s.port, s.check, s.inter) for s in be.servers] == [
        ("web1", "127.0.0.1", 9001, True, 2.0), ("web2", "127.0.0.1", 9002, True, 2.0)]
    assert be.balance == "roundrobin" and be.http_reuse == "safe"
    assert be.httpchk == HttpCheck(method="GET", uri="/health", version="HTTP/1.1",
                                   headers=(("Host", "www.example.com"),), line=13)


def test_seed_snippet_warns_about_deprecated_httpchk_and_missing_timeouts(tmp_path):
    path = tmp_path / "seed.cfg"
    path.write_text(SEED)
    warnings = load(str(path)).warnings
    assert any(w.startswith("%s:13: warning: 'option httpchk'" % path) and "deprecated" in w
               for w in warnings)
    assert any(":1: warning: missing timeouts for frontend 'http_frontend'" in w
               and "'timeout client'" in w for w in warnings)
    assert any(":6: warning: missing timeouts for backend 'web_servers'" in w
               and "'timeout connect'" in w and "'timeout server'" in w for w in warnings)
    assert len(warnings) == 3


def test_seed_with_bind_star_port_listens_on_all_addresses():
    c = cfg(SEED.replace("127.0.0.1:8081", "*:8081"))
    assert c.frontends[0].binds[0].host == "0.0.0.0"


def test_model_is_immutable():
    c = cfg(SEED)
    with pytest.raises(Exception):
        c.frontends[0].name = "x"
    with pytest.raises(Exception):
        c.backends[0].servers[0].weight = 5


def test_no_warnings_when_timeouts_are_set():
    c = cfg(TIMEOUTS + MINIMAL_FE + "backend be\n server s 127.0.0.1:1\n")
    assert c.warnings == ()


# ---------------------------------------------------------------- global

def test_global_defaults():
    c = cfg(TIMEOUTS + MINIMAL_FE + "backend be\n")
    assert c.global_.maxconn == 4096 and c.global_.workers is None
    assert c.global_.stats_socket is None


def test_global_maxconn_nbthread_and_stats_socket():
    c = cfg("global\n maxconn 100\n nbthread 3\n stats socket /run/kw.sock\n"
            + TIMEOUTS + MINIMAL_FE + "backend be\n")
    assert c.global_.maxconn == 100 and c.global_.workers == 3
    assert c.global_.stats_socket == "/run/kw.sock"


def test_nbproc_sets_workers_and_warns_it_was_removed_from_haproxy():
    c = cfg("global\n nbproc 2\n" + TIMEOUTS + MINIMAL_FE + "backend be\n")
    assert c.global_.workers == 2
    assert any("'nbproc' was removed in HAProxy 2.5" in w for w in c.warnings)


def test_stats_socket_parameters_are_read():
    c = cfg("global\n stats socket /tmp/s.sock mode 600 level operator expose-fd listeners\n"
            " stats socket ipv4@127.0.0.1:9999 level user\n stats timeout 30s\n"
            " stats maxconn 5\n" + TIMEOUTS + MINIMAL_FE + "backend be\n")
    g = c.global_
    assert g.stats_socket == "/tmp/s.sock"
    unix, tcp = g.stats_sockets
    assert (unix.path, unix.mode, unix.level, unix.line) == ("/tmp/s.sock", 0o600, "operator", 2)
    assert (tcp.path, tcp.host, tcp.port, tcp.level) == (None, "127.0.0.1", 9999, "user")
    assert (g.stats_timeout, g.stats_maxconn) == (30.0, 5)
    assert not c.warnings


def test_daemon_is_read_and_log_is_parsed_with_warnings():
    c = cfg("global\n daemon\n log 127.0.0.1 local0\n" + TIMEOUTS + " log global\n"
            " option httplog\n" + MINIMAL_FE + "backend be\n")
    assert c.global_.daemon
    w = "\n".join(c.warnings)
    assert "'log'" not in w and "httplog" not in w      # written by the workers: no warning
    assert c.frontends[0].log.targets == c.global_.log_targets
    assert c.frontends[0].log.format_from == "option httplog"


# ---------------------------------------------------------------- frontend

def test_bind_forms():
    fe = frontend("bind *:80\n bind :81\n bind 10.0.0.1:82,[::1]:83\n bind :90-92\n"
                  " default_backend be\n")
    assert [(b.host, b.port) for b in fe.binds] == [
        ("0.0.0.0", 80), ("0.0.0.0", 81), ("10.0.0.1", 82), ("::1", 83),
        ("0.0.0.0", 90), ("0.0.0.0", 91), ("0.0.0.0", 92)]
    assert [b.line for b in fe.binds][:3] == [8, 9, 10]
    assert not any(b.defer_accept for b in fe.binds)


def test_bind_defer_accept_applies_to_every_address_of_its_line():
    fe = frontend("bind :80,:81 defer-accept\n bind :82\n default_backend be\n")
    assert [(b.port, b.defer_accept) for b in fe.binds] == [(80, True), (81, True), (82, False)]


def test_frontend_maxconn_defaults_to_the_global_one():
    c = cfg("global\n maxconn 500\n" + TIMEOUTS + MINIMAL_FE + "backend be\n")
    assert c.frontends[0].maxconn == 500
    assert frontend("bind :80\n maxconn 20\n default_backend be\n").maxconn == 20


def test_frontend_timeouts_fall_back_as_haproxy_documents():
    head = "defaults\n mode http\n timeout connect 1s\n timeout server 1s\n"
    fe = frontend("bind :80\n default_backend be\n timeout client 7s\n", head)
    assert (fe.timeout_client, fe.timeout_http_request, fe.timeout_http_keep_alive) == (7, 7, 7)
    fe = frontend("bind :80\n default_backend be\n timeout client 7s\n"
                  " timeout http-request 3s\n", head)
    assert (fe.timeout_http_request, fe.timeout_http_keep_alive) == (3, 3)
    fe = frontend("bind :80\n default_backend be\n timeout client 7s\n"
                  " timeout http-request 3s\n timeout http-keep-alive 1s\n", head)
    assert (fe.timeout_client, fe.timeout_http_request, fe.timeout_http_keep_alive) == (7, 3, 1)


def test_timeouts_unset_are_none_meaning_infinite():
    fe = frontend("bind :80\n default_backend be\n", head="defaults\n mode http\n")
    assert fe.timeout_client is None and fe.timeout_http_keep_alive is None


def test_zero_timeout_means_not_set():
    fe = frontend("bind :80\n default_backend be\n timeout client 0\n",
                  head="defaults\n mode http\n")
    assert fe.timeout_client is None


def test_setting_a_timeout_twice_in_a_section_warns():
    c = cfg(TIMEOUTS + MINIMAL_FE + " timeout client 1s\n timeout client 2s\nbackend be\n")
    assert c.frontends[0].timeout_client == 2.0
    assert any(":12: warning: overwriting 'timeout client'" in w for w in c.warnings)


def test_backend_only_timeout_in_a_frontend_is_ignored_with_a_warning():
    c = cfg(TIMEOUTS + MINIMAL_FE + " timeout server 1s\nbackend be\n")
    assert c.backend("be").timeout_server == 30.0
    assert any("'timeout server' ignored because frontend 'fe' has no backend capability"
               in w for w in c.warnings)


@pytest.mark.parametrize("option,flags", [
    ("", (True, False, False)),
    ("option http-keep-alive", (True, False, False)),
    ("option http-server-close", (False, True, False)),
    ("option httpclose", (False, False, True)),
])
def test_http_connection_mode_options(option, flags):
    fe = frontend("bind :80\n default_backend be\n %s\n" % option)
    assert (fe.http_keep_alive, fe.http_server_close, fe.httpclose) == flags
    be = backend(option + "\n")
    assert (be.http_keep_alive, be.http_server_close, be.httpclose) == flags


def test_later_connection_mode_option_replaces_the_earlier_one():
    be = backend("option httpclose\noption http-server-close\n")
    assert (be.http_keep_alive, be.http_server_close, be.httpclose) == (False, True, False)


def test_no_option_cancels_a_mode_inherited_from_defaults():
    head = TIMEOUTS + " option httpclose\n"
    assert backend("", head).httpclose
    be = backend("no option httpclose\n", head)
    assert be.http_keep_alive and not be.httpclose
    # "no option X" leaves another mode alone
    be = backend("no option http-server-close\n", head)
    assert be.httpclose


# ---------------------------------------------------------------- backend

def test_backend_defaults():
    be = backend("server s 127.0.0.1:1\n", head="defaults\n mode http\n")
    assert be == Backend(name="be", line=7, servers=be.servers)


def test_backend_keywords():
    be = backend("""\
        http-reuse always
        retries 5
        option redispatch
        timeout connect 1s
        timeout server 2m
        timeout queue 3s
        timeout tunnel 1h
        timeout check 500ms
    """)
    assert be.http_reuse == "always" and be.retries == 5 and be.redispatch
    assert be.redispatch_interval == -1
    assert (be.timeout_connect, be.timeout_server, be.timeout_queue, be.timeout_tunnel,
            be.timeout_check) == (1.0, 120.0, 3.0, 3600.0, 0.5)


@pytest.mark.parametrize("mode", ["never", "safe", "aggressive", "always"])
def test_http_reuse_modes(mode):
    assert backend("http-reuse %s\n" % mode).http_reuse == mode


def test_timeout_queue_falls_back_to_timeout_connect():
    assert backend("").timeout_queue == 5.0


def test_option_redispatch_with_interval_and_negation():
    assert backend("option redispatch 2\n").redispatch_interval == 2
    be = backend("no option redispatch\n", TIMEOUTS + " option redispatch\n")
    assert not be.redispatch


def test_listen_yields_a_frontend_and_a_backend():
    c = cfg(TIMEOUTS + "listen web\n bind :8080\n server s1 127.0.0.1:9000\n"
            " timeout http-keep-alive 2s\n")
    assert c.frontends[0].name == "web" and c.frontends[0].default_backend == "web"
    assert c.frontends[0].timeout_http_keep_alive == 2.0
    assert c.backend("web").servers[0].name == "s1"


def test_listen_may_route_to_another_backend():
    c = cfg(TIMEOUTS + "listen web\n bind :8080\n default_backend other\nbackend other\n")
    assert c.frontends[0].default_backend == "other"


def test_frontend_and_backend_may_share_a_name():
    c = cfg(TIMEOUTS + "frontend www\n bind :80\n default_backend www\nbackend www\n")
    assert c.frontends[0].name == c.backends[0].name == "www"


def test_backend_without_servers_is_allowed():
    assert backend("").servers == ()


# ---------------------------------------------------------------- servers

def test_server_defaults():
    s = server("")
    assert s == Server(name="s1", host="127.0.0.1", port=9000, line=12)
    assert (s.check, s.inter, s.rise, s.fall, s.weight, s.maxconn) == (False, 2.0, 2, 3, 1, 0)
    assert (s.pool_max_conn, s.pool_purge_delay, s.max_reuse) == (-1, 5.0, -1)


def test_server_options():
    s = server("check inter 3s fastinter 1s downinter 10s rise 4 fall 5 weight 20 "
               "maxconn 100 backup port 8081 addr 10.0.0.9 pool-max-conn 8 "
               "pool-purge-delay 30s max-reuse 1000")
    assert s.check and s.backup and not s.disabled
    assert (s.inter, s.fastinter, s.downinter) == (3.0, 1.0, 10.0)
    assert (s.rise, s.fall, s.weight, s.maxconn) == (4, 5, 20, 100)
    assert (s.check_port, s.check_addr) == (8081, "10.0.0.9")
    assert (s.pool_max_conn, s.pool_purge_delay, s.max_reuse) == (8, 30.0, 1000)


def test_server_disabled_and_weight_zero():
    s = server("disabled weight 0")
    assert s.disabled and s.weight == 0


def test_keepwarm_server_extensions_work_and_are_flagged():
    c = cfg(TIMEOUTS + MINIMAL_FE + "backend be\n server s 127.0.0.1:1 pool-warm-conn 2 "
            "pool-idle-timeout 4s\n")
    s = c.backend("be").servers[0]
    assert (s.pool_warm_conn, s.pool_idle_timeout) == (2, 4.0)
    assert sum("keepwarm extension" in w for w in c.warnings) == 2


def test_default_server_in_defaults_and_backend_apply_in_order():
    head = TIMEOUTS + " default-server inter 5s fall 2\n"
    be = backend("server a 127.0.0.1:1\ndefault-server rise 7\nserver b 127.0.0.1:2 fall 9\n",
                 head)
    a, b = be.servers
    assert (a.inter, a.fall, a.rise) == (5.0, 2, 2)
    assert (b.inter, b.fall, b.rise) == (5.0, 9, 7)


def test_server_can_undo_default_server_flags():
    be = backend("default-server check backup\nserver a 127.0.0.1:1 no-check no-backup\n")
    assert not be.servers[0].check and not be.servers[0].backup


@pytest.mark.parametrize("addr,host,port", [
    ("10.1.2.3:80", "10.1.2.3", 80), ("localhost:8080", "localhost", 8080),
    ("[::1]:9000", "::1", 9000), ("ipv4@127.0.0.1:81", "127.0.0.1", 81),
    ("web-1.example.com:443", "web-1.example.com", 443),
])
def test_server_address_forms(addr, host, port):
    s = backend("server s %s\n" % addr).servers[0]
    assert (s.host, s.port) == (host, port)


# ---------------------------------------------------------------- defaults

def test_latest_defaults_section_applies_to_following_proxies():
    c = cfg("""\
        defaults
            mode http
            timeout connect 1s
            timeout client 1s
            timeout server 1s
            retries 7
        backend a
        defaults
            mode http
            timeout connect 2s
            timeout client 2s
            timeout server 2s
        backend b
        frontend fe
            bind :80
            default_backend a
    """)
    assert c.backend("a").retries == 7 and c.backend("a").timeout_connect == 1.0
    assert c.backend("b").retries == 3 and c.backend("b").timeout_connect == 2.0
    assert c.frontends[0].timeout_client == 2.0


def test_section_values_override_defaults():
    head = TIMEOUTS + " balance roundrobin\n http-reuse never\n option http-server-close\n"
    be = backend("http-reuse aggressive\n", head)
    assert be.http_reuse == "aggressive" and be.http_server_close


def test_named_defaults_and_from():
    c = cfg("""\
        defaults base
            mode http
            timeout connect 1s
            timeout client 1s
            timeout server 1s
            retries 9
        defaults
            mode http
            timeout connect 2s
            timeout client 2s
            timeout server 2s
        backend b from base
        frontend fe
            bind :80
            default_backend b
    """)
    assert c.backend("b").retries == 9 and c.frontends[0].timeout_client == 2.0


def test_defaults_carry_httpchk_and_http_check_rules():
    head = TIMEOUTS + " option httpchk GET /ping\n http-check expect status 200-299\n"
    chk = backend("", head).httpchk
    assert (chk.method, chk.uri, chk.expect_kind, chk.expect_status) == (
        "GET", "/ping", "status", "200-299")


# ---------------------------------------------------------------- checks

@pytest.mark.parametrize("args,expected", [
    ("", ("OPTIONS", "/", "HTTP/1.0")),
    ("/health", ("OPTIONS", "/health", "HTTP/1.0")),
    ("GET /health", ("GET", "/health", "HTTP/1.0")),
    ("HEAD /health HTTP/1.1", ("HEAD", "/health", "HTTP/1.1")),
])
def test_option_httpchk_forms(args, expected):
    chk = backend("option httpchk %s\n" % args).httpchk
    assert (chk.method, chk.uri, chk.version) == expected and chk.headers == ()


def test_option_httpchk_with_escaped_headers_and_body():
    be = backend(r'option httpchk POST /c "HTTP/1.1\r\nHost: a\r\nX-A:  b \r\n\r\nping"' "\n")
    chk = be.httpchk
    assert chk.version == "HTTP/1.1"
    assert chk.headers == (("Host", "a"), ("X-A", "b"))
    assert chk.body == "ping"


def test_http_check_send_and_expect():
    chk = backend("option httpchk\nhttp-check send meth GET uri /h ver HTTP/1.1 "
                  "hdr Host example.com hdr X-Y z\nhttp-check expect ! rstatus ^5\n").httpchk
    assert (chk.method, chk.uri, chk.version) == ("GET", "/h", "HTTP/1.1")
    assert chk.headers == (("Host", "example.com"), ("X-Y", "z"))
    assert (chk.expect_kind, chk.expect_status, chk.expect_negate) == ("rstatus", "^5", True)


def test_http_check_expect_string():
    chk = backend("option httpchk GET /\nhttp-check expect string OK\n").httpchk
    assert (chk.expect_kind, chk.expect_string) == ("string", "OK")


def test_http_check_without_option_httpchk_warns():
    c = cfg(TIMEOUTS + MINIMAL_FE + "backend be\n http-check expect status 200\n")
    assert c.backend("be").httpchk is None
    assert any("have no effect without 'option httpchk'" in w for w in c.warnings)


def test_no_httpchk_means_none():
    assert backend("").httpchk is None


def test_config_backend_lookup_raises_keyerror_for_unknown_name():
    c = cfg(SEED)
    with pytest.raises(KeyError):
        c.backend("nope")


def test_default_option_restores_the_defaults_value():
    head = TIMEOUTS + " option http-server-close\n"
    be = backend("option httpclose\ndefault option httpclose\n", head)
    assert be.http_server_close and not be.httpclose


# ---------------------------------------------------------------- capabilities

@pytest.mark.parametrize("where,line,text", [
    ("backend", " bind :81\n", "'bind' ignored because backend 'be' has no frontend capability"),
    ("backend", " default_backend x\n", "'default_backend' ignored because backend"),
    ("backend", " maxconn 5\n", "'maxconn' ignored because backend"),
    ("frontend", " balance roundrobin\n", "'balance' ignored because frontend 'fe' has no "
     "backend capability"),
    ("frontend", " option httpchk\n", "'option httpchk' ignored because frontend"),
    ("frontend", " http-reuse always\n", "'http-reuse' ignored because frontend"),
    ("frontend", " retries 2\n", "'retries' ignored because frontend"),
    ("frontend", " option redispatch\n", "'option redispatch' ignored because frontend"),
    ("frontend", " http-check expect status 200\n", "'http-check' ignored because frontend"),
])
def test_keywords_for_the_other_side_are_ignored_with_a_warning(where, line, text):
    if where == "backend":
        c = cfg(TIMEOUTS + MINIMAL_FE + "backend be\n" + line)
    else:
        c = cfg(TIMEOUTS + MINIMAL_FE + line + "backend be\n")
    assert any(text in w for w in c.warnings), c.warnings


def test_http_request_timeouts_in_a_backend_warn_they_have_no_effect():
    c = cfg(TIMEOUTS + MINIMAL_FE + "backend be\n timeout http-keep-alive 1s\n")
    assert c.frontends[0].timeout_http_keep_alive == 30.0
    assert any("has no effect" in w for w in c.warnings)


def test_conditional_blocks_and_environment_in_a_whole_config():
    text = TIMEOUTS + """
frontend fe
    bind "127.0.0.1:${PORT}"
    default_backend be
backend be
.if defined(TWO)
    server b 127.0.0.1:2
.else
    server a 127.0.0.1:1
.endif
"""
    assert cfg(text, env={"PORT": "8085"}).frontends[0].binds[0].port == 8085
    assert [s.name for s in cfg(text, env={"PORT": "1"}).backend("be").servers] == ["a"]
    assert [s.name for s in cfg(text, env={"PORT": "1", "TWO": "1"}).backend("be").servers] \
        == ["b"]


def test_warning_directive_lands_in_config_warnings():
    c = cfg(TIMEOUTS + MINIMAL_FE + "backend be\n.warning \"check me\"\n")
    assert c.warnings == ("t.cfg:12: warning: 'check me'",)


def test_unused_backends_and_several_frontends():
    c = cfg(TIMEOUTS + MINIMAL_FE + "frontend fe2\n bind :81\n default_backend be\n"
            "backend be\nbackend spare\n")
    assert [f.name for f in c.frontends] == ["fe", "fe2"]
    assert [b.name for b in c.backends] == ["be", "spare"]
