"""`keepwarm check` exit codes and messages, the seed's snippet and the quickstart config, end to end."""

import re

import pytest

from support.client import get
from support.proxy import REPO_ROOT, free_port, make_config, run_cli

SEED = REPO_ROOT / "examples" / "seed.cfg"
QUICKSTART = REPO_ROOT / "examples" / "quickstart.cfg"


def write(tmp_path, text, name="k.cfg"):
    p = tmp_path / name
    p.write_text(text)
    return p


def test_check_accepts_a_valid_config_with_exit_0(tmp_path):
    cfg = write(tmp_path, make_config(port=free_port(), servers=[("s1", 9), ("s2", 10)],
                                      sock=tmp_path / "s.sock"))
    r = run_cli("check", "-f", str(cfg))
    assert r.returncode == 0, r.stderr


def test_check_rejects_unknown_keyword_naming_file_and_line(tmp_path):
    text = make_config(port=free_port(), servers=[("s1", 9)], sock=tmp_path / "s.sock",
                       backend_lines=["frobnicate yes"])
    cfg = write(tmp_path, text)
    line = text.splitlines().index("    frobnicate yes") + 1
    r = run_cli("check", "-f", str(cfg))
    assert r.returncode == 1
    assert "[ALERT]" in r.stderr and "parsing [%s:%d] : " % (cfg, line) in r.stderr, r.stderr
    assert "frobnicate" in r.stderr
    assert "Traceback" not in r.stderr


def test_check_reports_every_error_of_a_file_in_haproxys_form(tmp_path):
    """Five mistakes, five `[ALERT] ... parsing [FILE:LINE]` lines, then HAProxy's verdict."""
    text = make_config(port=free_port(), servers=[("s1", 9)], sock=tmp_path / "s.sock",
                       global_lines=["maxconn lots", "frobnicate"],
                       frontend_lines=["timeout client 5x"],
                       backend_lines=["balance fastest", "retries"])
    cfg = write(tmp_path, text)
    lines = text.splitlines()
    wanted = [lines.index(w) + 1 for w in ("    maxconn lots", "    frobnicate",
                                            "    timeout client 5x", "    balance fastest",
                                            "    retries")]
    r = run_cli("check", "-f", str(cfg))
    assert r.returncode == 1
    alerts = [l for l in r.stderr.splitlines() if l.startswith("[ALERT]")]
    assert ["parsing [%s:%d] : " % (cfg, n) in a for a, n in zip(alerts, wanted)] == [True] * 5
    assert alerts[5].endswith("Fatal errors found in configuration (5).") and len(alerts) == 6
    r = run_cli("-c", "-f", str(cfg))            # HAProxy's flags: the same report
    assert r.returncode == 1 and r.stderr.count("[ALERT]") == 6


def test_check_rejects_seed_keepalive_timeout_with_a_hint(tmp_path):
    text = make_config(port=free_port(), servers=[("s1", 9)], global_lines=["keepalive-timeout 10s"])
    r = run_cli("check", "-f", str(write(tmp_path, text)))
    assert r.returncode == 1
    assert "keepalive-timeout" in r.stderr and "timeout http-keep-alive" in r.stderr, r.stderr


def test_check_rejects_seed_http_server_close_seconds_with_a_hint(tmp_path):
    text = make_config(port=free_port(), servers=[("s1", 9)], backend_lines=["http-server-close 10"])
    r = run_cli("check", "-f", str(write(tmp_path, text)))
    assert r.returncode == 1
    assert "option http-server-close" in r.stderr or "pool-purge-delay" in r.stderr, r.stderr


def test_check_accepts_seed_snippet_with_warnings():
    r = run_cli("check", "-f", str(SEED))
    assert r.returncode == 0, r.stderr
    assert "httpchk" in r.stderr, "no warning about the escaped-header httpchk form"
    assert "timeout" in r.stderr, "no warning about missing timeouts"


def test_check_accepts_quickstart_config():
    r = run_cli("check", "-f", str(QUICKSTART))
    assert r.returncode == 0, r.stderr


def test_check_without_file_is_a_usage_error():
    r = run_cli("check")
    assert r.returncode == 2


def seed_with_addresses(port, servers):
    """examples/seed.cfg with the bind and server addresses replaced (nothing else)."""
    text = SEED.read_text()
    text, n = re.subn(r"(?m)^(\s*bind\s+)\S+", r"\g<1>127.0.0.1:%d" % port, text)
    assert n == 1
    for b in servers:
        text, n = re.subn(r"(?m)^(\s*server\s+%s\s+)\S+" % {"s1": "web1", "s2": "web2"}[b.name],
                          r"\g<1>127.0.0.1:%d" % b.port, text)
        assert n == 1
    return text


def test_seed_snippet_runs_and_serves_requests(tmp_path, backends, proxy_factory):
    port = free_port()
    env = {"KEEPWARM_SOCKET": str(tmp_path / "seed.sock")}
    kw = proxy_factory(config=seed_with_addresses(port, backends), bind_ports=[port],
                       workers=None, sock=False, env=env)
    for i in range(20):
        assert get(kw.port, "/page%d" % i).status == 200
    assert all(b.request_count >= 1 for b in backends)
    data = [q for b in backends for q in b.requests if q.target.startswith("/page")]
    assert len(data) == 20
    st = kw.wait_stats(lambda s: s["backends"]["web_servers"]["req_tot"] >= 20, what="req_tot 20")
    assert set(st["backends"]["web_servers"]["servers"]) == {"web1", "web2"}


@pytest.mark.parametrize("path", [SEED, QUICKSTART], ids=["seed", "quickstart"])
def test_example_configs_use_loopback_addresses_only(path):
    for line in path.read_text().splitlines():
        words = line.split("#", 1)[0].split()
        if words[:1] in (["bind"], ["server"]):
            addr = words[1] if words[0] == "bind" else words[2]
            assert addr.startswith("127.0.0.1:"), line


def test_missing_config_file_is_one_line_naming_the_file(tmp_path):
    missing = tmp_path / "nope.cfg"
    res = run_cli("run", "-f", str(missing))
    assert res.returncode == 1
    assert res.stderr.strip() == "keepwarm: %s: cannot read configuration file: No such file or directory" % missing


def test_check_reports_the_kernels_tcp_migrate_req_setting(tmp_path):
    cfg = write(tmp_path, make_config(port=free_port(), servers=[("s1", 9)], sock=tmp_path / "s.sock"))
    r = run_cli("check", "-f", str(cfg))
    assert r.returncode == 0, r.stderr
    try:
        with open("/proc/sys/net/ipv4/tcp_migrate_req") as f:
            expected = "net.ipv4.tcp_migrate_req = %s" % f.read().strip()
    except OSError:
        expected = "net.ipv4.tcp_migrate_req: not available"
    assert expected in r.stdout, r.stdout


@pytest.mark.parametrize("content,expected", [
    ("1\n", "= 1: connections queued on a listening socket that closes move"),
    ("0\n", "= 0: connections queued on a listening socket that closes (a bind removed"),
    (None, "not available"),
])
def test_migrate_req_report_says_what_the_setting_means(tmp_path, content, expected):
    from proxy.cli import migrate_req_report
    path = tmp_path / "tcp_migrate_req"
    if content is not None:
        path.write_text(content)
    assert expected in migrate_req_report(str(path))
