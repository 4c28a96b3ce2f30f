"""Per-worker counters, named as HAProxy's `show stat` fields, and their snapshot for the master.

Counters are plain attributes incremented on the data path; a snapshot (a list of
ints in FIELDS order) goes to the master every ~250 ms.
"""

# Order matters: snapshots are lists in this order.
FIELDS = (
    "scur", "smax", "stot", "req_tot", "qcur", "qmax",
    "hrsp_1xx", "hrsp_2xx", "hrsp_3xx", "hrsp_4xx", "hrsp_5xx", "hrsp_other",
    "bin", "bout",
    "conn_tot", "reuse", "idle_conn_cur", "replays", "econ", "eresp",
    "cli_abrt", "srv_abrt", "wretr", "wredis",
    # Why a request opened a new server connection instead of reusing one, and
    # how idle connections ended (keepwarm's own fields).
    "nreuse_first", "nreuse_empty", "nreuse_private", "idle_srv_closed", "idle_purged",
    "warm_opened", "warm_used",
    "ssl_handshake_errors",          # TLS handshakes that failed (bind ... ssl)
)
# Gauges describe the present: a dead worker's gauges are dropped, not summed.
GAUGES = frozenset(("scur", "idle_conn_cur", "qcur"))
# Maxima: the master keeps the largest aggregate it has seen.
MAXIMA = frozenset(("smax", "qmax"))
HRSP = ("hrsp_other", "hrsp_1xx", "hrsp_2xx", "hrsp_3xx", "hrsp_4xx", "hrsp_5xx")


class Counters:
    """One frontend's, backend's or server's counters in one worker."""

    __slots__ = FIELDS + ("hrsp",)

    def __init__(self):
        for f in FIELDS:
            setattr(self, f, 0)
        # Responses by class, indexed by status // 100 (0 = other); folded into hrsp_* on snapshot.
        self.hrsp = [0, 0, 0, 0, 0, 0]

    def session_start(self):
        self.stot += 1
        cur = self.scur + 1
        self.scur = cur
        if cur > self.smax:
            self.smax = cur

    def tls_failed(self, exc):
        """A TLS handshake failed (workers/tls.py): counted, never sent to a server."""
        self.ssl_handshake_errors += 1

    def snapshot(self):
        hrsp = self.hrsp
        for i, name in enumerate(HRSP):
            setattr(self, name, hrsp[i])
        return [getattr(self, f) for f in FIELDS]
