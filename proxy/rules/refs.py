"""Map files as the runtime API sees and changes them (`show map`, `add map`,
`set map`, `del map`, `clear map`, `get map`): each file named by a `map()`
converter is one `MapRef`, holding its entries in order and the lookups
compiled from them; a change rebuilds those lookups, so the next request sees
it. One registry per process: the configuration's parser fills it (`reset()`
first); the workers forked afterwards have their own copies, which the master
keeps in step by sending them each change (proxy/runtime_actions.py).
"""

from __future__ import annotations

import itertools
from typing import Callable, Dict, List, Optional, Tuple

_REFS: Dict[Tuple[str, str], "MapRef"] = {}     # (kind: "map" | "acl", path) -> ref
_ids = itertools.count()
_entry_ids = itertools.count(0x1000)


class MapRef:
    """One map file: [(entry id, key, value)] in file order, and its users (each a
    function that recompiles one converter's lookup from the entries)."""

    def __init__(self, uid: int, path: str, entries, where: Tuple[str, int], kind="map"):
        self.uid = uid
        self.kind = kind
        self.path = path
        self.where = where                      # (config file, line) of its first use
        self.entries: List[Tuple[int, str, str]] = [(next(_entry_ids), k, v)
                                                    for k, v in entries]
        self.users: List[Callable[[], None]] = []
        self.source = ""                        # the file's text when loaded
        self.probe = None                       # an ACL file's (method, -i, lookup): get acl

    def rebuild(self) -> bool:
        """Recompile every user's lookup; False (and nothing changed) if one of them
        cannot take the entries (a pattern its match method refuses)."""
        return all([user() is not False for user in self.users])

    def _change(self, entries) -> bool:
        old = self.entries
        self.entries = entries
        if self.rebuild():
            return True
        self.entries = old               # refused: the lookups go back to the old entries
        self.rebuild()
        raise ValueError("invalid pattern")

    # the runtime API's operations (True when something changed; ValueError when an
    # entry is refused by a user of the file, as HAProxy refuses it)

    def add(self, key: str, value: str) -> bool:
        return self._change(self.entries + [(next(_entry_ids), key, value)])

    def set(self, key: str, value: str) -> bool:
        if not any(k == key for _, k, _ in self.entries):
            return False
        return self._change([(eid, k, value if k == key else v) for eid, k, v in self.entries])

    def delete(self, key: str) -> bool:
        kept = [e for e in self.entries if e[1] != key]
        if len(kept) == len(self.entries):
            return False
        self.entries = kept
        self.rebuild()
        return True

    def clear(self) -> None:
        self.entries = []
        self.rebuild()


def reset() -> Dict[Tuple[str, str], "MapRef"]:
    """A configuration is about to be read: its maps start from their files.
    Returns the registry so far, for `restore()` if the new one does not load."""
    old = dict(_REFS)
    _REFS.clear()
    return old


def restore(old: Dict[Tuple[str, str], "MapRef"]) -> None:
    _REFS.clear()
    _REFS.update(old)


def register(path: str, text: str, parse, where: Tuple[str, int] = ("", 0),
             kind: str = "map") -> MapRef:
    """The file's ref: the one already made from this text (every converter or ACL
    of a configuration naming the file shares its entries), else a new one from
    `parse(text)` -> [(key, value)]."""
    ref = _REFS.get((kind, path))
    if ref is None or ref.source != text:
        ref = _REFS[(kind, path)] = MapRef(next(_ids), path, parse(text), where, kind)
        ref.source = text
    return ref


def all_maps(kind: str = "map") -> List[MapRef]:
    return sorted((r for r in _REFS.values() if r.kind == kind), key=lambda r: r.uid)


def find(name: str, kind: str = "map") -> Optional[MapRef]:
    """A map (or ACL pattern file) by file path or `#ID`."""
    if name.startswith("#"):
        try:
            uid = int(name[1:])
        except ValueError:
            return None
        return next((r for r in _REFS.values() if r.uid == uid and r.kind == kind), None)
    return _REFS.get((kind, name))


def apply(op: str, name: str, key: Optional[str] = None, value: Optional[str] = None,
          kind: str = "map") -> bool:
    """One change as the master sends it to a worker; False if it found nothing."""
    ref = find(name, kind)
    if ref is None:
        return False
    if op == "add":
        return ref.add(key, value)
    if op == "set":
        return ref.set(key, value)
    if op == "del":
        return ref.delete(key)
    if op == "clear":
        ref.clear()
        return True
    return False
