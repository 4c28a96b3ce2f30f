"""`userlist` sections: users, their passwords and groups, checked at load; and the
check of a user's password against them (crypt(3), as HAProxy 2.6 does it).

    userlist L1
        group admins users alice
        user alice password $6$salt$hash... [groups G1,G2]
        user bob insecure-password hunter2 [groups ...]

A `password` is a crypt(3) hash, verified by the system's libcrypt (libxcrypt on
current Linux: SHA-512 `$6$`, SHA-256 `$5$`, bcrypt `$2b$`, yescrypt `$y$`, MD5
`$1$`, DES...), called through cffi in ABI mode: no compiler and no new
dependency (cffi is one already). HAProxy accepts a hash libcrypt cannot use
and lets it never match; keepwarm refuses it at load, as it refuses a duplicate
user, group or userlist that HAProxy only warns about and ignores.

HAProxy runs crypt() for every request; a SHA-512 hash (5000 rounds) costs ~1.6 ms
of CPU here, paid again by each request of a keep-alive client (a cached outcome:
~0.3 us). keepwarm remembers the last outcomes per (user, password) in a small
bounded dict per worker process (`CACHE_SIZE`), so a client that sends the same
credentials pays it once.
"""

from __future__ import annotations

import ctypes.util
from typing import Dict, FrozenSet, List, Optional, Tuple

CACHE_SIZE = 1024

_crypt = None


def crypt(key: bytes, setting: bytes) -> Optional[bytes]:
    """libcrypt's crypt(key, setting): the hash, or None where libcrypt refuses it
    (NULL, or libxcrypt's failure tokens '*0' / '*1')."""
    global _crypt
    if _crypt is None:
        from cffi import FFI
        ffi = FFI()
        ffi.cdef("char *crypt(const char *key, const char *salt);")
        lib = ffi.dlopen(ctypes.util.find_library("crypt") or "libcrypt.so.1")
        _crypt = (ffi, lib)
    ffi, lib = _crypt
    if b"\0" in key or b"\0" in setting:
        return None
    out = lib.crypt(key, setting)
    if out == ffi.NULL:
        return None
    out = ffi.string(out)
    return None if out[:1] == b"*" else out


def hash_problem(hashed: str) -> Optional[str]:
    """Why libcrypt cannot verify a password against `hashed` (None: it can): it must
    give back a hash of the same method, salt and length for any password."""
    h = hashed.encode("utf-8", "surrogateescape")
    out = crypt(b"", h)
    if out is None:
        return "libcrypt does not know this hash method"
    setting = h[:h.rfind(b"$") + 1] if h.startswith(b"$") else h[:2]
    if len(out) != len(h) or not out.startswith(setting):
        return "this is not a complete crypt(3) hash"
    return None


class Userlist:
    """A checked `userlist`: `check(user, password)` and `groups_of(user)`; what the
    `http_auth` and `http_auth_group` fetches read."""

    __slots__ = ("name", "groups", "_users", "_cache")

    def __init__(self, name: str, users: Dict[bytes, Tuple[bytes, bool, FrozenSet[bytes]]],
                 groups: FrozenSet[bytes]):
        self.name = name
        self.groups = groups
        self._users = users          # name -> (secret, hashed, groups)
        self._cache: Dict[Tuple[bytes, bytes], bool] = {}

    def check(self, user: bytes, password: bytes) -> bool:
        entry = self._users.get(user)
        if entry is None:
            return False
        secret, hashed, _ = entry
        if not hashed:
            return password == secret
        cache = self._cache
        key = (user, password)
        ok = cache.get(key)
        if ok is None:
            ok = crypt(password, secret) == secret
            if len(cache) >= CACHE_SIZE:
                del cache[next(iter(cache))]       # the oldest outcome goes
            cache[key] = ok
        return ok

    def groups_of(self, user: bytes) -> FrozenSet[bytes]:
        entry = self._users.get(user)
        return entry[2] if entry is not None else frozenset()


class UserlistError(ValueError):
    def __init__(self, line: int, message: str, hint: Optional[str] = None):
        super().__init__(message)
        self.line, self.message, self.hint = line, message, hint


class UserlistSection:
    """A `userlist` section being read; `build()` checks the names it cross-references
    (users and groups may be named before they are declared, as in HAProxy)."""

    def __init__(self, name: str, line: int, file: str):
        self.name, self.line, self.file = name, line, file
        # name -> (line, secret, hashed, [group names]); group -> (line, [user names])
        self.users: Dict[str, Tuple[int, str, bool, List[str]]] = {}
        self.groups: Dict[str, Tuple[int, List[str]]] = {}

    def keyword(self, lineno: int, words: List[str]) -> None:
        kw, args = words[0], words[1:]
        if kw == "group":
            self.group(lineno, args)
        elif kw == "user":
            self.user(lineno, args)
        else:
            raise UserlistError(lineno, "unknown keyword '%s' in 'userlist' section" % kw,
                                "a userlist holds 'user' and 'group' lines")

    def group(self, lineno, args):
        if not args:
            raise UserlistError(lineno, "'group' expects <name> as an argument",
                                "e.g. 'group admins users alice,bob'")
        name, rest = args[0], args[1:]
        if name in self.groups:
            raise UserlistError(lineno, "duplicated group '%s' in userlist '%s' (first at "
                                "line %d)" % (name, self.name, self.groups[name][0]),
                                "HAProxy ignores the second one with a warning; remove it")
        users: List[str] = []
        while rest:
            if rest[0] != "users" or len(rest) < 2:
                raise UserlistError(lineno, "'group %s': unexpected '%s'" % (name, rest[0]),
                                    "write 'group NAME [users U1,U2]'")
            users += [u for u in rest[1].split(",") if u]
            rest = rest[2:]
        self.groups[name] = (lineno, users)

    def user(self, lineno, args):
        if not args:
            raise UserlistError(lineno, "'user' expects <name> as an argument",
                                "e.g. 'user alice password $6$...'")
        name, rest = args[0], args[1:]
        if name in self.users:
            raise UserlistError(lineno, "duplicated user '%s' in userlist '%s' (first at "
                                "line %d)" % (name, self.name, self.users[name][0]),
                                "HAProxy ignores the second one with a warning; remove it")
        secret, hashed, groups = None, True, []
        while rest:
            opt = rest[0]
            if len(rest) < 2:
                raise UserlistError(lineno, "'user %s': '%s' expects a value" % (name, opt))
            if opt in ("password", "insecure-password"):
                secret, hashed = rest[1], opt == "password"
                if hashed:
                    problem = hash_problem(secret)
                    if problem:
                        raise UserlistError(
                            lineno, "user '%s': the password hash '%s' cannot be verified: %s"
                            % (name, secret[:24], problem),
                            "make one with 'openssl passwd -6' (SHA-512) or 'mkpasswd -m "
                            "sha-512', and write it bare or in single quotes (inside double "
                            "quotes '$' starts a variable)")
            elif opt == "groups":
                groups += [g for g in rest[1].split(",") if g]
            else:
                raise UserlistError(lineno, "'user %s': unexpected '%s'" % (name, opt),
                                    "write 'user NAME password|insecure-password PASS "
                                    "[groups G1,G2]'")
            rest = rest[2:]
        if secret is None:
            # HAProxy accepts it, and the user can never log in: say so.
            raise UserlistError(lineno, "user '%s' has no password" % name,
                                "add 'password HASH' or 'insecure-password PASS'")
        self.users[name] = (lineno, secret, hashed, groups)

    def build(self) -> Tuple[Userlist, List[UserlistError]]:
        errors = []
        members: Dict[str, set] = {u: set(gs) for u, (_, _, _, gs) in self.users.items()}
        for user, (lineno, _, _, groups) in self.users.items():
            for g in groups:
                if g not in self.groups:
                    errors.append(UserlistError(lineno, "userlist '%s': no such group '%s' "
                                                "specified in user '%s'" % (self.name, g, user),
                                                "declare it: 'group %s'" % g))
        for group, (lineno, users) in self.groups.items():
            for u in users:
                if u not in self.users:
                    errors.append(UserlistError(lineno, "userlist '%s': no such user '%s' "
                                                "specified in group '%s'"
                                                % (self.name, u, group)))
                else:
                    members[u].add(group)

        def b(s):
            return s.encode("utf-8", "surrogateescape")
        users = {b(u): (b(secret), hashed, frozenset(b(g) for g in members[u]))
                 for u, (_, secret, hashed, _) in self.users.items()}
        return Userlist(self.name, users, frozenset(b(g) for g in self.groups)), errors


class Userlists:
    """Every userlist of a configuration, by name, for the rule engine (the `userlists`
    of its compile context). A fetch may name one declared further down the file:
    `want()` notes where, `missing()` lists the names never declared."""

    def __init__(self):
        self.lists: Dict[str, Userlist] = {}
        self.where: Tuple[str, int] = ("", 0)      # the line being read (the parser sets it)
        self.wanted: List[Tuple[str, str, int]] = []

    def want(self, name: str):
        """A function giving userlist `name` once the configuration is read."""
        self.wanted.append((name,) + self.where)
        lists = self.lists
        return lambda: lists[name]

    def missing(self):
        seen = set()
        for name, file, line in self.wanted:
            if name not in self.lists and name not in seen:
                seen.add(name)
                yield name, file, line
