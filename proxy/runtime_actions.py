"""What the runtime API's state-changing commands do in the master (the Master
mixes this in): frontends enabled or disabled, maxconn of a frontend or a
server, a server's address, its sessions shut down, its health checks stopped
or resumed, counters cleared. Each takes effect in every worker at once (a
message on its pipe, workers/runtime_cmds.py) and in every worker started later
in this generation (`runtime_messages()`), as HAProxy's do in all its threads;
a reload starts from the configuration again, as in HAProxy without a state
file. The grammar and the reply texts are proxy/control_commands.py's.
"""

from __future__ import annotations

import itertools
import socket
import time
from typing import Dict, List, Tuple

from proxy.config.addresses import AddressError, parse_ip
from proxy.rules import refs as map_refs
from proxy.tls import tickets


_asks = itertools.count(1)


class RuntimeActions:
    """Mixed into proxy.master.Master (it has config, health, book, broadcast, log)."""

    def runtime_state(self) -> Dict:
        state = getattr(self, "_runtime", None)
        if state is None or state.get("config") is not self.config:
            state = self._runtime = {"config": self.config, "frontends": {}, "fe_maxconn": {},
                                     "srv_maxconn": {}, "addrs": {}}
        return state

    def runtime_messages(self) -> List[Dict]:
        """What a new worker must be told of the changes made so far."""
        st = self.runtime_state()
        msgs = [{"t": "frontend", "name": n, "enabled": e} for n, e in st["frontends"].items()]
        msgs += [{"t": "frontend", "name": n, "maxconn": m} for n, m in st["fe_maxconn"].items()]
        msgs += [{"t": "srvmaxconn", "backend": b, "server": s, "maxconn": m}
                 for (b, s), m in st["srv_maxconn"].items()]
        msgs += [{"t": "addr", "backend": b, "server": s, "host": h, "port": p}
                 for (b, s), (h, p) in st["addrs"].items()]
        return msgs

    def _send_all(self, msg) -> None:
        self.broadcast(msg)

    # ---------------------------------------------------------------- frontends

    def frontend_names(self) -> List[str]:
        return [fe.name for fe in self.config.frontends]

    def set_frontend_enabled(self, name: str, enabled: bool) -> None:
        """`enable|disable frontend F`; KeyError if none."""
        self.config.frontend(name)
        self.runtime_state()["frontends"][name] = enabled
        self._send_all({"t": "frontend", "name": name, "enabled": enabled})
        self.log("frontend %s %s by the control socket" % (name, "enabled" if enabled
                                                          else "disabled"))

    def frontend_enabled(self, name: str) -> bool:
        return self.runtime_state()["frontends"].get(name, True)

    def set_frontend_maxconn(self, name: str, maxconn: int) -> None:
        self.config.frontend(name)
        self.runtime_state()["fe_maxconn"][name] = maxconn
        self._send_all({"t": "frontend", "name": name, "maxconn": maxconn})

    # ---------------------------------------------------------------- servers

    def _server(self, backend: str, server: str):
        return self.config.backend(backend).server(server)       # KeyError if none

    def set_server_maxconn(self, backend: str, server: str, maxconn: int) -> None:
        self._server(backend, server)
        self.runtime_state()["srv_maxconn"][(backend, server)] = maxconn
        self._send_all({"t": "srvmaxconn", "backend": backend, "server": server,
                        "maxconn": maxconn})

    def server_addr(self, backend: str, server: str) -> Tuple[str, int]:
        srv = self._server(backend, server)
        return self.runtime_state()["addrs"].get((backend, server), (srv.host, srv.port))

    def set_server_addr(self, backend: str, server: str, host: str, port: int) -> None:
        """`set server B/S addr IP [port P]`: new connections go there; idle ones to
        the old address are closed; checks follow. ValueError for a bad address."""
        self._server(backend, server)
        try:
            host = parse_ip(host)
        except AddressError as exc:
            raise ValueError(str(exc)) from None
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sockaddr = (host, port) + ((0, 0) if family == socket.AF_INET6 else ())
        self.runtime_state()["addrs"][(backend, server)] = (host, port)
        self.addrs[(backend, server)] = (family, sockaddr)
        self.health.set_address(backend, server, family, sockaddr)
        self._send_all({"t": "addr", "backend": backend, "server": server, "host": host,
                        "port": port})
        self.log("server %s/%s address set to %s:%d by the control socket"
                 % (backend, server, host, port))

    def shutdown_server_sessions(self, backend: str, server: str) -> None:
        self._server(backend, server)
        self._send_all({"t": "shutdown", "backend": backend, "server": server})

    def set_server_health(self, backend: str, server: str, enabled: bool) -> bool:
        """`enable|disable health B/S`; False when the server has no check."""
        srv = self._server(backend, server)
        if not srv.check:
            return False
        self.health.set_checking(backend, server, enabled)
        return True

    # ---------------------------------------------------------------- the stats page

    PAGE_ACTIONS = ("ready", "drain", "maint", "dhlth", "ehlth", "shutdown")

    def page_admin(self, msg) -> None:
        """A `stats admin` form posted on the stats page of some worker: the
        action on each server named, as the runtime API's commands do it."""
        backend, action = str(msg.get("backend")), str(msg.get("action"))
        for server in msg.get("servers") or ():
            server = str(server)
            try:
                if action in ("ready", "drain", "maint"):
                    self.set_server_admin(backend, server, action)
                elif action in ("dhlth", "ehlth"):
                    self.set_server_health(backend, server, action == "ehlth")
                elif action == "shutdown":
                    self.shutdown_server_sessions(backend, server)
            except KeyError:
                self.log("stats page: no server %s/%s" % (backend, server))

    # ---------------------------------------------------------------- maps

    def map_change(self, op: str, name: str, key=None, value=None, kind="map") -> bool:
        """`add|set|del|clear map` (and `add|del|clear acl`, kind "acl"): applied here
        (what `show map` reads) and in every worker; a worker started later inherits
        it (forked from this process)."""
        if not map_refs.apply(op, name, key, value, kind):   # ValueError: refused
            return False
        self._send_all({"t": "map", "op": op, "name": name, "key": key, "value": value,
                        "kind": kind})
        return True

    # ---------------------------------------------------------------- ticket keys

    def push_ticket_key(self, ring, raw: bytes) -> None:
        """A new next key for `ring` (None: the process's own), here and in every
        worker; a worker forked later inherits the ring from this process."""
        (ring or tickets.own_ring()).push(raw)
        self._send_all({"t": "tlskey", "path": ring.path if ring else None, "key": raw})

    def rotate_ticket_keys(self) -> None:
        """Every `tune.ssl.ticket-key-rotation`, the process's own ring turns."""
        period = self.config.global_.ticket_key_rotation
        if not period or not tickets.own_ring(create=False):
            return
        now = time.monotonic()
        due = getattr(self, "_ticket_due", None)
        if due is None or due - now > period:
            self._ticket_due = now + period
        elif now >= due:
            self._ticket_due = now + period
            self.push_ticket_key(None, tickets.new_key())

    def collect_sessions(self, done) -> None:
        """`show sess`: ask every worker for its sessions; `done(lines)` once all
        answered, or after half a second with what came (a busy worker is skipped)."""
        pending = getattr(self, "_sess_pending", None)
        if pending is None:
            pending = self._sess_pending = {}
        ask = next(_asks)
        slots = [s for s in self.slots if s.channel is not None and s.pid]
        pending[ask] = {"done": done, "left": {s.pid for s in slots}, "lines": [],
                        "until": time.monotonic() + 0.5}
        for slot in slots:
            self.send_worker(slot, {"t": "sess?", "id": ask})
        self.finish_sessions(ask)

    def sessions_reply(self, pid, msg) -> None:
        entry = getattr(self, "_sess_pending", {}).get(msg.get("id"))
        if entry is not None:
            entry["lines"].extend(str(line) for line in msg.get("list") or ())
            entry["left"].discard(pid)
            self.finish_sessions(msg.get("id"))

    def finish_sessions(self, ask=None) -> None:
        """Answer the `show sess` requests complete (or `ask`) and the ones overdue."""
        pending = getattr(self, "_sess_pending", {})
        now = time.monotonic()
        for key in [k for k, e in pending.items() if not e["left"] or e["until"] <= now]:
            entry = pending.pop(key)
            try:
                entry["done"](entry["lines"])
            except OSError:
                pass                     # the client went away

    def captured_errors(self):
        """`show errors`: the last request each frontend refused, {frontend: (time,
        src, port, bytes)}, as the workers reported them."""
        return self.book.errors

    # ---------------------------------------------------------------- counters

    def clear_counters(self, everything: bool) -> None:
        """`clear counters` (the maxima) or `clear counters all` (every counter)."""
        self.book.clear(everything)
        self._send_all({"t": "clear", "all": everything})
