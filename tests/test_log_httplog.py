"""keepwarm's httplog lines against the lines HAProxy 2.6.12 wrote for the same
requests (tests/fixtures/haproxy_httplog.json, re-recorded by
tests/fixtures/record_httplog.py), field by field after masking the client
port, the dates and the timers' values (a timer's -1, "not reached", is kept)."""

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from proxy.log import syslog, termination
from proxy.log.httplog import HTTPLOG, HTTPLOG_CLF, LogRecord, capture, compile_httplog
from proxy.rules import RuleError

FIXTURE = json.loads((Path(__file__).parent / "fixtures" / "haproxy_httplog.json").read_text())
CASES = FIXTURE["cases"]

# What the stream would have recorded for each request of the recorder.
# Timers are ms from the accept; -1 = the stream never got there.
_DONE = dict(t_idle=0, t_request=0, t_queue=0, t_connect=0, t_data=0, t_close=0)
_NOT_SERVED = dict(t_idle=0, t_request=0, t_close=0)
_CONNS = dict(actconn=1, feconn=1)
RECORDS = {
    "ok": dict(_DONE, **_CONNS, be_name=b"app", server=b"s1", method=b"GET",
               target=b"/ok?x=1", status=200, bytes_out=98, termination="--",
               req_captures=(b"app.test", capture(b"rec/1", 8)),
               res_captures=(b"text/plain",)),
    "not_found": dict(_DONE, **_CONNS, be_name=b"app", server=b"s1", method=b"GET",
                      target=b"/missing", status=404, bytes_out=96,
                      req_captures=(b"app.test", None), res_captures=(b"text/plain",)),
    "no_server": dict(_NOT_SERVED, **_CONNS, be_name=b"empty", method=b"GET",
                      target=b"/nosrv/x", status=503, bytes_out=217,
                      termination=termination.state_of("no_server"),
                      req_captures=(b"app.test", None), res_captures=(None,)),
    "denied": dict(_NOT_SERVED, **_CONNS, be_name=b"fe", method=b"GET", target=b"/denied",
                   status=403, bytes_out=192, termination=termination.state_of("denied"),
                   req_captures=(b"app.test", None), res_captures=(None,)),
    "server_timeout": dict(_DONE, **_CONNS, t_data=-1, t_close=501, be_name=b"app",
                           server=b"s1", method=b"GET", target=b"/slow", status=504,
                           bytes_out=198,
                           termination=termination.state_of("server_timeout_headers"),
                           req_captures=(b"app.test", None), res_captures=(None,)),
    "bad_request": dict(**_CONNS, t_idle=0, t_close=0, be_name=b"fe", status=400,
                        termination=termination.state_of("bad_request")),
    "client_abort": dict(_DONE, **_CONNS, t_data=1, t_close=2, be_name=b"app",
                         server=b"s1", method=b"GET", target=b"/big", status=200,
                         bytes_out=2145758,
                         termination=termination.state_of("client_abort_data"),
                         req_captures=(b"app.test", None),
                         res_captures=(capture(b"application/x", 12),)),
    "post": dict(_DONE, actconn=2, feconn=2, be_name=b"app", server=b"s1", method=b"POST",
                 target=b"/form", status=200, bytes_out=98,
                 req_captures=(b"app.test", None), res_captures=(b"text/plain",)),
    "server_cut": dict(_DONE, **_CONNS, be_name=b"app", server=b"s1", method=b"GET",
                       target=b"/cut", status=200, bytes_out=64,
                       termination=termination.state_of("server_abort_data"),
                       req_captures=(b"app.test", None), res_captures=(None,)),
    "bad_response": dict(_DONE, **_CONNS, t_data=-1, be_name=b"app", server=b"s1",
                         method=b"GET", target=b"/junk", status=502, bytes_out=209,
                         termination=termination.state_of("bad_response"),
                         req_captures=(b"app.test", None), res_captures=(None,)),
    "refused": dict(_DONE, **_CONNS, t_connect=-1, t_data=-1, t_close=1000, be_name=b"dead",
                    server=b"s9", method=b"GET", target=b"/dead/x", status=503,
                    bytes_out=217, retries=1,
                    termination=termination.state_of("connect_refused"),
                    req_captures=(b"app.test", None), res_captures=(None,)),
    "queue_timeout": dict(t_idle=0, t_request=0, t_queue=301, t_close=301, actconn=2,
                          feconn=2, beconn=1, bck_queue=1, be_name=b"busy", method=b"GET",
                          target=b"/hold/2", status=503, bytes_out=217,
                          termination=termination.state_of("queue_timeout"),
                          req_captures=(b"app.test", None), res_captures=(None,)),
    "client_timeout_data": dict(_DONE, **_CONNS, t_data=1, t_close=509, fe_name=b"fe_stall",
                                be_name=b"app_long", server=b"s1", method=b"GET",
                                target=b"/huge", status=200, bytes_out=2830184,
                                termination=termination.state_of("client_timeout_data")),
    "connect_timeout": dict(_DONE, **_CONNS, t_connect=-1, t_data=-1, t_close=301,
                            be_name=b"stuck", server=b"s2", method=b"GET",
                            target=b"/stuck/x", status=503, bytes_out=217,
                            termination=termination.state_of("connect_timeout"),
                            req_captures=(b"app.test", None), res_captures=(None,)),
    # option logasap: logged as the head goes out, the server connection still held
    "logasap": dict(_DONE, actconn=1, feconn=1, beconn=1, srv_conn=1, fe_name=b"fe_asap",
                    be_name=b"app", server=b"s1", method=b"GET", target=b"/ok?x=1",
                    status=200, bytes_out=98, termination="----", logasap=True,
                    req_captures=(b"app.test", b"abcdefgh", b"rec/"),
                    res_captures=(b"text/p",)),
    "logasap_large": dict(_DONE, actconn=1, feconn=1, beconn=1, srv_conn=1,
                          fe_name=b"fe_asap", be_name=b"app", server=b"s1", method=b"GET",
                          # %B: what HAProxy had forwarded then (varies with timing)
                          target=b"/large", status=200, bytes_out=15264, termination="----",
                          logasap=True, req_captures=(b"app.test", b"42", b"back"),
                          res_captures=(b"applic",)),
    "logasap_no_server": dict(_NOT_SERVED, **_CONNS, fe_name=b"fe_asap", be_name=b"empty",
                              method=b"GET", target=b"/nosrv/x", status=503, bytes_out=217,
                              termination=termination.state_of("no_server"), logasap=True,
                              req_captures=(b"app.test", None, None), res_captures=(None,)),
    "clf_ok": dict(_DONE, **_CONNS, t_connect=1, t_data=1, t_close=1, fe_name=b"fe_clf",
                   be_name=b"app",
                   server=b"s1", method=b"GET", target=b"/ok", version=b"1.0", status=200,
                   bytes_out=98),
}

_DATE = re.compile(r"\[[0-9]{2}/[A-Z][a-z]{2}/[0-9]{4}:[0-9:.]+( [+-][0-9]{4})?\]")
_TIMERS = re.compile(r" (-?[0-9]+)/(-?[0-9]+)/(-?[0-9]+)/(-?[0-9]+)/(\+?-?[0-9]+) ")


def _timer(value):
    """-1 kept, any other value masked, a logasap '+' kept."""
    return value if value == "-1" else "+N" if value[:1] == "+" else "N"


def mask(line, clf):
    """The fields that do not depend on the clock or the client's port."""
    line = _DATE.sub("[DATE]", line)
    if clf:
        f = line.split(" ")
        f[11] = "PORT"                      # %cp
        f[12] = "MS"                        # %ms
        for i in range(16, 21):             # %TR %Tw %Tc %Tr %Ta
            f[i] = _timer(f[i])
        return " ".join(f)
    line = re.sub(r"^([0-9.]+):[0-9]+ ", r"\1:PORT ", line)
    return _TIMERS.sub(lambda m: " " + "/".join(_timer(v) for v in m.groups()) + " ", line)


def record_for(name):
    fields = dict(RECORDS[name])
    fields.setdefault("fe_name", b"fe")
    return LogRecord(1765000000.25, src="127.0.0.1", src_port=40000, **fields)


def test_fixture_was_recorded_from_haproxy_2_6():
    assert FIXTURE["haproxy"].startswith("HAProxy version 2.6.")
    assert set(CASES) == set(RECORDS)


@pytest.mark.parametrize("name", sorted(RECORDS))
def test_httplog_line_matches_haproxy(name):
    case = CASES[name]
    clf = case["frontend"] == "fe_clf"
    fmt = compile_httplog(HTTPLOG_CLF if clf else HTTPLOG)
    line = syslog.build(fmt(record_for(name)), fmt="raw").decode()
    assert mask(line, clf) == mask(case["line"], clf)


@pytest.mark.parametrize("name", sorted(RECORDS))
def test_termination_state_matches_haproxy(name):
    recorded = CASES[name]["line"].split(" ")
    ours = compile_httplog("%tsc")(record_for(name)).decode()
    assert ours in recorded


def test_timers_follow_haproxys_arithmetic():
    r = LogRecord(0.0, t_handshake=2, t_idle=5, t_request=10, t_queue=11, t_connect=14,
                  t_data=30, t_close=45)
    out = compile_httplog("%Th %Ti %TR %Tq %Tw %Tc %Tr %Td %Ta %Tt %Tu")(r)
    assert out == b"2 5 3 10 1 3 16 15 38 45 40"


def test_phases_not_reached_are_minus_one():
    r = LogRecord(0.0, t_idle=0, t_request=3, t_close=9)
    assert compile_httplog("%TR/%Tw/%Tc/%Tr/%Ta")(r) == b"3/-1/-1/-1/9"


def test_captures_escape_the_separators_and_quotes():
    r = LogRecord(0.0, req_captures=(b'a|b{c}"#', None, b"\x01"))
    assert compile_httplog("%hr")(r) == b"{a#7Cb#7Bc#7D#22#23||#01}"
    assert compile_httplog("%hrl")(r) == b"a#7Cb#7Bc#7D#22#23 - #01"
    assert compile_httplog("%{+Q}hrl")(r) == b'"a#7Cb#7Bc#7D#22#23" "" "#01"'


def test_no_capture_removes_the_field_and_one_space():
    r = LogRecord(0.0, status=200)
    assert compile_httplog("%ST %hr %hs %ST")(r) == b"200 200"
    assert compile_httplog("%hr %ST")(r) == b"200"
    r.req_captures = (b"x",)
    assert compile_httplog("%ST %hr %hs %ST")(r) == b"200 {x} 200"


def test_quoted_format_leaves_numbers_dates_and_state_bare():
    r = LogRecord(1765000000.5, status=302, server=b"s1", termination="LR")
    out = compile_httplog("%{+Q}o %s %ST %tsc [%trg] %ms")(r)
    assert out == b'"s1" 302 LR-- [06/Dec/2025:05:46:40 +0000] 500'


def test_redispatch_marks_the_retries():
    r = LogRecord(0.0, retries=1, redispatched=True)
    assert compile_httplog("%rc")(r) == b"+1"


def test_unknown_variable_is_refused():
    with pytest.raises(RuleError):
        compile_httplog("%ci %nosuch")


DOCUMENTED = ("ci cp fi fp f ft b s H pid r HM HU HP HPO HQ HV ST B U T Tl Ts t tr trg trl "
              "ms Th Ti TR Tq Tw Tc Tr Td Ta Tt Tu ts tsc ac fc bc sc rc sq bq hr hrl hs hsl "
              "CC CS ID rt lc bi bp si sp").split()


def test_every_documented_variable_compiles_and_formats():
    r = LogRecord(1765000000.0, src="10.0.0.1", src_port=1, dst="10.0.0.2", dst_port=80,
                  fe_name=b"fe", be_name=b"be", server=b"s", method=b"GET", target=b"/p?q",
                  status=200, srv_addr="10.0.0.3", srv_port=8080)
    out = compile_httplog(" ".join("%" + v for v in DOCUMENTED))(r)
    assert len(out.split(b" ")) >= len(DOCUMENTED) - 4    # the captures write nothing
    assert b"10.0.0.3 8080" in out and b"/p?q" in out


HALOG = shutil.which("halog") or ("/usr/sbin/halog" if Path("/usr/sbin/halog").exists() else None)


@pytest.mark.skipif(HALOG is None, reason="halog (Debian's haproxy package) is not installed")
@pytest.mark.parametrize("option", ["-st", "-srv", "-u"])
def test_halog_reads_our_lines_as_haproxys(option):
    """halog gives the same tables on keepwarm's lines as on HAProxy's (same syslog
    header on both, as a syslog daemon would write them)."""
    names = sorted(n for n in RECORDS if CASES[n]["frontend"] == "fe")

    def run(lines):
        text = b"".join(syslog.build(line, "rfc3164", 16, 6, 1765000000.0, b"haproxy", 1,
                                     host=b"lb") for line in lines)
        out = subprocess.run([HALOG, option], input=text, capture_output=True, timeout=30)
        assert out.returncode == 0, out.stderr
        return out.stdout

    ours = run([compile_httplog(HTTPLOG)(record_for(n)) for n in names])
    theirs = run([CASES[n]["line"].encode() for n in names])
    assert ours == theirs and ours.count(b"\n") >= 3


def test_httplog_fast_path_writes_what_the_generic_engine_writes():
    """option httplog's direct writer (httplog_line) against the compiled format,
    on 3000 varied records: every field's edge (unset, -1, TLS, BADREQ, bytes to
    encode, captures absent/empty, redispatch, IPv6, no address)."""
    import random
    from proxy.log.httplog import httplog_line
    from proxy.rules.logformat import compile_logformat
    from proxy.log.httplog import _WIRED

    class _Tls:
        tls = object()

    generic = compile_logformat(HTTPLOG, None, mode="log", wired=_WIRED)
    assert compile_httplog(HTTPLOG) is httplog_line
    rnd = random.Random(17)
    pick = rnd.choice
    for _ in range(3000):
        r = LogRecord(1765000000.0 + rnd.random() * 1e5, fe_name=pick([b"fe", b"", b"f e"]),
                      be_name=pick([b"be", b"", b"fe"]))
        r.src = pick([None, "", "127.0.0.1", "::1"])
        r.src_port = pick([None, 0, 40000])
        r.xprt = pick([None, _Tls()])
        r.server = pick([None, b"s1"])
        r.t_handshake = pick([0, 3])
        r.t_idle = pick([-1, 0, 5])
        r.t_request = pick([-1, 0, 7, 12])
        r.t_queue = pick([-1, r.t_request + 1])
        r.t_connect = pick([-1, r.t_queue + 2])
        r.t_data = pick([-1, r.t_connect + 3])
        r.t_close = pick([0, 30, 1000])
        r.status = pick([-1, 0, 200, 503])
        r.bytes_out = pick([0, 123456])
        r.termination = pick(["--", "CD", "sH--", "PR", "----"])
        r.method = pick([None, b"GET", b"M\"X"])
        r.target = pick([b"/", b"/a b?c=\"d\"#e", b"/\xff\x01"])
        r.version = pick([b"1.1", b"1.0"])
        r.retries = pick([0, 2])
        r.redispatched = pick([False, True])
        r.actconn, r.feconn, r.beconn, r.srv_conn = (rnd.randrange(3) for _ in range(4))
        r.srv_queue, r.bck_queue = rnd.randrange(2), rnd.randrange(2)
        r.req_captures = pick([None, (), (None,), (b"a|b{c}", None, b"\"q\"")])
        r.res_captures = pick([None, (b"text/plain",), (None, None)])
        r.cli_cookie = pick([None, b"ck"])
        assert httplog_line(r) == generic(r), vars(r) if hasattr(r, "__dict__") else r.status
