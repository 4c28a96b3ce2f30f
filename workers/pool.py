"""The per-server idle pool: a LIFO stack of warm server connections.

The contract is urllib3's: take (or get nothing), put back (or refuse), drop
everything. When to reuse is decided by `proxy.http1.rules.reuse_scope`, not here.
"""


class IdlePool:
    """Idle connections to one server, owned by one worker."""

    __slots__ = ("conns", "max_conn")

    def __init__(self, max_conn=-1):
        self.conns = []
        self.max_conn = max_conn          # -1: unlimited (HAProxy's pool-max-conn default)

    def __len__(self):
        return len(self.conns)

    def take(self, proven_only=False):
        """Pop the most recently used live connection (a proven one if asked), or None.

        LIFO keeps the hottest connections busy and lets the cold ones age out
        (pool-purge-delay), so the pool shrinks to what the load needs.
        """
        conns = self.conns
        if not proven_only:
            while conns:
                conn = conns.pop()
                if conn.sock is not None:      # else: closed while idle, not yet removed
                    return conn
            return None
        for i in range(len(conns) - 1, -1, -1):
            conn = conns[i]
            if conn.sock is not None and conn.proven:
                del conns[i]
                return conn
        return None

    def put(self, conn):
        """Keep `conn` for later; return False if the pool is full (caller closes it)."""
        if self.max_conn >= 0 and len(self.conns) >= self.max_conn:
            return False
        self.conns.append(conn)
        return True

    def remove(self, conn):
        """Forget `conn` (the server closed it, or it was purged)."""
        try:
            self.conns.remove(conn)
        except ValueError:
            pass

    def drain(self):
        """Remove and return every idle connection (server DOWN, worker stopping)."""
        conns, self.conns = self.conns, []
        return conns
