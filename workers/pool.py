"""The per-server idle pool: the whole idle life of server connections, and how many to keep.

A connection a stream has finished with is released here (kept or closed:
`release` lists every reason not to keep one, as nginx's upstream keepalive
module does in one place), parked (its idle time starts, it is watched for the
server closing it), checked out again (the newest first, after a liveness peek
when it sat long or the request cannot be replayed), evicted when the server
closes it, expired and purged. The contract is urllib3's: take (or get
nothing), put back (or refuse), drop everything. When a request may reuse is decided by `proxy.http1.rules.reuse_scope`,
not here; how many idle connections are worth keeping is decided here, as
HAProxy's `srv_add_to_idle_list` and its purge task decide it: from the number
of connections in use and an estimate of how many the traffic needs.

Every idle connection that others may use lives here, also one a client's stream
has just finished with and will want again: a client does not pin a server
connection while its client is silent (HAProxy 2.6 puts non-private connections
in the server's idle list the same way). Only private ones (NTLM, `http-reuse
never`) stay with their stream (`H1Back.keeper`).
"""

from itertools import islice
from selectors import EVENT_READ

from proxy.http1.rules import REUSE_NEVER, idle_limit_from_hint

IDLE_CHECK_AFTER = 1.0   # an idle connection unused longer than this is peeked at before use

def worn_out(conn):
    """`max-reuse N`: a connection carries at most N + 1 requests (-1: no limit)."""
    return 0 <= conn.server.max_reuse < conn.uses


class IdlePool:
    """Idle connections to one server, owned by one worker.

    `conns` is a dict used as an ordered set: insertion order is the order in
    which connections became idle (oldest first), so LIFO take is popitem() and
    removing one the server closed is O(1).
    """

    __slots__ = ("conns", "max_conn", "min_idle", "max_used", "est_need", "next_purge",
                 "idle_limit", "purge_delay", "counters")

    def __init__(self, max_conn=-1, min_idle=0, idle_limit=5.0, purge_delay=5.0, counters=None):
        self.conns = {}
        self.max_conn = max_conn          # -1: unlimited (HAProxy's pool-max-conn default)
        self.min_idle = min_idle          # idle connections wanted beyond the need (pool-warm-conn)
        self.max_used = 0                 # most connections in use at once since the last purge
        self.est_need = 0                 # connections the traffic is estimated to need
        self.next_purge = 0.0             # when the estimate is next revised (purge())
        self.idle_limit = idle_limit      # an idle connection closes after this long unused
        self.purge_delay = purge_delay    # pool-purge-delay: how often the surplus goes
        self.counters = counters          # the server's: idle_purged, idle_srv_closed

    def __len__(self):
        return len(self.conns)

    def used(self, current):
        """A connection to this server went into use; `current` are in use now."""
        if current > self.max_used:
            self.max_used = current
            if current > self.est_need:
                self.est_need = current

    def take(self, proven_only=False, sni=None):
        """Pop the most recently used live connection (a proven one if asked; one
        that sends `sni`, for `sni <expression>`), or None.

        LIFO keeps the hottest connections busy and lets the cold ones age out
        (pool-purge-delay), so the pool shrinks to what the load needs; the
        newest is also the least likely to have been closed by the server.
        """
        conns = self.conns
        if sni is not None:
            return self._take_named(proven_only, sni)
        if not proven_only:
            while conns:
                conn = conns.popitem()[0]
                xprt = conn.xprt
                if xprt.sock is not None:           # else: closed while idle, not yet removed
                    xprt.retarget(conn.busy_io)     # its events go to the exchange again
                    return conn
            return None
        for conn in reversed(conns):
            xprt = conn.xprt
            if xprt.sock is not None and conn.proven:
                del conns[conn]
                xprt.retarget(conn.busy_io)
                return conn
        return None

    def _take_named(self, proven_only, sni):
        conns = self.conns
        for conn in reversed(conns):
            xprt = conn.xprt
            if conn.sni == sni and xprt.sock is not None and (conn.proven or not proven_only):
                del conns[conn]
                xprt.retarget(conn.busy_io)
                return conn
        return None

    def offer(self, conn, in_use):
        """Keep `conn`, just released with `in_use` connections busy (itself counted
        among them), if it is worth keeping; False if not (the caller closes it).

        HAProxy keeps it when the pool is empty, or while idle + used stay within
        what the traffic was seen to need (srv_add_to_idle_list): a thousand
        clients that each sent one request and went silent leave one idle
        connection, not a thousand. `pool-warm-conn` adds its connections to the
        need (as HAProxy's pool-low-conn does); `pool-max-conn` bounds it all."""
        n = len(self.conns)
        if n and in_use + n > max(in_use, self.est_need) + self.min_idle:
            return False
        return self.put(conn)

    def put(self, conn):
        """Keep `conn` for later; return False if the pool is full (caller closes it)."""
        if 0 <= self.max_conn <= len(self.conns):
            return False
        self.conns[conn] = None
        return True

    def remove(self, conn):
        """Forget `conn` (the server closed it, or it was purged)."""
        self.conns.pop(conn, None)

    def expired(self, now):
        """Remove and return the connections whose idle time is over (oldest first)."""
        # Not sorted by expiry (a server's Keep-Alive hint shortens some): look at all.
        conns = self.conns
        gone = [conn for conn in conns if now >= conn.expire]
        for conn in gone:
            del conns[conn]
        return gone

    def purge(self, in_use):
        """Every pool-purge-delay: revise the estimate of connections needed (half
        way between the old estimate and the busiest moment since the last purge,
        never below that moment), and return the surplus idle connections to
        close, oldest first: half the excess of idle + used over what is needed,
        as HAProxy's purge task does (srv_cleanup_idle_conns)."""
        idle = len(self.conns)
        exceed = in_use + idle - max(self.max_used, self.est_need) - self.min_idle
        self.est_need = max((self.est_need + self.max_used) // 2, self.max_used)
        self.max_used = in_use
        if idle == 0 or exceed <= 0:
            return []
        conns = self.conns
        gone = list(islice(conns, (exceed + 1) // 2))
        for conn in gone:
            del conns[conn]
        return gone

    # ------------------------------------------------------------ the idle life

    def park(self, conn, now):
        """`conn` finished an exchange (or was opened warm) and waits for the next one:
        its idle time starts, and it is watched, so that a close or stray bytes from
        the server evict it at once (reads may have been paused for a slow client
        during the last response). Also for a private connection its stream keeps."""
        conn.idle_since = now
        # HAProxy's "proven": already reused at least once, so the server is known
        # to keep connections open after a response.
        conn.proven = conn.uses >= 2
        hint = conn.hint_timeout
        conn.expire = now + (self.idle_limit if hint is None
                             else idle_limit_from_hint(self.idle_limit, hint))
        xprt = conn.xprt
        # A parked connection's own callback (H1Back.on_idle); retarget: a TLS one may
        # still be in its handshake (pool-warm-conn), which goes on first.
        xprt.retarget(conn.idle_io)
        xprt.set_events(EVENT_READ)

    def unpark(self, conn):
        """A private connection its stream kept goes back to work."""
        conn.xprt.retarget(conn.busy_io)

    def release(self, conn, now, in_use, keep=True):
        """A stream is done with `conn` (`in_use` connections to this server busy,
        it among them): keep it for others, or close it. Closed: when `keep` is false
        (the server is DOWN, or the worker stopping), a private connection
        (NTLM/Negotiate bound it to its client), any under `http-reuse never`, one
        past `max-reuse`, and one the pool does not want (offer)."""
        server = conn.server
        if not keep or conn.private or server.backend.reuse == REUSE_NEVER or worn_out(conn):
            conn.close()
            return
        if not self.offer(conn, in_use):
            self.counters.idle_purged += 1
            conn.close()
            return
        self.park(conn, now)

    def fresh(self, conn, now, peek=False):
        """May this idle connection carry a request now? Not past its idle limit or the
        server's announced request budget, and not closed under us: checked with a
        peek if it sat idle long, or always when `peek` (a request that cannot be
        replayed if the connection turns out dead)."""
        if now >= conn.expire or conn.uses_left == 0:
            self.counters.idle_purged += 1
            return False
        if peek or now - conn.idle_since >= IDLE_CHECK_AFTER:
            return conn.xprt.still_open()
        return True

    def checkout(self, now, proven_only=False, peek=False, sni=None):
        """The most recently used idle connection that is still good (a proven one if
        asked, one that sends `sni` if given), or None; the dead ones met on the way
        are closed."""
        while True:
            conn = self.take(proven_only, sni)
            if conn is None:
                return None
            if self.fresh(conn, now, peek):
                return conn
            conn.close()

    def evict(self, conn):
        """A parked connection became readable: the server closed it (or misbehaved)."""
        self.conns.pop(conn, None)
        self.counters.idle_srv_closed += 1
        conn.close()

    def tick(self, now, in_use):
        """Close the connections past their idle limit and, every pool-purge-delay,
        the surplus over what the traffic needs (purge)."""
        gone = self.expired(now) if self.conns else []
        if now >= self.next_purge:
            self.next_purge = now + self.purge_delay
            gone += self.purge(in_use)
        for conn in gone:
            self.counters.idle_purged += 1
            conn.close()

    def refill(self, want, connect, now):
        """pool-warm-conn: open connections (with `connect()`, None if it failed)
        until `want` are idle; those opened are parked, never used yet."""
        for _ in range(want - len(self.conns)):
            conn = connect()
            if conn is None:
                return
            self.counters.warm_opened += 1
            conn.warm = True
            if not self.put(conn):
                conn.close()
                return
            self.park(conn, now)

    def close_all(self):
        """Close every idle connection (server DOWN, worker stopping)."""
        for conn in self.drain():
            conn.close()

    def drain(self):
        """Remove and return every idle connection (server DOWN, worker stopping)."""
        conns, self.conns = list(self.conns), {}
        return conns
