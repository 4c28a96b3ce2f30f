"""The validated, immutable configuration model that the parser produces.

Every time is in seconds as a float; ``None`` means "not set", which HAProxy
treats as infinite.  Nothing on the data path reads config text: it reads these
frozen dataclasses.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import FrozenSet, Optional, Tuple, Union

Network = Union[ipaddress.IPv4Network, ipaddress.IPv6Network]
# One http-request/http-response header rule: (action, name, value).  action is
# "set-header", "add-header" or "del-header"; value is None for del-header.
HeaderRule = Tuple[str, str, Optional[str]]

# HAProxy's default "retry-on": only connection failures are retried.
DEFAULT_RETRY_ON: FrozenSet[str] = frozenset(("conn-failure",))


@dataclass(frozen=True)
class Bind:
    """One listening address of a frontend (``bind ADDR:PORT [defer-accept]``)."""

    host: str
    port: int
    line: int = 0
    defer_accept: bool = False
    path: Optional[str] = None       # a UNIX socket (`bind unix@/run/x.sock`): host/port unused
    tls: Optional[object] = None     # `ssl crt ...`: a proxy.tls.BindTLS

    @property
    def label(self) -> str:
        return "unix@" + self.path if self.path else "%s:%d" % (self.host, self.port)


@dataclass(frozen=True)
class ForwardFor:
    """``option forwardfor [except NET] [header NAME] [if-none]``.

    ``except_nets``: client addresses in these networks get no header.
    ``if_none``: add the header only when the request does not carry one.
    """

    header: str = "X-Forwarded-For"
    except_nets: Tuple[Network, ...] = ()
    if_none: bool = False

    def excepted(self, addr: str) -> bool:
        """True when the client address ``addr`` (text) is in an ``except`` network."""
        if not self.except_nets:
            return False
        try:
            ip = ipaddress.ip_address(addr)
        except ValueError:
            return False
        return any(ip in net for net in self.except_nets)

    @staticmethod
    def combine(frontend: Optional["ForwardFor"],
                backend: Optional["ForwardFor"]) -> Optional["ForwardFor"]:
        """What a request through ``frontend`` to ``backend`` gets, as HAProxy does it.

        The header is added if either side asks for it; the backend's header
        name wins; an address excepted by either side gets none; ``if-none``
        holds only if every side that asks says so.
        """
        sides = [ff for ff in (frontend, backend) if ff is not None]
        if not sides:
            return None
        if len(sides) == 1:
            return sides[0]
        return ForwardFor(header=backend.header,
                          except_nets=frontend.except_nets + backend.except_nets,
                          if_none=frontend.if_none and backend.if_none)


@dataclass(frozen=True)
class BalanceArgs:
    """The arguments of the ``balance`` algorithm (only those it takes matter).

    ``uri``: ``whole`` (hash the query string too), ``path_only`` (drop
    scheme and authority of an absolute URI), ``len`` (hash at most this many
    characters, 0 = all), ``depth`` (hash at most this many directories,
    0 = all).  ``hdr(NAME)``: ``hdr`` and ``use_domain_only``.
    ``random(N)``: ``draws``.
    """

    hdr: Optional[str] = None
    use_domain_only: bool = False
    whole: bool = False
    path_only: bool = False
    len: int = 0
    depth: int = 0
    draws: int = 2


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
class LogTarget:
    """One ``log`` line: where lines go and how (proxy/config/logging.py).

    ``kind``: "unix" (``path``: a UNIX datagram socket such as /dev/log), "udp"
    (``host``, ``port``, ``family``) or "fd" (``fd``: 1 for stdout, 2 for stderr).
    ``format`` None is HAProxy's default: "local" ("rfc3164" with
    log-send-hostname). ``level``: the least severe level sent (7, debug: all);
    ``minlevel``: more severe lines are sent at this level (0, emerg: unchanged).
    ``sample``: ((low, high) ranges numbered from 1, period) or None.
    """

    address: str
    kind: str
    path: Optional[str] = None
    host: Optional[str] = None
    port: int = 514
    family: int = 2                  # socket.AF_INET
    fd: int = -1
    maxlen: int = 1024
    format: Optional[str] = None
    sample: Optional[Tuple[Tuple[Tuple[int, int], ...], int]] = None
    facility: int = 16               # local0
    level: int = 7
    minlevel: int = 0
    line: int = field(default=0, compare=False)


@dataclass(frozen=True)
class Capture:
    """``capture request|response header NAME len N`` (``name`` None: a slot of
    ``declare capture``, filled by ``http-request capture ... id N``)."""

    name: Optional[str]
    length: int


@dataclass(frozen=True)
class ProxyLog:
    """What a proxy logs and how (written by workers/txlog.py).

    ``format``: the log-format string (``option httplog`` sets HAProxy's own,
    ``format_from`` names the option); None: HAProxy's default connection log.
    """

    targets: Tuple[LogTarget, ...] = ()
    tag: Optional[str] = None
    format: Optional[str] = None
    format_from: Optional[str] = None
    format_sd: Optional[str] = None
    error_format: Optional[str] = None
    dontlognull: bool = False
    dontlog_normal: bool = False
    log_separate_errors: bool = False
    log_health_checks: bool = False
    logasap: bool = False
    req_captures: Tuple[Capture, ...] = ()
    res_captures: Tuple[Capture, ...] = ()
    unique_id_format: Optional[str] = None
    unique_id_header: Optional[str] = None


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
    slowstart: float = 0.0           # seconds; 0 = none
    maxqueue: int = 0                # 0 = unlimited
    observe: Optional[str] = None    # None, "layer4" or "layer7"
    error_limit: int = 10
    on_error: str = "fail-check"     # fastinter | fail-check | sudden-death | mark-down
    on_marked_down: Optional[str] = None   # "shutdown-sessions"
    on_marked_up: Optional[str] = None     # "shutdown-backup-sessions"
    tls: Optional[object] = None           # `ssl ...`: a proxy.tls.server.ServerTLS


@dataclass(frozen=True)
class Backend:
    """A ``backend`` section (or the server side of a ``listen``).

    ``timeout_queue`` holds the effective value (HAProxy falls back to
    ``timeout connect``); ``timeout_check`` and ``timeout_tunnel`` hold what
    was written (None = not set: checks then use ``inter``, tunnels the
    client/server timeouts).  Exactly one of ``http_keep_alive``,
    ``http_server_close``, ``httpclose`` is True: the backend's HTTP mode.

    ``balance`` names the algorithm (``roundrobin``, ``static-rr``,
    ``leastconn``, ``first``, ``source``, ``uri``, ``hdr``, ``random``) and
    ``balance_args`` its arguments.  ``retry_on`` holds HAProxy's keywords
    with ``all-retryable-errors`` expanded and ``none`` as the empty set;
    status codes are strings ("503").  ``request_rules`` run in order,
    after the frontend's; ``response_rules`` run before the frontend's.
    """

    name: str
    line: int = 0
    servers: Tuple[Server, ...] = ()
    balance: str = "roundrobin"
    balance_args: BalanceArgs = BalanceArgs()
    hash_type: str = "map-based"     # or "consistent"
    hash_function: str = "sdbm"      # sdbm | djb2 | wt6 | crc32
    hash_avalanche: bool = False
    allbackups: bool = False
    retry_on: FrozenSet[str] = DEFAULT_RETRY_ON
    forwardfor: Optional[ForwardFor] = None
    originalto: Optional[ForwardFor] = None     # option originalto: X-Original-To
    request_rules: Tuple[HeaderRule, ...] = ()
    response_rules: Tuple[HeaderRule, ...] = ()
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
    errorfiles: Tuple[Tuple[int, bytes], ...] = ()   # errorfile CODE FILE: (code, response)
    # a backend section's http-request rules as actions, in order (after use_backend;
    # only when one of them is more than a header rule: then request_rules is empty)
    request_actions: Tuple[Tuple[object, object], ...] = field(default=(), compare=False)
    # http-response rules as actions (the same), run before the frontend's
    response_actions: Tuple[Tuple[object, object], ...] = field(default=(), compare=False)
    timeout_tarpit: Optional[float] = None    # effective: timeout tarpit, else connect
    log: ProxyLog = ProxyLog()                # logging (workers/txlog.py)

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
    forwardfor: Optional[ForwardFor] = None
    originalto: Optional[ForwardFor] = None     # option originalto: X-Original-To
    request_rules: Tuple[HeaderRule, ...] = ()
    response_rules: Tuple[HeaderRule, ...] = ()
    http_server_close: bool = False
    httpclose: bool = False
    http_keep_alive: bool = True
    # option http-ignore-probes: a connection that sent nothing is closed silently
    # at `timeout http-request` (no 408, nothing counted)
    ignore_probes: bool = False
    # option idle-close-on-response: at a graceful stop (reload), idle keep-alive
    # connections wait for one more request, answered with Connection: close
    idle_close_on_response: bool = False
    errorfiles: Tuple[Tuple[int, bytes], ...] = ()   # errorfile CODE FILE: (code, response)
    # use_backend rules (proxy.rules.routing.Routes, compiled at load), None without any;
    # the worker compiles them against its backends (Routes.compile)
    routes: Optional[object] = field(default=None, compare=False)
    # http-request rules as ((condition or None, action), ...) in order
    # (proxy/config/http_actions.py), evaluated before use_backend; header rules are
    # among them only when another kind of rule is (else they are request_rules)
    request_actions: Tuple[Tuple[object, object], ...] = field(default=(), compare=False)
    response_actions: Tuple[Tuple[object, object], ...] = field(default=(), compare=False)
    timeout_tarpit: Optional[float] = None    # effective: timeout tarpit, else connect
    log: ProxyLog = ProxyLog()                # logging (workers/txlog.py)


@dataclass(frozen=True)
class StatsSocket:
    """``stats socket ADDR [mode OCTAL] [level user|operator|admin] [uid N] [gid N]
    [user NAME] [group NAME] ...``: the runtime API's address (a UNIX path, or
    ``host``/``port`` for a TCP one) and who may use it."""

    path: Optional[str] = None       # a UNIX socket path
    host: Optional[str] = None       # a TCP socket (ipv4@/ipv6@/ADDR:PORT)
    port: int = 0
    mode: Optional[int] = None       # file mode of the UNIX socket
    level: str = "admin"             # HAProxy's default on a stats socket
    uid: Optional[int] = None        # owner of the UNIX socket
    gid: Optional[int] = None
    line: int = 0


@dataclass(frozen=True)
class Global:
    """The ``global`` section. Times in seconds; None: not set."""

    maxconn: int = 4096
    maxconn_set: bool = False        # written in the file (else ulimit-n sizes it, as HAProxy)
    workers: Optional[int] = None    # from nbproc/nbthread; None = CPU count
    stats_socket: Optional[str] = None       # the UNIX path of `stats socket` (None: TCP or none)
    stats_sockets: Tuple[StatsSocket, ...] = ()
    stats_timeout: float = 10.0      # an idle runtime API connection is closed after this
    stats_maxconn: int = 10          # runtime API connections at once
    # process management (HAProxy's master-worker mode)
    daemon: bool = False
    master_worker: bool = False
    pidfile: Optional[str] = None
    uid: Optional[int] = None        # user/uid: the identity after setup
    gid: Optional[int] = None        # group/gid
    chroot: Optional[str] = None
    ulimit_n: Optional[int] = None   # None: computed from maxconn
    cpu_map: Tuple[Tuple[Tuple[int, ...], Tuple[int, ...]], ...] = ()   # (workers 1-based, cpus)
    hard_stop_after: Optional[float] = None
    grace: Optional[float] = None
    spread_checks: int = 0           # percent of random spread on health-check intervals
    max_spread_checks: Optional[float] = None
    mworker_max_reloads: Optional[int] = None
    set_dumpable: bool = False
    # identity, shown by `show info` and the stats page
    description: Optional[str] = None
    node: Optional[str] = None
    hostname: Optional[str] = None
    localpeer: Optional[str] = None
    # logging: the targets that `log global` copies; tag and host of every line
    log_targets: Tuple[LogTarget, ...] = ()
    log_tag: Optional[str] = None            # None: "haproxy", HAProxy's program name
    log_send_hostname: Optional[str] = None  # the host in rfc3164/rfc5424 headers
    # TLS
    ticket_key_rotation: float = 3600.0   # keepwarm's tune.ssl.ticket-key-rotation (0: never)
    ca_base: Optional[str] = None
    crt_base: Optional[str] = None
    ssl_defaults: Tuple[Tuple[str, Tuple[str, ...]], ...] = ()   # ssl-default-* keyword, words
    ssl_dh_param_file: Optional[str] = None
    ssl_default_dh_param: Optional[int] = None
    # buffers and limits of the HTTP parser
    bufsize: int = 16384             # tune.bufsize: the largest request or response head
    maxrewrite: int = 1024           # tune.maxrewrite: room kept for header rewrites
    max_headers: int = 101           # tune.http.maxhdr


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
