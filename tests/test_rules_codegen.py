"""Conditions compiled into generated functions (proxy/rules/codegen.py), and the
header-edit shortcuts of a txn: the same answers as the closures they replace."""

import pytest

from proxy.http1.rewrite import ADD, DEL, SET, edit_pairs, replay_request
from proxy.rules import Acls, Ctx, Txn, World, compile_condition
from proxy.rules.codegen import Frag, build, combine, frag_of


def txn(target=b"/", method=b"GET", headers=(), **kw):
    return Txn.from_parts(World(), method, target, headers=list(headers), **kw)


def acls(*lines):
    a = Acls(Ctx(env={}))
    for line in lines:
        a.add(line.split())
    return a


def test_combined_pieces_keep_their_own_names():
    # Two lines of one ACL, each binding a local of the same name, combined twice:
    # every placeholder is renamed apart (a shared name once made /b match /a's set).
    a = acls("special path /a", "special path /b", "internal hdr(x-internal) yes")
    cond = compile_condition("if special !internal".split(), a)
    assert cond(txn(b"/b"))
    assert cond(txn(b"/a"))
    assert not cond(txn(b"/c"))
    assert not cond(txn(b"/b", headers=[(b"X-Internal", b"yes")]))
    names = [n for n in cond.frag.env]
    assert len(names) == len(set(names))


@pytest.mark.parametrize("line, target, headers, want", [
    ("path_beg /api/ /v1/", b"/v1/x", (), True),
    ("path_beg -i /API/", b"/api/x", (), True),
    ("path_end .php", b"/x.php?a=1", (), True),
    ("path_end .php", b"/x.phps", (), False),
    ("path_reg ^/v[0-9]+/", b"/v12/a", (), True),
    ("path_sub -i ADMIN", b"/x/admin/y", (), True),
    ("path /a /b", b"/b?x", (), True),
    ("hdr(host) -i api.example.com", b"/", [(b"Host", b"API.example.com")], True),
    ("hdr_beg(host) -i admin.", b"/", [(b"Host", b"x.com"), (b"host", b"Admin.x")], True),
    ("hdr(x-list) b", b"/", [(b"X-List", b"a, b")], True),
    ("req.hdr(x-canary) -m found", b"/", [(b"X-Other", b"1")], False),
    ("req.hdr(x-canary) -m found", b"/", [(b"X-Canary", b"")], True),
    ("method POST PUT", b"/", (), False),
    ("query -m sub debug=1", b"/?a=1&debug=1", (), True),
    ("query -m sub debug=1", b"/", (), False),
])
def test_generated_tests_answer_as_the_patterns_do(line, target, headers, want):
    cond = compile_condition("if t".split(), acls("t " + line))
    assert bool(cond(txn(target, headers=headers))) is want
    neg = compile_condition("unless t".split(), acls("t " + line))
    assert bool(neg(txn(target, headers=headers))) is (not want)


def test_a_piece_without_code_takes_part_as_a_call():
    calls = []

    def probe(t):
        calls.append(t)
        return True
    fn = build(combine("($0 and not $1)", (frag_of(probe), Frag("{x} in txn.method",
                                                                 {"x": b"P"}))))
    t = txn(method=b"GET")
    assert fn(t) is True and calls == [t]


def test_set_and_del_of_absent_names_become_an_add_and_nothing():
    t = txn(headers=[(b"Host", b"h"), (b"X-A", b"1")])
    t.index()
    t.edit_headers((SET, b"x-new", b"X-New", b"v"), edit_pairs)
    t.edit_headers((DEL, b"x-gone", None, None), edit_pairs)
    t.edit_headers((SET, b"x-a", b"X-A", b"2"), edit_pairs)
    assert [e[0] for e in t.edits] == [ADD, SET]
    assert t.headers() == [(b"Host", b"h"), (b"X-New", b"v"), (b"X-A", b"2")]
    assert t.index()[b"x-new"] == [b"v"] and t.index()[b"x-a"] == [b"2"]
    head = b"GET / HTTP/1.1\r\nHost: h\r\nX-A: 1\r\n"
    assert replay_request(head, t) == b"GET / HTTP/1.1\r\nHost: h\r\nX-New: v\r\nX-A: 2\r\n"


def test_only_adds_are_appended_to_the_head_as_it_is():
    t = txn(headers=[(b"Host", b"h")])
    t.index()
    t.edit_headers((SET, b"x-p", b"X-P", b"bench"), edit_pairs)
    t.edit_headers((ADD, b"x-q", b"X-Q", b"1"), edit_pairs)
    head = b"GET / HTTP/1.1\r\nHost: h\r\n"
    assert replay_request(head, t) == head + b"X-P: bench\r\nX-Q: 1\r\n"


def test_a_runtime_pattern_an_acl_cannot_take_is_refused_and_changes_nothing(tmp_path):
    """`add acl FILE not-an-ip` on a `src -f FILE` ACL: refused (HAProxy refuses it);
    the file's other patterns and later changes go on working (review finding)."""
    from proxy.rules import refs
    pats = tmp_path / "block.lst"
    pats.write_text("10.0.0.1\n")
    refs.reset()
    cond = compile_condition("if blocked".split(), acls("blocked src -f %s" % pats))
    ref = refs.find(str(pats), "acl")

    def blocked(ip):
        t = txn(src=(ip, 1000))
        return bool(cond(t))
    assert blocked("10.0.0.1") and not blocked("10.0.0.5")
    with pytest.raises(ValueError):
        ref.add("not-an-ip", "")
    assert [k for _, k, _ in ref.entries] == ["10.0.0.1"]
    assert ref.add("10.0.0.5", "") and blocked("10.0.0.5")
    assert ref.delete("10.0.0.1") and not blocked("10.0.0.1")
