"""The rule engine: sample fetches, converters, ACLs, conditions and log-format
strings, compiled once at load into plain callables (HAProxy 2.6, section 7).

Sans-IO: nothing here opens a socket; map and pattern files are read while
compiling (through ``Ctx.read_file``), never per request. Everything a
configuration can get wrong raises ``RuleError(message, hint)`` at compile
time; the config parser turns it into a ``ConfigError`` at the line's
file:line (``ConfigError(file, line, exc.message, exc.hint)``).

Compiling (the config parser, once per line)::

    from proxy.rules import Acls, Ctx, RuleError, compile_condition, \\
        compile_logformat, compile_sample

    ctx = Ctx(env=parser_env, backends=backend_names, base_dir=config_dir,
              phase="req")                         # "res" in http-response rules
    acls = Acls(ctx)                               # one per frontend/backend/listen
    acls.add(words_after_acl)                      # acl NAME CRITERION [flags] VALUE...
    cond = compile_condition(["if", "is_api", "!local"], acls, ctx)   # -> cond(txn) -> bool
    expr = compile_sample("req.hdr(host),lower", ctx)  # -> expr.value(txn) -> value|None
    fmt = compile_logformat("%ci:%cp %[path]", ctx, mode="http")   # -> fmt(txn) -> bytes
    # acls.warnings: HAProxy's warnings (an ACL with no pattern never matches).

    e.g. use_backend: (compile_condition(words[i:], acls, ctx) if a condition
    follows, else None); a rule's sample (set-var, balance hdr...) is
    ``compile_sample(text, ctx)``; header values and lf-strings are
    ``compile_logformat(text, ctx, mode="http")``; ``log-format`` lines are
    ``compile_logformat(" ".join(words), Ctx(phase="log"), mode="log")``.

Evaluating (the stream, per request)::

    world = World(nbsrv=lambda name: usable_servers(name), hostname=b"host", pid=pid)
                                                   # once per worker
    txn = Txn(world, data, parser, src=peer, dst=sockname,
              fe_name=b"fe", be_name=b"be", sess_vars=session_vars)
    if cond(txn): ...                              # request rules, use_backend
    txn.set_response(status, rdata, parser)        # response rules
    txn.detach()                                   # before the parser parses another
                                                   # message, if a later use (log) reads
                                                   # headers: ``"req" in fmt.uses``
    txn.log["Tt"] = ...; line = fmt(txn)           # log-format at the end

A txn computes nothing it is not asked for: the target's parts, the header
index and addresses are made on first use and kept for the transaction.
"""

from . import converters as _converters  # noqa: F401  (registers the converters)
from . import fetches as _fetches  # noqa: F401  (registers the fetches)
from .acl import PREDEFINED, Acls, compile_acl, compile_condition
from .errors import RuleError
from .logformat import compile_logformat
from .sample import CONVERTERS, FETCHES, Ctx, Expr, compile_sample
from .txn import Txn, World

__all__ = ["Acls", "CONVERTERS", "Ctx", "Expr", "FETCHES", "PREDEFINED", "RuleError", "Txn",
           "World", "compile_acl", "compile_condition", "compile_logformat", "compile_sample"]
