"""The `global` section and `errorfile`, read as HAProxy 2.6 reads them.

Every keyword is either read into the model (what the master and workers use),
accepted with a warning saying why it has no effect, or refused with its
line; the Debian package's own haproxy.cfg (tests/fixtures/debian-haproxy.cfg,
as shipped by Debian's haproxy 2.6 package) loads unchanged.
"""

import grp
import os
import pwd
import textwrap
from pathlib import Path

import pytest

from proxy.config import ConfigError, load, parse

REST = """
defaults
    mode http
    timeout connect 5s
    timeout client 30s
    timeout server 30s
frontend fe
    bind 127.0.0.1:8080
    default_backend be
backend be
    server s1 127.0.0.1:9000
"""
FIXTURE = Path(__file__).parent / "fixtures" / "debian-haproxy.cfg"


def glob(lines, env=None):
    return parse("global\n" + textwrap.dedent(lines) + REST, "g.cfg", env=env or {})


def glob_error(lines, env=None):
    with pytest.raises(ConfigError) as exc:
        glob(lines, env)
    return exc.value


def test_process_management_keywords_are_read():
    g = glob("""\
        daemon
        master-worker no-exit-on-failure
        pidfile /run/kw.pid
        chroot /var/empty
        ulimit-n 65536
        hard-stop-after 30s
        grace 2s
        spread-checks 5
        max-spread-checks 1s
        mworker-max-reloads 50
        set-dumpable
    """).global_
    assert (g.daemon, g.master_worker, g.pidfile, g.chroot) == (True, True, "/run/kw.pid",
                                                                 "/var/empty")
    assert (g.ulimit_n, g.hard_stop_after, g.grace) == (65536, 30.0, 2.0)
    assert (g.spread_checks, g.max_spread_checks, g.mworker_max_reloads) == (5, 1.0, 50)
    assert g.set_dumpable and not g.maxconn_set


def test_user_and_group_by_name_or_number():
    nobody = pwd.getpwnam("nobody")
    group = grp.getgrgid(nobody.pw_gid).gr_name
    g = glob("user nobody\ngroup %s\n" % group).global_
    assert (g.uid, g.gid) == (nobody.pw_uid, nobody.pw_gid)
    g = glob("uid 1234\ngid 5678\n").global_
    assert (g.uid, g.gid) == (1234, 5678)


def test_an_unknown_user_or_group_is_an_error_at_its_line():
    err = glob_error("maxconn 10\nuser no-such-user-here\n")
    assert err.line == 3 and "cannot find user id for 'no-such-user-here'" in err.message
    assert "cannot find group id" in glob_error("group no-such-group-here\n").message


@pytest.mark.parametrize("line,expected", [
    ("cpu-map 1/all 0-3", (((tuple(range(1, 65))), (0, 1, 2, 3)),)),
    ("cpu-map 1 0-1", (((tuple(range(1, 65))), (0, 1)),)),
    ("cpu-map 1/2 3 5", (((2,), (3, 5)),)),
    ("cpu-map auto:1/1-4 0-3", (((1,), (0,)), ((2,), (1,)), ((3,), (2,)), ((4,), (3,)))),
    ("cpu-map 1/odd 0", (((tuple(range(1, 65, 2))), (0,)),)),
])
def test_cpu_map_forms(line, expected):
    assert glob(line + "\n").global_.cpu_map == expected


@pytest.mark.parametrize("line,words", [
    ("cpu-map 2/1 0", "does not contain process 1"),
    ("cpu-map 1/1 x", "not a number"),
    ("cpu-map auto:1/1-4 0-1", "as many CPUs as workers"),
    ("cpu-map 1/1", "expects a process/thread set and a CPU set"),
])
def test_cpu_map_errors(line, words):
    assert words in glob_error(line + "\n").message


def test_identity_tls_defaults_and_tunes_are_read():
    g = glob("""\
        description "edge proxy" of site A
        node lb1
        hostname lb1.example
        localpeer lb1
        ca-base /etc/ssl/certs
        crt-base /etc/ssl/private
        ssl-default-bind-ciphers ECDHE-RSA-AES128-GCM-SHA256
        ssl-default-bind-options ssl-min-ver TLSv1.2 no-tls-tickets
        ssl-dh-param-file /etc/ssl/dh.pem
        tune.ssl.default-dh-param 2048
        tune.bufsize 32768
        tune.maxrewrite 20000
        tune.http.maxhdr 200
    """).global_
    assert g.description == "edge proxy of site A"
    assert (g.node, g.hostname, g.localpeer) == ("lb1", "lb1.example", "lb1")
    assert (g.ca_base, g.crt_base) == ("/etc/ssl/certs", "/etc/ssl/private")
    assert g.ssl_defaults == (("ssl-default-bind-ciphers", ("ECDHE-RSA-AES128-GCM-SHA256",)),
                              ("ssl-default-bind-options", ("ssl-min-ver", "TLSv1.2",
                                                            "no-tls-tickets")))
    assert (g.ssl_dh_param_file, g.ssl_default_dh_param) == ("/etc/ssl/dh.pem", 2048)
    # maxrewrite is readjusted to half of bufsize when larger, as HAProxy does
    assert (g.bufsize, g.maxrewrite, g.max_headers) == (32768, 16384, 200)


def test_a_tuning_hint_with_no_effect_says_why():
    c = glob("tune.idle-pool.shared off\n")
    assert any("g.cfg:2: warning: 'tune.idle-pool.shared' has no effect" in w
               for w in c.warnings)


def test_setenv_family_changes_what_later_lines_expand():
    env = {"KEEP": "1", "DROP": "x", "LATER": "9"}
    g = glob("""\
        setenv MAXC 123
        presetenv KEEP 2
        presetenv NEWV 77
        unsetenv DROP
        maxconn "${MAXC}"
        ulimit-n "${NEWV}${KEEP}"
        description "[${DROP-gone}]"
    """, env).global_
    assert (g.maxconn, g.ulimit_n, g.description) == (123, 771, "[gone]")
    assert env == {"KEEP": "1", "DROP": "x", "LATER": "9"}      # the caller's is untouched
    g = glob('resetenv KEEP\nulimit-n "${KEEP}${LATER-0}"\n', env).global_
    assert g.ulimit_n == 10


def test_keywords_keepwarm_lacks_are_refused_with_a_hint():
    err = glob_error("lua-load /etc/haproxy/x.lua\n")
    assert err.line == 2 and "not supported by keepwarm" in err.message
    err = glob_error("maxconnn 10\n")
    assert "unknown keyword 'maxconnn'" in err.message and "maxconn" in err.hint


# ---------------------------------------------------------------- errorfile

def write(tmp_path, name, data):
    p = tmp_path / name
    p.write_bytes(data)
    return p


PAGE = b"HTTP/1.0 503 Service Unavailable\r\nContent-Type: text/plain\r\n\r\nsorry\n"


def proxy_with(lines, tmp_path):
    text = ("defaults\n    mode http\n    timeout connect 5s\n    timeout client 5s\n"
            "    timeout server 5s\n" + lines +
            "frontend fe\n    bind :8080\n    default_backend be\nbackend be\n"
            "    server s 127.0.0.1:9\n")
    return write(tmp_path, "c.cfg", text.encode())


def test_errorfiles_are_read_at_load_and_inherited_from_defaults(tmp_path):
    page = write(tmp_path, "503.http", PAGE)
    empty = write(tmp_path, "408.http", b"")
    c = load(str(proxy_with("    errorfile 503 %s\n    errorfile 408 %s\n" % (page, empty),
                            tmp_path)))
    sent = b"HTTP/1.0 503 Service Unavailable\r\ncontent-type: text/plain\r\n\r\nsorry\n"
    assert dict(c.frontends[0].errorfiles) == {503: sent, 408: b""}
    assert dict(c.backends[0].errorfiles) == {503: sent, 408: b""}


def test_an_errorfile_is_kept_as_haproxy_sends_it():
    """What HAProxy 2.6.12 sent for Debian's 503.http layout (recorded by hand with
    `errorfile 503` and a refused server): names lower-cased, Connection dropped."""
    from proxy.config.errorfiles import as_sent
    page = (b"HTTP/1.0 503 Service Unavailable\r\nCache-Control: no-cache\r\n"
            b"Connection: close\r\nContent-Type: text/html\r\n\r\n<html>sorry</html>\n")
    assert as_sent(page) == (b"HTTP/1.0 503 Service Unavailable\r\ncache-control: no-cache\r\n"
                             b"content-type: text/html\r\n\r\n<html>sorry</html>\n")


@pytest.mark.parametrize("data,words", [
    (None, "cannot read error file"),
    (b"HTTP/1.0 503 Oops\nNo-CRLF: here\n\n", "not a valid HTTP response"),
    (b"HTTP/1.0 503 Oops\r\nContent-Length: 10\r\n\r\nshort", "Content-Length says 10"),
    (b"<html>not http</html>", "not a valid HTTP response"),
])
def test_a_missing_or_malformed_errorfile_is_an_error_at_its_line(tmp_path, data, words):
    path = tmp_path / "bad.http"
    if data is not None:
        path.write_bytes(data)
    cfg = proxy_with("    errorfile 503 %s\n" % path, tmp_path)
    with pytest.raises(ConfigError) as exc:
        load(str(cfg))
    assert exc.value.line == 6 and words in exc.value.message


def test_an_errorfile_for_a_status_haproxy_never_generates_is_ignored_with_a_warning(tmp_path):
    page = write(tmp_path, "418.http", PAGE)
    c = load(str(proxy_with("    errorfile 418 %s\n" % page, tmp_path)))
    assert not c.frontends[0].errorfiles
    assert any("status code '418' not handled by 'errorfile'" in w for w in c.warnings)


# ---------------------------------------------------------------- Debian's file

def debian_config(tmp_path):
    """Debian's haproxy.cfg with a frontend and a backend added, its errorfile paths
    pointing to files of ours, and its user/group replaced where they do not exist."""
    errors = tmp_path / "errors"
    errors.mkdir()
    for code in (400, 403, 408, 500, 502, 503, 504):
        (errors / ("%d.http" % code)).write_bytes(
            b"HTTP/1.0 %d Error\r\nCache-Control: no-cache\r\nConnection: close\r\n"
            b"Content-Type: text/html\r\n\r\n<html><body>%d</body></html>\n" % (code, code))
    text = FIXTURE.read_text().replace("/etc/haproxy/errors/", str(errors) + "/")
    try:
        pwd.getpwnam("haproxy")
        grp.getgrnam("haproxy")
    except KeyError:
        text = text.replace("user haproxy", "user nobody").replace(
            "group haproxy", "group %s" % grp.getgrgid(pwd.getpwnam("nobody").pw_gid).gr_name)
    text += ("\nfrontend web\n\tbind 127.0.0.1:8080\n\tdefault_backend app\n\n"
             "backend app\n\tserver s1 127.0.0.1:9000\n")
    cfg = tmp_path / "haproxy.cfg"
    cfg.write_text(text)
    return cfg


def test_debians_default_config_loads_unchanged(tmp_path):
    c = load(str(debian_config(tmp_path)))
    g = c.global_
    assert g.chroot == "/var/lib/haproxy" and g.daemon
    assert g.stats_socket == "/run/haproxy/admin.sock" and g.stats_timeout == 30.0
    assert g.stats_sockets[0].mode == 0o660 and g.stats_sockets[0].level == "admin"
    assert g.uid is not None and g.gid is not None
    assert (g.ca_base, g.crt_base) == ("/etc/ssl/certs", "/etc/ssl/private")
    assert [k for k, _ in g.ssl_defaults] == ["ssl-default-bind-ciphers",
                                              "ssl-default-bind-ciphersuites",
                                              "ssl-default-bind-options"]
    assert sorted(dict(c.frontends[0].errorfiles)) == [400, 403, 408, 500, 502, 503, 504]
    assert c.frontends[0].timeout_client == 50.0
    # The logs are written by the workers: no warning about them.
    assert not any("'log'" in w for w in c.warnings)
    assert [t.path for t in g.log_targets] == ["/dev/log", "/dev/log"]


# ---------------------------------------------------------------- HAProxy's leniency

def test_what_haproxy_reads_with_atol_is_accepted_with_a_warning():
    """HAProxy 2.6.12 `-c` calls `maxconn 100k`, `ulimit-n 4000x` and `retries 3x` valid
    (atol stops at the first non-digit); keepwarm reads them the same and warns."""
    c = parse("global\n    maxconn 100k\n    ulimit-n 4000x\n" + REST.replace(
        "backend be\n", "backend be\n    retries 3x\n"), "g.cfg", env={})
    assert (c.global_.maxconn, c.global_.ulimit_n, c.backends[0].retries) == (100, 4000, 3)
    w = "\n".join(c.warnings)
    assert "g.cfg:2: warning: 'maxconn' '100k': HAProxy reads it as 100" in w
    assert "g.cfg:3:" in w and "g.cfg:13:" in w
    # nbthread is parsed strictly by HAProxy too
    assert "integer" in glob_error("nbthread 2x\n").message


def test_a_timeout_with_characters_after_its_unit_is_read_with_a_warning():
    """HAProxy 2.6.12: `timeout client 5sx` warns "unexpected character 'x' after the
    timer value '5sx'" and uses 5 s."""
    c = parse("global\n" + REST.replace("timeout client 30s", "timeout client 5sx"),
              "g.cfg", env={})
    assert c.frontends[0].timeout_client == 5.0
    assert any("unexpected character 'x' after the timer value '5sx'" in w
               for w in c.warnings)
    for bad in ("x5s", "5x", "1.5s", "30d"):      # errors in HAProxy 2.6.12 too
        with pytest.raises(ConfigError):
            parse("global\n" + REST.replace("timeout client 30s", "timeout client " + bad),
                  "g.cfg", env={})


# ---------------------------------------------------------------- several files

def test_several_files_and_a_directory_read_as_one_configuration(tmp_path):
    """HAProxy's `-f A -f DIR`: sections continue across files, a directory's *.cfg
    files are read in lexical order, and each error names its own file and line."""
    a = tmp_path / "a.cfg"
    a.write_text("global\n    maxconn 50\n" + REST.split("frontend fe")[0])
    d = tmp_path / "conf.d"
    d.mkdir()
    (d / "20-backend.cfg").write_text("backend be\n    server s1 127.0.0.1:9000\n")
    (d / "10-frontend.cfg").write_text("frontend fe\n    bind 127.0.0.1:8080\n"
                                       "    default_backend be\n")
    (d / "notes.txt").write_text("not a config\n")
    c = load([str(a), str(d)])
    assert c.global_.maxconn == 50 and c.frontends[0].default_backend == "be"
    assert c.backends[0].servers[0].port == 9000
    (d / "20-backend.cfg").write_text("backend be\n    frobnicate\n")
    (d / "30-more.cfg").write_text("frontend other\n    bind :81\n    default_backend nowhere\n")
    with pytest.raises(ConfigError) as exc:
        load([str(a), str(d)])
    found = [(os.path.basename(e.file), e.line) for e in exc.value.errors]
    assert found == [("20-backend.cfg", 2), ("30-more.cfg", 3)], found


def test_unix_binds_are_read_beside_tcp_ones():
    c = parse("global\n" + REST.replace(
        "    bind 127.0.0.1:8080\n",
        "    bind 127.0.0.1:8080\n    bind unix@/run/kw/fe.sock\n    bind /run/kw/b.sock\n"),
        "g.cfg", env={})
    binds = c.frontends[0].binds
    assert [(b.path, b.label) for b in binds] == [
        (None, "127.0.0.1:8080"), ("/run/kw/fe.sock", "unix@/run/kw/fe.sock"),
        ("/run/kw/b.sock", "unix@/run/kw/b.sock")]
