"""The I/O-free parts of proxy/health.py: the health counter, status display, request bytes, response reading."""

import pytest

from proxy.config import HttpCheck, Server
from proxy.config.model import Backend
from proxy.health import (RESPONSE_LIMIT, BadResponse, ServerHealth, build_request,
                          judge_response, parse_response)


def health(rise=2, fall=3, **kw):
    srv = Server("s1", "127.0.0.1", 8080, check=True, rise=rise, fall=fall, **kw)
    return ServerHealth(Backend("be", servers=(srv,)), srv, 2, ("127.0.0.1", 8080), 0.0)


def statuses(hs, results):
    out = []
    for ok in results:
        hs.record(ok)
        out.append(hs.status())
    return out


# ----------------------------------------------------------------- the counter


def test_a_checked_server_starts_up_going_down():
    hs = health()
    assert (hs.status(), hs.usable) == ("UP 1/3", True)


def test_first_failure_at_start_marks_the_server_down():
    hs = health()
    assert statuses(hs, [False]) == ["DOWN"]
    assert (hs.chkfail, hs.chkdown) == (1, 1)


def test_a_fully_up_server_needs_fall_failures_to_go_down():
    hs = health()
    assert statuses(hs, [True, False, False, False]) == ["UP", "UP 2/3", "UP 1/3", "DOWN"]


def test_one_success_restores_a_server_that_was_going_down():
    hs = health()
    assert statuses(hs, [True, False, False, True]) == ["UP", "UP 2/3", "UP 1/3", "UP"]
    assert hs.chkdown == 0


def test_a_down_server_needs_rise_successes_and_one_failure_resets_them():
    hs = health(rise=3)
    assert statuses(hs, [False, True, True, False, True, True, True]) == [
        "DOWN", "DOWN 1/3", "DOWN 2/3", "DOWN", "DOWN 1/3", "DOWN 2/3", "UP"]


def test_failures_while_fully_down_are_not_counted_in_chkfail():
    hs = health()
    statuses(hs, [False, False, False])
    assert (hs.chkfail, hs.chkdown) == (1, 1)


def test_fall_1_rise_1_flips_on_every_result():
    hs = health(rise=1, fall=1)
    assert hs.status() == "UP"
    assert statuses(hs, [False, True, False]) == ["DOWN", "UP", "DOWN"]


def test_interval_is_inter_up_fastinter_between_downinter_down():
    hs = health(inter=2.0, fastinter=0.5, downinter=10.0)
    assert hs.interval() == 0.5             # starts going down
    hs.record(True)
    assert hs.interval() == 2.0
    hs.record(False)
    assert hs.interval() == 0.5
    hs.record(False)
    hs.record(False)
    assert hs.interval() == 10.0
    hs.record(True)
    assert hs.interval() == 0.5


def test_fastinter_and_downinter_fall_back_to_inter():
    hs = health(inter=3.0)
    assert hs.interval() == 3.0
    hs.record(False)
    assert hs.interval() == 3.0


# ----------------------------------------------------------------- request bytes


def test_request_adds_connection_close_and_content_length():
    chk = HttpCheck(method="POST", uri="/x", version="HTTP/1.0", body="abc")
    assert build_request(chk, "h") == (b"POST /x HTTP/1.0\r\nContent-Length: 3\r\n"
                                       b"Connection: close\r\n\r\nabc")


def test_request_keeps_configured_host_and_connection():
    chk = HttpCheck(method="GET", uri="/", version="HTTP/1.1",
                    headers=(("host", "a"), ("Connection", "keep-alive")))
    assert build_request(chk, "ignored") == (b"GET / HTTP/1.1\r\nhost: a\r\n"
                                             b"Connection: keep-alive\r\n\r\n")


def test_http10_request_gets_no_host():
    assert build_request(HttpCheck(), "h") == b"OPTIONS / HTTP/1.0\r\nConnection: close\r\n\r\n"


# ----------------------------------------------------------------- response reading


def test_response_needs_the_whole_head():
    assert parse_response(b"HTTP/1.1 200 OK\r\nContent-Le", False, "GET") is None


def test_response_with_content_length_completes_without_eof():
    assert parse_response(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi", False, "GET") == \
        (200, "OK", b"hi")


def test_response_without_framing_waits_for_eof():
    raw = b"HTTP/1.0 200 OK\r\n\r\nbody"
    assert parse_response(raw, False, "GET") is None
    assert parse_response(raw, True, "GET") == (200, "OK", b"body")


def test_head_and_204_responses_have_no_body():
    raw = b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n"
    assert parse_response(raw, False, "HEAD") == (200, "OK", b"")
    assert parse_response(b"HTTP/1.1 204 No Content\r\n\r\n", False, "GET") == \
        (204, "No Content", b"")


def test_status_line_without_reason_phrase():
    assert parse_response(b"HTTP/1.1 503\r\nContent-Length: 0\r\n\r\n", False, "GET") == \
        (503, "", b"")


def test_chunked_body_is_decoded():
    raw = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3;x=y\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"
    assert parse_response(raw, False, "GET") == (200, "OK", b"abcde")
    assert parse_response(raw[:-9], False, "GET") is None


def test_interim_responses_are_skipped():
    raw = (b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: x\r\n\r\n"
           b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
    assert parse_response(raw, False, "GET") == (200, "OK", b"")


def test_full_buffer_is_judged_on_what_it_holds():
    raw = b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n"
    raw += b"x" * (RESPONSE_LIMIT - len(raw))
    status, _, body = parse_response(raw, False, "GET")
    assert status == 200 and len(body) < RESPONSE_LIMIT


@pytest.mark.parametrize("raw,eof", [
    (b"", True),
    (b"HTTP/1.1 200 OK\r\n", True),
    (b"garbage\r\n\r\n", False),
    (b"HTTP/1.1 2000 OK\r\n\r\n", False),
    (b"HTTP/1.1 200 OK\r\nno colon\r\n\r\n", False),
    (b"x" * RESPONSE_LIMIT, False),
])
def test_bad_responses_are_rejected(raw, eof):
    with pytest.raises(BadResponse):
        parse_response(raw, eof, "GET")


# ----------------------------------------------------------------- expect


@pytest.mark.parametrize("chk,status,body,expected", [
    (HttpCheck(), 200, b"", "L7OK"),
    (HttpCheck(), 399, b"", "L7OK"),
    (HttpCheck(), 199, b"", "L7STS"),
    (HttpCheck(), 500, b"", "L7STS"),
    (HttpCheck(expect_kind="status", expect_status="200,204"), 204, b"", "L7OK"),
    (HttpCheck(expect_kind="status", expect_status="200-299"), 302, b"", "L7STS"),
    (HttpCheck(expect_kind="status", expect_status="200", expect_negate=True), 500, b"", "L7OK"),
    (HttpCheck(expect_kind="rstatus", expect_status="^2"), 201, b"", "L7OK"),
    (HttpCheck(expect_kind="rstatus", expect_status="^2"), 500, b"", "L7STS"),
    (HttpCheck(expect_kind="string", expect_string="OK"), 500, b"all OK", "L7OK"),
    (HttpCheck(expect_kind="string", expect_string="OK"), 200, b"nope", "L7RSP"),
    (HttpCheck(expect_kind="rstring", expect_string="v[0-9]+"), 200, b"v12", "L7OK"),
    (HttpCheck(expect_kind="rstring", expect_string="v[0-9]+"), 200, b"vx", "L7RSP"),
])
def test_expect_rules(chk, status, body, expected):
    assert judge_response(chk, status, "R", body)[0] == expected


def test_wrong_status_info_is_the_reason_phrase():
    assert judge_response(HttpCheck(), 503, "Service Unavailable", b"") == \
        ("L7STS", "Service Unavailable")
