"""Split HAProxy configuration text into lines of words, as HAProxy 2.6 does.

The rules follow HAProxy's ``parse_line()`` and ``readcfgfile()``:

* a line ends at LF (or CR); there is no line continuation;
* ``#`` outside quotes starts a comment, wherever it appears;
* unquoted whitespace separates words; ``"..."`` (weak) and ``'...'``
  (strong) quotes keep it, and quoted parts concatenate with their
  neighbours (``"a b"'c'd`` is one word ``a bcd``);
* outside strong quotes a backslash escapes: ``\\ `` ``\\\\`` ``\\#``
  ``\\'`` ``\\"`` ``\\t`` ``\\n`` ``\\r`` ``\\xHH``, and ``\\$`` inside weak
  quotes; any other pair stays as written (``\\1`` is two characters);
* ``$NAME``, ``${NAME}``, ``${NAME-default}`` and ``${NAME[*]}`` are
  environment variables, expanded inside weak quotes only;
* an empty word before the last one is an error (HAProxy aborts: it would
  silently end the argument list), an empty last word is dropped;
* ``.if/.elif/.else/.endif`` blocks and ``.warning/.notice/.diag/.alert``.

Times and sizes are parsed here too, since every section needs them.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Callable, Dict, Iterator, List, Mapping, Optional, Tuple

from .errors import ConfigError

MAX_DIGITS = 18     # significant digits a number in a configuration may have


def decimal(text: str) -> int:
    """int() of ASCII digits with an optional sign, refusing more than MAX_DIGITS
    significant digits: every number keepwarm reads fits, and Python itself refuses
    strings past 4300 digits with a message about its own limits."""
    sign = text[:1] if text[:1] in ("+", "-") else ""
    digits = text[len(sign):]
    if not digits or not (digits.isascii() and digits.isdigit()):
        raise ValueError("'%s' is not a number" % text[:40])
    significant = digits.lstrip("0") or "0"
    if len(significant) > MAX_DIGITS:
        raise ValueError("number too large: '%s%s' has %d digits"
                         % (text[:20], "..." if len(text) > 20 else "", len(significant)))
    return int(sign + significant)

MAX_LINE_ARGS = 64          # HAProxy's MAX_LINE_ARGS: more words is an error
HAPROXY_VERSION = (2, 6)    # the version whose semantics we follow (.if version_atleast)

_HEX = "0123456789abcdefABCDEF"


@dataclass(frozen=True)
class Line:
    """One configuration line after unquoting: its number and its words."""

    number: int
    words: Tuple[str, ...]


def split_words(text: str, filename: str, lineno: int,
                env: Optional[Mapping[str, str]] = None) -> List[str]:
    """Split one line into words, applying HAProxy's quoting and escapes."""
    if env is None:
        env = os.environ
    words: List[str] = []
    cur: List[str] = []
    squote = dquote = False
    quote_at = -1
    i, n = 0, len(text)
    while i < n and text[i] in " \t\f\v":
        i += 1                                      # readcfgfile() skips leading blanks

    def fail(message: str, hint: Optional[str] = None) -> ConfigError:
        return ConfigError(filename, lineno, message, hint)

    while i < n:
        c = text[i]
        if c in "\n\r":
            break
        if c == "#" and not squote and not dquote:
            break                                   # comment, anywhere outside quotes
        if c == '"' and not squote:
            dquote = not dquote
            quote_at = i
            i += 1
            continue
        if c == "'" and not dquote:
            squote = not squote
            quote_at = i
            i += 1
            continue
        if c == "\\" and not squote:
            nxt = text[i + 1] if i + 1 < n else ""
            if nxt in (" ", "\\", "#", "'", '"'):
                cur.append(nxt)
                i += 2
            elif nxt == "$" and dquote:
                cur.append("$")
                i += 2
            elif nxt in ("t", "n", "r"):
                cur.append({"t": "\t", "n": "\n", "r": "\r"}[nxt])
                i += 2
            elif nxt == "x":
                hh = text[i + 2:i + 4]
                if len(hh) != 2 or hh[0] not in _HEX or hh[1] not in _HEX:
                    raise fail("invalid or incomplete hex sequence '\\x%s' at position %d"
                               % (hh, i + 1), "write '\\xHH' with two hex digits")
                cur.append(chr(int(hh, 16)))
                i += 4
            else:
                cur.append("\\")                    # not an escape: kept as written
                i += 1
            continue
        if c in " \t\f\v" and not squote and not dquote:
            while i < n and text[i] in " \t\f\v":
                i += 1
            words.append("".join(cur))
            cur = []
            continue
        if c == "$" and dquote:
            i = _expand_env(text, i, cur, words, env, fail)
            continue
        cur.append(c)
        i += 1

    if squote or dquote:
        raise fail("unmatched quote at position %d" % (quote_at + 1),
                   "close the %s quote, or escape it with a backslash"
                   % ("single" if squote else "double"))
    words.append("".join(cur))
    if words and words[-1] == "":
        words.pop()                                 # nothing after trailing spaces
    for idx, w in enumerate(words):
        if w == "" and idx < len(words) - 1:
            raise fail("argument number %d is empty and marks the end of the argument list"
                       % idx, "HAProxy aborts here so that the following arguments are not "
                       "silently ignored; remove the empty \"\" or give it a value")
    if words and words[-1] == "":
        words.pop()
    if len(words) > MAX_LINE_ARGS:
        raise fail("too many words (%d), the maximum is %d" % (len(words), MAX_LINE_ARGS))
    return words


_VARNAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*|\.(LINE|FILE|SECTION)\b")


def _expand_env(text, i, cur, words, env, fail) -> int:
    """Expand ``$NAME``/``${NAME}``/``${NAME-default}``/``${NAME[*]}`` at text[i]."""
    j = i + 1
    brace = j < len(text) and text[j] == "{"
    if brace:
        j += 1
    m = _VARNAME.match(text, j)
    if not m:
        raise fail("invalid variable name at position %d" % (j + 1),
                   "write '\\$' for a literal dollar inside double quotes")
    name = m.group(0)
    j = m.end()
    value = env.get(name)
    word_expand = False
    if brace:
        if text.startswith("[*]", j):
            word_expand = True
            j += 3
        if j < len(text) and text[j] == "-":
            end = text.find("}", j)
            if end < 0:
                raise fail("unmatched brace in variable at position %d" % (i + 1))
            if value is None:
                value = text[j + 1:end]
            j = end
        if j >= len(text) or text[j] != "}":
            raise fail("unmatched brace in variable at position %d" % (i + 1))
        j += 1
    if value:
        if word_expand:
            parts = value.split()
            for k, part in enumerate(parts):
                if k:
                    words.append("".join(cur))
                    cur.clear()
                cur.append(part)
        else:
            cur.append(value)
    return j


# ---------------------------------------------------------------- preprocessor

class _Cond:
    """State of one ``.if`` block."""

    __slots__ = ("taking", "taken", "seen_else", "parent_active", "line")

    def __init__(self, parent_active: bool, line: int):
        self.parent_active = parent_active
        self.taking = False
        self.taken = False
        self.seen_else = False
        self.line = line


def tokenize(text: str, filename: str = "<string>",
             env: Optional[Mapping[str, str]] = None,
             warn: Optional[Callable[[int, str], None]] = None,
             require_final_lf: bool = False, strict: bool = True) -> Iterator[Line]:
    """Yield the non-empty lines of a configuration, conditional blocks applied.

    A line that cannot be read raises its ConfigError, or with `strict` false is
    yielded as that error, and reading goes on (`keepwarm check` reports all)."""
    for item in _tokenize(text, filename, env, warn, require_final_lf):
        if strict and isinstance(item, ConfigError):
            raise item
        yield item


def _tokenize(text, filename, env, warn, require_final_lf):
    if env is None:
        env = os.environ
    stack: List[_Cond] = []
    lines = text.split("\n")
    last = len(lines)
    if lines and lines[-1] == "":
        lines.pop()
    elif require_final_lf and text:
        # HAProxy >= 2.3 refuses a file whose last line has no LF (truncated?)
        yield ConfigError(filename, last, "missing LF on last line, file might have been "
                          "truncated", "end the file with a newline")
    for lineno, raw in enumerate(lines, 1):
        try:
            words = split_words(raw, filename, lineno, env)
            if not words:
                continue
            active = not stack or (stack[-1].taking and stack[-1].parent_active)
            if words[0].startswith("."):
                _directive(words, stack, filename, lineno, env, active, warn)
                continue
        except ConfigError as exc:
            yield exc                   # reported; the next lines are still read
            continue
        if active:
            yield Line(lineno, tuple(words))
    if stack:
        yield ConfigError(filename, stack[-1].line, "non-terminated '.if' block",
                          "add '.endif'")


def _directive(words, stack, filename, lineno, env, active, warn):
    """A `.if`-family line or a diagnostic (`.warning`, `.alert`...); raise ConfigError."""
    head = words[0]
    if head in (".if", ".elif", ".else", ".endif"):
        try:
            _conditional(head, words, stack, filename, lineno, env, active)
        except RecursionError:
            raise ConfigError(filename, lineno, "condition nested too deeply") from None
        except ValueError as exc:
            raise ConfigError(filename, lineno, str(exc)) from None
        return
    if not active:
        return
    if head in (".warning", ".notice", ".diag", ".alert"):
        if len(words) > 2:
            raise ConfigError(filename, lineno, "unexpected argument '%s' for '%s'"
                              % (words[2], head),
                              "use quotes if the message should contain spaces")
        msg = words[1] if len(words) > 1 else ""
        if head == ".alert":
            raise ConfigError(filename, lineno, "'%s'" % msg)
        if head == ".warning" and warn:
            warn(lineno, "'%s'" % msg)
        return
    raise ConfigError(filename, lineno, "unknown directive '%s'" % head,
                      "known directives: .if .elif .else .endif .warning "
                      ".notice .diag .alert")


def _conditional(head, words, stack, filename, lineno, env, active):
    def err(msg, hint=None):
        return ConfigError(filename, lineno, msg, hint)

    if head == ".if":
        c = _Cond(active, lineno)
        if active:
            c.taking = c.taken = evaluate_condition(words[1:], filename, lineno, env)
        stack.append(c)
        return
    if not stack:
        raise err("lone '%s' with no matching '.if'" % head)
    c = stack[-1]
    if head == ".endif":
        if len(words) > 1:
            raise err("unexpected argument '%s' for '.endif'" % words[1])
        stack.pop()
        return
    if c.seen_else:
        raise err("'%s' after '.else' is not permitted" % head)
    if head == ".else":
        if len(words) > 1:
            raise err("unexpected argument '%s' for '.else'" % words[1])
        c.seen_else = True
        c.taking = not c.taken
        c.taken = True
        return
    # .elif
    if c.taken or not c.parent_active:
        c.taking = False
        return
    c.taking = c.taken = evaluate_condition(words[1:], filename, lineno, env)


_COND_TOKEN = re.compile(r"\s*(&&|\|\||!|\(|\)|[A-Za-z_][A-Za-z0-9_]*\(|,|[^\s&|!(),]+)")


def evaluate_condition(words, filename: str, lineno: int,
                       env: Optional[Mapping[str, str]] = None) -> bool:
    """Evaluate a ``.if`` expression (HAProxy 2.5+ grammar, a subset of predicates).

    Terms: a number (true when non-zero), ``defined(VAR)``, ``streq(a,b)``,
    ``strneq(a,b)``, ``version_atleast(V)``, ``version_before(V)``,
    ``feature(NAME)`` (always false: keepwarm has no build features),
    combined with ``!``, ``&&``, ``||`` and parentheses.
    """
    if env is None:
        env = os.environ
    expr = " ".join(words)
    toks = [t for t in _COND_TOKEN.findall(expr)]
    if "".join(toks).replace(" ", "") != expr.replace(" ", ""):
        raise ConfigError(filename, lineno, "cannot parse '.if' condition '%s'" % expr)
    pos = 0

    def err(msg):
        return ConfigError(filename, lineno, "%s in '.if' condition '%s'" % (msg, expr))

    def peek():
        return toks[pos] if pos < len(toks) else None

    def take():
        nonlocal pos
        pos += 1
        return toks[pos - 1]

    def args_until_close():
        out, cur = [], ""
        while True:
            t = peek()
            if t is None:
                raise err("missing ')'")
            take()
            if t == ")":
                out.append(cur)
                return out
            if t == ",":
                out.append(cur)
                cur = ""
            else:
                cur += t
    def term():
        t = peek()
        if t is None:
            raise err("missing term")
        if t == "!":
            # Counted, not recursed: a long run of '!' must not exhaust the stack.
            negate = False
            while peek() == "!":
                take()
                negate = not negate
            return term() != negate
        if t == "(":
            take()
            v = expr_or()
            if take_if(")"):
                return v
            raise err("missing ')'")
        take()
        if t.endswith("("):
            fn = t[:-1]
            a = args_until_close()
            if fn == "defined":
                return a[0] in env
            if fn == "streq":
                return len(a) == 2 and a[0] == a[1]
            if fn == "strneq":
                return len(a) == 2 and a[0] != a[1]
            if fn in ("version_atleast", "version_before"):
                want = tuple(decimal(x) for x in re.findall(r"[0-9]+", a[0])[:3]) or (0,)
                have = HAPROXY_VERSION + (0,) * (len(want) - 2)
                ok = have[:len(want)] >= want
                return ok if fn == "version_atleast" else not ok
            if fn == "feature":
                return False
            raise err("unknown predicate '%s'" % fn)
        if re.fullmatch(r"-?[0-9]+", t):
            return t.lstrip("-").strip("0") != ""
        raise err("unexpected term '%s'" % t)

    def take_if(tok):
        if peek() == tok:
            take()
            return True
        return False

    def expr_and():
        v = term()
        while take_if("&&"):
            v = term() and v
        return v

    def expr_or():
        v = expr_and()
        while take_if("||"):
            v = expr_and() or v
        return v

    if not toks:
        return False
    value = expr_or()
    if pos != len(toks):
        raise err("unexpected '%s'" % toks[pos])
    return value


# ---------------------------------------------------------------- times, sizes

_TIME_UNITS: Dict[str, float] = {
    "us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0,
}
_TIME = re.compile(r"([0-9]+)([a-z]*)")
MAX_TIME_MS = 2147483647        # HAProxy: "maximum value is 2147483647 ms (~24.8 days)"


def parse_time(text: str, default_unit: str = "ms") -> float:
    """Parse a HAProxy time (``10``, ``10ms``, ``2s``, ``1m``...) into seconds.

    Raise ValueError with a one-line reason.  A bare number is in
    ``default_unit`` (milliseconds almost everywhere).
    """
    m = _TIME.fullmatch(text)
    if not m:
        bad = next((c for c in text if not c.isdigit()), text[:1] or "?")
        if not text:
            raise ValueError("missing time value")
        raise ValueError("unexpected character '%s' in time '%s' (integers with a unit "
                         "among us, ms, s, m, h, d)" % (bad, text))
    number, unit = decimal(m.group(1)), m.group(2) or default_unit
    if unit not in _TIME_UNITS:
        raise ValueError("unknown time unit '%s' in '%s' (use us, ms, s, m, h or d)"
                         % (unit, text))
    seconds = number * _TIME_UNITS[unit]
    if seconds * 1000 > MAX_TIME_MS:
        raise ValueError("timer overflow in '%s', maximum value is 2147483647 ms "
                         "(~24.8 days)" % text)
    if 0 < seconds < 1e-3:
        raise ValueError("timer underflow in '%s', minimum non-null value is 1 ms" % text)
    return seconds


_SIZE_UNITS = {"": 1, "k": 1024, "m": 1024 ** 2, "g": 1024 ** 3}


def parse_size(text: str) -> int:
    """Parse a HAProxy size (``16384``, ``16k``, ``1m``, ``1g``) into bytes."""
    m = re.fullmatch(r"([0-9]+)([kKmMgG]?)", text)
    if not m:
        raise ValueError("invalid size '%s' (an integer, optionally followed by k, m or g)"
                         % text)
    return decimal(m.group(1)) * _SIZE_UNITS[m.group(2).lower()]
