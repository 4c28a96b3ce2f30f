"""What a sample fetch reads: one transaction, built cheaply, computed lazily.

A ``Txn`` holds references to what the stream already has (the head bytes, the
parser's result list, the addresses, the proxy names) and computes the rest —
the target's parts, the header index, the response's headers — on the first
fetch that asks, once per transaction. Nothing is parsed when no rule asks.

Header lists come from the worker's head parser (``parser.headers(data)``),
which only knows the *last* message it parsed, and the request line from the
head buffer. A txn reads them lazily while they are still its own;
``detach()`` copies them now, and the wiring calls it before the buffer or the
parser is reused when the txn will be read later (a log line's ``%r``; a
log-format's ``uses`` says when it reads the request).
"""

from __future__ import annotations

import ipaddress
from typing import Callable, Dict, List, Optional, Tuple

from _native.constants import (F_NORMALIZE, R_FLAGS, R_METHOD_LEN, R_METHOD_OFF,
                               R_TARGET_LEN, R_TARGET_OFF, R_VERSION)
from _native.pure import normalized_line

Headers = List[Tuple[bytes, bytes]]


class World:
    """What one worker process shares between its transactions: the ``proc``
    variables, ``nbsrv(BACKEND)`` (a callable the wiring provides: the usable
    servers of a backend now), and the log's host name and pid."""

    __slots__ = ("proc_vars", "nbsrv", "hostname", "pid", "stats", "admin")

    def __init__(self, nbsrv: Optional[Callable[[str], int]] = None,
                 hostname: bytes = b"", pid: int = 0, stats=None):
        self.proc_vars: Dict[str, object] = {}
        self.nbsrv = nbsrv if nbsrv is not None else (lambda name: 0)
        self.hostname = hostname
        self.pid = pid
        # stats() -> (the latest report or None, the configuration): what
        # use-service prometheus-exporter and the stats page show.
        self.stats = stats if stats is not None else (lambda: (None, None))
        # admin(message): a stats page form's change, sent to the master
        self.admin = lambda message: None


class Txn:
    """One request (and later its response) as the rule engine sees it.

    Built by the stream per request::

        Txn(world, data, parser, src=(ip, port), dst=(ip, port),
            fe_name=b"fe", be_name=b"be", sess_vars=session_dict)

    ``data`` is the buffer holding the request head, ``parser`` the head parser
    that just parsed it (its ``result_all()`` is read once here). Addresses are
    ``(host, port)`` as ``socket`` gives them; they become ``ipaddress`` objects
    on the first fetch that reads them. ``set_response`` adds the response.
    ``log`` holds the values only the wiring knows (timers ``Tt``, ``Tw``...,
    ``s`` the server name, ``ID`` the unique id, bytes, termination state),
    read by the log-format aliases; a missing one is logged as '-'.
    """

    __slots__ = ("world", "data", "parser", "res", "peer", "local", "fe_name", "be_name",
                 "sess_vars", "txn_vars", "req_vars", "res_vars", "log",
                 "_hdrs", "_index", "_method", "_target", "_path", "_query", "_src", "_dst",
                 "status", "res_data", "res_parser", "_res_hdrs", "_res_index",
                 "edits", "new_method", "new_target", "res_edits", "reason", "_apply", "xprt",
                 "captures")

    def __init__(self, world: World, data: bytes, parser, src=None, dst=None,
                 fe_name: bytes = b"", be_name: bytes = b"",
                 sess_vars: Optional[Dict[str, object]] = None, result=None, xprt=None):
        self.world = world
        self.xprt = xprt             # the client's transport: its `tls` for the ssl_* fetches
        self.data = data
        self.parser = parser
        # The parser's whole R_* list (the stream holds only its hot prefix).
        self.res = result if result is not None else \
            parser.result_all() if parser is not None else None
        self.peer = src
        self.local = dst
        self.fe_name = fe_name
        self.be_name = be_name
        self.sess_vars = {} if sess_vars is None else sess_vars
        self.txn_vars: Dict[str, object] = {}
        self.req_vars: Dict[str, object] = {}
        self.res_vars: Dict[str, object] = {}
        self.log: Dict[str, object] = {}
        self.captures = None         # (0 request | 1 response, slot) -> text: `capture` rules
        self._hdrs = self._index = self._method = self._target = self._path = None
        self._query = None
        self._src = self._dst = None
        self.status = None
        self.res_data = self.res_parser = self._res_hdrs = self._res_index = None
        # What http-request/http-response rules changed, replayed on the head bytes
        # (proxy/http1/rewrite.py): header edits in order; the new method; the
        # response's header edits and new reason (a new status is `status`).
        self.edits = self.new_method = self.new_target = self.res_edits = self.reason = None

    @classmethod
    def from_parts(cls, world: World, method: bytes, target: bytes, version: bytes = b"1.1",
                   headers: Headers = (), **kw) -> "Txn":
        """A txn from already split parts (tests, the CLI, a check): no parser."""
        txn = cls(world, b"", None, **kw)
        txn.res = (method, target, version)
        txn._hdrs = list(headers)
        return txn

    # ------------------------------------------------------------ request line

    @property
    def method(self) -> bytes:
        m = self._method
        if m is None:
            r = self.res
            if r.__class__ is tuple:
                m = r[0]
            else:
                off = r[R_METHOD_OFF]
                m = bytes(self.data[off:off + r[R_METHOD_LEN]])
            self._method = m
        return m

    @property
    def target(self) -> bytes:
        t = self._target
        if t is None:
            r = self.res
            if r.__class__ is tuple:
                t = r[1]
            else:
                off = r[R_TARGET_OFF]
                t = bytes(self.data[off:off + r[R_TARGET_LEN]])
                if r[R_FLAGS] & F_NORMALIZE:
                    # What HAProxy's fetches read (measured): the target without
                    # its scheme's default port, as it is forwarded.
                    t = normalized_line(self.data, r, r[R_METHOD_OFF]).split(b" ")[1]
            self._target = t
        return t

    def set_target(self, target: bytes) -> None:
        """A rule rewrote the URI (replace-path & co): later fetches see the new one."""
        self._target = self.new_target = target
        self._path = self._query = None
        if self.edits is None:
            self.edits = []

    def set_method(self, method: bytes) -> None:
        """set-method: the server gets `method`; the `method` fetch still reads the
        one received (measured on HAProxy 2.6.12)."""
        self.new_method = method
        if self.edits is None:
            self.edits = []

    def edit_headers(self, edit, apply) -> None:
        """A header rule changed the request: `apply(headers, edit)` gives the new
        (name, value) list fetches read (now if they were read already, else at the
        first fetch); `edit` is kept to replay on the head."""
        action = edit[0]
        hdrs = self._hdrs
        if action != "add-header":
            if hdrs is None and self.parser is not None:
                # Knowing the fields now costs less than editing the head's lines later.
                hdrs = self.headers()
            if hdrs is not None and (action == "set-header" or action == "del-header") \
                    and edit[1] not in self.index():
                # A set of a name the request does not carry is an add, a del nothing.
                if action == "del-header":
                    return
                edit = ("add-header",) + edit[1:]
                action = "add-header"
            elif hdrs is not None:
                self._hdrs = apply(hdrs, edit)
                self._index = None
        if action == "add-header" and hdrs is not None:
            hdrs.append((edit[2], edit[3]))      # the index, when made, is kept
            index = self._index
            if index is not None:
                index.setdefault(edit[1], []).append(edit[3])
        self._apply = apply
        if self.edits is None:
            self.edits = [edit]
        else:
            self.edits.append(edit)

    def edit_res_headers(self, edit, apply) -> None:
        """The same for the response's headers."""
        self._res_hdrs = apply(self.res_headers(), edit)
        self._res_index = None
        if self.res_edits is None:
            self.res_edits = [edit]
        else:
            self.res_edits.append(edit)

    @property
    def version(self) -> bytes:
        r = self.res
        if r.__class__ is tuple:
            return r[2]
        return b"1.1" if r[R_VERSION] == 11 else b"1.0"

    @property
    def path(self) -> Optional[bytes]:
        """The target's path (no query; an absolute URI loses its scheme and
        authority); None for '*' and authority-form targets."""
        p = self._path
        if p is None:
            t = self.target
            q = t.find(b"?")
            p = t if q < 0 else t[:q]
            if not p.startswith(b"/"):
                s = p.find(b"://")
                if s > 0:
                    # 'http://h.com' has no path (HAProxy 2.6.12: path is empty,
                    # base is the Host alone).
                    slash = p.find(b"/", s + 3)
                    p = False if slash < 0 else p[slash:]
                else:
                    p = False            # '*', host:port: no path at all
            self._path = p
        return p or None

    @property
    def query(self) -> Optional[bytes]:
        q = self._query
        if q is None:
            t = self.target
            i = t.find(b"?")
            q = False if i < 0 else t[i + 1:]
            self._query = q
        return None if q is False else q

    # ------------------------------------------------------------ headers

    def headers(self) -> Headers:
        """The request's header fields, in order, names as sent."""
        h = self._hdrs
        if h is None:
            h = self.parser.headers(self.data)
            if self.edits:
                # Header rules ran before any fetch read the headers: their edits
                # are applied now, once (a rule set nobody reads costs no list).
                for edit in self.edits:
                    h = self._apply(h, edit)
            self._hdrs = h
        return h

    def index(self) -> Dict[bytes, List[bytes]]:
        """Lower-cased name -> the field values in order (whole lines, not split)."""
        i = self._index
        if i is None:
            i = self._index = _index(self.headers())
        return i

    def set_response(self, status: int, data: bytes, parser) -> None:
        """The response head arrived (``parser`` just parsed it from ``data``)."""
        self.status = status
        self.res_data = data
        self.res_parser = parser
        self._res_hdrs = self._res_index = None
        self.res_edits = self.reason = None
        # req.* and res.* live for one direction's processing (measured: var(req.x)
        # set by http-request is empty in http-response rules).
        self.req_vars.clear()
        self.res_vars.clear()

    def res_headers(self) -> Headers:
        h = self._res_hdrs
        if h is None:
            if self.res_parser is None:
                return []
            h = self._res_hdrs = self.res_parser.headers(self.res_data)
        return h

    def res_index(self) -> Dict[bytes, List[bytes]]:
        i = self._res_index
        if i is None:
            i = self._res_index = _index(self.res_headers())
        return i

    def detach(self) -> None:
        """Copy what still lives in the head buffer or the parser (the request
        line, the header lists) so that both may be reused for the next message;
        cheap when they were read already."""
        if self.res is not None:
            self.method, self.target         # noqa: B018  (computed and kept)
        if self._hdrs is None and self.parser is not None:
            self.headers()
        if self._res_hdrs is None and self.res_parser is not None:
            self._res_hdrs = self.res_parser.headers(self.res_data)

    # ------------------------------------------------------------ addresses

    @property
    def src(self):
        a = self._src
        if a is None and self.peer:
            a = self._src = _ip(self.peer[0])
        return a

    @property
    def src_port(self) -> Optional[int]:
        return self.peer[1] if self.peer else None

    @property
    def dst(self):
        a = self._dst
        if a is None and self.local:
            a = self._dst = _ip(self.local[0])
        return a

    @property
    def dst_port(self) -> Optional[int]:
        return self.local[1] if self.local else None

    # ------------------------------------------------------------ variables

    def vars(self, scope: str) -> Dict[str, object]:
        if scope == "txn":
            return self.txn_vars
        if scope == "sess":
            return self.sess_vars
        if scope == "req":
            return self.req_vars
        if scope == "res":
            return self.res_vars
        return self.world.proc_vars


def _index(headers: Headers) -> Dict[bytes, List[bytes]]:
    index: Dict[bytes, List[bytes]] = {}
    for name, value in headers:
        key = name.lower()
        got = index.get(key)
        if got is None:
            index[key] = [value]
        else:
            got.append(value)
    return index


_IPS: Dict[object, object] = {}     # address text -> ipaddress object (parsing costs ~2 µs)


def _ip(host):
    ip = _IPS.get(host)
    if ip is None:
        text = host.decode("ascii") if isinstance(host, (bytes, bytearray)) else host
        try:
            ip = ipaddress.ip_address(text.split("%", 1)[0])
        except ValueError:
            return None              # a UNIX socket path: no address
        if len(_IPS) >= 4096:
            _IPS.clear()
        _IPS[host] = ip
    return ip

