"""Session-ticket keys, shared by every worker so that a client resumes its
session whichever worker accepts its next connection.

A `KeyRing` holds three keys in HAProxy's order: the oldest, the one that
seals new tickets, the next; all three open tickets. `tls-ticket-keys FILE`
gives a bind the last three keys of FILE (base64, 48 or 80 bytes a line, as
HAProxy reads it). Binds without it share the process's own ring, made from
random bytes when the master starts: it is kept across reloads (clients
resume after a reload) and rotated every `tune.ssl.ticket-key-rotation`
(keepwarm's own setting, 1 hour by default): the next key starts sealing, a
new next key is made and the oldest is forgotten, so a ticket opens for one
to two periods. `set ssl tls-key` rotates a file's ring the same way. The
master rotates and tells every worker (proxy/runtime_actions.py); the rings
here are what the ticket callback (proxy/tls/openssl.py) reads.
"""

from __future__ import annotations

import base64
import binascii
import os
from typing import List, Optional

from . import openssl
from .certs import TLSConfigError

KEYS = 3                       # HAProxy's TLS_TICKETS_NO
DEFAULT_ROTATION = 3600.0      # seconds


class KeyRing:
    """Three ticket keys (oldest, sealing, next); `path` None for the process's own."""

    def __init__(self, keys: List[bytes], path: Optional[str] = None):
        self.path = path
        self.uid = -1
        self.size = len(keys[0])
        self.keys = tuple(openssl.TicketKey(k) for k in keys[-KEYS:])

    def push(self, raw: bytes) -> None:
        """`raw` becomes the next key; the next one seals; the oldest is dropped."""
        if len(raw) != self.size:
            raise ValueError("a key of %d bytes where this ring holds %d-byte keys"
                             % (len(raw), self.size))
        self.keys = self.keys[1:] + (openssl.TicketKey(raw),)

    def dump(self) -> List[str]:
        return [base64.b64encode(k.raw).decode("ascii") for k in self.keys]


_OWN: List[KeyRing] = []


def own_ring(create: bool = True) -> Optional[KeyRing]:
    """The process's ring (None where the ticket callback cannot be installed:
    OpenSSL's own keys then serve, shared by the workers forked after them)."""
    if openssl.unavailable():
        return None
    if not _OWN and create:
        _OWN.append(KeyRing([os.urandom(80) for _ in range(KEYS)]))
    return _OWN[0] if _OWN else None


def new_key(size: int = 80) -> bytes:
    return os.urandom(size)


_LOADED: dict = {}      # path -> KeyRing, for the configuration being parsed


def new_configuration() -> None:
    """A configuration is about to be parsed: its files are read again."""
    _LOADED.clear()


def load_file(path: str) -> KeyRing:
    """`tls-ticket-keys FILE`, read as HAProxy 2.6 reads it (binds naming one file
    share its ring, as HAProxy's share one reference); TLSConfigError if not."""
    if path in _LOADED:
        return _LOADED[path]
    ring = _LOADED[path] = _read_file(path)
    return ring


def _read_file(path: str) -> KeyRing:
    why = openssl.unavailable()
    if why:
        raise TLSConfigError("'tls-ticket-keys' cannot be used here: %s" % why,
                             "remove it: the workers then share keys made at start")
    try:
        with open(path, "rb") as f:
            lines = f.read().splitlines()
    except OSError as exc:
        raise TLSConfigError("'%s' : unable to load ssl tickets keys file (%s)"
                             % (path, exc.strerror)) from None
    keys: List[bytes] = []
    for n, line in enumerate(lines, 1):
        try:
            raw = base64.b64decode(line.strip(), validate=True)
        except (binascii.Error, ValueError):
            raise TLSConfigError("'%s' : unable to decode base64 key on line %d" % (path, n)) \
                from None
        if len(raw) not in (48, 80) or (keys and len(raw) != len(keys[0])):
            raise TLSConfigError("'%s' : wrong sized key on line %d" % (path, n),
                                 "each line is 48 or 80 bytes in base64, all the same size "
                                 "(openssl rand 80 | openssl base64 -A)")
        keys.append(raw)
    if len(keys) < KEYS:
        raise TLSConfigError("'%s' : please supply at least %d keys in the tls-tickets-file"
                             % (path, KEYS))
    return KeyRing(keys, path)


def file_rings(config) -> List[KeyRing]:
    """The `tls-ticket-keys` rings of a configuration, numbered as HAProxy numbers
    them (the file named last is 0), in the order of their numbers."""
    seen: List[KeyRing] = []
    for fe in config.frontends:
        for bind in fe.binds:
            ring = getattr(bind.tls, "ticket_ring", None) if bind.tls else None
            if ring is not None and ring.path and all(r is not ring for r in seen):
                seen.append(ring)
    for uid, ring in enumerate(reversed(seen)):
        ring.uid = uid
    return sorted(seen, key=lambda r: r.uid)


def find(config, ref: str) -> Optional[KeyRing]:
    """A ring by `#ID` or file name, as `show tls-keys`/`set ssl tls-key` take it
    (HAProxy 2.6 reads a bare number as a file name)."""
    rings = file_rings(config)
    if ref.startswith("#"):
        return next((r for r in rings if ref[1:].isdigit() and r.uid == int(ref[1:])), None)
    return next((r for r in rings if r.path == ref), None)


def show(config, which: Optional[str]) -> str:
    """`show tls-keys [id|*]` in HAProxy 2.6's words."""
    rings = file_rings(config)
    if which is None:
        return "# id (file)\n" + "".join("%d (%s)\n" % (r.uid, r.path) for r in rings)
    if which != "*":
        ring = find(config, which)
        if ring is None:
            return "'show tls-keys' unable to locate referenced filename\n"
        rings = [ring]
    out = ["# id secret\n"]
    for ring in rings:
        out.append("# %d (%s)\n" % (ring.uid, ring.path))
        out.extend("%d.%d %s\n" % (ring.uid, i, key) for i, key in enumerate(ring.dump()))
    return "".join(out)


def push(config, path: Optional[str], raw: bytes) -> None:
    """A worker applies the master's new key (`path` None: the process's own ring)."""
    ring = own_ring(create=False) if path is None else next(
        (r for r in file_rings(config) if r.path == path), None)
    if ring is not None and isinstance(raw, bytes):
        try:
            ring.push(raw)
        except ValueError:
            pass                             # the master checked it; never half-applied


def decode_key(text: str) -> Optional[bytes]:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None
