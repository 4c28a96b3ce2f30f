"""`monitor fail if|unless COND` (issue 15): accepted in frontends with monitor-uri,
refused with file:line and a hint when malformed; in a backend, ignored with a
warning (HAProxy's frontend-only keyword rule)."""

import pytest

from proxy.config import ConfigError, parse

BASE = ("defaults\n    mode http\n    timeout client 1s\n    timeout server 1s\n"
        "    timeout connect 1s\n"
        "frontend f\n    bind 127.0.0.1:8999\n    monitor-uri /up\n%s\n"
        "    default_backend b\nbackend b\n    server s 127.0.0.1:9\n%s")


def test_monitor_fail_is_compiled_into_the_monitor_action():
    cfg = parse(BASE % ("    monitor fail if { nbsrv(b) lt 1 }", ""))
    assert len(cfg.frontends[0].request_actions) == 1


@pytest.mark.parametrize("line,words", [
    ("    monitor fail", "expects 'fail'"),
    ("    monitor pass if TRUE", "expects 'fail'"),
    ("    monitor fail when TRUE", "expects 'fail'"),
    ("    monitor fail if no_such_acl", "no such ACL"),
])
def test_a_bad_monitor_line_is_an_error_at_its_line(line, words):
    with pytest.raises(ConfigError) as exc:
        parse(BASE % (line, ""))
    assert "<string>:9:" in str(exc.value), str(exc.value)
    assert words in str(exc.value)


def test_monitor_in_a_backend_is_ignored_with_a_warning_as_haproxy_does():
    cfg = parse(BASE % ("", "    monitor fail if TRUE\n"))
    assert any("'monitor' ignored because backend 'b' has no frontend capability" in w
               for w in cfg.warnings), cfg.warnings
