"""``use_backend`` rules: compiled at load, evaluated in order per request.

``use_backend <backend> [{if | unless} <condition>]`` where <backend> is a name,
or a log-format string resolved per request (HAProxy 2.6: a dynamic name that
names no backend stops the evaluation, and ``default_backend`` applies).
"""

from __future__ import annotations

from typing import Callable, Dict, List, Optional, Tuple

from .acl import Acls, compile_condition
from .errors import RuleError, did_you_mean
from .logformat import compile_logformat
from .sample import Ctx


class Routes:
    """The use_backend rules of one frontend (or listen section)."""

    def __init__(self, acls: Acls, ctx: Optional[Ctx] = None):
        self.acls = acls
        self.ctx = (ctx or acls.ctx).replace(phase="req", rule="use_backend")
        self.rules: List[Tuple[Optional[Callable], object, bool]] = []
        self.static_names: List[str] = []

    def add(self, words: List[str]) -> None:
        """The words after ``use_backend``: BACKEND [if|unless CONDITION]."""
        if not words:
            raise RuleError("'use_backend' expects a backend name",
                            "e.g. 'use_backend api if is_api'")
        target, rest = words[0], words[1:]
        cond = None
        if rest:
            if rest[0] not in ("if", "unless"):
                raise RuleError("'use_backend' expects 'if' or 'unless' after the backend "
                                "name, found '%s'" % rest[0],
                                "quote a log-format name that contains spaces")
            cond = compile_condition(rest, self.acls, self.ctx)
        if "%" in target:
            name = compile_logformat(target, self.ctx, mode="http")
            self.rules.append((cond, name, True))
        else:
            self.static_names.append(target)
            self.rules.append((cond, target, False))

    def check(self, backends) -> None:
        """At the end of the file: every fixed name must be a backend (or listen)."""
        for name in self.static_names:
            if name not in backends:
                raise RuleError("unable to find required use_backend: '%s'" % name,
                                did_you_mean(name, backends))

    def compile(self, backends: Dict[str, object], default: object) -> Callable:
        """``route(txn) -> backend``: the first rule that matches, else `default`.
        `backends` maps a name to what the stream uses (a runtime Backend)."""
        plan = []
        for cond, target, dynamic in self.rules:
            plan.append((cond, target if dynamic else backends[target], dynamic))
        plan = tuple(plan)
        get = backends.get

        def route(txn):
            for cond, target, dynamic in plan:
                if cond is None or cond(txn):
                    if not dynamic:
                        return target
                    be = get(target(txn).decode("utf-8", "surrogateescape"))
                    return default if be is None else be
            return default
        return route
