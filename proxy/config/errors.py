"""The one error type shown to people editing a configuration file."""

from __future__ import annotations

from typing import Optional


class ConfigError(Exception):
    """A configuration mistake, located at FILE:LINE, with an optional hint."""

    def __init__(self, file: str, line: int, message: str, hint: Optional[str] = None):
        self.file = file
        self.line = line
        self.message = message
        self.hint = hint
        super().__init__(str(self))

    def __str__(self) -> str:
        # Line 0: the file as a whole (it cannot be read, or is not UTF-8 at all).
        where = "%s:%s" % (self.file, self.line) if self.line else self.file
        text = "%s: %s" % (where, self.message)
        if self.hint:
            text += "\n  hint: " + self.hint
        return text


class ConfigErrors(ConfigError):
    """Every mistake of a file (``keepwarm check`` reports them all, as HAProxy does);
    reads as the first one (file, line, message, hint) where one is expected."""

    def __init__(self, errors):
        self.errors = list(errors)
        first = self.errors[0]
        super().__init__(first.file, first.line, first.message, first.hint)

    def __str__(self) -> str:
        return "\n".join(ConfigError.__str__(e) for e in self.errors)


def alert_lines(exc: ConfigError, pid: int):
    """HAProxy's way of printing configuration errors, one `[ALERT]` line each (plus
    keepwarm's hint), then the verdict."""
    errors = getattr(exc, "errors", [exc])
    for e in errors:
        if e.line:
            yield "[ALERT]    (%d) : config : parsing [%s:%d] : %s" % (pid, e.file, e.line,
                                                                       e.message)
        else:
            yield "[ALERT]    (%d) : config : %s: %s" % (pid, e.file, e.message)
        if e.hint:
            yield "  hint: " + e.hint
    yield ("[ALERT]    (%d) : config : Fatal errors found in configuration (%d)."
           % (pid, len(errors)))


def warning_line(warning: str, pid: int) -> str:
    """A parser warning ("FILE:LINE: warning: MESSAGE") in HAProxy's form."""
    where, sep, message = warning.partition(": warning: ")
    if not sep:
        return "[WARNING]  (%d) : config : %s" % (pid, warning)
    return "[WARNING]  (%d) : config : parsing [%s] : %s" % (pid, where, message)
