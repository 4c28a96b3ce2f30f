"""The ``global`` section: process management, privileges, limits, identity, tunes.

Each keyword HAProxy 2.6 has is either read into ``model.Global`` (and used by
the master, the workers or a later feature), accepted with a warning where
HAProxy itself treats it as a pure tuning hint with no effect keepwarm could
have, or refused with file:line and a hint. None is accepted silently.
"""

from __future__ import annotations

import difflib
import grp
import pwd
import re
import socket
from typing import Dict, List, Optional, Tuple

from proxy.tls import TLSConfigError, parse_bind_tls
from proxy.tls.server import parse_server_tls

from . import keywords
from .addresses import AddressError, parse_bind_address
from .logs import LogConfigError, parse_target
from .model import Global, LogTarget, StatsSocket
from .values import Ctx, int_arg, no_args, time_arg

MAX_WORKERS = 64    # HAProxy 2.6's MAX_THREADS: nbthread/nbproc above it are refused
MAX_CPUS = 64       # cpu-map: CPU numbers and worker numbers within a 64-bit mask

# Keywords with no effect keepwarm could have: a warning says why (HAProxy treats
# these as tuning hints too), never silence.
HINTS = {
    "tune.idle-pool.shared": "keepwarm's workers are processes: each keeps its own idle "
                             "pool, as with 'tune.idle-pool.shared off'",
    "noepoll": "keepwarm always uses epoll on Linux",
    "nosplice": "keepwarm never splices",
    "busy-polling": "keepwarm's workers sleep in epoll_wait",
}

SSL_DEFAULTS = ("ssl-default-bind-ciphers", "ssl-default-bind-ciphersuites",
                "ssl-default-bind-curves", "ssl-default-bind-options",
                "ssl-default-bind-sigalgs", "ssl-default-bind-client-sigalgs",
                "ssl-default-server-ciphers", "ssl-default-server-ciphersuites",
                "ssl-default-server-curves", "ssl-default-server-options",
                "ssl-default-server-sigalgs", "ssl-default-server-client-sigalgs",
                "ssl-server-verify")

STATS_LEVELS = ("user", "operator", "admin")
# `stats socket` parameters: those with a value, and flags.
STATS_PARAMS = {"mode", "level", "uid", "gid", "user", "group", "maxconn", "name",
                "severity-output", "expose-fd", "process", "thread", "id", "backlog"}


def _user_id(name: str) -> Optional[int]:
    try:
        return pwd.getpwnam(name).pw_uid
    except KeyError:
        return None


def _group_id(name: str) -> Optional[int]:
    try:
        return grp.getgrnam(name).gr_gid
    except KeyError:
        return None


def _number_set(text: str, maximum: int, first: int) -> Tuple[int, ...]:
    """HAProxy's `all | odd | even | N[-[M]]` (numbers from `first` to `maximum`)."""
    if text == "all":
        return tuple(range(first, maximum + 1))
    if text in ("odd", "even"):
        start = 1 if text == "odd" else 2
        return tuple(n for n in range(start, maximum + 1, 2) if n >= first)
    m = re.fullmatch(r"([0-9]+)(-([0-9]*))?", text)
    if not m:
        raise ValueError("'%s' is not a number, a range N-M, 'all', 'odd' or 'even'" % text)
    low = int(m.group(1))
    high = low if m.group(2) is None else (int(m.group(3)) if m.group(3) else maximum)
    if low < first or high > maximum or low > high:
        raise ValueError("'%s' is outside %d-%d" % (text, first, maximum))
    return tuple(range(low, high + 1))


class GlobalSection:
    """The global section being read; `build()` makes the frozen model."""

    def __init__(self, ctx: Ctx, env: Dict[str, str]):
        self.ctx = ctx
        self.env = env                  # setenv & co change what later lines expand
        self.v: Dict[str, object] = {}
        self.set_at: Dict[str, int] = {}
        self.ssl: List[Tuple[str, Tuple[str, ...]]] = []
        self.sockets: List[StatsSocket] = []
        self.cpu_map: List[Tuple[Tuple[int, ...], Tuple[int, ...]]] = []
        self.log_targets: List[LogTarget] = []

    # ------------------------------------------------------------ reading

    def keyword(self, lineno: int, words: List[str], modifier) -> None:
        kw, args = words[0], words[1:]
        ctx = self.ctx
        if kw == "log":
            self.kw_log(lineno, args, modifier)
            return
        if modifier:
            raise ctx.error(lineno, "negation/default is not supported for '%s'" % kw)
        if kw in keywords.SEED_HINTS:
            raise ctx.error(lineno, "unknown keyword '%s' in 'global' section" % kw,
                            keywords.SEED_HINTS[kw])
        handler = _HANDLERS.get(kw)
        if handler is not None:
            handler(self, lineno, kw, args)
            return
        if kw in SSL_DEFAULTS:
            if not args:
                raise ctx.error(lineno, "'%s' expects an argument" % kw)
            try:                         # checked here, where a mistake is
                if kw.startswith("ssl-default-bind-"):
                    parse_bind_tls(["crt", "-"], ((kw, tuple(args)),))
                elif kw.startswith("ssl-default-server-"):
                    parse_server_tls(["ssl", "verify", "none"], ((kw, tuple(args)),))
            except TLSConfigError as exc:
                raise ctx.error(lineno, exc.message, exc.hint) from None
            self.ssl.append((kw, tuple(args)))
            return
        if kw in HINTS:
            ctx.warn(lineno, "'%s' has no effect in keepwarm: %s" % (kw, HINTS[kw]))
            return
        known = sorted(set(_HANDLERS) | set(SSL_DEFAULTS) | set(HINTS) | {"log"})
        if kw in keywords.GLOBAL or kw.startswith(keywords.GLOBAL_PREFIXES):
            raise ctx.error(lineno, "'%s' is not supported by keepwarm (yet) in 'global' "
                            "section" % kw, keywords.UNSUPPORTED_HINT)
        close = difflib.get_close_matches(kw, known, n=1, cutoff=0.6)
        raise ctx.error(lineno, "unknown keyword '%s' in 'global' section" % kw,
                        "did you mean '%s'?" % close[0] if close else None)

    def once(self, lineno: int, key: str, value) -> None:
        """Set `key`; a second occurrence overrides the first, with a warning."""
        if key in self.set_at:
            self.ctx.warn(lineno, "'%s' already specified at line %d; this one applies"
                          % (key.replace("_", "-"), self.set_at[key]))
        self.set_at[key] = lineno
        self.v[key] = value

    def one_word(self, lineno: int, kw: str, args: List[str]) -> str:
        if len(args) != 1:
            raise self.ctx.error(lineno, "'%s' expects exactly one argument" % kw)
        return args[0]

    def kw_flag(self, lineno, kw, args):
        if kw == "master-worker" and args == ["no-exit-on-failure"]:
            args = []
        no_args(self.ctx, lineno, kw, args)
        self.v[kw.replace("-", "_")] = True

    def kw_text(self, lineno, kw, args):
        if not args:
            raise self.ctx.error(lineno, "'%s' expects an argument" % kw)
        self.once(lineno, kw.replace("-", "_"), " ".join(args) if kw == "description"
                  else self.one_word(lineno, kw, args))

    def kw_int(self, lineno, kw, args):
        limits = {"maxconn": (1, None), "ulimit-n": (1, None), "mworker-max-reloads": (0, None),
                  "spread-checks": (0, 50), "tune.bufsize": (1024, 1 << 24),
                  "tune.maxrewrite": (0, 1 << 24), "tune.http.maxhdr": (1, 32767)}
        low, high = limits[kw]
        # HAProxy reads maxconn and ulimit-n with atol(): trailing characters are ignored
        value = int_arg(self.ctx, lineno, kw, args, minimum=low, maximum=high,
                        lenient=kw in ("maxconn", "ulimit-n"))
        key = {"tune.bufsize": "bufsize", "tune.maxrewrite": "maxrewrite",
               "tune.http.maxhdr": "max_headers"}.get(kw, kw.replace("-", "_"))
        self.once(lineno, key, value)

    def kw_time(self, lineno, kw, args):
        raw = self.one_word(lineno, kw, args)
        self.once(lineno, kw.replace("-", "_"), time_arg(self.ctx, lineno, kw, raw))

    def kw_workers(self, lineno, kw, args):
        ctx = self.ctx
        n = int_arg(ctx, lineno, kw, args, minimum=1, maximum=MAX_WORKERS)
        if kw == "nbproc":
            ctx.warn(lineno, "'nbproc' was removed in HAProxy 2.5; keepwarm reads it as "
                     "the number of worker processes (prefer 'nbthread')")
        other = "nbthread" if kw == "nbproc" else "nbproc"
        if other in self.set_at and self.v.get("workers") != n:
            ctx.warn(lineno, "'%s %d' overrides '%s %s' set at line %d"
                     % (kw, n, other, self.v.get("workers"), self.set_at[other]))
        self.v["workers"] = n
        self.set_at[kw] = lineno

    def kw_user(self, lineno, kw, args):
        ctx = self.ctx
        word = self.one_word(lineno, kw, args)
        if kw in ("uid", "gid"):
            value = int_arg(ctx, lineno, kw, args, minimum=0)
        else:
            value = _user_id(word) if kw == "user" else _group_id(word)
            if value is None:
                raise ctx.error(lineno, "cannot find %s id for '%s'"
                                % ("user" if kw == "user" else "group", word),
                                "create it, or name an existing one (e.g. 'nobody')")
        self.once(lineno, "uid" if kw in ("user", "uid") else "gid", value)

    def kw_cpu_map(self, lineno, kw, args):
        """cpu-map [auto:]<process-set>[/<thread-set>] <cpu-set>...: keepwarm's workers
        are HAProxy's threads (process 1 is the only process)."""
        ctx = self.ctx
        if len(args) < 2:
            raise ctx.error(lineno, "'cpu-map' expects a process/thread set and a CPU set",
                            "e.g. 'cpu-map 1/all 0-3' or 'cpu-map auto:1/1-4 0-3'")
        spec, auto = args[0], False
        if spec.startswith("auto:"):
            spec, auto = spec[5:], True
        proc, _, threads = spec.partition("/")
        try:
            procs = _number_set(proc, MAX_CPUS, 1)
            if 1 not in procs:
                raise ValueError("process set '%s' does not contain process 1, the only "
                                 "one" % proc)
            workers = _number_set(threads or "all", MAX_WORKERS, 1)
            cpus = tuple(sorted({c for a in args[1:] for c in _number_set(a, MAX_CPUS - 1, 0)}))
        except ValueError as exc:
            raise ctx.error(lineno, "'cpu-map %s': %s" % (" ".join(args), exc),
                            "sets are N, N-M, N-, all, odd or even") from None
        if auto:
            if len(workers) != len(cpus):
                raise ctx.error(lineno, "'cpu-map auto:' needs as many CPUs as workers "
                                "(%d workers, %d CPUs)" % (len(workers), len(cpus)))
            self.cpu_map.extend(((w,), (c,)) for w, c in zip(workers, cpus))
        else:
            self.cpu_map.append((workers, cpus))

    def kw_stats(self, lineno, kw, args):
        ctx = self.ctx
        sub = args[0] if args else ""
        if sub == "timeout":
            self.kw_time(lineno, "stats-timeout", args[1:])
            return
        if sub == "maxconn":
            self.once(lineno, "stats_maxconn",
                      int_arg(ctx, lineno, "stats maxconn", args[1:], minimum=1))
            return
        if sub == "bind-process":
            ctx.warn(lineno, "'stats bind-process' has no effect: the master answers the "
                     "runtime API")
            return
        if sub != "socket":
            raise ctx.error(lineno, "'stats' in 'global' section expects 'socket', "
                            "'timeout', 'maxconn' or 'bind-process' (got '%s')" % sub)
        self.stats_socket(lineno, args[1:])

    def stats_socket(self, lineno: int, args: List[str]) -> None:
        ctx = self.ctx
        if not args:
            raise ctx.error(lineno, "'stats socket' expects a path or an address",
                            "e.g. 'stats socket /run/keepwarm.sock mode 660 level admin'")
        where = args[0]
        path = host = None
        port = 0
        if where.startswith("unix@"):
            path = where[5:]
        elif where.startswith("/") or where.startswith("./"):
            path = where
        else:
            try:
                (host, port), = parse_bind_address(where)
            except (AddressError, ValueError) as exc:
                raise ctx.error(lineno, "'stats socket %s': %s" % (where, exc),
                                "a UNIX socket path or one ADDR:PORT") from None
        fields: Dict[str, object] = {}
        i = 1
        while i < len(args):
            name = args[i]
            if name not in STATS_PARAMS:
                raise ctx.error(lineno, "unknown parameter '%s' on 'stats socket'" % name,
                                "keepwarm knows: %s" % ", ".join(sorted(STATS_PARAMS)))
            if i + 1 >= len(args):
                raise ctx.error(lineno, "'stats socket' parameter '%s' expects a value" % name)
            value = args[i + 1]
            i += 2
            if name == "mode":
                if not re.fullmatch(r"[0-7]{1,4}", value):
                    raise ctx.error(lineno, "'mode' expects an octal file mode (got '%s')"
                                    % value, "e.g. 'mode 660'")
                fields["mode"] = int(value, 8)
            elif name == "level":
                if value not in STATS_LEVELS:
                    raise ctx.error(lineno, "'level' expects user, operator or admin "
                                    "(got '%s')" % value)
                fields["level"] = value
            elif name in ("uid", "gid"):
                fields[name] = int_arg(ctx, lineno, name, [value], minimum=0)
            elif name in ("user", "group"):
                ident = _user_id(value) if name == "user" else _group_id(value)
                if ident is None:
                    raise ctx.error(lineno, "cannot find %s id for '%s'" % (name, value))
                fields["uid" if name == "user" else "gid"] = ident
            elif name == "expose-fd" and value != "listeners":
                raise ctx.error(lineno, "'expose-fd' expects 'listeners' (got '%s')" % value)
            # maxconn, name, severity-output, process, thread, id, backlog,
            # expose-fd listeners: accepted (the runtime API issue uses what matters)
        self.sockets.append(StatsSocket(path=path, host=host, port=port, line=lineno, **fields))

    def kw_path(self, lineno, kw, args):
        self.once(lineno, kw.replace("-", "_"), self.one_word(lineno, kw, args))

    def kw_env(self, lineno, kw, args):
        """setenv/presetenv NAME VALUE, unsetenv NAME..., resetenv [NAME...]: change
        the environment that later lines (and the workers) see, as HAProxy does."""
        ctx = self.ctx
        env = self.env
        if kw in ("setenv", "presetenv"):
            if len(args) != 2:
                raise ctx.error(lineno, "'%s' expects a name and a value" % kw,
                                "quote the value if it contains spaces")
            if kw == "setenv" or args[0] not in env:
                env[args[0]] = args[1]
        elif kw == "unsetenv":
            if not args:
                raise ctx.error(lineno, "'unsetenv' expects at least one variable name")
            for name in args:
                env.pop(name, None)
        else:
            keep = set(args)
            for name in [n for n in env if n not in keep]:
                del env[name]

    def kw_log(self, lineno, args, modifier):
        """log TARGET [len N] [format F] [sample R:S] FACILITY [LEVEL [MINLEVEL]],
        or `no log` (proxy/config/logging.py)."""
        ctx = self.ctx
        try:
            if modifier == "no":
                if args:
                    raise LogConfigError("'no log' does not expect arguments")
                self.log_targets = []
            elif args == ["global"]:
                raise LogConfigError("'global' is not supported for a global syslog server")
            else:
                self.log_targets.append(parse_target(args, lineno))
        except LogConfigError as exc:
            raise ctx.error(lineno, "log : %s" % exc.message, exc.hint) from None

    def kw_log_meta(self, lineno, kw, args):
        """log-tag TAG; log-send-hostname [NAME] (the system's host name without one)."""
        if kw == "log-tag":
            self.once(lineno, "log_tag", self.one_word(lineno, kw, args))
        else:
            if len(args) > 1:
                raise self.ctx.error(lineno, "'%s' expects at most one argument" % kw)
            self.once(lineno, "log_send_hostname", args[0] if args else socket.gethostname())

    def kw_dh(self, lineno, kw, args):
        self.once(lineno, "ssl_default_dh_param",
                  int_arg(self.ctx, lineno, kw, args, minimum=1024))
        self.ctx.warn(lineno, "'%s' has no effect in keepwarm: DHE ciphers use the "
                      "parameters of 'ssl-dh-param-file', and are not offered without it "
                      "(the ECDHE ones are)" % kw)

    # ------------------------------------------------------------ the model

    def build(self) -> Global:
        v = self.v
        socks = tuple(self.sockets)
        unix = next((s.path for s in socks if s.path), None)
        bufsize = v.get("bufsize", 16384)
        maxrewrite = v.get("maxrewrite", 1024)
        if maxrewrite > bufsize // 2:
            maxrewrite = bufsize // 2          # HAProxy readjusts it the same way
        return Global(
            maxconn=v.get("maxconn", 4096), maxconn_set="maxconn" in v,
            workers=v.get("workers"), stats_socket=unix, stats_sockets=socks,
            stats_timeout=v.get("stats_timeout", 10.0), stats_maxconn=v.get("stats_maxconn", 10),
            daemon=bool(v.get("daemon")), master_worker=bool(v.get("master_worker")),
            pidfile=v.get("pidfile"), uid=v.get("uid"), gid=v.get("gid"),
            chroot=v.get("chroot"), ulimit_n=v.get("ulimit_n"), cpu_map=tuple(self.cpu_map),
            hard_stop_after=v.get("hard_stop_after"), grace=v.get("grace"),
            spread_checks=v.get("spread_checks", 0),
            max_spread_checks=v.get("max_spread_checks"),
            mworker_max_reloads=v.get("mworker_max_reloads"),
            set_dumpable=bool(v.get("set_dumpable")),
            description=v.get("description"), node=v.get("node"), hostname=v.get("hostname"),
            localpeer=v.get("localpeer"), ca_base=v.get("ca_base"), crt_base=v.get("crt_base"),
            ssl_defaults=tuple(self.ssl), ssl_dh_param_file=v.get("ssl_dh_param_file"),
            ssl_default_dh_param=v.get("ssl_default_dh_param"),
            ticket_key_rotation=v.get("tune.ssl.ticket_key_rotation", 3600.0),
            bufsize=bufsize, maxrewrite=maxrewrite, max_headers=v.get("max_headers", 101),
            log_targets=tuple(self.log_targets), log_tag=v.get("log_tag"),
            log_send_hostname=v.get("log_send_hostname"))


_HANDLERS = {
    "maxconn": GlobalSection.kw_int, "ulimit-n": GlobalSection.kw_int,
    "mworker-max-reloads": GlobalSection.kw_int, "spread-checks": GlobalSection.kw_int,
    "tune.bufsize": GlobalSection.kw_int, "tune.maxrewrite": GlobalSection.kw_int,
    "tune.http.maxhdr": GlobalSection.kw_int,
    "nbproc": GlobalSection.kw_workers, "nbthread": GlobalSection.kw_workers,
    "daemon": GlobalSection.kw_flag, "master-worker": GlobalSection.kw_flag,
    "set-dumpable": GlobalSection.kw_flag,
    "pidfile": GlobalSection.kw_path, "chroot": GlobalSection.kw_path,
    "ca-base": GlobalSection.kw_path, "crt-base": GlobalSection.kw_path,
    "ssl-dh-param-file": GlobalSection.kw_path,
    "user": GlobalSection.kw_user, "uid": GlobalSection.kw_user,
    "group": GlobalSection.kw_user, "gid": GlobalSection.kw_user,
    "cpu-map": GlobalSection.kw_cpu_map,
    "hard-stop-after": GlobalSection.kw_time, "grace": GlobalSection.kw_time,
    "max-spread-checks": GlobalSection.kw_time,
    "tune.ssl.ticket-key-rotation": GlobalSection.kw_time,
    "stats": GlobalSection.kw_stats,
    "description": GlobalSection.kw_text, "node": GlobalSection.kw_text,
    "hostname": GlobalSection.kw_text, "localpeer": GlobalSection.kw_text,
    "setenv": GlobalSection.kw_env, "presetenv": GlobalSection.kw_env,
    "unsetenv": GlobalSection.kw_env, "resetenv": GlobalSection.kw_env,
    "tune.ssl.default-dh-param": GlobalSection.kw_dh,
    "log-tag": GlobalSection.kw_log_meta, "log-send-hostname": GlobalSection.kw_log_meta,
}
