"""The logging keywords in the config (issue 17): parsed into the model, every bad
value refused with file:line, and a warning that nothing is written yet.

Where haproxy is installed, each line refused here is checked to be refused by
HAProxy 2.6 too (``haproxy -c``), and each accepted one to be accepted."""

import re
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from proxy.config import ConfigErrors, parse as parse_text
from proxy.log.httplog import HTTPLOG, HTTPLOG_CLF

ROOT = Path(__file__).resolve().parent.parent
HAPROXY = shutil.which("haproxy") or (
    "/usr/sbin/haproxy" if Path("/usr/sbin/haproxy").exists() else None)


def site(global_lines="", fe_lines="", defaults_lines="", be_lines=""):
    return ("global\n%s"
            "defaults\n    mode http\n    timeout client 1s\n    timeout server 1s\n"
            "    timeout connect 1s\n%s"
            "frontend fe\n    bind 127.0.0.1:8080\n%s    default_backend be\n"
            "backend be\n    server s1 127.0.0.1:8081\n%s"
            % (global_lines, defaults_lines, fe_lines, be_lines))


def parse(text):
    return parse_text(text, "t.cfg", env={})


def error_of(text):
    with pytest.raises(ConfigErrors) as info:
        parse(text)
    return info.value.errors[0]


def haproxy_accepts(text, tmp_path):
    cfg = tmp_path / "h.cfg"
    cfg.write_text(text)
    out = subprocess.run([HAPROXY, "-c", "-f", str(cfg)], capture_output=True, timeout=30)
    return out.returncode == 0


GOOD_GLOBAL = [
    ("log /dev/log local0", dict(kind="unix", path="/dev/log", facility=16, level=7)),
    ("log /dev/log local1 notice", dict(kind="unix", facility=17, level=5)),
    ("log stdout format raw local0", dict(kind="fd", fd=1, format="raw")),
    ("log stderr format short daemon err", dict(kind="fd", fd=2, facility=3, level=3)),
    ("log 127.0.0.1 local2", dict(kind="udp", host="127.0.0.1", port=514)),
    ("log 127.0.0.1:5140 len 4096 format rfc5424 local3 info notice",
     dict(port=5140, maxlen=4096, format="rfc5424", level=6, minlevel=5)),
    ("log udp@127.0.0.1:1514 local0", dict(kind="udp", port=1514)),
    ("log ipv4@127.0.0.1:1514 format iso local0", dict(format="iso")),
    ("log ipv6@::1:1514 format timed local0", dict(host="::1", port=1514)),
    ("log 127.0.0.1 sample 1,3-4:5 local0", dict(sample=(((1, 1), (3, 4)), 5))),
    ("log 127.0.0.1 format priority local0", dict(format="priority")),
    ("log 127.0.0.1 format rfc3164 local0", dict(format="rfc3164")),
]


@pytest.mark.parametrize("line,expect", GOOD_GLOBAL, ids=[g[0] for g in GOOD_GLOBAL])
def test_global_log_targets_are_parsed(line, expect, tmp_path):
    c = parse(site("    %s\n" % line))
    target, = c.global_.log_targets
    for key, value in expect.items():
        assert getattr(target, key) == value, key
    assert target.line == 2
    assert not any("t.cfg:2" in w for w in c.warnings)     # written: nothing to warn
    if HAPROXY:
        assert haproxy_accepts(site("    %s\n" % line), tmp_path)


BAD = [
    ("log /dev/log", "expects <address> and <facility>"),
    ("log /dev/log lokal0", "unknown log facility 'lokal0'"),
    ("log /dev/log local0 bogus", "unknown optional log level 'bogus'"),
    ("log /dev/log local0 info bogus", "unknown optional minimum log level 'bogus'"),
    ("log /dev/log local0 info notice extra", "cannot handle unexpected argument 'extra'"),
    ("log /dev/log len 79 local0", "invalid log length '79'"),
    ("log /dev/log len 65536 local0", "invalid log length '65536'"),
    ("log /dev/log format rfc9 local0", "unknown log format 'rfc9'"),
    ("log 127.0.0.1 sample 2-1:5 local0", "invalid sample range"),
    ("log 127.0.0.1 sample 1-4:3 local0", "sample size 3 should be greater or equal to 4"),
    ("log 127.0.0.1 sample 1 local0", "Missing sample size"),
    ("log 127.0.0.1:99999 local0", "invalid port"),
    ("log global", "'global' is not supported for a global syslog server"),
    ("no log extra", "'no log' does not expect arguments"),
]


@pytest.mark.parametrize("line,message", BAD, ids=[b[0] for b in BAD])
def test_bad_global_log_lines_are_refused_at_their_line(line, message, tmp_path):
    err = error_of(site("    %s\n" % line))
    assert (err.file, err.line) == ("t.cfg", 2)
    assert message in err.message
    if HAPROXY:
        assert not haproxy_accepts(site("    %s\n" % line), tmp_path)


def test_ring_target_is_refused_with_a_hint():
    err = error_of(site("    log ring@buf local0\n"))
    assert err.line == 2 and "ring" in err.message and "udp@" in err.hint


def test_proxy_log_global_copies_the_global_targets_and_no_log_clears():
    c = parse(site("    log /dev/log local0\n    log 127.0.0.1 local1\n",
                   defaults_lines="    log global\n    option httplog\n",
                   be_lines="    no log\n"))
    assert len(c.frontends[0].log.targets) == 2
    assert c.frontends[0].log.targets == c.global_.log_targets
    assert c.backend("be").log.targets == ()


def test_proxy_targets_add_to_the_inherited_ones_without_a_limit():
    lines = "".join("    log 127.0.0.1:%d local0\n" % (2000 + i) for i in range(70))
    c = parse(site("    log /dev/log local0\n", fe_lines="    log global\n" + lines))
    # HAProxy 2.6.12 has no limit per proxy (measured with 300 lines; its manual's
    # "up to two" in section 8.1 is from older versions)
    assert len(c.frontends[0].log.targets) == 71


def test_httplog_options_set_haproxys_formats():
    c = parse(site(defaults_lines="    option httplog\n    option dontlognull\n",
                   fe_lines="    option log-separate-errors\n",
                   be_lines="    option httplog clf\n    option log-health-checks\n"))
    fe, be = c.frontends[0].log, c.backend("be").log
    assert (fe.format, fe.dontlognull, fe.log_separate_errors) == (HTTPLOG, True, True)
    assert (be.format, be.log_health_checks) == (HTTPLOG_CLF, True)
    c = parse(site(defaults_lines="    option dontlognull\n",
                   fe_lines="    no option dontlognull\n"))
    assert c.frontends[0].log.dontlognull is False


def test_log_format_is_compiled_and_a_bad_variable_refused():
    c = parse(site(fe_lines='    log-format "%ci %ST %[src]"\n'
                            "    log-tag web\n    unique-id-format %{+X}o\\ %ci\n"
                            "    unique-id-header X-Req-ID\n"
                            "    error-log-format %ci\\ %ST\n    log-format-sd [x@1]\n"))
    log = c.frontends[0].log
    assert log.format == "%ci %ST %[src]" and log.tag == "web"
    assert log.unique_id_header == "X-Req-ID" and log.error_format == "%ci %ST"
    err = error_of(site(fe_lines="    log-format %ci\\ %nosuch\n"))
    assert err.line == 9 and "no such format variable '%nosuch'" in err.message
    err = error_of(site(fe_lines="    log-format %ci %ST\n"))
    assert "don't forget to escape spaces" in err.message


def test_captures_are_kept_in_order_and_checked():
    c = parse(site(fe_lines="    capture request header Host len 32\n"
                            "    capture request header User-Agent len 64\n"
                            "    capture response header Content-Type len 20\n"
                            "    declare capture request len 10\n"))
    log = c.frontends[0].log
    assert [(x.name, x.length) for x in log.req_captures] == [
        ("Host", 32), ("User-Agent", 64), (None, 10)]
    assert [(x.name, x.length) for x in log.res_captures] == [("Content-Type", 20)]
    err = error_of(site(fe_lines="    capture request header Host\n"))
    assert err.line == 9 and "expects 'header' <header_name> 'len' <len>" in err.message
    err = error_of(site(defaults_lines="    capture request header Host len 3\n"))
    assert "not allowed in 'defaults' section" in err.message


def test_capture_rules_take_declared_slots_or_make_their_own():
    c = parse(site(fe_lines="    capture request header Host len 32\n"
                            "    declare capture request len 10\n"
                            "    http-request capture req.hdr(X-Id) id 1\n"
                            "    http-request capture req.hdr(User-Agent) len 4\n"
                            "    http-response capture res.hdr(Server) id 0\n"
                            "    declare capture response len 6\n"))
    log = c.frontends[0].log
    assert [(x.name, x.length) for x in log.req_captures] == [
        ("Host", 32), (None, 10), (None, 4)]
    assert [(x.name, x.length) for x in log.res_captures] == [(None, 6)]
    assert not c.warnings


def test_capture_rules_are_checked_as_haproxy_checks_them():
    # messages as HAProxy 2.6.12's `haproxy -c` words them
    err = error_of(site(fe_lines="    http-request capture req.hdr(X-Id) id 1\n"))
    assert "Proxy 'fe': unable to find capture id '1' referenced by http-request capture " \
           "rule." in err.message
    err = error_of(site(fe_lines="    http-response capture res.hdr(Server) len 4\n"))
    assert "expects 'id', found 'len'" in err.message
    err = error_of(site(be_lines="    http-request capture req.hdr(X-Id) len 4\n"))
    assert "proxy 'be' has no frontend capability" in err.message
    err = error_of(site(fe_lines="    http-request capture req.hdr(X-Id)\n"))
    assert "expects <expression> [ 'len' <length> | 'id' <idx> ]" in err.message


def test_global_log_tag_and_send_hostname():
    c = parse(site("    log-tag kw\n    log-send-hostname\n"))
    assert c.global_.log_tag == "kw" and c.global_.log_send_hostname == socket.gethostname()
    c = parse(site("    log-send-hostname lb1\n"))
    assert c.global_.log_send_hostname == "lb1"


def test_keepwarm_check_reports_a_bad_log_line_with_file_and_line(tmp_path):
    cfg = tmp_path / "k.cfg"
    cfg.write_text(site("    log /dev/log local0 info\n    log /dev/log len 10 local0\n"))
    out = subprocess.run([sys.executable, "-m", "proxy", "check", "-f", str(cfg)], cwd=ROOT,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode != 0
    assert re.search(r"k\.cfg:3\b.*invalid log length '10'", out.stdout + out.stderr)


def test_keepwarm_check_accepts_logging_and_logasap_without_warning(tmp_path):
    cfg = tmp_path / "k.cfg"
    cfg.write_text(site("    log /dev/log local0\n", defaults_lines="    log global\n"
                        "    option httplog\n    option logasap\n",
                        fe_lines="    capture request header Host len 32\n"))
    out = subprocess.run([sys.executable, "-m", "proxy", "check", "-f", str(cfg)], cwd=ROOT,
                         capture_output=True, text=True, timeout=60)
    both = out.stdout + out.stderr
    assert out.returncode == 0, both
    # written by the workers (logasap too): no warning
    assert not re.search(r"k\.cfg:[0-9]+\b.*'(log|option httplog|option logasap|capture)'",
                         both)
    assert "not honoured" not in both
