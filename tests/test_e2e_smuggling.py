"""Request smuggling and malformed input, end to end (issue 4, "Bad input and bad peers").

Every ambiguous or malformed request is refused with keepwarm's own 400 page,
the client connection is closed, and NOTHING reaches the backend: the guarded
backend must never even accept a TCP connection during this module. Framing
that RFC 9112 calls valid (OWS around a value, chunked as the final coding,
repeated identical Content-Length) is accepted and forwarded intact (a
Content-Length list or repeat as one field, in both directions), so the
refusals are not a parser that says no to everything.

Bad responses from a server (the other direction) end as a 502 and the server
connection is closed by the proxy, never pooled: the backend keeps such a
connection open after the bad bytes, so only the proxy can have closed it,
and the next request arrives on a new backend connection.
"""

import time

import pytest

from support.backend import Reply, ScriptedBackend
from support.checks import assert_html_error
from support.client import ClosedError, HttpClient, get
from support.proxy import ProxyProcess, free_port, make_config


def _start_proxy(tmp_path_factory, name, servers):
    workdir = tmp_path_factory.mktemp(name)
    port = free_port()
    sock = workdir / "stats.sock"
    p = ProxyProcess(make_config(port=port, servers=servers, sock=sock, nbproc=1), workdir,
                     bind_ports=[port], sock=sock, workers=1)
    p.start()
    return p


@pytest.fixture(scope="module")
def guarded(tmp_path_factory):
    """(proxy, backend) shared by the refusal tests: the backend must stay untouched."""
    b = ScriptedBackend("guard").start()
    p = None
    try:
        p = _start_proxy(tmp_path_factory, "guarded", [b])
        yield p, b
    finally:
        if p is not None:
            p.stop()
        b.stop()


@pytest.fixture(scope="module")
def echo(tmp_path_factory):
    """(proxy, backend) for requests that must pass: the backend echoes the body it decoded."""
    b = ScriptedBackend("echo", lambda be, req: Reply(body=req.body or b"")).start()
    p = None
    try:
        p = _start_proxy(tmp_path_factory, "echo", [b])
        yield p, b
    finally:
        if p is not None:
            p.stop()
        b.stop()


REFUSALS_SENT = {}     # proxy port -> refusals sent to it by this module


def assert_refused(proxy, backend, wire, status=400):
    """Send ``wire`` in one write: a ``status`` page, Connection: close, a closed socket,
    and the backend never saw a connection."""
    REFUSALS_SENT[proxy.port] = REFUSALS_SENT.get(proxy.port, 0) + 1
    with HttpClient(proxy.port, timeout=3) as c:
        c.send(wire)
        r = c.read_response()
        assert_html_error(r, status)
        assert "close" in r.connection_tokens, "refusal without Connection: close: %r" % r.headers
        assert c.wait_closed(2), "client connection still open after a %d" % status
    assert backend.conn_count == 0, (
        "a refused request reached the backend: %d connection(s), requests %r, backend errors %r"
        % (backend.conn_count, [q.raw_head for q in backend.requests], backend.errors))


def req(head_lines, body=b"", start=b"POST / HTTP/1.1"):
    """A request from raw header lines (bytes, sent exactly as given) and a raw body."""
    return start + b"\r\n" + b"".join(l + b"\r\n" for l in head_lines) + b"\r\n" + body


CHUNKED_HELLO = b"5\r\nhello\r\n0\r\n\r\n"

# Each: (id, bytes sent). All must be 400 + close with nothing forwarded.
REFUSED = [
    # Content-Length together with Transfer-Encoding (RFC 9112 §6.1, §6.3)
    ("cl-then-te", req([b"Host: t", b"Content-Length: 5", b"Transfer-Encoding: chunked"],
                       CHUNKED_HELLO)),
    ("te-then-cl", req([b"Host: t", b"Transfer-Encoding: chunked", b"Content-Length: 5"],
                       CHUNKED_HELLO)),
    ("cl-zero-with-te", req([b"Host: t", b"Content-Length: 0", b"Transfer-Encoding: chunked"],
                            CHUNKED_HELLO)),
    # duplicate, differing Content-Length (RFC 9110 §8.6)
    ("cl-two-lines-differ", req([b"Host: t", b"Content-Length: 5", b"Content-Length: 6"],
                                b"hello!")),
    ("cl-list-differ", req([b"Host: t", b"Content-Length: 5, 6"], b"hello!")),
    # malformed Content-Length: 1*DIGIT only
    ("cl-plus", req([b"Host: t", b"Content-Length: +5"], b"hello")),
    ("cl-minus", req([b"Host: t", b"Content-Length: -1"], b"")),
    ("cl-hex", req([b"Host: t", b"Content-Length: 0x5"], b"hello")),
    ("cl-inner-space", req([b"Host: t", b"Content-Length: 5 5"], b"hello")),
    ("cl-exponent", req([b"Host: t", b"Content-Length: 1e3"], b"hello")),
    ("cl-decimal", req([b"Host: t", b"Content-Length: 5.0"], b"hello")),
    ("cl-overflow", req([b"Host: t", b"Content-Length: 99999999999999999999"], b"hello")),
    ("cl-empty", req([b"Host: t", b"Content-Length: "], b"hello")),
    ("cl-empty-element", req([b"Host: t", b"Content-Length: 5,"], b"hello")),
    # obfuscated Transfer-Encoding: the final coding of a request must be chunked
    ("te-xchunked", req([b"Host: t", b"Transfer-Encoding: xchunked"], CHUNKED_HELLO)),
    ("te-chunkedx", req([b"Host: t", b"Transfer-Encoding: chunkedx"], CHUNKED_HELLO)),
    ("te-chunked-then-identity", req([b"Host: t", b"Transfer-Encoding: chunked, identity"],
                                     CHUNKED_HELLO)),
    ("te-chunked-then-gzip-line", req([b"Host: t", b"Transfer-Encoding: chunked",
                                       b"Transfer-Encoding: gzip"], CHUNKED_HELLO)),
    ("te-chunked-twice", req([b"Host: t", b"Transfer-Encoding: chunked, chunked"], CHUNKED_HELLO)),
    ("te-quoted", req([b"Host: t", b'Transfer-Encoding: "chunked"'], CHUNKED_HELLO)),
    ("te-inner-space", req([b"Host: t", b"Transfer-Encoding: chun ked"], CHUNKED_HELLO)),
    ("te-inner-tab", req([b"Host: t", b"Transfer-Encoding: chun\tked"], CHUNKED_HELLO)),
    ("te-vertical-tab", req([b"Host: t", b"Transfer-Encoding: \x0bchunked"], CHUNKED_HELLO)),
    ("te-form-feed", req([b"Host: t", b"Transfer-Encoding: chunked\x0c"], CHUNKED_HELLO)),
    ("te-empty", req([b"Host: t", b"Transfer-Encoding: "], CHUNKED_HELLO)),
    # whitespace between the field name and the colon (RFC 9112 §5.1: MUST reject)
    ("te-space-before-colon", req([b"Host: t", b"Transfer-Encoding : chunked"], CHUNKED_HELLO)),
    ("te-tab-before-colon", req([b"Host: t", b"Transfer-Encoding\t: chunked"], CHUNKED_HELLO)),
    ("cl-space-before-colon", req([b"Host: t", b"Content-Length : 5"], b"hello")),
    # obs-fold (RFC 9112 §5.2: a server MUST reject or unfold; a proxy must not forward it)
    ("te-obs-fold-space", req([b"Host: t", b"Transfer-Encoding: gzip,", b" chunked"], CHUNKED_HELLO)),
    ("te-obs-fold-tab", req([b"Host: t", b"Transfer-Encoding:", b"\tchunked"], CHUNKED_HELLO)),
    ("obs-fold-before-te", req([b"Host: t", b"X-Pad: a", b" Transfer-Encoding: chunked"],
                               CHUNKED_HELLO)),
    ("first-header-folded", req([b" Transfer-Encoding: chunked", b"Host: t"], CHUNKED_HELLO)),
    # Transfer-Encoding in HTTP/1.0 (RFC 9112 §6.1: faulty framing)
    ("te-in-http10", req([b"Host: t", b"Transfer-Encoding: chunked"], CHUNKED_HELLO,
                         start=b"POST / HTTP/1.0")),
    # invalid chunk framing (the whole body is in the same write as the head)
    ("chunk-size-negative", req([b"Host: t", b"Transfer-Encoding: chunked"],
                                b"-1\r\nhello\r\n0\r\n\r\n")),
    ("chunk-size-0x", req([b"Host: t", b"Transfer-Encoding: chunked"], b"0x5\r\nhello\r\n0\r\n\r\n")),
    ("chunk-size-not-hex", req([b"Host: t", b"Transfer-Encoding: chunked"], b"g\r\nhello\r\n0\r\n\r\n")),
    ("chunk-size-overflow", req([b"Host: t", b"Transfer-Encoding: chunked"],
                                b"10000000000000005\r\nhello\r\n0\r\n\r\n")),
    ("chunk-size-huge-overflow", req([b"Host: t", b"Transfer-Encoding: chunked"],
                                     b"ffffffffffffffffffffffff\r\nhello\r\n0\r\n\r\n")),
    ("chunk-size-leading-space", req([b"Host: t", b"Transfer-Encoding: chunked"],
                                     b" 5\r\nhello\r\n0\r\n\r\n")),
    ("chunk-size-trailing-space", req([b"Host: t", b"Transfer-Encoding: chunked"],
                                      b"5 \r\nhello\r\n0\r\n\r\n")),
    ("chunk-size-empty", req([b"Host: t", b"Transfer-Encoding: chunked"], b"\r\nhello\r\n0\r\n\r\n")),
    ("chunk-data-no-crlf", req([b"Host: t", b"Transfer-Encoding: chunked"],
                               b"5\r\nhelloXX0\r\n\r\n")),
    ("chunk-data-too-long", req([b"Host: t", b"Transfer-Encoding: chunked"],
                                b"3\r\nhello\r\n0\r\n\r\n")),
    ("chunk-size-bare-lf", req([b"Host: t", b"Transfer-Encoding: chunked"], b"5\nhello\r\n0\r\n\r\n")),
    ("chunk-data-bare-lf", req([b"Host: t", b"Transfer-Encoding: chunked"], b"5\r\nhello\n0\r\n\r\n")),
    # control characters and broken lines in the head
    ("bare-cr-in-value", req([b"Host: t", b"X-A: a\rb"], start=b"GET / HTTP/1.1")),
    ("bare-cr-line-end", req([b"Host: t", b"X-A: a\r", b"X-B: b"], start=b"GET / HTTP/1.1")),
    ("nul-in-value", req([b"Host: t", b"X-A: a\x00b"], start=b"GET / HTTP/1.1")),
    ("nul-in-name", req([b"Host: t", b"X-\x00A: b"], start=b"GET / HTTP/1.1")),
    ("del-in-value", req([b"Host: t", b"X-A: a\x7fb"], start=b"GET / HTTP/1.1")),
    ("header-without-colon", req([b"Host: t", b"X-No-Colon"], start=b"GET / HTTP/1.1")),
    ("space-in-header-name", req([b"Host: t", b"X A: b"], start=b"GET / HTTP/1.1")),
    ("empty-header-name", req([b"Host: t", b": b"], start=b"GET / HTTP/1.1")),
    ("bare-lf-line-endings", b"GET / HTTP/1.1\nHost: t\n\n"),
    ("bare-lf-after-header", b"GET / HTTP/1.1\r\nHost: t\nX-A: b\r\n\r\n"),
    # request line
    ("method-paren", req([b"Host: t"], start=b"G(T / HTTP/1.1")),
    ("method-at", req([b"Host: t"], start=b"GE@T / HTTP/1.1")),
    ("method-slash", req([b"Host: t"], start=b"G/T / HTTP/1.1")),
    ("method-quote", req([b"Host: t"], start=b'"GET" / HTTP/1.1')),
    ("method-control", req([b"Host: t"], start=b"G\x01T / HTTP/1.1")),
    ("method-8bit", req([b"Host: t"], start=b"G\xc9T / HTTP/1.1")),
    ("double-space", req([b"Host: t"], start=b"GET  / HTTP/1.1")),
    ("target-with-ctl", req([b"Host: t"], start=b"GET /a\x01b HTTP/1.1")),
    ("bad-version", req([b"Host: t"], start=b"GET / HTTP/1.1x")),
    ("lowercase-version", req([b"Host: t"], start=b"GET / http/1.1")),
    # Host (RFC 9112 §3.2: 400 for none in HTTP/1.1 and for more than one)
    ("two-host-lines", req([b"Host: a.example", b"Host: b.example"], start=b"GET / HTTP/1.1")),
    ("two-host-lines-same", req([b"Host: a.example", b"Host: a.example"], start=b"GET / HTTP/1.1")),
    ("no-host-http11", req([b"X-A: b"], start=b"GET / HTTP/1.1")),
    # request-target forms (RFC 9112 §3.2, issue 12): origin-form, absolute-form, "*" with
    # OPTIONS, authority-form with CONNECT; anything else was forwarded as it came
    ("target-relative", req([b"Host: t"], start=b"GET foo HTTP/1.1")),
    ("target-relative-dot", req([b"Host: t"], start=b"GET ./foo HTTP/1.1")),
    ("target-asterisk-with-get", req([b"Host: t"], start=b"GET * HTTP/1.1")),
    ("target-authority-with-get", req([b"Host: t"], start=b"GET t:80 HTTP/1.1")),
    ("target-scheme-without-slashes", req([b"Host: t"], start=b"GET http:t HTTP/1.1")),
    ("connect-origin-form", req([b"Host: t"], start=b"CONNECT / HTTP/1.1")),
    # a bare CR as a line terminator: the head never completes, and waited for
    # timeout http-request (issue 12); answered at the byte after the CR
    ("bare-cr-line-ends", b"GET / HTTP/1.1\rHost: t\r\r"),
    ("bare-cr-after-header", b"GET / HTTP/1.1\r\nHost: t\rX-A: b\r"),
    ("bare-cr-in-target", b"GET /\rfoo"),
]


@pytest.mark.parametrize("wire", [w for _, w in REFUSED], ids=[i for i, _ in REFUSED])
def test_smuggling_attempt_is_refused_with_400_and_close_and_nothing_forwarded(guarded, wire):
    proxy, backend = guarded
    assert_refused(proxy, backend, wire)


def test_refused_requests_are_counted_as_4xx_and_the_backend_never_saw_a_connection(guarded):
    proxy, backend = guarded
    assert_refused(proxy, backend, req([b"Host: t", b"Content-Length: 5", b"Content-Length: 6"],
                                       b"hello!"))
    sent = REFUSALS_SENT[proxy.port]    # every request this proxy ever got was refused
    st = proxy.wait_stats(lambda s: s["frontends"]["fe"]["hrsp_4xx"] >= sent,
                          what="hrsp_4xx = %d" % sent)
    fe = st["frontends"]["fe"]
    assert (fe["hrsp_4xx"], fe["req_tot"], fe["hrsp_2xx"], fe["hrsp_5xx"]) == (sent, sent, 0, 0)
    assert st["backends"]["be"]["servers"]["guard"]["conn_tot"] == 0
    assert backend.conn_count == 0


def test_a_valid_request_before_a_smuggled_one_is_answered_and_only_it_is_forwarded(echo):
    # The second (pipelined) request is malformed: the first is served, the
    # second gets 400 and close, and the backend sees exactly the first one.
    proxy, backend = echo
    n = backend.request_count
    wire = (b"POST /first HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello"
            + req([b"Host: t", b"Content-Length: 5", b"Transfer-Encoding: chunked"], CHUNKED_HELLO,
                  start=b"POST /second HTTP/1.1"))
    with HttpClient(proxy.port, timeout=3) as c:
        c.send(wire)
        r1 = c.read_response("POST")
        assert r1.status == 200 and r1.body == b"hello"
        r2 = c.read_response("POST")
        assert_html_error(r2, 400)
        assert "close" in r2.connection_tokens
        assert c.wait_closed(2)
    assert [q.target for q in backend.requests[n:]] == ["/first"]


# Each: (id, header lines). RFC 9112 says these frame the body as chunked: forwarded, body intact.
ACCEPTED_CHUNKED = [
    ("te-leading-ows", [b"Transfer-Encoding:   chunked"]),
    ("te-no-space", [b"Transfer-Encoding:chunked"]),
    ("te-tab-ows", [b"Transfer-Encoding:\tchunked"]),
    ("te-trailing-ows", [b"Transfer-Encoding: chunked \t"]),
    ("te-uppercase", [b"Transfer-Encoding: CHUNKED"]),        # codings are case-insensitive
    ("te-name-mixed-case", [b"tRANSFER-eNCODING: chunked"]),   # field names too
    ("te-gzip-then-chunked", [b"Transfer-Encoding: gzip, chunked"]),
    ("te-identity-then-chunked", [b"Transfer-Encoding: identity, chunked"]),   # chunked is last
    ("te-two-lines-chunked-last", [b"Transfer-Encoding: gzip", b"Transfer-Encoding: chunked"]),
    ("te-empty-list-element", [b"Transfer-Encoding: , chunked"]),   # RFC 9110 §5.6.1
]


@pytest.mark.parametrize("lines", [l for _, l in ACCEPTED_CHUNKED], ids=[i for i, _ in ACCEPTED_CHUNKED])
def test_valid_transfer_encoding_forms_are_forwarded_with_the_body_intact(echo, lines):
    proxy, backend = echo
    n = backend.request_count
    body = b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"
    with HttpClient(proxy.port, timeout=3) as c:
        c.send(req([b"Host: t"] + lines, body))
        r = c.read_response("POST")
        assert r.status == 200, "valid framing %r refused with %d" % (lines, r.status)
        assert r.body == b"hello world"
    got = backend.requests[n:]
    assert len(got) == 1 and got[0].body == b"hello world" and got[0].chunked


ACCEPTED_LENGTH = [
    ("cl-ows", [b"Content-Length:    5  "]),
    ("cl-same-list", [b"Content-Length: 5, 5"]),          # RFC 9110 §8.6 allows it
    ("cl-same-two-lines", [b"Content-Length: 5", b"Content-Length: 5"]),
    ("cl-leading-zero", [b"Content-Length: 005"]),
]


@pytest.mark.parametrize("lines", [l for _, l in ACCEPTED_LENGTH], ids=[i for i, _ in ACCEPTED_LENGTH])
def test_valid_content_length_forms_are_forwarded_with_the_body_intact(echo, lines):
    proxy, backend = echo
    n = backend.request_count
    with HttpClient(proxy.port, timeout=3) as c:
        c.send(req([b"Host: t"] + lines, b"hello"))
        r = c.read_response("POST")
        assert r.status == 200 and r.body == b"hello"
        # the connection is still usable: the proxy counted the body as the backend did
        assert c.request("GET", "/next").status == 200
    assert [q.body for q in backend.requests[n:]] == [b"hello", b""]


def raw_cl_lines(head):
    """The Content-Length lines of a head, as bytes on the wire."""
    return [l for l in head.split(b"\r\n")[1:] if l.split(b":", 1)[0].strip().lower() == b"content-length"]


CL_ONE_VALUE = [
    ("cl-list", [b"Content-Length: 5, 5"]),
    ("cl-list-no-space", [b"Content-Length:5,5"]),
    ("cl-two-lines", [b"Content-Length: 5", b"Content-Length: 5"]),
    ("cl-list-and-line", [b"Content-Length: 5,5", b"X-A: b", b"Content-Length: 5"]),
]


@pytest.mark.parametrize("lines", [l for _, l in CL_ONE_VALUE], ids=[i for i, _ in CL_ONE_VALUE])
def test_a_content_length_list_or_repeat_reaches_the_server_as_one_field(echo, lines):
    """RFC 9112 §6.3 (5): identical values may be accepted only if replaced by one before
    forwarding (issue 12: they went verbatim, and a server reading "5, 5" as 55, or
    refusing it, disagrees with us on where the next request starts). HAProxy sends one."""
    proxy, backend = echo
    n = backend.request_count
    with HttpClient(proxy.port, timeout=3) as c:
        c.send(req([b"Host: t"] + lines, b"hello"))
        r = c.read_response("POST")
        assert r.status == 200 and r.body == b"hello"
        assert c.request("GET", "/next").status == 200
    got = backend.requests[n:]
    assert [q.target for q in got] == ["/", "/next"]
    assert raw_cl_lines(got[0].raw_head) == [lines[0].split(b":")[0] + b": 5"], got[0].raw_head
    assert got[0].body == b"hello"


CL_ONE_VALUE_RESPONSES = {
    "list": b"HTTP/1.1 200 OK\r\nContent-Length: 5, 5\r\n\r\n",
    "two-lines": b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A: b\r\nContent-Length: 5\r\n\r\n",
    "list-and-line": b"HTTP/1.1 200 OK\r\nContent-Length: 5,5\r\nContent-Length: 5\r\n\r\n",
}


@pytest.fixture(scope="module")
def cl_server(tmp_path_factory):
    """(proxy, backend): GET /cl/<name>/whole answers CL_ONE_VALUE_RESPONSES[name] and
    its body in one write, /cl/<name>/split the head first and the body 0.2 s later."""
    def handler(be, req):
        if req.target.startswith("/cl/"):
            _, _, name, how = req.target.split("/")
            head = CL_ONE_VALUE_RESPONSES[name]
            if how == "whole":
                return Reply(raw=head + b"hello", keep_open=True)
            return Reply(raw=[head, b"hello"], gap=0.2, keep_open=True)
        return None

    b = ScriptedBackend("s1", handler).start()
    p = None
    try:
        p = _start_proxy(tmp_path_factory, "cl_server", [b])
        yield p, b
    finally:
        if p is not None:
            p.stop()
        b.stop()


@pytest.mark.parametrize("how", ["whole", "split"])
@pytest.mark.parametrize("name", list(CL_ONE_VALUE_RESPONSES))
def test_a_response_content_length_list_or_repeat_reaches_the_client_as_one_field(cl_server, name,
                                                                                  how):
    # "whole": a small response rewritten with its body in one copy; "split": its head alone.
    proxy, backend = cl_server
    with HttpClient(proxy.port, timeout=3) as c:
        r = c.request("GET", "/cl/%s/%s" % (name, how))
        assert r.status == 200 and r.body == b"hello"
        assert raw_cl_lines(r.raw_head) == [b"Content-Length: 5"], r.raw_head
        again = c.request("GET", "/next")
        assert again.status == 200 and again.conn_id == "s1-1"


def test_bare_cr_line_ends_are_answered_at_once_not_at_timeout_http_request(backend_factory,
                                                                             proxy_factory):
    b = backend_factory("s1")
    kw = proxy_factory([b], nbproc=1, timeouts=("connect 2s", "client 30s", "server 5s",
                                                "http-request 20s"))
    with HttpClient(kw.port, timeout=10) as c:
        t0 = time.monotonic()
        c.send(b"GET / HTTP/1.1\rHost: t\r\r")
        r = c.read_response()
        took = time.monotonic() - t0
        assert_html_error(r, 400)
        assert c.wait_closed(2)
    assert took < 2, "answered after %.1f s: it waited for a timeout" % took
    assert b.conn_count == 0


def test_options_asterisk_is_forwarded_and_connect_answered_501(echo):
    """The two methods with a form of their own: OPTIONS * reaches the server as sent;
    CONNECT (authority-form) gets keepwarm's 501, as before: it is no forward proxy
    (HAProxy forwards it)."""
    proxy, backend = echo
    n = backend.request_count
    with HttpClient(proxy.port, timeout=3) as c:
        c.send(b"OPTIONS * HTTP/1.1\r\nHost: t\r\n\r\n")
        assert c.read_response().status == 200
    assert [q.target for q in backend.requests[n:]] == ["*"]
    with HttpClient(proxy.port, timeout=3) as c:
        c.send(b"CONNECT t:443 HTTP/1.1\r\nHost: t:443\r\n\r\n")
        assert_html_error(c.read_response(), 501)
        assert c.wait_closed(2)
    assert backend.request_count == n + 1


def test_http10_request_without_host_is_accepted(echo):
    proxy, backend = echo
    with HttpClient(proxy.port, timeout=3) as c:
        c.send(b"GET /old HTTP/1.0\r\n\r\n")
        r = c.read_response()
        assert r.status == 200
        assert c.wait_closed(2)


def test_absolute_form_target_is_forwarded_once(echo):
    """RFC 9112 §3.2.2: a server MUST accept absolute-form. HAProxy 2.x accepts it too and,
    for an HTTP/1 client, sends the URI on as received (its H1 mux rewrites only URIs
    that came normalized from HTTP/2). keepwarm forwards it; either form is sensible
    for the server, so the test documents which one the backend saw."""
    proxy, backend = echo
    n = backend.request_count
    with HttpClient(proxy.port, timeout=3) as c:
        c.send(b"GET http://example.com/abs?q=1 HTTP/1.1\r\nHost: example.com\r\n\r\n")
        r = c.read_response()
        assert r.status == 200
        assert c.request("GET", "/after").status == 200
    got = backend.requests[n:]
    assert [q.target for q in got][1:] == ["/after"]
    assert got[0].target in ("http://example.com/abs?q=1", "/abs?q=1"), got[0].target
    print("absolute-form reached the backend as %r" % got[0].target)


# ------------------------------------------------------------------ bad responses

BAD_RESPONSES = [
    ("cl-and-te", b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"
                  b"5\r\nhello\r\n0\r\n\r\n"),
    ("two-different-cl", b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!"),
    ("cl-list-differ", b"HTTP/1.1 200 OK\r\nContent-Length: 5, 6\r\n\r\nhello!"),
    ("cl-negative", b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\nhello"),
    ("garbage-status-line", b"HTTP/1.1 2OO OK\r\nContent-Length: 2\r\n\r\nok"),
    ("not-http", b"hello world\r\nContent-Length: 2\r\n\r\nok"),
    ("status-two-digits", b"HTTP/1.1 20 OK\r\nContent-Length: 2\r\n\r\nok"),
    ("header-without-colon", b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nNoColonHere\r\n\r\nok"),
    ("space-before-colon", b"HTTP/1.1 200 OK\r\nContent-Length : 2\r\n\r\nok"),
    ("obs-fold", b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-A: a\r\n b\r\n\r\nok"),
    ("nul-in-header", b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-A: a\x00b\r\n\r\nok"),
]


@pytest.fixture(scope="module")
def bad_server(tmp_path_factory):
    """(proxy, backend): GET /bad/<id> answers BAD_RESPONSES[id] and keeps the connection
    open -- only the proxy can close it; anything else is a normal response."""
    bad = dict(BAD_RESPONSES)

    def handler(be, req):
        if req.target.startswith("/bad/"):
            return Reply(raw=bad[req.target[5:]], keep_open=True)
        return None

    b = ScriptedBackend("s1", handler).start()
    p = None
    try:
        p = _start_proxy(tmp_path_factory, "bad_server", [b])
        yield p, b
    finally:
        if p is not None:
            p.stop()
        b.stop()


@pytest.mark.parametrize("case", [i for i, _ in BAD_RESPONSES])
def test_bad_response_head_gets_502_and_its_server_connection_is_closed_never_pooled(bad_server,
                                                                                    case):
    kw, b = bad_server
    target = "/bad/" + case
    with HttpClient(kw.port, timeout=3) as c:
        r = c.request("GET", target)
        assert_html_error(r, 502)
        if "close" in r.connection_tokens:
            assert c.wait_closed(2)
    cid = [q.conn_id for q in b.requests if q.target == target][-1]
    conn = b.connections[cid - 1]
    b.wait_for(lambda be: conn.closed_at is not None, timeout=3,
               what="the proxy to close the connection that sent a bad response")
    assert conn.closed_by == "peer"
    r = get(kw.port, "/good")
    assert r.status == 200
    assert r.conn_id != "s1-%d" % cid, "the next request reused the connection that sent %s" % case


def test_bad_chunk_size_mid_body_closes_client_and_server_connections(backend_factory,
                                                                     proxy_factory):
    # The head and a first good chunk are relayed before the bad chunk size
    # arrives: a clean error is impossible, so the client connection must close
    # (the body stays visibly incomplete) and the server connection is not pooled.
    def handler(be, req):
        if req.target == "/bad":
            return Reply(raw=[b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n",
                              b"zz\r\nworld\r\n0\r\n\r\n"], gap=0.3, keep_open=True)
        return None

    b = backend_factory("s1", handler)
    kw = proxy_factory([b], nbproc=1)
    with HttpClient(kw.port, timeout=3) as c:
        c.send_request("GET", "/bad")
        head = c.read_head()
        assert head.status == 200
        got = []
        with pytest.raises((ClosedError, ConnectionResetError)):
            # the chunked body never completes: the proxy must close (a timeout here is a hang)
            c._read_chunked(got.append, head)
        assert b"".join(got) in (b"", b"hello"), "bytes after the bad chunk size were relayed"
    b.wait_for(lambda be: be.connections[0].closed_at is not None, timeout=3,
               what="the proxy to close the connection that sent a bad chunk")
    assert b.connections[0].closed_by == "peer"
    r = get(kw.port, "/good")
    assert r.status == 200 and r.conn_id == "s1-2"
