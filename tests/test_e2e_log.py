"""keepwarm's access log on the wire, against HAProxy 2.6.12's (issue 17).

The scenarios of tests/fixtures/record_httplog.py (normal, 404, 503 no server,
denied, server timeout, bad request, client abort mid-response, POST, clf) go
through a real keepwarm with the recorder's own configuration (`log SOCKET
format raw local0`, `option httplog`, captures), its lines read from a UNIX
datagram socket this test binds; each is compared with HAProxy's recorded line
after masking the client port, dates and timer values (a -1 is kept). `%B`
differs by design: keepwarm counts the bytes it wrote to the client (checked
here against what the client read), HAProxy 2.6 the size of its internal
message (HTX); both log 0 for a request the parser refused. Then halog reads
both logs into the same tables, and real syslog receivers (UDP, UNIX) get
RFC 3164 and RFC 5424 lines with the right PRI.
"""

import os
import re
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

from fixtures.record_httplog import CASES, behind_a_holder, config, reply, stall
from support.backend import Reply, ScriptedBackend
from support.proxy import ProxyProcess, free_port, run_cli
from test_log_httplog import _DATE, CASES as RECORDED, _timer, mask as _mask_clf

HALOG = shutil.which("halog") or ("/usr/sbin/halog" if Path("/usr/sbin/halog").exists() else None)
_RX_TIMEOUT = 3.0


def mask(line, clf):
    """Dates, the client port (and %ms) and the timers' values (-1 kept) masked; the
    connection counts stay (test_log_httplog's mask hides them in httplog lines)."""
    if clf:
        return _mask_clf(line, True)
    f = re.sub(r"^([0-9.]+):[0-9]+ ", r"\1:PORT ", _DATE.sub("[DATE]", line)).split(" ")
    f[4] = "/".join(_timer(v) for v in f[4].split("/"))
    return " ".join(f)


def _receiver(path):
    rx = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    rx.bind(str(path))
    rx.settimeout(_RX_TIMEOUT)
    return rx


def _quiet(rx, settle=0.3):
    """Read and return what arrives until nothing comes for `settle` seconds (bounded)."""
    got = []
    rx.settimeout(settle)
    try:
        for _ in range(1000):
            try:
                got.append(rx.recv(65536))
            except socket.timeout:
                break
    finally:
        rx.settimeout(_RX_TIMEOUT)
    return got


def _runtime_api(path, line):
    """One text command on the control socket; the answer, read until the master closes."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(_RX_TIMEOUT)
        s.connect(str(path))
        s.sendall(line.encode() + b"\n")
        out = b""
        for _ in range(1000):
            chunk = s.recv(65536)
            if not chunk:
                break
            out += chunk
        return out.decode()


def _ask(port, raw, how):
    """One request on a fresh connection: (status or None, bytes the client read)."""
    if how == "queue":
        return behind_a_holder(port, lambda: _ask(port, raw, "read"))
    if how == "stall":
        return stall(port, raw)
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(raw)
        if how == "eof":
            data = b""
            for _ in range(1000):
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
        elif how == "abort":
            data = s.recv(4096)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\0\0\0\0\0\0\0")
        else:
            data = b""
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
                head, sep, body = data.partition(b"\r\n\r\n")
                length = re.search(rb"(?i)\r\ncontent-length: *([0-9]+)", head)
                if sep and length and len(body) >= int(length.group(1)):
                    break
    line = data.split(b"\r\n", 1)[0].split(b" ")
    return (int(line[1]) if len(line) > 1 and line[1].isdigit() else None), len(data)


@pytest.fixture(scope="module")
def logged(tmp_path_factory):
    """Every case through keepwarm: name -> (status, bytes read, our line)."""
    work = tmp_path_factory.mktemp("e2e_log")
    backend = ScriptedBackend("app", reply).start()
    rx = _receiver(work / "log.sock")
    port, port_clf, port_asap, port_stall = free_port(), free_port(), free_port(), free_port()
    ports = {"fe": port, "fe_clf": port_clf, "fe_asap": port_asap, "fe_stall": port_stall}
    text = config(port, port_clf, backend.port, work / "log.sock", port_asap, port_stall)
    p = ProxyProcess(text.replace("global\n", "global\n    nbthread 1\n", 1), work,
                     bind_ports=[port, port_clf, port_asap, port_stall], workers=1)
    out = {}
    try:
        p.start()
        _quiet(rx)                      # the start-up probes' <BADREQ> lines
        for name, (fe, raw, how) in CASES.items():
            status, nbytes = _ask(ports[fe], raw, how)
            out[name] = (status, nbytes, rx.recv(65536).decode())
            if how == "queue":
                rx.recv(65536)                  # the holder's line
        out["_extra"] = _quiet(rx)
    finally:
        p.stop()
        rx.close()
        backend.stop()
    return out


def _masked(name, line):
    clf = CASES[name][0] == "fe_clf"
    f = mask(line, clf).split(" ")
    b = f[8 if clf else 6]
    f[8 if clf else 6] = "+B" if b[:1] == "+" else "B"     # %B: see the module's docstring
    masked = " ".join(f)
    if name == "post":
        # HAProxy still held the aborted connection of the case before (2/2/...).
        masked = re.sub(r" [0-9]+/[0-9]+/([0-9]+/[0-9]+/[0-9]+) ", r" A/F/\1 ", masked)
    return masked


@pytest.mark.timeout(120)
@pytest.mark.parametrize("name", sorted(CASES))
def test_access_log_line_matches_haproxys(logged, name):
    status, _, ours = logged[name]
    assert status == RECORDED[name]["status"], name
    assert _masked(name, ours) == _masked(name, RECORDED[name]["line"])


@pytest.mark.timeout(120)
@pytest.mark.parametrize("name", ["ok", "not_found", "no_server", "denied",
                                  "server_timeout", "post", "clf_ok"])
def test_bytes_logged_are_the_bytes_the_client_read(logged, name):
    _, nbytes, ours = logged[name]
    clf = CASES[name][0] == "fe_clf"
    assert int(ours.split(" ")[9 if clf else 6]) == nbytes


def test_one_line_per_request_and_no_more(logged):
    assert logged["_extra"] == []


def _same_timers(ours, theirs):
    """Our line with HAProxy's timer values and byte count, for halog's tables."""
    o, t = ours.split(" "), theirs.split(" ")
    o[4], o[6] = t[4], t[6]
    return " ".join(o)


@pytest.mark.skipif(HALOG is None, reason="halog (Debian's haproxy package) is not installed")
@pytest.mark.parametrize("option", ["-st", "-srv", "-u"])
def test_halog_tables_match_haproxys(logged, option):
    from proxy.log import syslog
    names = sorted(n for n in CASES if CASES[n][0] == "fe")

    def run(lines):
        text = b"".join(syslog.build(line.rstrip("\n").encode(), "rfc3164", 16, 6,
                                     1765000000.0, b"haproxy", 1, host=b"lb") for line in lines)
        res = subprocess.run([HALOG, option], input=text, capture_output=True, timeout=30)
        assert res.returncode == 0, res.stderr
        return res.stdout

    theirs = [RECORDED[n]["line"] for n in names]
    ours = [_same_timers(logged[n][2], RECORDED[n]["line"]) for n in names]
    assert run(ours) == run(theirs) and run(ours).count(b"\n") >= 3


# ---------------------------------------------------------------------- syslog receivers

SYSLOG_CFG = """global
    nbthread 1
    log udp@127.0.0.1:%(udp)d format rfc5424 local3 info
    log %(unix)s format rfc3164 local1 notice
    log-send-hostname lbhost
defaults
    mode http
    log global
    option httplog
    option log-separate-errors
    option dontlognull
    timeout client 5s
    timeout server 2s
    timeout connect 1s
frontend fe
    bind 127.0.0.1:%(port)d
    unique-id-format %%{+X}o\\ %%ci:%%cp.%%rt
    unique-id-header X-Req-ID
    default_backend app
backend app
    server s1 127.0.0.1:%(bport)d
"""


@pytest.mark.timeout(60)
def test_syslog_receivers_get_rfc5424_and_rfc3164_lines_with_their_pri(tmp_path):
    backend = ScriptedBackend("app", lambda b, req: Reply(
        status=500 if req.target == "/err" else 200, body=b"x")).start()
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("127.0.0.1", 0))
    udp.settimeout(_RX_TIMEOUT)
    unix = _receiver(tmp_path / "dev-log")
    port = free_port()
    p = ProxyProcess(SYSLOG_CFG % {"udp": udp.getsockname()[1], "unix": tmp_path / "dev-log",
                                   "port": port, "bport": backend.port},
                     tmp_path, bind_ports=[port], workers=1)
    try:
        p.start()
        # dontlognull: the start-up probes (connections without a request) log nothing
        assert _quiet(udp) == [] and _quiet(unix) == []
        assert _ask(port, b"GET /ok HTTP/1.1\r\nHost: a\r\n\r\n", "read")[0] == 200
        line = udp.recv(65536).decode()
        # local3 (19) * 8 + info (6); RFC 5424: version, date, host, tag, pid, msgid, SD
        m = re.match(r"<158>1 [0-9T:.+-]+ lbhost haproxy ([0-9]+) - - (.*)\n$", line)
        assert m, line
        assert m.group(1) in {str(pid) for pid in p.worker_pids()}
        assert ' 200 ' in m.group(2) and '"GET /ok HTTP/1.1"' in m.group(2)
        req_id = backend.requests[-1].header("X-Req-ID")
        assert req_id and req_id.startswith("7F000001:")
        # the unix target's level is notice: an info line is not sent there
        assert _ask(port, b"GET /err HTTP/1.1\r\nHost: a\r\n\r\n", "read")[0] == 500
        # log-separate-errors: a 5xx is logged at err (3): local1 (17) * 8 + 3
        line = unix.recv(65536).decode()
        assert re.match(r"<139>[A-Z][a-z]{2} [ 0-9]{2} [0-9:]{8} lbhost haproxy\[[0-9]+\]: "
                        r"127\.0\.0\.1:[0-9]+ .* 500 .*\"GET /err HTTP/1\.1\"\n$", line), line
        assert udp.recv(65536).startswith(b"<155>1 ")     # local3 err on the UDP target
        assert _quiet(unix) == []                          # one line each, no more
    finally:
        p.stop()
        udp.close()
        unix.close()
        backend.stop()


@pytest.mark.timeout(60)
def test_unreachable_target_is_a_warning_and_requests_still_flow(tmp_path):
    backend = ScriptedBackend("app").start()
    port = free_port()
    cfg = SYSLOG_CFG.replace("udp@127.0.0.1:%(udp)d format rfc5424 local3 info",
                             "stdout format raw local0 info").replace("local1 notice",
                                                                       "local1 info")
    cfg = cfg.replace("global\n", "global\n    stats socket %s level admin\n"
                      % (tmp_path / "kw.sock"), 1)
    p = ProxyProcess(cfg % {"unix": tmp_path / "nobody-here", "port": port,
                            "bport": backend.port}, tmp_path, bind_ports=[port], workers=1,
                     sock=tmp_path / "kw.sock")
    try:
        p.start()
        for _ in range(3):
            assert _ask(port, b"GET /e HTTP/1.1\r\nHost: a\r\n\r\n", "read")[0] == 200
        # the UNIX target drops the 3 lines (it rests between attempts) and counts them
        p.wait_stats(lambda s: s["info"].get("dropped_logs") == 3, 5, "3 dropped logs")
        assert "nobody-here" in p.stderr_text() and "cannot be reached" in p.stderr_text()
        assert "dropped logs 3" in run_cli("stats", "-s", p.sock).stdout
        assert "DroppedLogs: 3\n" in _runtime_api(p.sock, "show info")
    finally:
        p.stop()
        backend.stop()
    out = (tmp_path / "keepwarm.out").read_text()
    assert out.count('"GET /e HTTP/1.1"') == 3, out
    assert not os.path.exists(tmp_path / "nobody-here")


# ---------------------------------------------------------------------- live, side by side

LIVE_CFG = """global
    log %(log)s format raw local0
defaults
    mode http
    log global
    option httplog
    timeout client 5s
    timeout server 2s
    timeout connect 1s
frontend fe
    bind 127.0.0.1:%(port)d
    http-request redirect location /new if { path_beg /redir }
    http-request return status 200 content-type text/plain string hi if { path_beg /ret }
    use_backend refused if { path_beg /refused }
    default_backend app
backend app
    server s1 127.0.0.1:%(bport)d
backend refused
    retries 1
    server s1 127.0.0.1:%(closed)d
"""
LIVE = [("redirect", b"GET /redir HTTP/1.1\r\nHost: a\r\n\r\n"),
        ("return", b"GET /ret HTTP/1.1\r\nHost: a\r\n\r\n"),
        ("refused", b"GET /refused HTTP/1.1\r\nHost: a\r\n\r\n"),
        ("keep-alive", b"GET /a HTTP/1.1\r\nHost: a\r\n\r\nGET /b HTTP/1.1\r\nHost: a\r\n"
                       b"Connection: close\r\n\r\n")]
HAPROXY = shutil.which("haproxy") or ("/usr/sbin/haproxy" if Path("/usr/sbin/haproxy").exists()
                                      else None)


def _live_lines(start, workdir, backend):
    """Each LIVE case's log lines from the proxy `start(cfg_text, port)` starts."""
    rx = _receiver(workdir / "log.sock")
    port = free_port()
    stop = start(LIVE_CFG % {"log": workdir / "log.sock", "port": port,
                             "bport": backend.port, "closed": free_port()}, port)
    out = {}
    try:
        _quiet(rx)
        for name, raw in LIVE:
            _ask(port, raw, "eof" if name == "keep-alive" else "read")
            out[name] = [mask(line.decode(), False) for line in _quiet(rx, 1.0)]
    finally:
        stop()
        rx.close()
    return out


@pytest.mark.skipif(HAPROXY is None, reason="haproxy 2.6 is not installed")
@pytest.mark.timeout(120)
def test_redirect_return_refused_and_keepalive_are_logged_as_haproxy_logs_them(tmp_path):
    backend = ScriptedBackend("app").start()

    def haproxy(text, port):
        cfg = tmp_path / "h" / "h.cfg"
        cfg.parent.mkdir()
        cfg.write_text(text)
        proc = subprocess.Popen([HAPROXY, "-db", "-f", str(cfg)], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.05)      # polling a process we started; no event to wait on

        def stop():
            proc.terminate()
            proc.wait(10)
        return stop

    def keepwarm(text, port):
        p = ProxyProcess(text.replace("global\n", "global\n    nbthread 1\n", 1),
                         tmp_path / "k", bind_ports=[port], workers=1).start()
        return p.stop

    try:
        (tmp_path / "hl").mkdir()
        (tmp_path / "kl").mkdir()
        theirs = _live_lines(haproxy, tmp_path / "hl", backend)
        ours = _live_lines(keepwarm, tmp_path / "kl", backend)
    finally:
        backend.stop()
    for name, _ in LIVE:
        strip = [re.sub(r"( [0-9]{3}) [0-9]+ ", r"\1 B ", line) for line in theirs[name]]
        assert [re.sub(r"( [0-9]{3}) [0-9]+ ", r"\1 B ", line) for line in ours[name]] \
            == strip, name
        assert len(strip) == (2 if name == "keep-alive" else 1), theirs


# ---------------------------------------------------------------------- error-log-format

ERROR_FMT = ("%ci:%cp [%tr] %ft %b/%s %TR/%Tw/%Tc/%Tr/%Ta %ST %B %tsc "
             "%ac/%fc/%bc/%sc/%rc %sq/%bq %{+Q}r")
TLS_CFG = """global
    log %(log)s format raw local0
defaults
    mode http
    log global
    option httplog
    timeout client 2s
    timeout server 2s
    timeout connect 1s
frontend fe
    bind 127.0.0.1:%(port)d ssl crt %(crt)s
    error-log-format "%(fmt)s"
    default_backend app
backend app
    server s1 127.0.0.1:%(bport)d
"""


def _tls_error_lines(start, workdir, crt, bport):
    """The lines for plain HTTP sent to the TLS port, then a connection closed at once."""
    rx = _receiver(workdir / "log.sock")
    port = free_port()
    stop = start(TLS_CFG % {"log": workdir / "log.sock", "port": port, "crt": crt,
                            "fmt": ERROR_FMT, "bport": bport}, port)
    try:
        _quiet(rx)
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            try:
                s.recv(100)
            except OSError:
                pass
        lines = _quiet(rx, 1.0)
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
        lines += _quiet(rx, 1.0)
    finally:
        stop()
        rx.close()
    return [re.sub(r"^([0-9.]+):[0-9]+ ", r"\1:PORT ", _DATE.sub("[DATE]", x.decode()))
            for x in lines]


@pytest.mark.skipif(HAPROXY is None, reason="haproxy 2.6 is not installed")
@pytest.mark.timeout(120)
def test_error_log_format_writes_failed_tls_handshakes_as_haproxy(tmp_path):
    from tests.support.certs import CA
    (tmp_path / "certs").mkdir()
    CA().issue(str(tmp_path / "certs" / "site.pem"), ["site.test"])
    backend = ScriptedBackend("app").start()

    def haproxy(text, port):
        (tmp_path / "h").mkdir()
        cfg = tmp_path / "h" / "h.cfg"
        cfg.write_text(text)
        proc = subprocess.Popen([HAPROXY, "-db", "-f", str(cfg)], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.05)      # polling a process we started; no event to wait on

        def stop():
            proc.terminate()
            proc.wait(10)
        return stop

    def keepwarm(text, port):
        p = ProxyProcess(text.replace("global\n", "global\n    nbthread 1\n", 1),
                         tmp_path / "k", bind_ports=[port], workers=1).start()
        return p.stop

    try:
        (tmp_path / "hl").mkdir()
        (tmp_path / "kl").mkdir()
        theirs = _tls_error_lines(haproxy, tmp_path / "hl", tmp_path / "certs", backend.port)
        ours = _tls_error_lines(keepwarm, tmp_path / "kl", tmp_path / "certs", backend.port)
    finally:
        backend.stop()
    assert len(theirs) == 2 and theirs[0].endswith('PR-- 1/1/0/0/0 0/0 "<BADREQ>"\n'), theirs
    assert ours == theirs


# ---------------------------------------------------------------------- %Th over TLS

TH_CFG = """global
    nbthread 1
    log %(log)s format raw local0
defaults
    mode http
    log global
    log-format "%%Th %%Ti %%TR %%ST"
    timeout client 5s
    timeout server 5s
    timeout connect 1s
frontend fe
    bind 127.0.0.1:%(port)d ssl crt %(crt)s
    default_backend app
backend app
    server s1 127.0.0.1:%(bport)d
"""


def _tls_get(tls):
    tls.sendall(b"GET / HTTP/1.1\r\nHost: site.test\r\n\r\n")
    got = b""
    for _ in range(100):
        got += tls.recv(65536)
        head, sep, body = got.partition(b"\r\n\r\n")
        if sep:
            length = int(re.search(rb"(?i)content-length: *([0-9]+)", head).group(1))
            if len(body) >= length:
                return head.split(b" ")[1]
    raise AssertionError("no whole response: %r" % got)


@pytest.mark.timeout(60)
def test_th_is_the_tls_handshakes_time_and_ti_the_wait_after_it(tmp_path):
    """%Th: from the accept to the end of the TLS handshake, on a connection's first
    request only; %Ti: the idle time after it (HAProxy's split of the two)."""
    import ssl
    from tests.support.certs import CA
    (tmp_path / "certs").mkdir()
    ca = CA()
    ca.issue(str(tmp_path / "certs" / "site.pem"), ["site.test"])
    backend = ScriptedBackend("app").start()
    rx = _receiver(tmp_path / "log.sock")
    port = free_port()
    p = ProxyProcess(TH_CFG % {"log": tmp_path / "log.sock", "port": port,
                               "crt": tmp_path / "certs", "bport": backend.port},
                     tmp_path / "k", bind_ports=[port], workers=1).start()
    try:
        _quiet(rx)
        ctx = ssl.create_default_context(cadata=ca.pem().decode())
        with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
            time.sleep(0.4)                 # accepted, no ClientHello yet: Th grows
            with ctx.wrap_socket(raw, server_hostname="site.test") as tls:
                time.sleep(0.3)             # handshake done, no request yet: Ti grows
                assert _tls_get(tls) == b"200"
                assert _tls_get(tls) == b"200"
        lines = [x.decode().split() for x in _quiet(rx, 1.0)]
    finally:
        p.stop()
        rx.close()
        backend.stop()
    assert len(lines) == 2, lines
    (th, ti, tr, st), second = lines
    # (0.4 s and 0.3 s of client waits; bounds loose for a loaded machine's late accept)
    assert 250 <= int(th) < 2000 and 200 <= int(ti) < 600, lines
    assert 0 <= int(tr) < 300 and st == "200"
    assert second[0] == "0" and second[3] == "200", lines   # no handshake for the next one
