"""Idle keep-alive clients: server connections and descriptors the proxy holds for them over time.

N clients each send one GET, read the answer, then stay silent. At fixed
times after the last one is answered, count the proxy tree's ESTABLISHED
connections to the backend port (from /proc/net/tcp, matched to the tree's
own socket inodes) and its open descriptors. At the end a sample of the
idle clients sends a second GET: an idle client must still be served.
"""

import time

from . import clients

CHECKPOINTS_S = (1, 8, 15)
REUSE_SAMPLE = 100


def idle_clients(proxy, n, checkpoints=CHECKPOINTS_S):
    base = {"fds": proxy.fds(), "server_conns": proxy.server_conns()}
    t_open = time.monotonic()
    socks, failures = clients.open_idle(proxy.port, n)
    try:
        opened_s = time.monotonic() - t_open
        t0 = time.monotonic()
        marks = []
        for t in checkpoints:
            time.sleep(max(0.0, t0 + t - time.monotonic()))
            marks.append({"t_s": t, "server_conns": proxy.server_conns(), "fds": proxy.fds()})
        half = REUSE_SAMPLE // 2
        sample = socks if len(socks) <= REUSE_SAMPLE else socks[:half] + socks[-half:]
        reused = clients.reuse_ok(sample)
    finally:
        for s in socks:
            s.close()
    return {"clients": n, "opened": len(socks), "failures": failures,
            "open_s": round(opened_s, 1), "before": base, "marks": marks,
            "reuse_sample": len(sample), "reuse_ok": reused, "alive": proxy.alive()}
