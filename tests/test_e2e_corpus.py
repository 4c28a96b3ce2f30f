"""The differential corpus (issue 15): each configuration in tests/corpus/ and its
requests, answered by HAProxy 2.6.12 (recorded in tests/fixtures/haproxy_corpus.json
by tests/fixtures/record_corpus.py) and by keepwarm on the same configuration. The
status, the server that answered, the request line and header fields it received,
and the response's header fields must be the same (names compared without case);
a body keepwarm writes itself (deny, return, redirect, error pages) too. Each
difference is declared in its file (`#= KEY => STATUS reason`) and listed in
docs/configuration.md §7."""

import json
from pathlib import Path

import pytest

from support.corpus import (corpus_files, differences_of, echo, render, requests_of,
                            server_names, ask)
from support.proxy import free_port

FIXTURE = Path(__file__).parent / "fixtures" / "haproxy_corpus.json"
RECORDED = json.loads(FIXTURE.read_text())["configs"] if FIXTURE.exists() else {}
# Varies from run to run, or names the proxy: not compared.
UNSTABLE = {"date", "server", "x-conn-id"}   # x-conn-id: the test server's connection count


def comparable(answer):
    out = dict(answer)
    out["response"] = [h for h in answer["response"] if h[0] not in UNSTABLE]
    return out


def test_every_corpus_file_is_recorded():
    assert {p.stem for p in corpus_files()} == set(RECORDED), \
        "run tests/fixtures/record_corpus.py for the new files"
    assert len(RECORDED) >= 25


@pytest.mark.parametrize("path", corpus_files(), ids=lambda p: p.stem)
def test_keepwarm_answers_the_corpus_as_haproxy(path, tmp_path, backend_factory,
                                                proxy_factory):
    text = path.read_text()
    recorded = RECORDED[path.stem]
    differences = differences_of(text)
    requests = requests_of(text)
    assert {k for k, _ in requests} == set(recorded), "re-record %s" % path.name
    assert set(differences) <= set(recorded), "a difference names no request"
    servers = {n: backend_factory(n, echo) for n in server_names(text)}
    port = free_port()
    proxy_factory(config=render(text, port, servers, sock=tmp_path / "kw0" / "stats.sock"),
                  bind_ports=[port], nbproc=1)
    wrong = []
    for key, raw in requests:
        got = comparable(ask(port, raw))
        want = comparable(recorded[key])
        if key in differences:
            # A declared difference: keepwarm's status is checked; the rest differs
            # for the reason given (the same status: the bytes differ).
            status, _ = differences[key]
            if got["status"] != status:
                wrong.append((key, got, "status %d" % status))
            elif got == want:
                wrong.append((key, got, "HAProxy's very answer: drop the #= line"))
        elif got != want:
            wrong.append((key, got, want))
    assert not wrong, "\n".join("%s\n  keepwarm: %s\n  haproxy:  %s" % w for w in wrong)
