"""proxy.http1.rewrite: header rules and X-Forwarded-For on a head, without sockets."""

import ipaddress

from proxy.config.model import ForwardFor
from proxy.http1.rewrite import apply_rules, forwarded_for

HEAD = b"GET / HTTP/1.1\r\nHost: a\r\nX-Old: 1\r\nx-old: 2\r\nAccept: */*\r\n"


def test_set_header_replaces_every_line_of_that_name_and_appends_one():
    out = apply_rules(HEAD, [("set-header", "X-Old", "new")])
    assert out == b"GET / HTTP/1.1\r\nHost: a\r\nAccept: */*\r\nX-Old: new\r\n"


def test_add_header_appends_and_keeps_existing_lines():
    out = apply_rules(HEAD, [("add-header", "X-Extra", "v")])
    assert out == HEAD + b"X-Extra: v\r\n"


def test_del_header_removes_every_line_of_that_name_case_insensitively():
    out = apply_rules(HEAD, [("del-header", "X-OLD", None)])
    assert out == b"GET / HTTP/1.1\r\nHost: a\r\nAccept: */*\r\n"


def test_rules_apply_in_order():
    out = apply_rules(HEAD, [("add-header", "X-A", "1"), ("del-header", "x-a", None),
                             ("set-header", "X-B", "2")])
    assert out.endswith(b"Accept: */*\r\nX-B: 2\r\n")


def test_forwardfor_adds_the_client_address():
    assert forwarded_for(HEAD, ForwardFor(), "10.1.2.3") == ((b"X-Forwarded-For", b"10.1.2.3"),)


def test_forwardfor_except_network_adds_nothing():
    ff = ForwardFor(except_nets=(ipaddress.ip_network("127.0.0.0/8"),))
    assert forwarded_for(HEAD, ff, "127.0.0.1") == ()
    assert forwarded_for(HEAD, ff, "10.0.0.1") == ((b"X-Forwarded-For", b"10.0.0.1"),)


def test_forwardfor_if_none_keeps_an_existing_header():
    head = HEAD + b"x-forwarded-for: 1.1.1.1\r\n"
    assert forwarded_for(head, ForwardFor(if_none=True), "10.0.0.1") == ()
    assert forwarded_for(head, ForwardFor(), "10.0.0.1") == ((b"X-Forwarded-For", b"10.0.0.1"),)


def test_forwardfor_custom_header_name():
    assert forwarded_for(HEAD, ForwardFor(header="X-Client"), "10.0.0.1") == ((b"X-Client", b"10.0.0.1"),)


def test_output_is_a_valid_head_prefix():
    out = apply_rules(HEAD, [("add-header", "X-A", "1")], ((b"X-Forwarded-For", b"10.0.0.1"),))
    assert out.endswith(b"\r\n") and b"\r\n\r\n" not in out
