"""keepwarm answers the inputs of issue 12 as HAProxy 2.6 did, or differs where DIFFERENCES says why.

tests/fixtures/haproxy_answers.json holds what a real HAProxy 2.6 answered to each case of
tests/fixtures/record_haproxy.py (re-record with that script); this test sends the same
bytes to keepwarm in front of the same scripted backend, with the same `timeout
http-request`, and compares: the status, whether it came before that timeout, how many
requests reached the backend, and the Content-Length lines the backend and the client
received (names compared in any case: HAProxy 2.6 writes them in lower case).
"""

import json

import pytest

from fixtures.record_haproxy import CASES, FIXTURE, HTTP_REQUEST_TIMEOUT, _handler, run_cases

RECORDED = json.loads(FIXTURE.read_text())

# Where keepwarm deliberately answers otherwise: case -> (keepwarm's status, why).
# docs/configuration.md ("Strictness") lists the same.
DIFFERENCES = {
    "target-star-get": (400, "RFC 9112 §3.2.4: the asterisk-form is for OPTIONS only; HAProxy "
                             "forwards it with any method"),
    "target-star-suffix-options": (400, "'*x' is no request-target form; HAProxy forwards "
                                        "anything starting with '*'"),
    "connect-authority": (501, "keepwarm is no forward proxy; HAProxy forwards CONNECT"),
    "connect-absolute": (400, "CONNECT takes the authority-form only (RFC 9112 §3.2.3); "
                              "HAProxy forwards it"),
}


def _lower(lines):
    return None if lines is None else [l.lower().replace(" ", "") for l in lines]


@pytest.fixture(scope="module")
def keepwarm_answers(tmp_path_factory):
    from support.backend import ScriptedBackend
    from support.proxy import ProxyProcess, free_port, make_config
    b = ScriptedBackend("s1", _handler).start()
    p = None
    try:
        workdir = tmp_path_factory.mktemp("haproxy_answers")
        port = free_port()
        timeouts = ("connect 2s", "client 10s", "server 10s",
                    "http-request %ds" % HTTP_REQUEST_TIMEOUT)
        p = ProxyProcess(make_config(port=port, servers=[b], nbproc=1, timeouts=timeouts), workdir,
                         bind_ports=[port], workers=1)
        p.start()
        yield run_cases(port, b)
    finally:
        if p is not None:
            p.stop()
        b.stop()


def test_the_fixture_holds_every_case():
    assert sorted(RECORDED["cases"]) == sorted(cid for cid, _ in CASES)
    assert RECORDED["haproxy"].startswith("HAProxy version 2.6")


@pytest.mark.timeout(120)
@pytest.mark.parametrize("cid", [cid for cid, _ in CASES])
def test_keepwarm_answers_as_haproxy_did(keepwarm_answers, cid):
    ours, theirs = keepwarm_answers[cid], RECORDED["cases"][cid]
    assert ours["prompt"], "%s: no answer before timeout http-request" % cid
    if cid in DIFFERENCES:
        status, why = DIFFERENCES[cid]
        assert theirs["status"] != status, "%s: HAProxy now agrees (%s)" % (cid, why)
        assert ours["status"] == status, cid
        return
    assert ours["status"] == theirs["status"], cid
    assert ours["forwarded"] == theirs["forwarded"], cid
    assert ours["backend_target"] == theirs["backend_target"], cid
    assert _lower(ours["backend_cl"]) == _lower(theirs["backend_cl"]), cid
    if cid.startswith("resp-") and ours["status"] == 200:
        assert _lower(ours["client_cl"]) == _lower(theirs["client_cl"]), cid
