"""Head parser conformance table, run on both implementations, whole and split at every byte."""

import pytest

from _native import constants as K
from _native.testing import IMPLEMENTATIONS, parse, parse_in_pieces

E = K  # error codes read E.E_METHOD etc.
GET = K.M_GET


def req(*lines, body=b""):
    return b"".join(x + b"\r\n" for x in lines) + b"\r\n" + body


def resp(*lines, body=b""):
    return req(*lines, body=body)


H = b"Host: a"
OK = b"HTTP/1.1 200 OK"

# (id, kind, data, expected, parser kwargs).  expected is an error code, or a dict
# of fields checked on the result: method, target, version, status, reason, cl,
# flags (always checked, default 0), nh, host, other, end (default len(data)).
CASES = [
    # --- valid requests: start line ---
    ("get_minimal", "req", req(b"GET / HTTP/1.1", H), dict(method=GET, target=b"/", version=11, host=1, nh=1)),
    ("http10_no_headers", "req", req(b"GET / HTTP/1.0"), dict(version=10, nh=0, host=0)),
    ("method_head", "req", req(b"HEAD / HTTP/1.1", H), dict(method=K.M_HEAD)),
    ("method_post", "req", req(b"POST / HTTP/1.1", H), dict(method=K.M_POST)),
    ("method_put", "req", req(b"PUT / HTTP/1.1", H), dict(method=K.M_PUT)),
    ("method_delete", "req", req(b"DELETE / HTTP/1.1", H), dict(method=K.M_DELETE)),
    ("method_options", "req", req(b"OPTIONS * HTTP/1.1", H), dict(method=K.M_OPTIONS, target=b"*")),
    ("method_trace", "req", req(b"TRACE / HTTP/1.1", H), dict(method=K.M_TRACE)),
    ("method_connect_authority_form", "req", req(b"CONNECT example.com:443 HTTP/1.1", H),
     dict(method=K.M_CONNECT, target=b"example.com:443")),
    ("method_patch", "req", req(b"PATCH / HTTP/1.1", H), dict(method=K.M_PATCH)),
    ("method_lowercase_is_other", "req", req(b"get / HTTP/1.1", H), dict(method=K.M_OTHER)),
    ("method_extension_is_other", "req", req(b"PROPFIND /dav HTTP/1.1", H), dict(method=K.M_OTHER)),
    ("method_with_token_specials", "req", req(b"M-SEARCH / HTTP/1.1", H), dict(method=K.M_OTHER)),
    ("method_prefix_of_known_is_other", "req", req(b"GETS / HTTP/1.1", H), dict(method=K.M_OTHER)),
    ("absolute_form_target", "req", req(b"GET http://example.com:8080/x?y=1&z=%20 HTTP/1.1", H),
     dict(target=b"http://example.com:8080/x?y=1&z=%20")),
    # RFC 9112 §3.2: each form for the methods that may use it (HAProxy: the same, but it
    # forwards "*" with any method, see haproxy_answers.json)
    ("absolute_form_any_scheme", "req", req(b"GET foo+bar-1.2://x/ HTTP/1.1", H), dict(target=b"foo+bar-1.2://x/")),
    ("absolute_form_with_options", "req", req(b"OPTIONS https://x HTTP/1.1", H), dict(method=K.M_OPTIONS)),
    ("origin_form_double_slash", "req", req(b"GET //x/a HTTP/1.1", H), dict(target=b"//x/a")),
    ("connect_ipv6_authority", "req", req(b"CONNECT [::1]:443 HTTP/1.1", H), dict(method=K.M_CONNECT)),
    ("target_with_all_visible_ascii", "req", req(b"GET /!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~ HTTP/1.1", H),
     dict(target=b"/!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~")),
    ("one_leading_empty_line_ignored", "req", b"\r\n" + req(b"GET / HTTP/1.1", H), dict(method=GET, method_off=2)),
    ("several_leading_empty_lines_ignored", "req", b"\r\n\r\n\r\n" + req(b"GET /x HTTP/1.1", H),
     dict(method_off=6, target=b"/x")),
    ("http_1_2_is_handled_as_1_1", "req", req(b"GET / HTTP/1.2", H),
     dict(version=11, flags=K.F_NORMALIZE | K.F_HOP)),
    ("http_1_9_is_handled_as_1_1", "req", req(b"GET / HTTP/1.9", H),
     dict(version=11, flags=K.F_NORMALIZE | K.F_HOP)),
    ("pipelined_bytes_after_head_not_consumed", "req", req(b"GET / HTTP/1.1", H) + b"GET /2 HTTP/1.1\r\n",
     dict(end=len(req(b"GET / HTTP/1.1", H)))),
    ("body_after_head_not_consumed", "req", req(b"POST / HTTP/1.1", H, b"Content-Length: 3", body=b"abc"),
     dict(cl=3, flags=K.F_CL, end=len(req(b"POST / HTTP/1.1", H, b"Content-Length: 3")))),
    # --- valid requests: header syntax ---
    ("header_value_ows_trimmed", "req", req(b"GET / HTTP/1.1", b"X:  \t v a l \t "), dict(nh=1)),
    ("header_empty_value", "req", req(b"GET / HTTP/1.1", b"X:"), dict(nh=1)),
    ("header_value_only_ows", "req", req(b"GET / HTTP/1.1", b"X: \t "), dict(nh=1)),
    ("header_value_obs_text", "req", req(b"GET / HTTP/1.1", b"X: caf\xc3\xa9 \xff"), dict(nh=1)),
    ("header_value_inner_htab", "req", req(b"GET / HTTP/1.1", b"X: a\tb"), dict(nh=1)),
    ("header_name_all_token_specials", "req", req(b"GET / HTTP/1.1", b"!#$%&'*+-.^_`|~09azAZ: v"), dict(nh=1)),
    ("header_value_with_colons", "req", req(b"GET / HTTP/1.1", b"X: a:b::c"), dict(nh=1)),
    ("host_counted_twice", "req", req(b"GET / HTTP/1.1", H, b"host: b"), dict(host=2, nh=2)),
    ("host_name_case_insensitive", "req", req(b"GET / HTTP/1.1", b"HOST: a"), dict(host=1)),
    ("max_headers_exactly", "req", req(b"GET / HTTP/1.1", *[b"X-%d: v" % i for i in range(101)]), dict(nh=101)),
    # --- valid requests: framing facts ---
    ("content_length_zero", "req", req(b"POST / HTTP/1.1", H, b"Content-Length: 0"), dict(cl=0, flags=K.F_CL)),
    ("content_length_value", "req", req(b"POST / HTTP/1.1", H, b"content-length: 42"), dict(cl=42, flags=K.F_CL)),
    ("content_length_ows", "req", req(b"POST / HTTP/1.1", H, b"Content-Length: \t 42 \t"), dict(cl=42, flags=K.F_CL)),
    ("content_length_leading_zeros", "req", req(b"POST / HTTP/1.1", H, b"Content-Length: 0005"), dict(cl=5, flags=K.F_CL)),
    # a list or a repeat is forwarded as one field (RFC 9112 §6.3 (5)): F_HOP has it rewritten
    ("content_length_identical_list", "req", req(b"POST / HTTP/1.1", H, b"Content-Length: 5, 5,5"),
     dict(cl=5, flags=K.F_CL | K.F_HOP)),
    ("content_length_identical_repeat", "req", req(b"POST / HTTP/1.1", H, b"Content-Length: 7", b"Content-Length: 07"),
     dict(cl=7, flags=K.F_CL | K.F_HOP)),
    ("content_length_largest", "req", req(b"POST / HTTP/1.1", H, b"Content-Length: 999999999999999999"),
     dict(cl=999999999999999999, flags=K.F_CL)),
    ("te_chunked", "req", req(b"POST / HTTP/1.1", H, b"Transfer-Encoding: chunked"), dict(flags=K.F_TE | K.F_CHUNKED)),
    ("te_chunked_case_insensitive", "req", req(b"POST / HTTP/1.1", H, b"transfer-encoding: ChUnKeD"),
     dict(flags=K.F_TE | K.F_CHUNKED)),
    ("te_gzip_then_chunked", "req", req(b"POST / HTTP/1.1", H, b"Transfer-Encoding: gzip, chunked"),
     dict(flags=K.F_TE | K.F_CHUNKED)),
    ("te_list_over_two_lines", "req", req(b"POST / HTTP/1.1", H, b"Transfer-Encoding: gzip", b"Transfer-Encoding: chunked"),
     dict(flags=K.F_TE | K.F_CHUNKED)),
    ("te_empty_list_elements_ignored", "req", req(b"POST / HTTP/1.1", H, b"Transfer-Encoding: , chunked ,"),
     dict(flags=K.F_TE | K.F_CHUNKED)),
    ("conn_close", "req", req(b"GET / HTTP/1.1", H, b"Connection: close"), dict(flags=K.F_HOP | K.F_CONN_CLOSE)),
    ("conn_close_case_insensitive", "req", req(b"GET / HTTP/1.1", H, b"connection: CLOSE"), dict(flags=K.F_HOP | K.F_CONN_CLOSE)),
    ("conn_keep_alive_http10", "req", req(b"GET / HTTP/1.0", b"Connection: Keep-Alive"),
     dict(version=10, flags=K.F_HOP | K.F_CONN_KEEPALIVE)),
    ("conn_upgrade_websocket", "req", req(b"GET /ws HTTP/1.1", H, b"Connection: Upgrade", b"Upgrade: websocket"),
     dict(flags=K.F_HOP | K.F_CONN_UPGRADE | K.F_UPGRADE)),
    ("conn_tokens_with_ows_and_empty", "req", req(b"GET / HTTP/1.1", H, b"Connection: ,keep-alive , ,\tclose,"),
     dict(flags=K.F_HOP | K.F_CONN_CLOSE | K.F_CONN_KEEPALIVE)),
    ("conn_other_tokens_counted", "req", req(b"GET / HTTP/1.1", H, b"Connection: close, X-A", b"Connection: x-b"),
     dict(flags=K.F_HOP | K.F_CONN_CLOSE | K.F_CONN_OTHER, other=2)),
    ("keep_alive_header_is_hop", "req", req(b"GET / HTTP/1.1", H, b"Keep-Alive: timeout=5"), dict(flags=K.F_HOP | K.F_KEEPALIVE_HDR)),
    ("te_header_is_hop", "req", req(b"GET / HTTP/1.1", H, b"TE: trailers"), dict(flags=K.F_HOP)),
    ("trailer_header_is_hop", "req", req(b"GET / HTTP/1.1", H, b"Trailer: X-Sum"), dict(flags=K.F_HOP)),
    ("upgrade_header_alone", "req", req(b"GET / HTTP/1.1", H, b"Upgrade: h2c"), dict(flags=K.F_HOP | K.F_UPGRADE)),
    ("proxy_connection_not_interpreted", "req", req(b"GET / HTTP/1.1", H, b"Proxy-Connection: close"),
     dict(flags=K.F_HOP | K.F_PROXY_CONN)),
    ("expect_100_continue", "req", req(b"POST / HTTP/1.1", H, b"Expect: 100-continue", b"Content-Length: 1"),
     dict(flags=K.F_EXPECT_CONTINUE | K.F_CL, cl=1)),
    ("expect_100_continue_case_and_ows", "req", req(b"POST / HTTP/1.1", H, b"expect:  100-CONTINUE "),
     dict(flags=K.F_EXPECT_CONTINUE)),
    ("expect_other_value_no_flag", "req", req(b"POST / HTTP/1.1", H, b"Expect: 100-continue-x"), dict(flags=0)),
    ("auth_ntlm_request", "req", req(b"GET / HTTP/1.1", H, b"Authorization: NTLM TlRMTVNTUAABAAAA"), dict(flags=K.F_AUTH_CONN)),
    ("auth_negotiate_request", "req", req(b"GET / HTTP/1.1", H, b"authorization: negotiate YIIabc"), dict(flags=K.F_AUTH_CONN)),
    ("auth_basic_request_not_bound", "req", req(b"GET / HTTP/1.1", H, b"Authorization: Basic dXNlcjpwYXNz"), dict(flags=0)),
    ("auth_ntlmx_scheme_not_bound", "req", req(b"GET / HTTP/1.1", H, b"Authorization: NTLMX abc"), dict(flags=0)),
    ("www_authenticate_in_request_ignored", "req", req(b"GET / HTTP/1.1", H, b"WWW-Authenticate: NTLM"), dict(flags=0)),
    # --- request errors ---
    ("err_method_leading_space", "req", req(b" GET / HTTP/1.1", H), E.E_METHOD),
    ("err_method_bad_char", "req", req(b"GE(T / HTTP/1.1", H), E.E_METHOD),
    ("err_method_tab_separator", "req", req(b"GET\t/ HTTP/1.1", H), E.E_METHOD),
    ("err_method_no_space_before_target", "req", req(b"GET/ HTTP/1.1", H), E.E_METHOD),
    ("err_method_only", "req", req(b"GET", H), E.E_METHOD),
    ("err_binary_garbage", "req", b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n", E.E_METHOD),
    ("err_target_empty_double_space", "req", req(b"GET  HTTP/1.1", H), E.E_TARGET),
    ("err_target_ctl", "req", req(b"GET /a\x01b HTTP/1.1", H), E.E_TARGET),
    ("err_target_del", "req", req(b"GET /a\x7f HTTP/1.1", H), E.E_TARGET),
    ("err_target_8bit", "req", req(b"GET /caf\xc3\xa9 HTTP/1.1", H), E.E_TARGET),
    ("err_target_tab", "req", req(b"GET /a\tb HTTP/1.1", H), E.E_TARGET),
    ("err_target_nul", "req", req(b"GET /\x00 HTTP/1.1", H), E.E_TARGET),
    ("err_target_relative", "req", req(b"GET foo HTTP/1.1", H), E.E_TARGET),
    ("err_target_relative_dot", "req", req(b"GET ./foo HTTP/1.1", H), E.E_TARGET),
    ("err_target_relative_options", "req", req(b"OPTIONS foo HTTP/1.1", H), E.E_TARGET),
    ("err_target_asterisk_with_get", "req", req(b"GET * HTTP/1.1", H), E.E_TARGET),
    ("err_target_asterisk_with_extension_method", "req", req(b"M-SEARCH * HTTP/1.1", H), E.E_TARGET),
    ("err_target_asterisk_with_suffix", "req", req(b"OPTIONS *x HTTP/1.1", H), E.E_TARGET),
    ("err_target_authority_with_get", "req", req(b"GET x:80 HTTP/1.1", H), E.E_TARGET),
    ("err_target_scheme_without_slashes", "req", req(b"GET http:x HTTP/1.1", H), E.E_TARGET),
    ("err_target_scheme_digit_first", "req", req(b"GET 1http://x/ HTTP/1.1", H), E.E_TARGET),
    ("err_target_scheme_empty", "req", req(b"GET ://x/ HTTP/1.1", H), E.E_TARGET),
    ("err_connect_origin_form", "req", req(b"CONNECT / HTTP/1.1", H), E.E_TARGET),
    ("err_connect_asterisk", "req", req(b"CONNECT * HTTP/1.1", H), E.E_TARGET),
    ("err_connect_no_port", "req", req(b"CONNECT x HTTP/1.1", H), E.E_TARGET),
    ("err_connect_empty_port", "req", req(b"CONNECT x: HTTP/1.1", H), E.E_TARGET),
    ("err_connect_no_host", "req", req(b"CONNECT :443 HTTP/1.1", H), E.E_TARGET),
    ("err_connect_absolute_form", "req", req(b"CONNECT http://x:443/ HTTP/1.1", H), E.E_TARGET),
    ("err_target_form_judged_after_version", "req", req(b"GET foo HTTP/2.0", H), E.E_VERSION_UNSUPPORTED),
    ("err_target_form_before_headers", "req", req(b"GET foo HTTP/1.1", b"Bad Name: x"), E.E_TARGET),
    ("err_version_missing_http09", "req", req(b"GET /", H), E.E_VERSION),
    ("err_version_lowercase", "req", req(b"GET / http/1.1", H), E.E_VERSION),
    ("err_version_trailing_space", "req", req(b"GET / HTTP/1.1 ", H), E.E_VERSION),
    ("err_version_no_minor", "req", req(b"GET / HTTP/1", H), E.E_VERSION),
    ("err_version_two_digit_minor", "req", req(b"GET / HTTP/1.10", H), E.E_VERSION),
    ("err_version_letters", "req", req(b"GET / HTTP/a.b", H), E.E_VERSION),
    ("err_version_extra_token", "req", req(b"GET / x HTTP/1.1", H), E.E_VERSION),
    ("err_version_http2", "req", req(b"GET / HTTP/2.0", H), E.E_VERSION_UNSUPPORTED),
    ("err_version_h2_preface", "req", b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", E.E_VERSION_UNSUPPORTED),
    ("err_version_http09_explicit", "req", req(b"GET / HTTP/0.9", H), E.E_VERSION_UNSUPPORTED),
    ("err_bare_lf_everywhere", "req", b"GET / HTTP/1.1\nHost: a\n\n", E.E_BARE_LF),
    ("err_bare_lf_after_request_line", "req", b"GET / HTTP/1.1\nHost: a\r\n\r\n", E.E_BARE_LF),
    ("err_bare_lf_after_header", "req", b"GET / HTTP/1.1\r\nHost: a\nX: b\r\n\r\n", E.E_BARE_LF),
    ("err_bare_lf_final_line", "req", b"GET / HTTP/1.1\r\nHost: a\r\n\n", E.E_BARE_LF),
    ("err_bare_lf_leading_line", "req", b"\nGET / HTTP/1.1\r\n\r\n", E.E_BARE_LF),
    ("err_bare_cr_in_value", "req", req(b"GET / HTTP/1.1", b"X: a\rb"), E.E_BARE_CR),
    ("err_bare_cr_after_version", "req", b"GET / HTTP/1.1\r\r\n\r\n", E.E_BARE_CR),
    ("err_bare_cr_in_name", "req", req(b"GET / HTTP/1.1", b"Ho\rst: a"), E.E_BARE_CR),
    ("err_bare_cr_leading", "req", b"\rGET / HTTP/1.1\r\n\r\n", E.E_BARE_CR),
    ("err_bare_cr_line_start", "req", b"GET / HTTP/1.1\r\n\rX: a\r\n\r\n", E.E_BARE_CR),
    # a bare CR is answered as soon as the byte after it is there: lines ended by bare
    # CRs never make a complete head (they waited for timeout http-request)
    ("err_bare_cr_line_ends_never_complete", "req", b"GET / HTTP/1.1\rHost: x\r\r", E.E_BARE_CR),
    ("err_bare_cr_after_header_incomplete", "req", b"GET / HTTP/1.1\r\nHost: x\rX-A: b\r", E.E_BARE_CR),
    ("err_bare_cr_in_target_incomplete", "req", b"GET /\rfoo", E.E_BARE_CR),
    ("err_bare_cr_after_empty_lines", "req", b"\r\n\r\n\rG", E.E_BARE_CR),
    ("err_bare_cr_beats_earlier_error", "req", req(b"GET /\x01 HTTP/1.1", b"X: a\rb"), E.E_BARE_CR),
    ("err_bare_cr_beats_limits", "req", b"GET / HTTP/1.1\r\nA\rcdefgh", E.E_BARE_CR, dict(max_head=20)),
    ("err_bare_cr_with_next_byte_before_head_limit", "req", b"GET / HTTP/1.1\r\nA:\rde", E.E_BARE_CR,
     dict(max_head=20)),
    ("err_bare_cr_last_before_head_limit", "req", b"GET / HTTP/1.1\r\nA: \rd", E.E_HEAD_TOO_LARGE,
     dict(max_head=20)),
    ("err_bare_cr_within_long_line", "req", b"GET /a\rXYZW", E.E_BARE_CR, dict(max_line=8)),
    ("err_bare_cr_past_line_limit", "req", b"GET /abc\rXYZ", E.E_LINE_TOO_LONG, dict(max_line=8)),
    ("err_bare_cr_after_start_line_not_line_limited", "req", b"GET / HTTP/1.1\r\nA\rb", E.E_BARE_CR,
     dict(max_line=16)),
    ("err_header_name_empty", "req", req(b"GET / HTTP/1.1", b": v"), E.E_HEADER_NAME),
    ("err_header_name_paren", "req", req(b"GET / HTTP/1.1", b"Ho(st: a"), E.E_HEADER_NAME),
    ("err_header_name_nul", "req", req(b"GET / HTTP/1.1", b"H\x00st: a"), E.E_HEADER_NAME),
    ("err_header_name_8bit", "req", req(b"GET / HTTP/1.1", b"H\xc3\xb3st: a"), E.E_HEADER_NAME),
    ("err_header_name_quoted", "req", req(b"GET / HTTP/1.1", b'"x": y'), E.E_HEADER_NAME),
    ("err_header_name_slash", "req", req(b"GET / HTTP/1.1", b"a/b: y"), E.E_HEADER_NAME),
    ("err_space_before_colon", "req", req(b"GET / HTTP/1.1", b"Host : a"), E.E_SPACE_BEFORE_COLON),
    ("err_tab_before_colon", "req", req(b"GET / HTTP/1.1", b"Host\t: a"), E.E_SPACE_BEFORE_COLON),
    ("err_space_before_colon_content_length", "req",
     req(b"POST / HTTP/1.1", H, b"Content-Length : 5", body=b"hello"), E.E_SPACE_BEFORE_COLON),
    ("err_space_inside_name", "req", req(b"GET / HTTP/1.1", b"X Y: z"), E.E_SPACE_BEFORE_COLON),
    ("err_no_colon", "req", req(b"GET / HTTP/1.1", b"Hosta"), E.E_NO_COLON),
    ("err_value_nul", "req", req(b"GET / HTTP/1.1", b"X: a\x00b"), E.E_HEADER_VALUE),
    ("err_value_del", "req", req(b"GET / HTTP/1.1", b"X: a\x7f"), E.E_HEADER_VALUE),
    ("err_value_ctl_only", "req", req(b"GET / HTTP/1.1", b"X: \x01"), E.E_HEADER_VALUE),
    ("err_value_escape", "req", req(b"GET / HTTP/1.1", b"X: a\x1b[0mb"), E.E_HEADER_VALUE),
    ("err_value_vertical_tab", "req", req(b"GET / HTTP/1.1", b"X: a\x0bb"), E.E_HEADER_VALUE),
    ("err_obs_fold_space", "req", req(b"GET / HTTP/1.1", b"X: a", b" b"), E.E_OBS_FOLD),
    ("err_obs_fold_tab", "req", req(b"GET / HTTP/1.1", b"X: a", b"\tb"), E.E_OBS_FOLD),
    ("err_space_before_first_header", "req", req(b"GET / HTTP/1.1", b" Host: a"), E.E_OBS_FOLD),
    ("err_cl_negative", "req", req(b"POST / HTTP/1.1", b"Content-Length: -1"), E.E_CONTENT_LENGTH),
    ("err_cl_plus_sign", "req", req(b"POST / HTTP/1.1", b"Content-Length: +5"), E.E_CONTENT_LENGTH),
    ("err_cl_hex", "req", req(b"POST / HTTP/1.1", b"Content-Length: 0x10"), E.E_CONTENT_LENGTH),
    ("err_cl_inner_space", "req", req(b"POST / HTTP/1.1", b"Content-Length: 5 5"), E.E_CONTENT_LENGTH),
    ("err_cl_empty", "req", req(b"POST / HTTP/1.1", b"Content-Length:"), E.E_CONTENT_LENGTH),
    ("err_cl_trailing_comma", "req", req(b"POST / HTTP/1.1", b"Content-Length: 5,"), E.E_CONTENT_LENGTH),
    ("err_cl_leading_comma", "req", req(b"POST / HTTP/1.1", b"Content-Length: ,5"), E.E_CONTENT_LENGTH),
    ("err_cl_exponent", "req", req(b"POST / HTTP/1.1", b"Content-Length: 1e3"), E.E_CONTENT_LENGTH),
    ("err_cl_too_big", "req", req(b"POST / HTTP/1.1", b"Content-Length: 1000000000000000000"), E.E_CONTENT_LENGTH),
    ("err_cl_19_nines_no_overflow", "req", req(b"POST / HTTP/1.1", b"Content-Length: 9999999999999999999"), E.E_CONTENT_LENGTH),
    ("err_cl_overflow_64bit", "req", req(b"POST / HTTP/1.1", b"Content-Length: 18446744073709551617"), E.E_CONTENT_LENGTH),
    ("err_cl_unicode_digit", "req", req(b"POST / HTTP/1.1", b"Content-Length: \xd9\xa5"), E.E_CONTENT_LENGTH),
    ("err_cl_list_with_junk", "req", req(b"POST / HTTP/1.1", b"Content-Length: 5, x"), E.E_CONTENT_LENGTH),
    ("err_cl_conflict_list", "req", req(b"POST / HTTP/1.1", b"Content-Length: 5, 6"), E.E_CL_CONFLICT),
    ("err_cl_conflict_lines", "req", req(b"POST / HTTP/1.1", b"Content-Length: 5", b"Content-Length: 6"), E.E_CL_CONFLICT),
    ("err_cl_conflict_before_junk", "req", req(b"POST / HTTP/1.1", b"Content-Length: 5, 6, x"), E.E_CL_CONFLICT),
    ("err_cl_then_te", "req", req(b"POST / HTTP/1.1", b"Content-Length: 5", b"Transfer-Encoding: chunked"), E.E_CL_TE),
    ("err_te_then_cl", "req", req(b"POST / HTTP/1.1", b"Transfer-Encoding: chunked", b"Content-Length: 5"), E.E_CL_TE),
    ("err_cl_and_te_gzip", "req", req(b"POST / HTTP/1.1", b"Transfer-Encoding: gzip", b"Content-Length: 5"), E.E_CL_TE),
    ("err_te_not_chunked", "req", req(b"POST / HTTP/1.1", b"Transfer-Encoding: gzip"), E.E_TE),
    ("err_te_chunked_not_last", "req", req(b"POST / HTTP/1.1", b"Transfer-Encoding: chunked, gzip"), E.E_TE),
    ("err_te_chunked_twice", "req", req(b"POST / HTTP/1.1", b"Transfer-Encoding: chunked, chunked"), E.E_TE),
    ("err_te_chunked_twice_lines", "req", req(b"POST / HTTP/1.1", b"Transfer-Encoding: chunked", b"Transfer-Encoding: chunked"), E.E_TE),
    ("err_te_xchunked", "req", req(b"POST / HTTP/1.1", b"Transfer-Encoding: xchunked"), E.E_TE),
    ("err_te_chunked_identity", "req", req(b"POST / HTTP/1.1", b"Transfer-Encoding: chunked, identity"), E.E_TE),
    ("err_te_chunked_with_param", "req", req(b"POST / HTTP/1.1", b"Transfer-Encoding: chunked;q=1"), E.E_TE),
    ("err_te_quoted", "req", req(b"POST / HTTP/1.1", b'Transfer-Encoding: "chunked"'), E.E_TE),
    ("err_te_empty", "req", req(b"POST / HTTP/1.1", b"Transfer-Encoding:"), E.E_TE),
    ("err_te_chunked_then_gzip_line", "req", req(b"POST / HTTP/1.1", b"Transfer-Encoding: chunked", b"Transfer-Encoding: gzip"), E.E_TE),
    ("err_te_space_inside", "req", req(b"POST / HTTP/1.1", b"Transfer-Encoding: chun ked"), E.E_TE),
    ("err_te_http10", "req", req(b"POST / HTTP/1.0", b"Transfer-Encoding: chunked"), E.E_TE_HTTP10),
    ("err_request_line_too_long", "req", req(b"GET /" + b"a" * 100 + b" HTTP/1.1", H), E.E_LINE_TOO_LONG, dict(max_line=64)),
    ("request_line_at_limit", "req", req(b"GET /" + b"a" * 48 + b" HTTP/1.1", H), dict(nh=1), dict(max_line=64)),
    ("err_request_line_one_over_limit", "req", req(b"GET /" + b"a" * 49 + b" HTTP/1.1", H), E.E_LINE_TOO_LONG, dict(max_line=64)),
    ("err_head_too_large", "req", req(b"GET / HTTP/1.1", b"X: " + b"v" * 100), E.E_HEAD_TOO_LARGE, dict(max_head=64)),
    ("head_at_limit", "req", req(b"GET / HTTP/1.1", b"X: " + b"v" * 41), dict(nh=1), dict(max_head=64)),
    ("err_head_one_over_limit", "req", req(b"GET / HTTP/1.1", b"X: " + b"v" * 42), E.E_HEAD_TOO_LARGE, dict(max_head=64)),
    ("err_leading_empty_lines_count_toward_head", "req", b"\r\n" * 40 + req(b"GET / HTTP/1.1"), E.E_HEAD_TOO_LARGE,
     dict(max_head=64)),
    ("err_long_line_beats_head_limit", "req", req(b"GET /" + b"a" * 100 + b" HTTP/1.1"), E.E_LINE_TOO_LONG,
     dict(max_line=32, max_head=64)),
    ("err_head_limit_reached_before_line_limit", "req", req(b"GET /" + b"a" * 100 + b" HTTP/1.1"), E.E_HEAD_TOO_LARGE,
     dict(max_line=80, max_head=64)),
    ("err_too_many_headers", "req", req(b"GET / HTTP/1.1", b"A: 1", b"B: 2", b"C: 3"), E.E_TOO_MANY_HEADERS,
     dict(max_headers=2)),
    ("err_too_many_headers_default", "req", req(b"GET / HTTP/1.1", *[b"X-%d: v" % i for i in range(102)]),
     E.E_TOO_MANY_HEADERS),
    ("err_first_error_wins_name_before_cl", "req", req(b"POST / HTTP/1.1", b"Bad Name: x", b"Content-Length: y"),
     E.E_SPACE_BEFORE_COLON),
    ("err_first_error_wins_cl_before_name", "req", req(b"POST / HTTP/1.1", b"Content-Length: y", b"Bad Name: x"),
     E.E_CONTENT_LENGTH),
    # --- valid responses ---
    ("resp_ok", "resp", resp(OK, b"Content-Length: 5", body=b"hello"),
     dict(status=200, reason=b"OK", version=11, cl=5, flags=K.F_CL, end=len(resp(OK, b"Content-Length: 5")))),
    ("resp_no_reason_no_space", "resp", resp(b"HTTP/1.1 204"), dict(status=204, reason=b"")),
    ("resp_empty_reason", "resp", resp(b"HTTP/1.1 204 "), dict(status=204, reason=b"")),
    ("resp_reason_with_spaces_and_obs_text", "resp", resp(b"HTTP/1.1 404 Not \tFound \xe9"),
     dict(status=404, reason=b"Not \tFound \xe9")),
    ("resp_http10", "resp", resp(b"HTTP/1.0 200 OK"), dict(version=10)),
    ("resp_http12_as_11", "resp", resp(b"HTTP/1.2 200 OK"), dict(version=11)),
    ("resp_100_continue", "resp", resp(b"HTTP/1.1 100 Continue"), dict(status=100)),
    ("resp_101_upgrade", "resp", resp(b"HTTP/1.1 101 Switching Protocols", b"Upgrade: websocket", b"Connection: Upgrade"),
     dict(status=101, flags=K.F_HOP | K.F_UPGRADE | K.F_CONN_UPGRADE)),
    ("resp_status_999", "resp", resp(b"HTTP/1.1 999 X"), dict(status=999)),
    ("resp_te_chunked", "resp", resp(OK, b"Transfer-Encoding: chunked"), dict(flags=K.F_TE | K.F_CHUNKED)),
    ("resp_te_gzip_close_delimited", "resp", resp(OK, b"Transfer-Encoding: gzip"), dict(flags=K.F_TE)),
    ("resp_te_chunked_not_last_close_delimited", "resp", resp(OK, b"Transfer-Encoding: chunked, gzip"), dict(flags=K.F_TE)),
    ("resp_te_gzip_chunked", "resp", resp(OK, b"Transfer-Encoding: gzip, chunked"), dict(flags=K.F_TE | K.F_CHUNKED)),
    ("resp_te_in_http10_allowed", "resp", resp(b"HTTP/1.0 200 OK", b"Transfer-Encoding: chunked"),
     dict(version=10, flags=K.F_TE | K.F_CHUNKED)),
    ("resp_conn_close", "resp", resp(OK, b"Connection: close"), dict(flags=K.F_HOP | K.F_CONN_CLOSE)),
    ("resp_www_authenticate_ntlm", "resp", resp(b"HTTP/1.1 401 Unauthorized", b"WWW-Authenticate: NTLM"),
     dict(status=401, flags=K.F_AUTH_CONN)),
    ("resp_www_authenticate_list", "resp", resp(b"HTTP/1.1 401 U", b'WWW-Authenticate: Basic realm="x", Negotiate'),
     dict(flags=K.F_AUTH_CONN)),
    ("resp_www_authenticate_basic", "resp", resp(b"HTTP/1.1 401 U", b'WWW-Authenticate: Basic realm="x"'), dict(flags=0)),
    ("resp_proxy_authenticate_negotiate", "resp", resp(b"HTTP/1.1 407 P", b"Proxy-Authenticate: Negotiate"),
     dict(flags=K.F_AUTH_CONN)),
    ("resp_authorization_ignored", "resp", resp(OK, b"Authorization: NTLM x"), dict(flags=0)),
    ("resp_set_cookie_repeated", "resp", resp(OK, b"Set-Cookie: a=1", b"Set-Cookie: b=2"), dict(nh=2)),
    ("resp_cl_identical_list", "resp", resp(OK, b"Content-Length: 5, 5"), dict(cl=5, flags=K.F_CL | K.F_HOP)),
    ("resp_cl_identical_repeat", "resp", resp(OK, b"Content-Length: 5", b"Content-Length: 5"),
     dict(cl=5, flags=K.F_CL | K.F_HOP, nh=2)),
    ("resp_cl_leading_zeros_forwarded_as_is", "resp", resp(OK, b"Content-Length: 005"), dict(cl=5, flags=K.F_CL)),
    # --- response errors ---
    ("err_resp_status_two_digits", "resp", resp(b"HTTP/1.1 99 X"), E.E_STATUS_LINE),
    ("err_resp_status_leading_zero", "resp", resp(b"HTTP/1.1 099 X"), E.E_STATUS_LINE),
    ("err_resp_status_four_digits", "resp", resp(b"HTTP/1.1 2000 X"), E.E_STATUS_LINE),
    ("err_resp_status_letters", "resp", resp(b"HTTP/1.1 abc X"), E.E_STATUS_LINE),
    ("err_resp_double_space", "resp", resp(b"HTTP/1.1  200 OK"), E.E_STATUS_LINE),
    ("err_resp_lowercase_version", "resp", resp(b"http/1.1 200 OK"), E.E_STATUS_LINE),
    ("err_resp_version_only", "resp", resp(b"HTTP/1.1"), E.E_STATUS_LINE),
    ("err_resp_reason_ctl", "resp", resp(b"HTTP/1.1 200 O\x01K"), E.E_STATUS_LINE),
    ("err_resp_leading_empty_line", "resp", b"\r\n" + resp(OK), E.E_STATUS_LINE),
    ("err_resp_http2", "resp", resp(b"HTTP/2.0 200 OK"), E.E_VERSION_UNSUPPORTED),
    ("err_resp_bare_lf", "resp", b"HTTP/1.1 200 OK\nContent-Length: 0\r\n\r\n", E.E_BARE_LF),
    ("err_resp_bare_cr_reason", "resp", resp(b"HTTP/1.1 200 O\rK"), E.E_BARE_CR),
    ("err_resp_bare_cr_line_ends_never_complete", "resp", b"HTTP/1.1 200 OK\rContent-Length: 0\r\r",
     E.E_BARE_CR),
    ("err_resp_bare_cr_first", "resp", b"\r\rHTTP/1.1 200 OK", E.E_BARE_CR),
    ("err_resp_cl_te", "resp", resp(OK, b"Content-Length: 3", b"Transfer-Encoding: chunked"), E.E_CL_TE),
    ("err_resp_te_chunked_twice", "resp", resp(OK, b"Transfer-Encoding: chunked, chunked"), E.E_TE),
    ("err_resp_te_empty", "resp", resp(OK, b"Transfer-Encoding: ,"), E.E_TE),
    ("err_resp_cl_bad", "resp", resp(OK, b"Content-Length: abc"), E.E_CONTENT_LENGTH),
    ("err_resp_cl_conflict", "resp", resp(OK, b"Content-Length: 1", b"Content-Length: 2"), E.E_CL_CONFLICT),
    ("err_resp_cl_list_conflict", "resp", resp(OK, b"Content-Length: 5, 6"), E.E_CL_CONFLICT),
    ("err_resp_obs_fold", "resp", resp(OK, b"X: a", b" b"), E.E_OBS_FOLD),
    ("err_resp_status_line_too_long", "resp", resp(b"HTTP/1.1 200 " + b"O" * 100), E.E_LINE_TOO_LONG, dict(max_line=64)),
]

IDS = [c[0] for c in CASES]
assert len(set(IDS)) == len(IDS), "duplicate case ids"

FIELDS = {
    "method": K.R_METHOD, "version": K.R_VERSION, "status": K.R_STATUS, "cl": K.R_CONTENT_LENGTH,
    "nh": K.R_NHEADERS, "host": K.R_HOST_COUNT, "other": K.R_CONN_OTHER_COUNT, "method_off": K.R_METHOD_OFF,
}


def impl_params():
    out = []
    for name, mod in IMPLEMENTATIONS.items():
        marks = [] if mod is not None else [pytest.mark.skip(reason="C module not built")]
        out.append(pytest.param(mod, id=name, marks=marks))
    return out


@pytest.fixture(params=impl_params())
def impl(request):
    return request.param


def check(result, data, kind, expected):
    if isinstance(expected, int):
        assert result == expected, (K.ERROR_NAMES.get(result, result), K.ERROR_NAMES[expected])
        return
    assert isinstance(result, list) and len(result) == K.NRESULTS, K.ERROR_NAMES.get(result, result)
    assert result[K.R_END] == expected.get("end", len(data))
    assert result[K.R_FLAGS] == expected.get("flags", 0)
    assert result[K.R_CONTENT_LENGTH] == expected.get("cl", -1)
    assert result[K.R_RESERVED] == 0
    for key, idx in FIELDS.items():
        if key in expected:
            assert result[idx] == expected[key], key
    if "target" in expected:
        off, ln = result[K.R_TARGET_OFF], result[K.R_TARGET_LEN]
        assert data[off:off + ln] == expected["target"]
    if "reason" in expected:
        off, ln = result[K.R_REASON_OFF], result[K.R_REASON_LEN]
        assert data[off:off + ln] == expected["reason"]
    if kind == "req":
        off, ln = result[K.R_METHOD_OFF], result[K.R_METHOD_LEN]
        assert K.METHOD_CODES.get(data[off:off + ln], K.M_OTHER) == result[K.R_METHOD]
        assert result[K.R_STATUS] == 0
    else:
        assert result[K.R_METHOD] == 0 and result[K.R_STATUS] >= 100


def _case(case):
    name, kind, data, expected = case[:4]
    kwargs = case[4] if len(case) > 4 else {}
    return kind, data, expected, kwargs


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_case_parsed_whole_gives_expected_answer(impl, case):
    kind, data, expected, kwargs = _case(case)
    p = impl.Parser(**kwargs)
    check(parse(p, kind, data), data, kind, expected)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_case_split_at_every_byte_gives_same_answer(impl, case):
    kind, data, expected, kwargs = _case(case)
    p = impl.Parser(**kwargs)
    whole = parse(p, kind, data)
    for cut in range(len(data) + 1):
        assert parse_in_pieces(p, kind, data, [cut]) == whole, cut


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_case_fed_byte_by_byte_gives_same_answer(impl, case):
    kind, data, expected, kwargs = _case(case)
    p = impl.Parser(**kwargs)
    whole = parse(p, kind, data)
    assert parse_in_pieces(p, kind, data, range(len(data))) == whole


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_case_parsed_at_an_offset_gives_shifted_answer(impl, case):
    kind, data, expected, kwargs = _case(case)
    p = impl.Parser(**kwargs)
    whole = parse(p, kind, data)
    prefix = b"XYZ\r\n\r\n"
    shifted = parse(p, kind, prefix + data, len(prefix))
    if isinstance(whole, int):
        assert shifted == whole
        return
    moved = [K.R_END] + ([K.R_METHOD_OFF, K.R_TARGET_OFF] if kind == "req" else [K.R_REASON_OFF])
    expect = list(whole)
    for i in moved:
        expect[i] += len(prefix)
    assert shifted == expect


def test_constants_match_the_c_header():
    mod = IMPLEMENTATIONS["native"]
    if mod is None:
        pytest.skip("C module not built")
    lib = mod.lib
    for name in dir(K):
        if name[:2] in ("E_", "F_"):
            assert getattr(lib, "KHTTP_" + name) == getattr(K, name), name


def test_error_table_covers_every_code():
    codes = {v for k, v in vars(K).items() if k.startswith("E_")}
    assert codes == set(K.ERROR_NAMES) == set(K.ERROR_STATUS)
    assert K.ERROR_STATUS[K.E_LINE_TOO_LONG] == 414
    assert K.ERROR_STATUS[K.E_HEAD_TOO_LARGE] == K.ERROR_STATUS[K.E_TOO_MANY_HEADERS] == 431
    assert K.ERROR_STATUS[K.E_VERSION_UNSUPPORTED] == 505
    assert K.ERROR_STATUS[K.E_CL_TE] == 400


def test_case_table_has_over_a_hundred_cases():
    assert len(CASES) > 100


def test_keepwarm_pure_env_selects_the_python_twin():
    import os
    import subprocess
    import sys
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    code = "import _native; print(_native.IMPLEMENTATION, _native.Parser.__module__)"
    env = dict(os.environ, KEEPWARM_PURE="1")
    out = subprocess.run([sys.executable, "-c", code], cwd=root, env=env, capture_output=True,
                         timeout=60, check=True).stdout.split()
    assert out == [b"python", b"_native.pure"]
    if IMPLEMENTATIONS["native"] is not None:
        env["KEEPWARM_PURE"] = ""
        out = subprocess.run([sys.executable, "-c", code], cwd=root, env=env, capture_output=True,
                             timeout=60, check=True).stdout.split()
        assert out == [b"native", b"_native.native"]
