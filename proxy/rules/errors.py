"""The one error a rule expression raises at compile time, and its "did you mean"."""

from __future__ import annotations

import difflib
from typing import Iterable, Optional


class RuleError(ValueError):
    """A sample, converter, ACL, condition or log-format that cannot be compiled.

    The config parser turns it into a ConfigError at the line's file:line, with
    ``hint`` as the hint."""

    def __init__(self, message: str, hint: Optional[str] = None):
        super().__init__(message)
        self.message = message
        self.hint = hint


def did_you_mean(word: str, candidates: Iterable[str]) -> Optional[str]:
    """'did you mean 'X'?' for the closest known name, or None."""
    close = difflib.get_close_matches(word, sorted(set(candidates)), n=1, cutoff=0.6)
    return "did you mean '%s'?" % close[0] if close else None
