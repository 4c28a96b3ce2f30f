"""A backend that closes idle connections at random: client-visible errors and duplicated POSTs.

The scripted backend closes every idle keep-alive connection after a random
0..CLOSE_IDLE_MAX_MS ms, without notice, so a proxy sending on a pooled
connection races the server's close. Keep-alive clients send POSTs (each with
a unique X-Req-Id) and GETs; every failure counts, as no client retries. A
POST must never be replayed: the backend counts X-Req-Ids it saw twice.
"""

from . import clients

CLOSE_IDLE_MAX_MS = 100
CONCURRENCY = 8


def run(proxy, backend_port, n, think_s=0.002):
    out = {}
    for method in ("POST", "GET"):
        clients.backend_stats(backend_port, reset=True)
        counts = clients.keepalive_load(proxy.port, method, n, conc=CONCURRENCY,
                                        think_s=think_s)
        got = clients.backend_stats(backend_port)
        total = sum(counts.values())
        errors = total - counts.get("ok", 0)
        out[method] = {"sent": total, "counts": counts, "errors": errors,
                       "status_502": counts.get("status_502", 0),
                       "closed": counts.get("closed", 0) + counts.get("reset", 0),
                       "error_pct": 100.0 * errors / total if total else None,
                       "backend_requests": got.get("requests", 0),
                       "backend_conns": got.get("conns", 0),
                       "backend_idle_closes": got.get("idle_closes", 0),
                       "post_dups": got.get("post_dups", 0)}
    out["alive_after"] = proxy.alive()
    return out
