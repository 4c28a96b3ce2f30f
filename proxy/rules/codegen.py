"""Conditions compiled into one generated function each, instead of a tree of
closures calling closures.

A compiled piece (a fetch, an ACL test, a condition) may carry a ``frag``: the
Python expression it computes, over the name ``txn``, with ``{name}``
placeholders for the objects it needs (``env``: name -> object) and for the
local names it binds with ``:=``. Pieces are combined as text — ``a or b``,
``a and b``, ``not a`` — with their placeholders renamed apart, and a combined
piece is turned into a function once, by ``build``, at load time. A piece
without a ``frag`` takes part as a call (``{f}(txn)``), so every callable
combines. Per request, a condition of ten ACLs is then one Python frame
instead of some forty (measured in bench/README.md, issue 15's cost check).

Only text written here and constants from the configuration passed through
``env`` (never pasted into the source) make up the generated code.
"""

from __future__ import annotations

import itertools
import re
from typing import Callable, Dict, Iterable, Optional

_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
_serial = itertools.count()


class Frag:
    """A Python expression over ``txn`` with ``{name}`` placeholders; ``env``
    holds the objects some of them stand for (the others are local names)."""

    __slots__ = ("src", "env")

    def __init__(self, src: str, env: Optional[Dict[str, object]] = None):
        self.src = src
        self.env = env or {}


def attach(fn: Callable, src: str, **env) -> Callable:
    """Give the callable `fn` the expression it computes (see Frag); returns `fn`."""
    fn.frag = Frag(src, env)
    return fn


def frag_of(fn: Callable) -> Frag:
    """What `fn` computes, as a Frag: its own, or a call to it."""
    frag = getattr(fn, "frag", None)
    return frag if frag is not None else Frag("{f}(txn)", {"f": fn})


def _renamed(frag: Frag) -> Frag:
    """`frag` with every placeholder given a name no other piece uses."""
    names = {}

    def rename(m):
        name = m.group(1)
        new = names.get(name)
        if new is None:
            base = name.rstrip("_0123456789") or "x"
            new = names[name] = "%s_%d" % (base, next(_serial))
        return "{%s}" % new
    src = _PLACEHOLDER.sub(rename, frag.src)
    return Frag(src, {names[k]: v for k, v in frag.env.items() if k in names})


def combine(template: str, parts: Iterable[Frag]) -> Frag:
    """`template` with ``$0``, ``$1``... replaced by the parts, renamed apart:
    ``combine("($0 or $1)", (a, b))``."""
    env: Dict[str, object] = {}
    src = template
    for i, part in reversed(list(enumerate(parts))):
        part = _renamed(part)
        env.update(part.env)
        src = src.replace("$%d" % i, part.src)
    return Frag(src, env)


def substitute(frag: Frag, name: str, value: Frag) -> Frag:
    """`frag` with its placeholder ``{name}`` replaced by the expression `value`."""
    value = _renamed(value)
    env = dict(frag.env)
    env.update(value.env)
    return Frag(frag.src.replace("{%s}" % name, value.src), env)


def build(frag: Frag, label: str = "condition") -> Callable:
    """``fn(txn)`` computing `frag`, made once; it keeps `frag` for combining."""
    src = _PLACEHOLDER.sub(lambda m: m.group(1), frag.src)
    code = compile("lambda txn: " + src, "<%s>" % label, "eval")
    fn = eval(code, dict(frag.env))        # noqa: S307 (our own text; constants in env)
    fn.frag = frag
    return fn


def build_pred(frag: Frag) -> Callable:
    """``fn(v)`` computing `frag` for the value ``{v}`` (a test of one sample)."""
    src = _PLACEHOLDER.sub(lambda m: m.group(1), frag.src.replace("{v}", "v"))
    return eval(compile("lambda v: " + src, "<test>", "eval"), dict(frag.env))  # noqa: S307
