"""The validated, immutable configuration model that the parser produces.

Every time is in seconds as a float; ``None`` means "not set", which HAProxy
treats as infinite.  Nothing on the data path reads config text: it reads these
frozen dataclasses.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional, Tuple


@dataclass(frozen=True)
class Bind:
    """One listening address of a frontend (``bind ADDR:PORT``)."""

    host: str
    port: int
    line: int = 0


@dataclass(frozen=True)
class HttpCheck:
    """The HTTP health check request and expectation of a backend.

    Built from ``option httpchk`` and ``http-check send|expect``.
    ``expect_kind`` is None (any 2xx/3xx passes, HAProxy's default),
    ``"status"`` (``expect_status`` is a list of codes/ranges such as
    ``"200"`` or ``"200-399"``, comma separated), ``"rstatus"``
    (``expect_status`` is a regex matched against the status code),
    ``"string"`` (``expect_string`` must appear in the body) or ``"rstring"``.
    ``expect_negate`` is True for ``expect ! ...``.
    """

    method: str = "OPTIONS"
    uri: str = "/"
    version: str = "HTTP/1.0"
    headers: Tuple[Tuple[str, str], ...] = ()
    body: str = ""
    expect_status: Optional[str] = None
    expect_kind: Optional[str] = None
    expect_string: Optional[str] = None
    expect_negate: bool = False
    line: int = 0


@dataclass(frozen=True)
class Server:
    """One ``server`` line of a backend, defaults from ``default-server`` applied."""

    name: str
    host: str
    port: int
    line: int = 0
    check: bool = False
    inter: float = 2.0
    fastinter: Optional[float] = None
    downinter: Optional[float] = None
    rise: int = 2
    fall: int = 3
    weight: int = 1
    maxconn: int = 0                 # 0 = unlimited
    disabled: bool = False
    backup: bool = False
    check_port: Optional[int] = None
    check_addr: Optional[str] = None
    pool_max_conn: int = -1          # -1 = unlimited (HAProxy's default)
    pool_purge_delay: float = 5.0
    max_reuse: int = -1              # -1 = unlimited
    pool_idle_timeout: Optional[float] = None   # keepwarm extension
    pool_warm_conn: int = 0                     # keepwarm extension


@dataclass(frozen=True)
class Backend:
    """A ``backend`` section (or the server side of a ``listen``).

    ``timeout_queue`` holds the effective value (HAProxy falls back to
    ``timeout connect``); ``timeout_check`` and ``timeout_tunnel`` hold what
    was written (None = not set: checks then use ``inter``, tunnels the
    client/server timeouts).  Exactly one of ``http_keep_alive``,
    ``http_server_close``, ``httpclose`` is True: the backend's HTTP mode.
    """

    name: str
    line: int = 0
    servers: Tuple[Server, ...] = ()
    balance: str = "roundrobin"
    http_reuse: str = "safe"
    httpchk: Optional[HttpCheck] = None
    timeout_connect: Optional[float] = None
    timeout_server: Optional[float] = None
    timeout_queue: Optional[float] = None
    timeout_tunnel: Optional[float] = None
    timeout_check: Optional[float] = None
    retries: int = 3
    redispatch: bool = False
    redispatch_interval: int = -1    # option redispatch <n>: -1 = on the last retry
    http_server_close: bool = False
    httpclose: bool = False
    http_keep_alive: bool = True

    def server(self, name: str) -> Server:
        for srv in self.servers:
            if srv.name == name:
                return srv
        raise KeyError(name)


@dataclass(frozen=True)
class Frontend:
    """A ``frontend`` section (or the client side of a ``listen``).

    Timeouts hold EFFECTIVE values: ``timeout_http_request`` falls back to
    ``timeout_client``; ``timeout_http_keep_alive`` to ``http-request``, then
    ``client`` (HAProxy's documented fallbacks).  ``maxconn`` is effective
    too: the global ``maxconn`` when the frontend sets none.
    """

    name: str
    line: int = 0
    binds: Tuple[Bind, ...] = ()
    default_backend: Optional[str] = None
    maxconn: int = 0
    timeout_client: Optional[float] = None
    timeout_http_request: Optional[float] = None
    timeout_http_keep_alive: Optional[float] = None
    http_server_close: bool = False
    httpclose: bool = False
    http_keep_alive: bool = True


@dataclass(frozen=True)
class Global:
    """The ``global`` section."""

    maxconn: int = 4096
    workers: Optional[int] = None    # from nbproc/nbthread; None = CPU count
    stats_socket: Optional[str] = None


@dataclass(frozen=True)
class Config:
    """A whole configuration file, validated."""

    path: str
    global_: Global = field(default_factory=Global)
    frontends: Tuple[Frontend, ...] = ()
    backends: Tuple[Backend, ...] = ()
    warnings: Tuple[str, ...] = ()

    def backend(self, name: str) -> Backend:
        for be in self.backends:
            if be.name == name:
                return be
        raise KeyError(name)

    def frontend(self, name: str) -> Frontend:
        for fe in self.frontends:
            if fe.name == name:
                return fe
        raise KeyError(name)
