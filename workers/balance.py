"""Choosing a server for a request: smooth weighted round-robin (HAProxy's `balance roundrobin`)."""


class RoundRobin:
    """Smooth weighted round-robin over a backend's usable servers.

    Each pick adds every server's weight to its running score and takes the
    highest, then subtracts the total: weights 5,1,1 give a,a,b,a,c,a,a rather
    than a,a,a,a,a,b,c, so a heavy server is not hit in bursts.
    """

    __slots__ = ("servers", "scores", "total")

    def __init__(self, servers):
        self.servers = [s for s in servers if s.weight > 0 and not s.config.backup]
        self.scores = [0] * len(self.servers)
        self.total = sum(s.weight for s in self.servers)

    def pick(self, exclude=None):
        """Return the next usable server, or None when none is usable."""
        servers = self.servers
        if len(servers) == 1:
            s = servers[0]
            return s if s.usable and s is not exclude else None
        scores = self.scores
        best = -1
        best_score = None
        total = 0
        for i, s in enumerate(servers):
            if not s.usable or s is exclude:
                continue
            w = s.weight
            total += w
            sc = scores[i] + w
            scores[i] = sc
            if best_score is None or sc > best_score:
                best_score = sc
                best = i
        if best < 0:
            return None
        scores[best] -= total
        return servers[best]
