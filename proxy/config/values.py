"""Small value parsers shared by the section parsers: integers, times, the context."""

from __future__ import annotations

import re
from typing import List, Optional

from .errors import ConfigError
from .lexer import decimal, parse_time

_INT = re.compile(r"-?[0-9]+")


class Ctx:
    """Where we are: the file name and the warnings collected so far."""

    def __init__(self, filename: str):
        self.filename = filename
        self.warnings: List[str] = []

    def warn(self, line: int, message: str) -> None:
        self.warnings.append("%s:%d: warning: %s" % (self.filename, line, message))

    def error(self, line: int, message: str, hint: Optional[str] = None) -> ConfigError:
        return ConfigError(self.filename, line, message, hint)


def no_args(ctx: Ctx, lineno: int, kw: str, args: List[str]) -> None:
    if args:
        raise ctx.error(lineno, "'%s' cannot handle unexpected argument '%s'" % (kw, args[0]))


_LEADING_INT = re.compile(r"([0-9]+)([^0-9].*)")
_LENIENT_TIME = re.compile(r"([0-9]+(?:us|ms|s|m|h|d))(.+)")     # a unit, then anything


def int_arg(ctx: Ctx, lineno: int, kw: str, args: List[str], minimum: Optional[int] = None,
            maximum: Optional[int] = None, lenient: bool = False) -> int:
    """An integer argument. `lenient`: HAProxy reads this keyword with atol(), so
    `100k` is 100 there: accepted the same, with a warning."""
    label = kw if kw.startswith(("server", "'default")) else "'%s'" % kw
    if not args:
        raise ctx.error(lineno, "%s expects an integer argument" % label)
    if len(args) > 1:
        raise ctx.error(lineno, "%s cannot handle unexpected argument '%s'" % (label, args[1]))
    m = _LEADING_INT.fullmatch(args[0]) if lenient else None
    if m:
        ctx.warn(lineno, "%s '%s': HAProxy reads it as %s and ignores '%s'; so does keepwarm, "
                 "but write %s" % (label, args[0], m.group(1), m.group(2), m.group(1)))
        args = [m.group(1)]
    if not _INT.fullmatch(args[0]):
        raise ctx.error(lineno, "%s expects an integer argument (got '%s')" % (label, args[0]))
    try:
        value = decimal(args[0])
    except ValueError as exc:
        raise ctx.error(lineno, "%s: %s" % (label, exc)) from None
    if minimum is not None and value < minimum or maximum is not None and value > maximum:
        if maximum is None:
            bounds = ">= %d" % minimum
        else:
            bounds = "within %d and %d" % (minimum, maximum)
        raise ctx.error(lineno, "%s must be %s (got %d)" % (label, bounds, value))
    return value


def time_arg(ctx: Ctx, lineno: int, label: str, raw: str, lenient: bool = False) -> float:
    """A time. `lenient`: HAProxy 2.6 accepts characters after this keyword's unit with
    a warning (`timeout client 5sx` is 5 s); so does keepwarm."""
    try:
        return parse_time(raw)
    except ValueError as exc:
        m = _LENIENT_TIME.fullmatch(raw) if lenient else None
        if m:
            ctx.warn(lineno, "unexpected character '%s' after the timer value '%s', only "
                     "us, ms, s, m, h and d are units; read as '%s' (HAProxy 2.6 does the "
                     "same and warns it will be an error)" % (m.group(2)[0], raw, m.group(1)))
            return time_arg(ctx, lineno, label, m.group(1))
        if not label.startswith(("server", "'default")):
            label = "'%s'" % label
        raise ctx.error(lineno, "%s: %s" % (label, exc),
                        "times are integers with an optional unit: us, ms, s, m, h, d "
                        "(a bare number is milliseconds)") from None
