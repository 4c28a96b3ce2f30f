"""IdlePool's bookkeeping alone (no sockets): what it keeps, what it gives, what it purges.

The numbers follow HAProxy 2.6's srv_add_to_idle_list (keep a released
connection when the pool is empty or idle + used stay within max(used,
estimated need)) and srv_cleanup_idle_conns (every pool-purge-delay: the
estimate moves half way to the busiest moment seen, never below it; half the
surplus is closed, oldest first).
"""

from workers.pool import IdlePool


class Xprt:
    def __init__(self):
        self.sock = object()          # None once closed


class Conn:
    """What the pool reads of a connection: open or not, proven, when it expires."""

    def __init__(self, name, proven=False, expire=100.0):
        self.name = name
        self.xprt = Xprt()
        self.proven = proven
        self.expire = expire

    def __repr__(self):
        return self.name


def release(pool, conns, in_use):
    """Release `conns` one by one, `in_use` busy before the first (each counted busy as it goes)."""
    kept = []
    for c in conns:
        if pool.offer(c, in_use):
            kept.append(c)
        in_use -= 1
    return kept


def test_an_empty_pool_keeps_one_connection_whatever_the_estimate():
    pool = IdlePool()
    a = Conn("a")
    assert pool.est_need == 0 and pool.offer(a, 1)
    assert list(pool.conns) == [a]
    assert not pool.offer(Conn("b"), 1)


def test_sequential_clients_leave_one_idle_connection_not_one_each():
    # One busy at a time: the estimate is 1, so a second idle one is surplus.
    pool = IdlePool()
    pool.used(1)
    for i in range(50):
        pool.offer(Conn("c%d" % i), 1)
    assert len(pool) == 1


def test_connections_busy_at_once_are_all_kept():
    pool = IdlePool()
    for n in range(1, 21):
        pool.used(n)
    kept = release(pool, [Conn("c%d" % i) for i in range(20)], 20)
    assert len(kept) == 20


def test_pool_warm_conn_counts_beyond_the_need():
    pool = IdlePool(min_idle=2)
    pool.used(1)
    kept = [c for c in (Conn("a"), Conn("b"), Conn("c"), Conn("d")) if pool.offer(c, 1)]
    assert len(kept) == 3          # one for the need, two warm


def test_pool_max_conn_bounds_everything():
    pool = IdlePool(max_conn=2)
    for n in range(1, 11):
        pool.used(n)
    assert len(release(pool, [Conn("c%d" % i) for i in range(10)], 10)) == 2
    assert not IdlePool(max_conn=0).offer(Conn("x"), 1)


def test_take_is_lifo_and_proven_only_skips_the_unproven():
    pool = IdlePool()
    a, b, c = Conn("a", proven=True), Conn("b"), Conn("c")
    for x in (a, b, c):
        pool.put(x)
    assert pool.take(proven_only=True) is a
    assert pool.take() is c
    c.xprt.sock = None                    # closed while idle: skipped
    pool.put(c)
    assert pool.take() is b
    assert pool.take() is None


def test_purge_closes_half_the_surplus_oldest_first_and_decays_the_estimate():
    pool = IdlePool()
    for n in range(1, 301):
        pool.used(n)
    conns = [Conn("c%03d" % i) for i in range(300)]
    assert len(release(pool, conns, 300)) == 300
    # All idle now; busiest since: 300. First purge: no surplus yet.
    assert pool.purge(0) == []
    assert pool.est_need == 300
    # Second: the surplus is measured against the estimate still at 300 (none),
    # then, nobody having been busy since, the estimate halves to 150.
    assert pool.purge(0) == []
    assert pool.est_need == 150
    # Third: half the surplus of 150 goes, the oldest first.
    assert pool.purge(0) == conns[:75]
    assert len(pool) == 225 and pool.est_need == 75
    # It goes on converging to zero.
    for _ in range(12):
        pool.purge(0)
    assert len(pool) <= 1 and pool.est_need == 0


def test_expired_removes_only_those_past_their_time():
    pool = IdlePool()
    a, b, c = Conn("a", expire=5.0), Conn("b", expire=20.0), Conn("c", expire=1.0)
    for x in (a, b, c):
        pool.put(x)
    assert pool.expired(10.0) == [a, c]
    assert list(pool.conns) == [b]


def test_remove_and_drain():
    pool = IdlePool()
    a, b = Conn("a"), Conn("b")
    pool.put(a)
    pool.put(b)
    pool.remove(a)
    pool.remove(a)                        # twice: no error
    assert pool.drain() == [b]
    assert len(pool) == 0
