"""What a worker knows of its configuration at run time: servers, backends, frontends.

Built once per worker from the frozen configuration (`proxy.config.model`):
each object adds what changes while the worker runs (a server's weight and
state, its idle pool and counters, a backend's queue and balancer) and the
timeouts already turned into seconds. Nothing here does I/O.
"""

import functools
from collections import deque
from dataclasses import replace

from proxy.config.http_actions import DynamicRule, run_actions, with_errorfile
from proxy.config.http_edits import header_step
from proxy.config.model import ForwardFor
from proxy.rules.sample import as_str
from proxy.tls.server import client_context
from workers.balance import make_balancer
from workers.counters import Counters
from workers.pool import IdlePool
from workers.tls import TLSClientTransport

NEVER = 1e9                 # an unset timeout: HAProxy treats it as infinite


def _t(value):
    return NEVER if value is None else value


class ServerRuntime:
    """One server as a worker sees it: address, weight, state, idle pool, counters."""

    __slots__ = ("name", "config", "backend", "addr", "family", "weight", "usable",
                 "pool", "kept", "counters", "max_reuse", "maxconn", "observe", "errors",
                 "up_since", "transport", "tls_sessions", "name_bytes", "sni_fetch",
                 "tls_named", "tls_unnamed")

    def __init__(self, backend, config, family, addr, share):
        self.name = config.name
        self.name_bytes = config.name.encode()      # %s in a log line
        self.config = config
        self.backend = backend
        self.family = family
        self.addr = addr
        self.weight = config.weight
        self.usable = not config.disabled
        self.counters = Counters()
        # Idle connections are closed after pool-purge-delay, or pool-idle-timeout if shorter.
        limit = config.pool_purge_delay
        if config.pool_idle_timeout is not None:
            limit = min(limit, config.pool_idle_timeout)
        self.pool = IdlePool(config.pool_max_conn, config.pool_warm_conn, limit,
                             config.pool_purge_delay, self.counters)
        self.kept = set()       # private idle connections, each kept by its stream (conn.keeper)
        self.max_reuse = config.max_reuse
        self.maxconn = share(config.maxconn)
        self.observe = config.observe       # passive health: None, "layer4" or "layer7"
        self.errors = 0                     # consecutive errors seen on live traffic
        self.up_since = None                # while slowstart ramps the weight up
        # `server ... ssl`: connections made through TLS (None: the worker's plain
        # transport); the last TLS session of each SNI name, resumed by the next new
        # connection. With `sni <expression>`, each connection has its request's name
        # (sni_of): the pool gives it only to requests naming the same host.
        self.transport = None
        self.tls_sessions = {}
        self.sni_fetch = self.tls_named = self.tls_unnamed = None
        tls = config.tls
        if tls is not None:
            self.transport = functools.partial(
                TLSClientTransport, context=client_context(tls, bool(tls.hostname)),
                hostname=tls.hostname,
                server=self, reuse=tls.reuse)
            if tls.sni_fetch is not None:
                self.sni_fetch = tls.sni_fetch.value
                self.tls_named = client_context(tls, True)
                self.tls_unnamed = client_context(tls, False)

    def sni_of(self, txn):
        """The SNI name `sni <expression>` gives for this request ("" for none;
        None: the server has no such expression)."""
        if self.sni_fetch is None:
            return None
        value = self.sni_fetch(txn) if txn is not None else None
        return as_str(value).decode("latin-1") if value is not None else ""

    def transport_for(self, sni):
        """The transport factory of a connection that sends `sni` (sni_of)."""
        if sni:
            return functools.partial(self.transport, hostname=sni, context=self.tls_named)
        return functools.partial(self.transport, hostname=None, context=self.tls_unnamed)


class BackendRuntime:
    """A backend in one worker: its servers, balancer, reuse mode and timeouts."""

    def __init__(self, config, addrs, share):
        self.name = config.name
        self.name_bytes = config.name.encode()      # be_name, as the rules fetch it
        self.config = config
        self.servers = [ServerRuntime(self, s, *addrs[(config.name, s.name)], share)
                        for s in config.servers]
        self.dyn_sni = any(s.sni_fetch is not None for s in self.servers)
        self.lb = make_balancer(config, self.servers)
        # A backend of one server without maxconn needs no balancer on the hot path.
        only = self.servers[0] if len(self.servers) == 1 else None
        self.lone = only if only is not None and not only.config.backup and not only.maxconn else None
        self.queue = deque()                # streams waiting for a server with room
        # maxqueue is a per-server limit in HAProxy; with one backend queue per
        # worker, the queue holds at most this worker's share of their sum.
        self.maxqueue = share(sum(s.maxqueue for s in config.servers)) \
            if all(s.maxqueue for s in config.servers) and config.servers else 0
        self.t_queue = _t(config.timeout_queue)
        self.counters = Counters()          # what happened with no server chosen (503)
        self.reuse = config.http_reuse
        self.retries = config.retries
        self.retry_on = config.retry_on | frozenset(
            int(x) for x in config.retry_on if x.isdigit())
        self.retry_status = frozenset(x for x in self.retry_on if isinstance(x, int))
        self.redispatch = config.redispatch
        self.redispatch_interval = config.redispatch_interval
        self.errorfiles = dict(config.errorfiles)   # status -> whole response (errorfile)
        self.t_connect = _t(config.timeout_connect)
        self.t_server = _t(config.timeout_server)
        # After an Upgrade: `timeout tunnel`, else the server timeout goes on applying.
        self.t_tunnel = _t(config.timeout_tunnel) if config.timeout_tunnel is not None \
            else self.t_server
        # option http-server-close / httpclose: close the server side after each response.
        self.keepalive = config.http_keep_alive and not (config.http_server_close or config.httpclose)


def request_view(stream, data):
    """The request as it is forwarded, for `sni <expression>`: the routing call's
    Txn when it made one for this request (`data`), else a new one, with the
    header rules that edit the head alone (request_rules) applied to it too."""
    txn = stream.txn
    if txn is None or txn.data is not data:
        txn = stream.new_txn(data)
    pair = stream.frontend.pair_for(stream.backend)
    steps = pair._head_steps
    if steps is None:
        steps = pair._head_steps = tuple(header_step(r) for r in pair.request_rules)
    for cond, action in steps:
        if cond is None or cond(txn):
            action(txn)
    return txn


class Pairing:
    """What a frontend and the backend a request goes to decide together (HAProxy
    combines both proxies' settings): one per (frontend, backend) pair, made once."""

    __slots__ = ("backend", "client_ka", "forwardfor", "originalto", "request_rules",
                 "response_rules", "request_steps", "respond",
                 "rewrite_requests", "server_keepalive", "edit_requests", "dynamic_requests",
                 "dynamic_responses", "_head_steps")

    def __init__(self, config, backend, stepped=False):
        self.backend = backend
        be = backend.config if backend is not None else None
        if be is not None and same_section(config, be):
            # A listen section's rules run once, as a frontend's (HAProxy runs a
            # backend's only when it is another proxy than the frontend).
            be = replace(be, request_rules=(), response_rules=(), request_actions=(),
                         response_actions=())
        # The stronger connection mode wins: httpclose (either side) closes both
        # sides after each exchange, http-server-close only the server side.
        self.client_ka = not (config.httpclose or (be is not None and be.httpclose))
        # Header edits (slow path, only when configured): request rules run
        # frontend then backend, response rules backend then frontend, and
        # option forwardfor's header goes last, as in HAProxy.
        self.forwardfor = ForwardFor.combine(config.forwardfor, be.forwardfor if be else None)
        self.originalto = ForwardFor.combine(config.originalto, be.originalto if be else None)
        # `stepped`: the frontend's request rules ran as actions in the routing call
        # (make_decider), in order with the rest; the backend's too when it has
        # actions. What they changed is replayed on the head (request_steps).
        self.request_rules = (() if stepped else config.request_rules) + (
            be.request_rules if be else ())
        self.request_steps = stepped and (
            _edits(config.request_actions) or bool(config.request_rules)
            or (be is not None and _edits(be.request_actions)))
        self.rewrite_requests = bool(self.forwardfor or self.originalto or self.request_rules
                                     or self.request_steps)
        # Rules with a condition or a log-format value: resolved per message (a Txn).
        self.dynamic_requests = any(r.__class__ is DynamicRule for r in self.request_rules)
        self._head_steps = None
        # http-response actions on either side: all response rules run as actions,
        # the backend's then the frontend's (`respond(txn)`: an answer or None).
        self.respond = None
        self.response_rules = (be.response_rules if be else ()) + config.response_rules
        if config.response_actions or (be is not None and be.response_actions):
            steps = _response_steps(be) + _response_steps(config)
            self.response_rules = steps
            pages = (backend.errorfiles if backend else {}, dict(config.errorfiles))

            def respond(txn):
                answer = run_actions(steps, txn)
                return answer if answer is None else with_errorfile(answer, *pages)
            self.respond = respond
        self.dynamic_responses = self.respond is not None or any(
            r.__class__ is DynamicRule for r in self.response_rules)
        self.server_keepalive = (backend is not None and backend.keepalive
                                 and not (config.http_server_close or config.httpclose))
        # Anything in the configuration that changes every request head.
        self.edit_requests = self.rewrite_requests or not self.server_keepalive


def _edits(actions):
    """Do any of these actions change the request head?"""
    return any(getattr(action, "edits", False) for _, action in actions)


def _response_steps(px):
    """A proxy's http-response rules as actions (its header rules turned into some)."""
    if px is None:
        return ()
    return px.response_actions or tuple(header_step(r, True) for r in px.response_rules)


class FrontendRuntime:
    """A frontend in one worker: its backend, client-side timeouts and counters."""

    def __init__(self, config, backend, stepped=False):
        self.name = config.name
        self.name_bytes = config.name.encode()      # fe_name, as the rules fetch it
        self.config = config
        self.backend = backend           # default_backend (None: use_backend rules only)
        # router(txn) -> BackendRuntime for a frontend with use_backend rules (the
        # worker compiles it: proxy/rules/routing.py); None: every request goes to
        # `backend`.
        self.router = None
        self.counters = Counters()
        self.errorfiles = dict(config.errorfiles)   # status -> whole response (errorfile)
        self.t_client = _t(config.timeout_client)
        self.t_http_request = _t(config.timeout_http_request)
        self.ignore_probes = config.ignore_probes
        self.idle_close_on_response = config.idle_close_on_response
        self.maxconn = config.maxconn    # this worker's share, set by the worker
        self.paused = False              # at its maxconn: its listeners are not watched
        self.disabled = False            # `disable frontend` (runtime API): not accepting
        self.listeners = []              # this worker's listeners of this frontend
        self.t_keepalive = _t(config.timeout_http_keep_alive)
        self.keepalive = True            # False once the worker stops: every answer closes
        self.pairs = {}
        self.stepped = stepped           # its request rules run in the routing call
        self.pair = pair = self.pair_for(backend)   # the default backend's
        # The rules may read `dst`: the stream is given the address the client reached.
        self.needs_local = stepped or pair.dynamic_requests or pair.dynamic_responses

    def pair_for(self, backend):
        """The Pairing of this frontend with `backend` (made at its first request)."""
        pair = self.pairs.get(backend)
        if pair is None:
            pair = self.pairs[backend] = Pairing(self.config, backend, self.stepped)
        return pair


def same_section(fe, be):
    """Are frontend `fe` and backend `be` the two sides of one listen section?"""
    return fe.name == be.name and fe.line == be.line


def needs_decider(config, backends):
    """Does a frontend need the routing call (use_backend, or request actions here
    or in a backend)?"""
    return (config.routes is not None or bool(config.request_actions)
            or any(be.config.request_actions for be in backends.values()))


def make_decider(config, default, route, backends):
    """The routing call of a frontend with request rules: all its http-request rules
    in order (header rules, rewrites, set-var, deny...), then use_backend (`route`,
    or the default backend), then the chosen backend's, as HAProxy orders them.
    `decide(txn)` returns the backend, or the (status, response[, delay]) a rule
    answered (a tarpit's with its proxy's `timeout tarpit`)."""
    fe_actions = config.request_actions
    if config.request_rules:
        # Header rules alone in the frontend: they run before use_backend too.
        fe_actions = fe_actions + tuple(header_step(r) for r in config.request_rules)
    fe_tarpit = _t(config.timeout_tarpit)
    fe_pages = dict(config.errorfiles)
    be_actions = {be: (be.config.request_actions, _t(be.config.timeout_tarpit))
                  for be in backends.values()
                  if be.config.request_actions and not same_section(config, be.config)}

    def decide(txn):
        if fe_actions:
            answer = run_actions(fe_actions, txn)
            if answer is not None:
                answer = with_errorfile(answer, fe_pages)
                return answer if len(answer) == 2 else answer[:2] + (fe_tarpit,)
        be = route(txn) if route is not None else default
        if be is not None:
            txn.be_name = be.name_bytes
        actions = be_actions.get(be)
        if actions:
            answer = run_actions(actions[0], txn)
            if answer is not None:
                answer = with_errorfile(answer, be.errorfiles, fe_pages)
                return answer if len(answer) == 2 else answer[:2] + (actions[1],)
        return be
    return decide
