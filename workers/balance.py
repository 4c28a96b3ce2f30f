"""Choosing a server for a request: HAProxy's `balance` algorithms over a backend's servers.

    lb = make_balancer(backend_config, servers)   # servers: ServerRuntime objects, config order
    lb.needs_key   None, "source", "uri" or "hdr": what the session must pass as `key`
    lb.hdr_name    the header to hash (lower-case bytes) when needs_key == "hdr"
    lb.pick(exclude=None, key=None) -> server or None
    lb.saturated   after a None: True when usable servers exist but all are at maxconn
    lb.update()    after a weight or maxconn change (state changes need nothing)

A balancer reads each server's `.usable`, `.weight` (may be a float, e.g. during
slowstart) and `.counters.scur` at pick time.  Rules common to every algorithm,
as in HAProxy: a server of weight 0 gets nothing; backup servers serve only when
no active one is usable (the first usable one, or all with `option allbackups`);
`exclude` (the server a retry wants to avoid) is chosen only when it is the sole
candidate; `roundrobin`, `static-rr`, `leastconn`, `first` and `random` skip a
server at its `maxconn` and return None with `saturated` set when all are (the
request should wait in the backend queue), while the hashing algorithms return
the full server (the request should wait in that server's queue, keeping its
affinity).
"""

from __future__ import annotations

import random as _random
import socket
import zlib
from bisect import bisect_left

from _native import R_TARGET_LEN, R_TARGET_OFF

# Ring points per unit of weight for `hash-type consistent` (HAProxy uses 16):
# more points spread keys more evenly; moving one server still moves ~1/N keys.
# Large weights get fewer points per unit so that a ring holds about RING_POINTS.
POINTS_PER_WEIGHT = 100
RING_POINTS = 16000
_M32 = 0xFFFFFFFF


# ---------------------------------------------------------------- hash functions
# HAProxy's hash functions (src/hash.c), on bytes, giving the same 32-bit values.

def hash_sdbm(data: bytes) -> int:
    h = 0
    for c in data:
        h = (c + (h << 6) + (h << 16) - h) & _M32
    return h


def hash_djb2(data: bytes) -> int:
    h = 5381
    for c in data:
        h = (h * 33 + c) & _M32
    return h


def hash_wt6(data: bytes) -> int:
    h0, h1 = 0xA53C965A, 0x5CA6953A
    step0, step1 = 6, 18
    for c in data:
        h0 = ~(h0 ^ c) & _M32
        h1 = ~(h1 + c) & _M32
        t = ((h1 << step0) | (h1 >> (32 - step0))) & _M32
        h1 = ((h0 << step1) | (h0 >> (32 - step1))) & _M32
        h0 = t
        t = ((h0 >> 16) ^ h1) & 0xFFFF
        step0 = t & 0x1F
        step1 = t >> 11
    return h0 ^ h1


def hash_crc32(data: bytes) -> int:
    return zlib.crc32(data) & _M32          # the same CRC-32 as HAProxy's hash_crc32


HASH_FUNCTIONS = {"sdbm": hash_sdbm, "djb2": hash_djb2, "wt6": hash_wt6, "crc32": hash_crc32}


def avalanche(a: int) -> int:
    """HAProxy's full_hash(): Bob Jenkins' 32-bit integer mix, then a spreading multiply."""
    a = ((a + 0x7ED55D16) + (a << 12)) & _M32
    a = ((a ^ 0xC761C23C) ^ (a >> 19)) & _M32
    a = ((a + 0x165667B1) + (a << 5)) & _M32
    a = ((a + 0xD3A2646C) ^ (a << 9)) & _M32
    a = ((a + 0xFD7046C5) + (a << 3)) & _M32
    a = ((a ^ 0xB55A4F09) ^ (a >> 16)) & _M32
    return (a * 3221225473) & _M32


# ---------------------------------------------------------------- keys

def source_hash(addr) -> int:
    """HAProxy's source hash: the address's 32-bit big-endian words XORed together."""
    if isinstance(addr, bytes):
        addr = addr.decode("ascii", "replace")
    try:
        raw = socket.inet_pton(socket.AF_INET, addr)
    except OSError:
        try:
            raw = socket.inet_pton(socket.AF_INET6, addr.split("%", 1)[0])
        except OSError:
            return hash_sdbm(addr.encode())      # not an IP: hash the text
    h = 0
    for i in range(0, len(raw), 4):
        h ^= int.from_bytes(raw[i:i + 4], "big")
    return h


def uri_part(target: bytes, whole=False, path_only=False, length=0, depth=0) -> bytes:
    """The part of a request target `balance uri` hashes, cut as HAProxy cuts it."""
    if path_only and not target.startswith(b"/"):
        # absolute-form: drop "scheme://authority"; keep the path and query
        at = target.find(b"://")
        if at >= 0:
            slash = target.find(b"/", at + 3)
            target = target[slash:] if slash >= 0 else b""
    if length:
        target = target[:length]
    end = len(target)
    if not whole:
        q = target.find(b"?")
        if q >= 0:
            end = q
    if depth:
        # stop before the (depth+1)-th slash: "depth 2" keeps "/a/b" of "/a/b/c"
        pos = -1
        for _ in range(depth + 1):
            pos = target.find(b"/", pos + 1, end)
            if pos < 0:
                break
        if pos >= 0:
            end = pos
    return target[:end]


def domain_part(value: bytes) -> bytes:
    """`use_domain_only`: the label before the last dot ("www.example.com" -> "example")."""
    last = value.rfind(b".")
    if last < 0:
        return value
    return value[value.rfind(b".", 0, last) + 1:last]


# ---------------------------------------------------------------- balancers

def _limit(server) -> int:
    """The server's maxconn in this worker: its runtime share if it has one, else the config's."""
    share = getattr(server, "maxconn", None)
    return server.config.maxconn if share is None else share


class Balancer:
    """What every algorithm shares: candidate groups, maxconn limits, the RR fallback."""

    needs_key = None
    hdr_name = None
    static = False          # static algorithms use configured weights; run-time weight is on/off

    def __init__(self, backend, servers=None):
        if servers is None:
            # the worker's original call, RoundRobin(servers), until it uses make_balancer
            backend, servers = None, backend
        self.servers = list(servers)
        self.active = [s for s in self.servers if not s.config.backup]
        self.backup = [s for s in self.servers if s.config.backup]
        self.allbackups = backend is not None and backend.allbackups
        self.saturated = False
        self.scores = {}        # smooth weighted round robin state, by server
        self.update()

    def update(self):
        """Re-read what is cached: maxconn limits (and, for hashing, the ring)."""
        self.limits = {s: _limit(s) for s in self.servers}
        self.limited = any(self.limits.values())

    def weight(self, s):
        return s.config.weight if self.static else s.weight

    def group(self):
        """The servers that may take a request now: usable actives, else the backups in use."""
        act = [s for s in self.active if s.usable and s.weight > 0]
        if act or not self.backup:
            return act
        if self.allbackups:
            return [s for s in self.backup if s.usable and s.weight > 0]
        for s in self.backup:
            if s.usable and s.weight > 0:
                return [s]
        return []

    def full(self, s) -> bool:
        limit = self.limits.get(s, 0)
        return bool(limit) and s.counters.scur >= limit

    def round_robin(self, cands, exclude):
        """Smooth weighted round robin over `cands` (weights 5,1,1 give a a b a c a a)."""
        scores = self.scores
        limited = self.limited
        best = avoided = None
        best_score = 0
        total = 0
        saw_full = False
        for s in cands:
            if limited and self.full(s):
                saw_full = True
                continue
            if s is exclude:
                avoided = s
                continue
            w = self.weight(s)
            total += w
            sc = scores.get(s, 0) + w
            scores[s] = sc
            if best is None or sc > best_score:
                best, best_score = s, sc
        if best is None:
            if avoided is not None:
                return avoided
            self.saturated = saw_full
            return None
        scores[best] = best_score - total
        return best

    def pick(self, exclude=None, key=None):
        self.saturated = False
        cands = self.group()
        if not cands:
            return None
        return self.choose(cands, exclude, key)

    def choose(self, cands, exclude, key):
        return self.round_robin(cands, exclude)


class RoundRobin(Balancer):
    """`balance roundrobin`: smooth weighted round robin, weights read at each pick."""

    def pick(self, exclude=None, key=None):
        # the common case inlined: no backups in use, no maxconn, no exclusion
        self.saturated = False
        if self.limited or exclude is not None:
            return Balancer.pick(self, exclude, key)
        active = self.active
        if len(active) == 1:
            s = active[0]
            if s.usable and s.weight > 0:
                return s
        scores = self.scores
        best = None
        best_score = 0
        total = 0
        for s in self.active:
            if not s.usable:
                continue
            w = s.weight
            if w <= 0:
                continue
            total += w
            sc = scores.get(s, 0) + w
            scores[s] = sc
            if best is None or sc > best_score:
                best, best_score = s, sc
        if best is None:
            cands = self.group()
            return self.round_robin(cands, None) if cands else None
        scores[best] = best_score - total
        return best


class StaticRoundRobin(Balancer):
    """`balance static-rr`: round robin with the configured weights."""

    static = True


class LeastConn(Balancer):
    """`balance leastconn`: fewest requests in flight for the weight; ties take turns.

    The load of a server is 0 when it has nothing in flight, else
    (in flight + 1) / weight, as HAProxy's leastconn tree keys it, so idle
    servers are used in turn and busy ones in proportion to their weights.
    """

    def __init__(self, backend, servers):
        self.turn = 0
        Balancer.__init__(self, backend, servers)

    def choose(self, cands, exclude, key):
        n = len(cands)
        start = self.turn % n
        best = avoided = None
        best_load = 0.0
        best_at = 0
        saw_full = False
        limited = self.limited
        for i in range(n):
            at = (start + i) % n
            s = cands[at]
            if limited and self.full(s):
                saw_full = True
                continue
            if s is exclude:
                avoided = s
                continue
            cur = s.counters.scur
            load = (cur + 1) / s.weight if cur else 0.0
            if best is None or load < best_load:
                best, best_load, best_at = s, load, at
        if best is None:
            if avoided is not None:
                return avoided
            self.saturated = saw_full
            return None
        self.turn = best_at + 1
        return best


class First(Balancer):
    """`balance first`: the first server, in declaration order, below its maxconn."""

    def choose(self, cands, exclude, key):
        avoided = None
        for s in cands:
            if self.full(s):
                continue
            if s is exclude:
                avoided = s
                continue
            return s
        if avoided is not None:
            return avoided
        self.saturated = True
        return None


class Random(Balancer):
    """`balance random(N)`: N weighted random draws, the least loaded one wins."""

    def __init__(self, backend, servers, rng=None):
        self.draws = backend.balance_args.draws
        self.rng = rng or _random.Random()
        Balancer.__init__(self, backend, servers)

    def draw(self, cands, total):
        x = self.rng.random() * total
        for s in cands:
            x -= s.weight
            if x < 0:
                return s
        return cands[-1]

    def choose(self, cands, exclude, key):
        if exclude is not None and len(cands) > 1:
            cands = [s for s in cands if s is not exclude]
        total = sum(s.weight for s in cands)
        best = None
        for _ in range(self.draws):
            s = self.draw(cands, total)
            if best is not None and s is not best and \
                    s.counters.scur * best.weight > best.counters.scur * s.weight:
                continue
            best = s
        if self.limited and self.full(best):
            self.saturated = True       # HAProxy: go to the backend queue instead
            return None
        return best


class Hashing(Balancer):
    """`balance source|uri|hdr(NAME)` with `hash-type map-based|consistent`.

    map-based: the hash modulo the total configured weight of the candidates
    picks a server (changing the candidates moves most keys).  consistent:
    each server owns points on a ring of 32-bit positions in proportion to its
    weight (POINTS_PER_WEIGHT per unit while the ring stays under RING_POINTS);
    the first `weight * points` of them are live, so a weight below the
    configured one (slowstart) takes effect at once; a key goes to the first
    live point at or after its hash that belongs to a candidate, so losing a
    server moves only the keys it owned.
    Without a key (no header, unix-socket client) requests go round robin.
    """

    CACHE_SIZE = 4096

    def __init__(self, backend, servers):
        args = backend.balance_args
        algo = backend.balance
        self.needs_key = algo
        if algo == "hdr":
            self.hdr_name = args.hdr.lower().encode("ascii")
        self.args = args
        self.consistent = backend.hash_type == "consistent"
        self.static = not self.consistent
        self.func = HASH_FUNCTIONS[backend.hash_function]
        self.mix = backend.hash_avalanche
        self.cache = {}
        Balancer.__init__(self, backend, servers)

    def update(self):
        Balancer.update(self)
        if not self.consistent:
            return
        # Rebuild only when a weight outgrew the ring: state changes call update() too.
        ring = getattr(self, "capacity", None)
        if ring is None or any(s.weight > ring.get(s, 0) for s in self.servers):
            total = sum(max(s.config.weight, s.weight) for s in self.servers) or 1
            self.points = max(1, min(POINTS_PER_WEIGHT, RING_POINTS // total))
            self.capacity = {s: max(s.config.weight, s.weight) for s in self.servers}
            self.ring_active = self.build_ring(self.active)
            self.ring_backup = self.build_ring(self.backup)

    def build_ring(self, servers):
        points = []
        for sid, s in enumerate(servers, 1):
            top = self.capacity[s] * self.points
            for i in range(int(top)):
                points.append((avalanche((sid << 16) + i), i, s))
        points.sort(key=lambda p: p[0])
        return ([p[0] for p in points], [p[1] for p in points], [p[2] for p in points])

    def hash_key(self, key) -> int:
        h = self.cache.get(key)
        if h is not None:
            return h
        orig = key
        algo = self.needs_key
        if algo == "source":
            h = source_hash(key)
        else:
            if isinstance(key, str):
                key = key.encode("latin-1")
            args = self.args
            if algo == "uri":
                data = uri_part(key, args.whole, args.path_only, args.len, args.depth)
            else:
                data = domain_part(key) if args.use_domain_only else key
            h = self.func(data)
        if self.mix:
            h = avalanche(h)
        if len(self.cache) >= self.CACHE_SIZE:
            self.cache.clear()
        self.cache[orig] = h
        return h

    def choose(self, cands, exclude, key):
        if key is None or key == b"" or key == "":
            return self.round_robin(cands, exclude)
        if len(cands) == 1:
            return cands[0]                 # HAProxy does not hash for a lone server
        h = self.hash_key(key)
        if self.consistent:
            return self.ring_lookup(cands, h, exclude)
        if exclude is not None:
            cands = [s for s in cands if s is not exclude]
        total = sum(s.config.weight for s in cands)
        if total <= 0:
            return self.round_robin(cands, exclude)
        x = h % total
        for s in cands:
            x -= s.config.weight
            if x < 0:
                return s
        return cands[-1]

    def ring_lookup(self, cands, h, exclude):
        per = self.points
        allowed = {s: s.weight * per for s in cands if s is not exclude}
        if not allowed:
            return exclude
        keys, index, owner = self.ring_backup if cands[0].config.backup else self.ring_active
        n = len(keys)
        at = bisect_left(keys, h)
        for step in range(n):
            j = (at + step) % n
            s = owner[j]
            top = allowed.get(s)
            if top is not None and index[j] < top:
                return s
        return next(iter(allowed))      # weights grew past the ring: call update()


_ALGORITHMS = {
    "roundrobin": RoundRobin,
    "static-rr": StaticRoundRobin,
    "leastconn": LeastConn,
    "first": First,
    "random": Random,
    "source": Hashing,
    "uri": Hashing,
    "hdr": Hashing,
}


def make_balancer(backend, servers):
    """The balancer for `backend` (a config Backend) over its runtime `servers`."""
    return _ALGORITHMS[backend.balance](backend, servers)


def slowstart_weight(weight, slowstart, elapsed):
    """A server's effective weight `elapsed` seconds after it came UP, with `slowstart`.

    As HAProxy: it starts at 1/16 of the weight and grows linearly to the full
    weight after `slowstart` seconds.  Static algorithms (static-rr,
    map-based hashing) ignore it.
    """
    if slowstart <= 0 or elapsed >= slowstart:
        return weight
    return weight * min(1.0, max(0.0, elapsed) / slowstart + 1.0 / 16)


def request_key(lb, peer, parser, data):
    """What `balance source|uri|hdr(NAME)` hashes for the request just parsed in `data`
    (None: not there): the client's address, the request target, or a header."""
    kind = lb.needs_key
    if kind == "source":
        return peer[0] if peer else None
    if kind == "uri":
        r = parser.result_all()              # the hot prefix has no target offsets
        off = r[R_TARGET_OFF]
        return data[off:off + r[R_TARGET_LEN]]
    name = lb.hdr_name
    for hname, value in parser.headers(data):
        if hname.lower() == name:
            return value
    return None
