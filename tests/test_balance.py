"""The balance algorithms, without sockets: fake servers with HAProxy's runtime attributes."""

import random
from collections import Counter, deque
from types import SimpleNamespace

import pytest

from proxy.config.model import Backend, BalanceArgs
from workers.balance import (POINTS_PER_WEIGHT, RING_POINTS, RoundRobin, avalanche, domain_part,
                             hash_crc32, hash_djb2, hash_sdbm, hash_wt6, make_balancer,
                             slowstart_weight, source_hash, uri_part)


class FakeServer:
    """What a balancer may read of a worker's ServerRuntime."""

    def __init__(self, name, weight=1, backup=False, maxconn=0, usable=True):
        self.name = name
        self.config = SimpleNamespace(weight=weight, backup=backup, maxconn=maxconn)
        self.weight = weight
        self.usable = usable
        self.counters = SimpleNamespace(scur=0)

    def __repr__(self):
        return self.name


def servers(*specs):
    out = []
    for i, spec in enumerate(specs):
        kw = spec if isinstance(spec, dict) else {"weight": spec}
        out.append(FakeServer(kw.pop("name", "s%d" % (i + 1)), **kw))
    return out


def balancer(algo, srvs, **kw):
    return make_balancer(Backend(name="be", balance=algo, **kw), srvs)


def picks(lb, n, key=None, exclude=None):
    return Counter(lb.pick(exclude, key) for _ in range(n))


def keys(n, seed=7):
    rng = random.Random(seed)
    return [("/item/%d?v=%d" % (rng.randrange(10**9), i)).encode() for i in range(n)]


ALL = ["roundrobin", "static-rr", "leastconn", "first", "random", "source", "uri", "hdr"]


def make(algo, srvs, **kw):
    if algo == "hdr":
        kw.setdefault("balance_args", BalanceArgs(hdr="X-User"))
    return balancer(algo, srvs, **kw)


def key_for(algo, i=1):
    return {"source": "10.0.0.%d" % i, "uri": b"/a/%d" % i, "hdr": b"user%d" % i}.get(algo)


# ---------------------------------------------------------------- the interface

def test_needs_key_and_hdr_name_say_what_the_session_must_hash():
    srvs = servers(1, 1)
    assert balancer("roundrobin", srvs).needs_key is None
    assert balancer("leastconn", srvs).needs_key is None
    assert balancer("source", srvs).needs_key == "source"
    assert balancer("uri", srvs).needs_key == "uri"
    lb = balancer("hdr", srvs, balance_args=BalanceArgs(hdr="X-Session-ID"))
    assert lb.needs_key == "hdr" and lb.hdr_name == b"x-session-id"


@pytest.mark.parametrize("algo", ALL)
def test_none_when_no_server_is_usable(algo):
    srvs = servers(1, 2, {"weight": 1, "backup": True})
    for s in srvs:
        s.usable = False
    lb = make(algo, srvs)
    assert lb.pick(None, key_for(algo)) is None and lb.saturated is False
    assert make(algo, []).pick(None, key_for(algo)) is None


@pytest.mark.parametrize("algo", ALL)
def test_weight_zero_servers_never_get_traffic(algo):
    a, b = srvs = servers(0, 1)
    lb = make(algo, srvs)
    got = Counter(lb.pick(None, key_for(algo, i)) for i in range(200))
    assert got == {b: 200}
    b.weight = 0            # a run-time weight of 0 switches any algorithm's server off
    assert lb.pick(None, key_for(algo)) is None


@pytest.mark.parametrize("algo", ALL)
def test_a_down_server_gets_nothing_and_comes_back_without_rebuilding(algo):
    a, b, c = srvs = servers(1, 1, 1)
    lb = make(algo, srvs)
    b.usable = False
    got = Counter(lb.pick(None, key_for(algo, i)) for i in range(300))
    assert b not in got and set(got) <= {a, c}
    b.usable = True
    got = Counter(lb.pick(None, key_for(algo, i)) for i in range(300))
    assert b in got or algo == "first"


@pytest.mark.parametrize("algo", ALL)
def test_exclude_is_avoided_while_another_server_is_usable(algo):
    a, b = srvs = servers(1, 1)
    lb = make(algo, srvs)
    for i in range(100):
        assert lb.pick(a, key_for(algo, i)) is b
        assert lb.pick(b, key_for(algo, i)) is a


@pytest.mark.parametrize("algo", ALL)
def test_exclude_is_still_chosen_when_it_is_the_only_usable_server(algo):
    # HAProxy retries on the same server rather than failing when nothing else is up
    a, b = srvs = servers(1, 1)
    b.usable = False
    assert make(algo, srvs).pick(a, key_for(algo)) is a


# ---------------------------------------------------------------- backups

@pytest.mark.parametrize("algo", ALL)
def test_backups_serve_only_when_no_active_server_is_usable(algo):
    a, b, bk1, bk2 = srvs = servers(1, 1, {"weight": 1, "backup": True},
                                    {"weight": 1, "backup": True})
    lb = make(algo, srvs)
    got = Counter(lb.pick(None, key_for(algo, i)) for i in range(100))
    assert set(got) <= {a, b}
    a.usable = False
    assert set(Counter(lb.pick(None, key_for(algo, i)) for i in range(100))) == {b}
    b.usable = False
    # only the first usable backup, in declaration order
    assert set(Counter(lb.pick(None, key_for(algo, i)) for i in range(100))) == {bk1}
    bk1.usable = False
    assert set(Counter(lb.pick(None, key_for(algo, i)) for i in range(100))) == {bk2}
    a.usable = True
    assert set(Counter(lb.pick(None, key_for(algo, i)) for i in range(100))) == {a}


@pytest.mark.parametrize("algo", ["roundrobin", "static-rr", "leastconn", "random",
                                  "source", "uri", "hdr"])
def test_allbackups_spreads_over_all_usable_backups(algo):
    a, bk1, bk2, bk3 = srvs = servers({"weight": 1, "usable": False},
                                      {"weight": 1, "backup": True},
                                      {"weight": 1, "backup": True},
                                      {"weight": 1, "backup": True})
    lb = make(algo, srvs, allbackups=True)
    got = Counter(lb.pick(None, key_for(algo, i)) for i in range(600))
    assert set(got) == {bk1, bk2, bk3}
    assert min(got.values()) > 100


def test_first_with_allbackups_fills_backups_in_order():
    a, bk1, bk2 = srvs = servers({"weight": 1, "usable": False},
                                 {"weight": 1, "backup": True, "maxconn": 1},
                                 {"weight": 1, "backup": True, "maxconn": 1})
    lb = balancer("first", srvs, allbackups=True)
    assert lb.pick() is bk1
    bk1.counters.scur = 1
    assert lb.pick() is bk2


# ---------------------------------------------------------------- roundrobin, static-rr

def test_roundrobin_interleaves_weights_smoothly():
    a, b, c = srvs = servers({"name": "a", "weight": 5}, {"name": "b", "weight": 1},
                             {"name": "c", "weight": 1})
    lb = balancer("roundrobin", srvs)
    assert [lb.pick().name for _ in range(7)] == list("aabacaa")
    assert picks(lb, 7000) == {a: 5000, b: 1000, c: 1000}


def test_roundrobin_reads_weights_changed_at_run_time():
    a, b = srvs = servers(1, 1)
    lb = balancer("roundrobin", srvs)
    assert picks(lb, 1000) == {a: 500, b: 500}
    a.weight = 3
    got = picks(lb, 4000)
    assert abs(got[a] - 3000) <= 4 and abs(got[b] - 1000) <= 4
    a.weight = 0.5          # fractional weights, as slowstart produces
    got = picks(lb, 3000)
    assert abs(got[a] - 1000) <= 4


def test_static_rr_uses_configured_weights_and_runtime_weight_only_as_on_off():
    a, b = srvs = servers(3, 1)
    lb = balancer("static-rr", srvs)
    assert picks(lb, 4000) == {a: 3000, b: 1000}
    a.weight = 1            # ignored by a static algorithm...
    assert picks(lb, 4000) == {a: 3000, b: 1000}
    a.weight = 0            # ...except 0
    assert picks(lb, 100) == {b: 100}


def test_legacy_roundrobin_constructor_still_works():
    a, b = srvs = servers(1, 1)
    assert picks(RoundRobin(srvs), 10) == {a: 5, b: 5}


# ---------------------------------------------------------------- maxconn

@pytest.mark.parametrize("algo", ["roundrobin", "static-rr", "leastconn", "random"])
def test_full_servers_are_skipped_and_saturated_when_all_are_full(algo):
    a, b = srvs = servers({"weight": 1, "maxconn": 2}, {"weight": 1, "maxconn": 2})
    lb = make(algo, srvs)
    a.counters.scur = 2
    if algo == "random":
        lb.rng = random.Random(3)
        got = Counter(lb.pick() for _ in range(200))
        assert got[b] > 100 and got[a] == 0     # a draw landing on a full server -> None
    else:
        assert picks(lb, 50) == {b: 50}
    b.counters.scur = 2
    assert lb.pick() is None and lb.saturated is True
    b.counters.scur = 1
    assert lb.pick() is b and lb.saturated is False


def test_maxconn_share_on_the_runtime_object_wins_over_the_config():
    a, b = srvs = servers({"weight": 1, "maxconn": 10}, 1)
    a.maxconn = 1           # this worker's share of the server's maxconn
    lb = balancer("first", srvs)
    assert lb.pick() is a
    a.counters.scur = 1
    assert lb.pick() is b


@pytest.mark.parametrize("algo", ["source", "uri", "hdr"])
def test_hashing_keeps_affinity_to_a_full_server(algo):
    srvs = servers({"weight": 1, "maxconn": 1}, {"weight": 1, "maxconn": 1})
    lb = make(algo, srvs)
    s = lb.pick(None, key_for(algo))
    s.counters.scur = 1
    assert lb.pick(None, key_for(algo)) is s    # the request should queue on its server


# ---------------------------------------------------------------- leastconn

def test_leastconn_prefers_the_least_loaded_server():
    a, b, c = srvs = servers(1, 1, 1)
    a.counters.scur, b.counters.scur, c.counters.scur = 5, 1, 3
    lb = balancer("leastconn", srvs)
    assert lb.pick() is b
    b.counters.scur = 9
    assert lb.pick() is c


def test_leastconn_takes_turns_among_equally_loaded_servers():
    srvs = servers(1, 1, 1)
    lb = balancer("leastconn", srvs)
    assert [lb.pick() for _ in range(6)] == srvs + srvs


def test_leastconn_respects_weights_under_steady_load():
    a, b = srvs = servers(3, 1)
    lb = balancer("leastconn", srvs)
    inflight = deque()
    got = Counter()
    for _ in range(8000):
        s = lb.pick()
        got[s] += 1
        s.counters.scur += 1
        inflight.append(s)
        if len(inflight) > 40:              # 40 requests in flight, all equally long
            inflight.popleft().counters.scur -= 1
    share = got[a] / 8000
    assert 0.70 <= share <= 0.80, share     # weight 3 of 4


# ---------------------------------------------------------------- first

def test_first_fills_servers_in_declaration_order():
    a, b, c = srvs = servers(*[{"weight": 1, "maxconn": 2}] * 3)
    lb = balancer("first", srvs)
    order = []
    for _ in range(6):
        s = lb.pick()
        order.append(s)
        s.counters.scur += 1
    assert order == [a, a, b, b, c, c]
    assert lb.pick() is None and lb.saturated
    b.counters.scur -= 1
    assert lb.pick() is b


def test_first_without_maxconn_always_takes_the_first_server_and_ignores_weights():
    a, b = srvs = servers(1, 10)
    a.counters.scur = 1000
    assert picks(balancer("first", srvs), 20) == {a: 20}


# ---------------------------------------------------------------- random

def test_random_respects_weights():
    a, b, c = srvs = servers(1, 2, 5)
    lb = balancer("random", srvs, balance_args=BalanceArgs(draws=1))
    lb.rng = random.Random(11)
    got = picks(lb, 16000)
    for s, w in ((a, 1), (b, 2), (c, 5)):
        assert abs(got[s] / 16000 - w / 8) < 0.02


def test_random_power_of_two_choices_prefers_the_less_loaded_server():
    a, b = srvs = servers(1, 1)
    a.counters.scur = 10
    one = balancer("random", srvs, balance_args=BalanceArgs(draws=1))
    two = balancer("random", srvs)
    one.rng, two.rng = random.Random(5), random.Random(5)
    # one draw: a half of the time; two draws: only when both draws land on a (1/4)
    assert abs(picks(one, 8000)[a] / 8000 - 0.5) < 0.03
    assert abs(picks(two, 8000)[a] / 8000 - 0.25) < 0.03
    assert two.draws == 2


# ---------------------------------------------------------------- hashing

@pytest.mark.parametrize("hash_type", ["map-based", "consistent"])
@pytest.mark.parametrize("algo", ["source", "uri", "hdr"])
def test_hashing_is_stable_for_the_same_key(algo, hash_type):
    srvs = servers(1, 1, 1, 1)
    lb = make(algo, srvs, hash_type=hash_type)
    for i in range(50):
        first = lb.pick(None, key_for(algo, i))
        assert all(lb.pick(None, key_for(algo, i)) is first for _ in range(5))
    # a fresh balancer (another worker) agrees
    other = make(algo, servers(1, 1, 1, 1), hash_type=hash_type)
    assert [lb.pick(None, key_for(algo, i)).name for i in range(50)] == \
        [other.pick(None, key_for(algo, i)).name for i in range(50)]


@pytest.mark.parametrize("hash_type,function,mix", [
    ("map-based", "sdbm", False), ("map-based", "crc32", False),
    ("consistent", "sdbm", True), ("consistent", "djb2", True),
    ("consistent", "wt6", False), ("map-based", "wt6", True)])
def test_hashing_respects_weights(hash_type, function, mix):
    a, b = srvs = servers(3, 1)
    lb = balancer("uri", srvs, hash_type=hash_type, hash_function=function,
                  hash_avalanche=mix)
    got = Counter(lb.pick(None, k) for k in keys(8000))
    assert abs(got[a] / 8000 - 0.75) < 0.05, got


def test_missing_key_falls_back_to_round_robin():
    a, b = srvs = servers(1, 1)
    lb = balancer("hdr", srvs, balance_args=BalanceArgs(hdr="X-User"))
    assert picks(lb, 10, key=None) == {a: 5, b: 5}
    assert picks(lb, 10, key=b"") == {a: 5, b: 5}      # an empty header counts as missing


def _moved(hash_type, n=5, nkeys=10000):
    srvs = servers(*[1] * n)
    lb = balancer("uri", srvs, hash_type=hash_type)
    ks = keys(nkeys)
    before = [lb.pick(None, k) for k in ks]
    down = srvs[2]
    down.usable = False
    after = [lb.pick(None, k) for k in ks]
    moved = sum(1 for x, y in zip(before, after) if x is not y)
    kept_elsewhere = all(x is y for x, y in zip(before, after) if x is not down)
    return moved / nkeys, kept_elsewhere


def test_consistent_hashing_moves_only_the_keys_of_the_server_that_went_down():
    # measured: 5 servers, 10000 keys, one goes down -> ~20% (1/N) of keys move,
    # and none of the keys owned by the four others
    fraction, kept = _moved("consistent")
    assert kept
    assert 0.15 <= fraction <= 0.25, fraction


def test_map_based_hashing_moves_most_keys_when_a_server_goes_down():
    # measured: 5 servers, 10000 keys, one goes down -> ~80% of keys move
    fraction, kept = _moved("map-based")
    assert not kept and fraction > 0.6, fraction


def test_consistent_ring_follows_weight_changes_after_update():
    a, b = srvs = servers(1, 1)
    lb = balancer("uri", srvs, hash_type="consistent")
    ks = keys(6000)
    a.weight = 0.25         # slowstart-like: fewer of a's points are live
    got = Counter(lb.pick(None, k) for k in ks)
    assert abs(got[a] / 6000 - 0.2) < 0.05
    a.weight = 4            # more points than the ring holds: update() rebuilds it
    lb.update()
    got = Counter(lb.pick(None, k) for k in ks)
    assert abs(got[a] / 6000 - 0.8) < 0.05
    assert len(lb.ring_active[0]) == 5 * POINTS_PER_WEIGHT


def test_consistent_ring_is_not_rebuilt_by_state_changes_and_stays_bounded():
    srvs = servers(*[100] * 10)
    lb = balancer("uri", srvs, hash_type="consistent")
    ring = lb.ring_active
    assert len(ring[0]) <= RING_POINTS
    srvs[0].usable = False
    lb.update()
    assert lb.ring_active is ring
    got = Counter(lb.pick(None, k) for k in keys(5000))
    assert srvs[0] not in got and min(got.values()) > 350     # ~555 each


def test_uri_hashing_ignores_the_query_unless_whole():
    srvs = servers(*[1] * 8)
    part = balancer("uri", srvs)
    whole = balancer("uri", servers(*[1] * 8), balance_args=BalanceArgs(whole=True))
    assert len({part.pick(None, b"/img/logo.png?v=%d" % i).name for i in range(40)}) == 1
    assert len({whole.pick(None, b"/img/logo.png?v=%d" % i).name for i in range(40)}) > 1


@pytest.mark.parametrize("target,kw,expected", [
    (b"/a/b/c?x=1", {}, b"/a/b/c"),
    (b"/a/b/c?x=1", {"whole": True}, b"/a/b/c?x=1"),
    (b"/a/b/c/d", {"depth": 2}, b"/a/b"),
    (b"/a/b/c/d", {"depth": 1}, b"/a"),
    (b"/a/b", {"depth": 3}, b"/a/b"),
    (b"/abcdef?g", {"length": 4}, b"/abc"),
    (b"/ab?cdef", {"length": 6, "whole": True}, b"/ab?cd"),
    (b"http://example.com/a/b?q", {"path_only": True}, b"/a/b"),
    (b"http://example.com", {"path_only": True}, b""),
    (b"http://example.com/a?q", {}, b"http://example.com/a"),
])
def test_uri_part_cuts_the_target_as_haproxy_does(target, kw, expected):
    assert uri_part(target, **kw) == expected


def test_hdr_use_domain_only_hashes_the_domain_label():
    assert domain_part(b"www.example.com") == b"example"
    assert domain_part(b"example.com") == b"example"
    assert domain_part(b"localhost") == b"localhost"
    srvs = servers(*[1] * 8)
    lb = balancer("hdr", srvs, balance_args=BalanceArgs(hdr="Host", use_domain_only=True))
    hosts = [b"www.example.com", b"api.example.com", b"example.com", b"a.b.example.org"]
    assert len({lb.pick(None, h) for h in hosts}) == 1


def test_source_hash_accepts_text_or_bytes_and_both_families():
    assert source_hash("10.0.0.1") == source_hash(b"10.0.0.1") == 0x0A000001
    assert source_hash("::1") == 1
    assert source_hash("2001:db8::1") == 0x20010DB8 ^ 1


def test_hash_functions_give_haproxys_values():
    assert hash_sdbm(b"") == 0 and hash_sdbm(b"a") == 97
    assert hash_sdbm(b"ab") == (98 + (97 << 6) + (97 << 16) - 97)
    assert hash_djb2(b"") == 5381 and hash_djb2(b"a") == 5381 * 33 + 97
    assert hash_crc32(b"123456789") == 0xCBF43926       # the CRC-32 check value
    assert hash_wt6(b"") == 0xA53C965A ^ 0x5CA6953A
    assert all(0 <= f(b"x" * 100) <= 0xFFFFFFFF for f in (hash_sdbm, hash_djb2, hash_wt6))
    assert avalanche(0) != 0 and 0 <= avalanche(0xFFFFFFFF) <= 0xFFFFFFFF


# ---------------------------------------------------------------- slowstart

def test_slowstart_weight_ramps_from_a_sixteenth_to_full():
    assert slowstart_weight(16, 0, 0) == 16
    assert slowstart_weight(16, 10, 0) == 1
    assert slowstart_weight(16, 10, 5) == 9
    assert slowstart_weight(16, 10, 10) == 16 and slowstart_weight(16, 10, 99) == 16
