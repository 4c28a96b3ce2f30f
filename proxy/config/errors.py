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
