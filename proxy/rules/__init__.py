"""The rule engine: sample fetches, converters, ACLs, conditions, use_backend rules
and log-format strings, compiled once at load into plain callables (HAProxy 2.6,
configuration manual section 7 and 8.2.6).

Sans-IO: nothing here opens a socket; map and pattern files are read while
compiling (through ``Ctx.read_file``), never per request. Everything a
configuration can get wrong raises ``RuleError(message, hint)`` at compile
time; the config parser turns it into ``ConfigError(file, line, exc.message,
exc.hint)`` at the line it is reading. What HAProxy only warns about (an ACL
that can never match) is appended to ``Acls.warnings``.

Compiling (the config parser)::

    from proxy.rules import Acls, Ctx, RuleError, Routes, compile_condition, \
        compile_logformat, compile_sample

    # One Ctx per proxy section; .replace(phase=...) per kind of rule.
    ctx = Ctx(env=parser_env,              # after setenv: env() is read at load
              backends=None,               # the backend names once known (nbsrv(X) check)
              base_dir=config_dir,         # relative map / pattern files
              proxy="frontend",            # or "backend" / "listen": what be_name may read
              phase="req")                 # "req": http-request, "res": http-response,
                                           # "log": log-format
    acls = Acls(ctx)                       # per frontend/backend/listen section
    acls.add(words_after_acl)              # acl NAME CRITERION [flags] [op] VALUE...
    cond = compile_condition(words_from_if_or_unless, acls, ctx)   # cond(txn) -> bool
    expr = compile_sample("req.hdr(host),lower", ctx)   # expr.value(txn) -> value|None
    hdr_value = compile_logformat(value_word, ctx, mode="http")    # fmt(txn) -> bytes
    log_line = compile_logformat(" ".join(words), ctx.replace(phase="log"), mode="log")

    routes = Routes(acls, ctx)             # per frontend/listen
    routes.add(words_after_use_backend)    # NAME|log-format [if|unless COND]
    routes.check(all_backend_names)        # at the end of the file
    route = routes.compile(runtime_backends_by_name, default_backend)  # in the worker

HAProxy's availability rules are checked while compiling (measured with
``haproxy -c``): request headers and the URL are refused in http-response
rules and in log-format (keep them with ``http-request set-var(txn.x)`` and
log ``%[var(txn.x)]``); the response is refused in request rules; the method
and the status are fine in logs; ``be_name`` is refused in a frontend's
request rules and never matches in a use_backend condition. An ACL is
compiled when defined and again, once, for each kind of rule that uses it
(``hdr()`` reads the response's headers in response rules).

Evaluating (the stream, per request)::

    world = World(nbsrv=lambda name: usable_servers(name), hostname=b"host", pid=pid)
                                           # once per worker
    txn = Txn(world, data, parser, src=peer, dst=sockname,
              fe_name=b"fe", be_name=b"be", sess_vars=session_vars)
                                           # data: the head buffer; parser: the one that
                                           # just parsed it (result_all() is read once)
    backend = route(txn)                   # use_backend, in Stream.start's routing call
    txn.be_name = backend_name             # once chosen
    if cond(txn): ...                      # http-request rules
    v = expr.value(txn)                    # set-var(txn.x): HAProxy sets nothing
    if v is not None: txn.vars("txn")["x"] = v   # when the sample is missing
    txn.set_target(new_uri)                # after a rewrite: later fetches see it
    txn.set_response(status, rdata, parser)   # then http-response rules
    txn.detach()                           # before the buffer or the parser is reused,
                                           # when the txn is read later (a log line)
    txn.log["Tt"] = ...; line = log_line(txn)   # the wiring fills timers, %s, %ID...

A txn computes nothing it is not asked for: the target's parts, the header
index and the addresses are made on first use and kept for the transaction.
Measured on this machine (one core): a Txn ~0.9 us; with 'if path_beg /api'
~1.9 us; 'if api host !loc' (path, Host -i, src) ~5.5 us; a six-field log line
~5.7 us.
"""

from . import converters as _converters  # noqa: F401  (registers the converters)
from . import fetches as _fetches  # noqa: F401  (registers the fetches)
from .acl import PREDEFINED, Acls, compile_acl, compile_condition
from .errors import RuleError
from .logformat import compile_logformat
from .routing import Routes
from .sample import CONVERTERS, FETCHES, Ctx, Expr, PhaseError, compile_sample
from .txn import Txn, World

__all__ = ["Acls", "CONVERTERS", "Ctx", "Expr", "FETCHES", "PREDEFINED", "PhaseError", "Routes",
           "RuleError", "Txn", "World", "compile_acl", "compile_condition", "compile_logformat",
           "compile_sample"]
