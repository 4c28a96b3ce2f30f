"""The runtime API's changes as one worker applies them (messages from the master,
proxy/runtime_actions.py): a frontend enabled or disabled or given a maxconn, a
server given a maxconn or an address, its sessions shut down, counters cleared.
`worker` is the Worker (workers/worker.py) that hands itself down."""

import os
import socket

from proxy.rules import refs as map_refs
from proxy.tls import tickets
from workers.counters import FIELDS, GAUGES, MAXIMA

KINDS = frozenset(("frontend", "srvmaxconn", "addr", "shutdown", "clear", "map", "sess?",
                   "tlskey"))


def apply(worker, msg):
    kind = msg.get("t")
    if kind == "sess?":
        worker.send_master({"t": "sess", "id": msg.get("id"), "list": sessions(worker)})
        return
    if kind == "map":
        map_refs.apply(msg.get("op"), msg.get("name"), msg.get("key"), msg.get("value"),
                       msg.get("kind", "map"))
        return
    if kind == "tlskey":
        tickets.push(worker.config, msg.get("path"), msg.get("key"))
        return
    if kind == "frontend":
        fe = next((f for f in worker.frontends if f.name == msg.get("name")), None)
        if fe is None:
            return
        if "maxconn" in msg:
            fe.maxconn = worker.share_of(int(msg["maxconn"])) or fe.maxconn
            if not fe.disabled and worker.accepting:
                worker.resume_frontend(fe)
        if "enabled" in msg:
            fe.disabled = not msg["enabled"]
            if fe.disabled:
                worker.pause_frontend(fe)       # established connections go on
            elif worker.accepting:
                worker.resume_frontend(fe)
        return
    server = _server(worker, msg)
    if kind == "clear":
        _clear(worker, bool(msg.get("all")))
    elif server is None:
        return
    elif kind == "srvmaxconn":
        server.maxconn = worker.share_of(int(msg.get("maxconn") or 0))
    elif kind == "addr":
        server.family = socket.AF_INET6 if ":" in msg["host"] else socket.AF_INET
        server.addr = (msg["host"], int(msg["port"])) + ((0, 0) if ":" in msg["host"] else ())
        worker.close_idle_to(server)         # connections to the old address: not reused
    elif kind == "shutdown":
        worker.shutdown_sessions(lambda srv: srv is server)


def _server(worker, msg):
    be = worker.backends.get(msg.get("backend"))
    if be is None:
        return None
    return next((s for s in be.servers if s.name == msg.get("server")), None)


def _clear(worker, everything):
    counters = [fe.counters for fe in worker.frontends]
    for be in worker.backends.values():
        counters.append(be.counters)
        counters.extend(s.counters for s in be.servers)
    for c in counters:
        for f in FIELDS:
            if f in GAUGES:
                continue
            if everything or f in MAXIMA:
                setattr(c, f, 0)
        if everything:
            c.hrsp[:] = [0] * len(c.hrsp)


def sessions(worker):
    """`show sess`: a line per client connection of this worker, in HAProxy's
    shape (the fields keepwarm knows)."""
    out = []
    for sess in list(worker.sessions)[:10000]:
        peer = getattr(sess, "peer", None) or ("-", 0)
        st = getattr(sess, "stream", None)
        be = getattr(st, "backend", None) if st is not None else None
        srv = getattr(st, "server", None) if st is not None else None
        tls = getattr(getattr(sess, "xprt", None), "tls", None) is not None
        out.append("0x%x: proto=%s src=%s:%s fe=%s be=%s srv=%s ts=00 epoch=0 calls=%d "
                   "rq[f=%s] pid=%d%s" % (
                       id(sess), "tcpv6" if ":" in str(peer[0]) else "tcpv4", peer[0],
                       peer[1] if len(peer) > 1 else 0, sess.frontend.name,
                       be.name if be is not None else "<NONE>",
                       srv.name if srv is not None else "<none>", getattr(sess, "nreq", 0),
                       getattr(sess, "state", "?"), os.getpid(), " ssl" if tls else ""))
    return out
