"""IdlePool's bookkeeping alone (no sockets): what it keeps, what it gives, what it purges.

The numbers follow HAProxy 2.6's srv_add_to_idle_list (keep a released
connection when the pool is empty or idle + used stay within max(used,
estimated need)) and srv_cleanup_idle_conns (every pool-purge-delay: the
estimate moves half way to the busiest moment seen, never below it; half the
surplus is closed, oldest first).
"""

from workers.counters import Counters
from workers.pool import IDLE_CHECK_AFTER, IdlePool


class Xprt:
    """The transport as the pool sees it: open or closed, watched, alive to a peek."""

    def __init__(self):
        self.sock = object()          # None once closed
        self.events = 0
        self.data = None              # the event callback the connection's owner set
        self.alive = True             # what a MSG_PEEK would find
        self.peeks = 0

    def set_events(self, events):
        self.events = events

    def retarget(self, on_io):        # who gets the events from now on
        self.data = on_io

    def still_open(self):
        self.peeks += 1
        return self.alive

    def close(self):
        self.sock = None


class Server:
    def __init__(self, reuse="safe", max_reuse=-1):
        self.backend = type("Backend", (), {"reuse": reuse})()
        self.max_reuse = max_reuse


class Conn:
    """What the pool reads of a connection: open or not, proven, when it expires."""

    def __init__(self, name, proven=False, expire=100.0, uses=1, server=None):
        self.name = name
        self.xprt = Xprt()
        self.proven = proven
        self.expire = expire
        self.uses = uses
        self.idle_since = 0.0
        self.hint_timeout = None
        self.uses_left = -1
        self.private = False
        self.warm = False
        self.server = server or Server()
        self.busy_io = ("busy", name)     # H1Back's two callbacks, bound once
        self.idle_io = ("idle", name)

    def close(self):
        self.xprt.close()

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


# ---------------------------------------------------------------- the idle life

def lifecycle_pool(**kw):
    return IdlePool(idle_limit=5.0, purge_delay=5.0, counters=Counters(), **kw)


def test_release_parks_a_connection_watched_with_its_idle_time_and_proven_state():
    pool = lifecycle_pool()
    c = Conn("a", uses=2)
    pool.release(c, now=10.0, in_use=1)
    assert list(pool.conns) == [c]
    assert (c.idle_since, c.expire, c.proven, c.xprt.events) == (10.0, 15.0, True, 1)
    assert c.xprt.data == ("idle", "a")          # its events go to the parked callback


def test_a_connection_handed_out_gets_its_busy_callback_back():
    pool = lifecycle_pool()
    c, p = Conn("c"), Conn("p", proven=True, uses=2)
    pool.release(p, 0.0, 1)
    assert pool.checkout(0.1, proven_only=True) is p and p.xprt.data == ("busy", "p")
    pool.release(c, 0.0, 1)
    assert pool.checkout(0.1) is c and c.xprt.data == ("busy", "c")
    pool.park(c, 0.2)
    pool.unpark(c)                               # a private one its stream takes back
    assert c.xprt.data == ("busy", "c")


def test_release_closes_what_must_not_be_kept():
    pool = lifecycle_pool()
    private = Conn("private")
    private.private = True
    never = Conn("never", server=Server(reuse="never"))
    worn = Conn("worn", uses=3, server=Server(max_reuse=2))
    down = Conn("down")
    for c in (private, never, worn):
        pool.release(c, 0.0, 1)
    pool.release(down, 0.0, 1, keep=False)
    assert len(pool) == 0
    assert all(c.xprt.sock is None for c in (private, never, worn, down))


def test_checkout_peeks_only_when_idle_long_or_asked_and_closes_the_dead():
    pool = lifecycle_pool()
    c = Conn("a")
    pool.release(c, 0.0, 1)
    assert pool.checkout(0.5) is c and c.xprt.peeks == 0        # fresh: no peek
    pool.release(c, 1.0, 1)
    assert pool.checkout(1.5, peek=True) is c and c.xprt.peeks == 1   # a POST: peeked
    pool.release(c, 2.0, 1)
    c.xprt.alive = False
    assert pool.checkout(2.0 + IDLE_CHECK_AFTER) is None        # idle long, peeked, dead
    assert c.xprt.sock is None


def test_checkout_refuses_an_expired_or_spent_connection_and_counts_it():
    pool = lifecycle_pool()
    old, spent = Conn("old"), Conn("spent")
    pool.release(old, 0.0, 2)
    pool.release(spent, 4.0, 1)
    spent.uses_left = 0
    assert pool.checkout(5.0) is None
    assert pool.counters.idle_purged == 2


def test_evict_forgets_and_closes_a_connection_the_server_closed():
    pool = lifecycle_pool()
    c = Conn("a")
    pool.release(c, 0.0, 1)
    pool.evict(c)
    assert len(pool) == 0 and c.xprt.sock is None and pool.counters.idle_srv_closed == 1


def test_tick_expires_and_purges():
    pool = lifecycle_pool()
    for n in range(1, 5):
        pool.used(n)
    conns = [Conn("c%d" % i) for i in range(4)]
    for i, c in enumerate(conns):
        pool.release(c, float(i), 4 - i)
    pool.tick(5.5, 0)           # c0 idle 5.5 s > 5 s: closed; the first purge finds no surplus
    assert conns[0].xprt.sock is None and len(pool) == 3
    assert pool.counters.idle_purged == 1


def test_refill_opens_up_to_the_warm_count_and_parks_them_unproven():
    pool = lifecycle_pool(min_idle=2)
    made = []

    def connect():
        c = Conn("w%d" % len(made), uses=0)
        made.append(c)
        return c

    pool.refill(2, connect, 1.0)
    assert list(pool.conns) == made and all(c.warm and not c.proven for c in made)
    assert pool.counters.warm_opened == 2
    pool.refill(2, connect, 2.0)
    assert len(made) == 2                      # already full: nothing opened
    pool.refill(3, lambda: None, 3.0)          # connect failed: no error, nothing kept
    assert len(pool) == 2
