"""Read configuration lines into the validated model, with HAProxy 2.6 semantics.

Sections are read in order into mutable ``_Proxy`` builders; a proxy starts as
a copy of the latest ``defaults``.  After the last line, cross-references are
checked (default_backend, names) and frozen model objects are built.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import re
from typing import Callable, Dict, List, Mapping, Optional, Tuple

from . import checks, errorfiles, keywords
from .http_rules import RuleError, parse_forwardfor, parse_header_rule
from .lb import LbError, parse_balance, parse_hash_type, parse_retry_on
from .binds import BindError, bind_options
from .stats_section import StatsError, StatsPage, stats_action, stats_keyword
from proxy.tls import TLSConfigError, tickets
from proxy.tls.server import client_context, parse_server_tls
from .addresses import AddressError, parse_bind_address, parse_server_address, unix_bind_path
from proxy.rules import (Acls, Ctx as RuleCtx, RuleError as RulesError, compile_condition,
                         compile_logformat, compile_sample)
from proxy.rules.acl import any_of
from proxy.rules import refs as map_refs
from proxy.rules.routing import Routes

from .http_actions import ACTIONS, DynamicRule, compile_action, monitor_action
from .http_edits import header_step, is_edit

from .errors import ConfigError, ConfigErrors
from .global_section import GlobalSection
from . import logs
from .lexer import Line, decimal, tokenize
from .model import (DEFAULT_RETRY_ON, BalanceArgs, Backend, Bind, Capture, Config, Frontend,
                    Global, HttpCheck, ProxyLog, Server)
from .servers import server_options
from .userlist import UserlistError, Userlists, UserlistSection
from .values import Ctx as _Ctx, int_arg as _int, time_arg as _time

# HTTP connection modes; one per proxy, each option replaces the others (HAProxy's
# PR_O_HTTP_MODE).  Keep-alive is the default since HAProxy 1.9/2.0.
KAL, SCL, CLO = "http-keep-alive", "http-server-close", "httpclose"

FE, BE = 1, 2
_CAP_NAMES = {FE: "frontend", BE: "backend"}
# `[no|default] option NAME` switches without a value, off by default:
# option name -> (the proxy value it sets, the side it applies to).
SWITCH_OPTIONS = {"allbackups": ("allbackups", BE), "http-ignore-probes": ("ignore_probes", FE),
                  "idle-close-on-response": ("idle_close_on_response", FE)}

SEED_HINTS = keywords.SEED_HINTS
UNSUPPORTED_HINT = keywords.UNSUPPORTED_HINT

_NAME_OK = re.compile(r"[A-Za-z0-9_.:-]+")
_INT = re.compile(r"-?[0-9]+")

_SERVER_DEFAULTS = {f.name: f.default for f in dataclasses.fields(Server)
                    if f.default is not dataclasses.MISSING and f.name != "line"}


class _Proxy:
    """A defaults, frontend, backend or listen section being read."""

    def __init__(self, kind: str, name: str, line: int, base: Optional["_Proxy"]):
        self.kind = kind
        self.name = name
        self.line = line
        self.cap = {"defaults": FE | BE, "frontend": FE, "backend": BE,
                    "listen": FE | BE}[kind]
        self.binds: List[Bind] = []
        self.servers: List[Server] = []
        self.server_lines: Dict[str, int] = {}
        self.set_here: Dict[str, int] = {}
        self.expect_here = False
        self.base = base
        self.file = ""
        self.acls = None                # proxy.rules.Acls, at the first `acl` line
        self.routes = None              # proxy.rules.Routes, at the first `use_backend`
        self.route_lines: List[Tuple[str, int]] = []   # fixed use_backend names, checked at the end
        # A defaults section with http-request/http-response rules may be used by
        # frontends or by backends, not both (HAProxy 2.5+); remember which.
        self.rules_used_by: Optional[str] = None
        if base is None:
            self.values: Dict[str, object] = {
                "default_backend": None, "maxconn": 0,
                "timeout_client": None, "timeout_http_request": None,
                "timeout_http_keep_alive": None, "timeout_connect": None,
                "timeout_server": None, "timeout_queue": None, "timeout_tunnel": None,
                "timeout_check": None, "balance": "roundrobin", "http_reuse": "safe",
                "retries": 3, "redispatch": False, "redispatch_interval": -1,
                "http_mode": KAL, "balance_args": BalanceArgs(), "hash_type": "map-based",
                "hash_function": "sdbm", "hash_avalanche": False, "allbackups": False,
                "retry_on": DEFAULT_RETRY_ON, "forwardfor": None, "originalto": None,
                "monitor_uri": None,
                "monitor_fail": [],
                "request_rules": (), "response_rules": (), "ignore_probes": False,
                "idle_close_on_response": False, "mode": None, "errorfiles": {},
                "request_actions": (), "response_actions": (), "request_engine": False,
                "response_engine": False, "timeout_tarpit": None, "log": ProxyLog(),
                "stats": None,
            }
            self.server_defaults = dict(_SERVER_DEFAULTS)
            self.check = checks.new_check()
        else:
            self.values = dict(base.values)
            self.values["errorfiles"] = dict(base.values["errorfiles"])
            self.server_defaults = dict(base.server_defaults)
            self.check = checks.copy_check(base.check)

    @property
    def has_rules(self) -> bool:
        return bool(self.values["request_rules"] or self.values["response_rules"])

    @property
    def label(self) -> str:
        return self.kind if self.kind == "defaults" and not self.name else \
            "%s %s" % (self.kind, self.name)


def parse_text(text: str, filename: str = "<string>",
               env: Optional[Mapping[str, str]] = None,
               require_final_lf: bool = False) -> Config:
    """Parse a whole configuration; raise ConfigErrors listing every mistake."""
    ctx = _Ctx(filename)
    # setenv & co change what later lines expand: a copy, so that parsing never
    # changes this process's environment (the master, a test run).
    env = dict(os.environ if env is None else env)
    before = map_refs.reset()            # the maps the runtime API sees: this file's
    try:
        return _Parser(ctx, env).run(tokenize(text, filename, env, warn=ctx.warn,
                                              require_final_lf=require_final_lf, strict=False))
    except BaseException:
        map_refs.restore(before)         # not loaded: the running configuration's stay
        raise


def parse_files(files, env: Optional[Mapping[str, str]] = None) -> Config:
    """Parse several files as one configuration, in order (HAProxy's `-f A -f B`):
    sections continue across files, each error names its own file."""
    ctx = _Ctx(files[0][0])
    env = dict(os.environ if env is None else env)

    def lines():
        for name, text in files:
            ctx.filename = name
            yield from tokenize(text, name, env, warn=ctx.warn, require_final_lf=True,
                                strict=False)
        ctx.filename = files[0][0]

    before = map_refs.reset()
    try:
        return _Parser(ctx, env).run(lines())
    except BaseException:
        map_refs.restore(before)
        raise


class _Parser:
    def __init__(self, ctx: _Ctx, env: Optional[Dict[str, str]] = None):
        self.ctx = ctx
        tickets.new_configuration()      # tls-ticket-keys files: read again, once each
        self.section: Optional[str] = None
        self.proxy: Optional[_Proxy] = None
        self.defaults = _Proxy("defaults", "", 0, None)
        self.named_defaults: Dict[str, _Proxy] = {}
        self.proxies: List[_Proxy] = []
        self.env = env if env is not None else {}
        self.global_ = GlobalSection(ctx, self.env)
        self.errors: List[ConfigError] = []
        self.userlists = Userlists()        # userlist sections, for http_auth & co
        self.userlist_sections: Dict[str, UserlistSection] = {}
        self.http_errors: Dict[str, Tuple[str, int, Dict[int, bytes]]] = {}   # http-errors
        self.list_section = None            # the userlist / http-errors being read
        self.error_seq = 0                  # orders errorfile/errorfiles/http-error lines
        self.capture_ids = []               # (proxy, line, keyword, side, id): checked at the end
        self.auth_groups: List[Tuple[str, int, str, List[str]]] = []   # checked at the end

    # ------------------------------------------------------------ driving

    def run(self, lines) -> Config:
        """Read every line, collecting every error (HAProxy reports them all), then
        check the whole; raise ConfigErrors if there was any."""
        errors = self.errors
        for line in lines:
            if isinstance(line, ConfigError):
                errors.append(line)         # a line the lexer could not read
                continue
            try:
                self.line(line)
            except ConfigError as exc:
                errors.append(exc)
            except (ValueError, RecursionError) as exc:
                # A number or a value no check above caught (decimal() refuses
                # what does not fit): still one located line, never a traceback.
                errors.append(self.ctx.error(line.number, str(exc) if isinstance(
                    exc, ValueError) else "line nested too deeply"))
        try:
            config = self.finish()
        except ConfigError as exc:
            errors.append(exc)
        if errors:
            raise ConfigErrors(errors)      # in the order found: lines first, then the whole
        return config

    def line(self, line: Line) -> None:
        words = list(line.words)
        head = words[0]
        self.userlists.where = (self.ctx.filename, line.number)
        if head in ("userlist", "http-errors"):
            self.start_list_section(line.number, head, words[1:])
            return
        if head in keywords.SECTIONS:
            self.start_section(line.number, head, words[1:])
            return
        if head in keywords.OTHER_SECTIONS:
            raise self.ctx.error(line.number, "section '%s' is not supported by keepwarm "
                                 "(yet)" % head, UNSUPPORTED_HINT)
        modifier = None
        if head in ("no", "default") and len(words) > 1:
            modifier, words = head, words[1:]
            if words[0] not in ("option", "log"):
                raise self.ctx.error(line.number, "negation/default currently supported "
                                     "only for options and log ('%s %s')"
                                     % (modifier, words[0]))
        if self.section is None:
            raise self.ctx.error(line.number, "unknown keyword '%s' out of section" % head,
                                 "start a section first: global, defaults, frontend NAME, "
                                 "backend NAME or listen NAME")
        if self.section in ("userlist", "http-errors"):
            self.list_keyword(line.number, words, modifier)
            return
        if self.section == "global":
            self.global_.keyword(line.number, words, modifier)
        else:
            self.proxy_keyword(line.number, words, modifier)

    def start_section(self, lineno: int, kind: str, args: List[str]) -> None:
        self.section = kind
        if kind == "global":
            if args:
                raise self.ctx.error(lineno, "'global' takes no argument (got '%s')" % args[0])
            self.proxy = None
            return
        name = args[0] if args else ""
        if kind != "defaults" and not name:
            raise self.ctx.error(lineno, "'%s' expects <name> as an argument" % kind,
                                 "e.g. '%s web'" % kind)
        if name and not _NAME_OK.fullmatch(name):
            bad = next(c for c in name if not _NAME_OK.fullmatch(c))
            raise self.ctx.error(lineno, "character '%s' is not permitted in '%s' name '%s'"
                                 % (bad, kind, name),
                                 "names use letters, digits, '-', '_', '.' and ':'")
        # "defaults" starts afresh (HAProxy resets all previous defaults)
        base = None if kind == "defaults" else self.defaults
        rest = args[1:]
        if rest[:1] == ["from"]:
            if len(rest) < 2:
                raise self.ctx.error(lineno, "'from' expects a defaults section name")
            if rest[1] not in self.named_defaults:
                raise self.ctx.error(lineno, "defaults section '%s' not found for %s '%s'"
                                     % (rest[1], kind, name),
                                     "a named defaults section must come before its users")
            base = self.named_defaults[rest[1]]
            rest = rest[2:]
        if rest:
            raise self.ctx.error(lineno, "unexpected argument '%s' after %s name '%s'"
                                 % (rest[0], kind, name),
                                 "addresses go on 'bind' lines" if kind != "defaults" else None)
        if base is not None and base.has_rules:
            self.check_rules_inheritance(lineno, kind, base)
        proxy = _Proxy(kind, name, lineno, base)
        proxy.file = self.ctx.filename      # several files (-f A -f B): where it was declared
        if kind == "defaults":
            self.defaults = proxy
            if name:
                self.named_defaults[name] = proxy
        else:
            self.proxies.append(proxy)
        self.proxy = proxy

    def check_rules_inheritance(self, lineno: int, kind: str, base: _Proxy) -> None:
        """HAProxy's limits on inheriting from a defaults section that has rules."""
        where = "%s:%d" % (base.file, base.line)
        if kind == "listen":
            raise self.ctx.error(lineno, "a listen section cannot inherit from a defaults "
                                 "section defining TCP/HTTP rules.",
                                 "move the rules into the listen section")
        if kind == "defaults":
            raise self.ctx.error(lineno, "a defaults section cannot inherit from a defaults "
                                 "section defining TCP/HTTP rules (defaults section at %s)."
                                 % where)
        if base.rules_used_by not in (None, kind):
            raise self.ctx.error(lineno, "frontends and backends cannot inherit from the same "
                                 "defaults section if it defines TCP/HTTP rules (defaults "
                                 "section at %s)." % where,
                                 "use two defaults sections, one for frontends and one "
                                 "for backends")
        base.rules_used_by = kind

    # ------------------------------------------------------------ errors

    def unknown(self, lineno: int, word: str, where: str, candidates,
                known_unsupported=frozenset(), prefixes=()) -> ConfigError:
        if word in SEED_HINTS:
            return self.ctx.error(lineno, "unknown keyword '%s' in '%s' section"
                                  % (word, where), SEED_HINTS[word])
        if word in known_unsupported or any(word.startswith(p) for p in prefixes):
            return self.ctx.error(lineno, "'%s' is not supported by keepwarm (yet) in '%s' "
                                  "section" % (word, where), UNSUPPORTED_HINT)
        close = difflib.get_close_matches(word, sorted(candidates), n=1, cutoff=0.6)
        return self.ctx.error(lineno, "unknown keyword '%s' in '%s' section" % (word, where),
                              "did you mean '%s'?" % close[0] if close else None)

    # ------------------------------------------------------------ proxies

    def proxy_keyword(self, lineno: int, words: List[str], modifier) -> None:
        px = self.proxy
        assert px is not None
        kw, args = words[0], words[1:]
        handler = _PROXY_KEYWORDS.get(kw)
        if handler is None:
            raise self.unknown(lineno, kw, px.label, _PROXY_KEYWORDS, keywords.PROXY)
        handler(self, px, lineno, args, modifier)

    def notcap(self, px: _Proxy, lineno: int, what: str, cap: int) -> bool:
        """HAProxy's warnifnotcap(): warn and tell the caller to ignore the keyword."""
        if px.cap & cap:
            return False
        self.ctx.warn(lineno, "'%s' ignored because %s '%s' has no %s capability"
                      % (what, px.kind, px.name, _CAP_NAMES[cap]))
        return True

    def not_in_defaults(self, px: _Proxy, lineno: int, what: str) -> None:
        if px.kind == "defaults":
            raise self.ctx.error(lineno, "'%s' not allowed in 'defaults' section" % what)

    def set_value(self, px: _Proxy, lineno: int, key: str, value, label: str) -> None:
        if key in px.set_here and label.startswith("timeout"):
            self.ctx.warn(lineno, "overwriting '%s' which was already specified at line %d"
                          % (label, px.set_here[key]))
        px.set_here[key] = lineno
        px.values[key] = value

    # keyword handlers: (self, px, lineno, args, modifier)

    def kw_mode(self, px, lineno, args, modifier):
        if len(args) != 1:
            raise self.ctx.error(lineno, "'mode' expects one argument: http",
                                 "keepwarm supports only 'mode http'")
        if args[0] == "http":
            px.values["mode"] = "http"
            return
        if args[0] == "tcp":
            if px.kind == "defaults":
                px.values["mode"] = "tcp"       # refused in the proxies that keep it
                return
            raise self.ctx.error(lineno, "keepwarm supports only mode http",
                                 "'mode tcp' is valid HAProxy but keepwarm proxies HTTP only")
        raise self.ctx.error(lineno, "unknown proxy mode '%s'" % args[0],
                             "keepwarm supports only 'mode http'")

    def kw_bind(self, px, lineno, args, modifier):
        self.not_in_defaults(px, lineno, "bind")
        if self.notcap(px, lineno, "bind", FE):
            return
        px.set_here.setdefault("bind", lineno)   # (a bad one is reported here, not as "no bind")
        if not args:
            raise self.ctx.error(lineno, "'bind' expects [addr1]:port1[-end1]{,[addr]:port[-end]}"
                                 "... as arguments", "e.g. 'bind *:8080'")
        try:
            path = unix_bind_path(args[0])
            addrs = [] if path else parse_bind_address(args[0])
        except AddressError as exc:
            raise self.ctx.error(lineno, "'bind %s': %s" % (args[0][:60], exc),
                                 UNSUPPORTED_HINT if exc.unsupported else
                                 "write ADDR:PORT, *:PORT or :PORT") from None
        try:
            defer_accept, tls, warnings = bind_options(args[1:], self.global_.build())
        except BindError as exc:
            raise self.ctx.error(lineno, exc.message, exc.hint) from None
        for warning in warnings:
            self.ctx.warn(lineno, warning)
        if path:
            px.binds.append(Bind("", 0, lineno, False, path, tls))
            return
        px.binds.extend(Bind(host, port, lineno, defer_accept, None, tls) for host, port in addrs)

    def rule_ctx(self, px):
        """What the rule engine needs from around a proxy's rules."""
        return RuleCtx(env=self.env, backends=None, base_dir=os.path.dirname(
            os.path.abspath(px.file)) if px.file and px.file != "<string>" else "",
            proxy=px.kind, phase="req").replace(
            userlists=self.userlists, error_pages=px.values["errorfiles"],
            proxy_name=px.name if px.kind != "defaults" else None)

    def proxy_acls(self, px):
        if px.acls is None:
            px.acls = Acls(self.rule_ctx(px))
        return px.acls

    def kw_acl(self, px, lineno, args, modifier):
        """acl NAME CRITERION [flags] [operator] VALUE... (lines of one name are OR'ed)."""
        if px.kind == "defaults":
            raise self.ctx.error(lineno, "'acl' not allowed in 'defaults' section")
        acls = self.proxy_acls(px)
        before = len(acls.warnings)
        try:
            acls.add(args)
        except RulesError as exc:
            raise self.ctx.error(lineno, exc.message, exc.hint) from None
        if len(args) > 1 and args[1].startswith("http_auth_group("):
            self.auth_groups.append((self.ctx.filename, lineno, args[1][16:].rstrip(")"),
                                     [a for a in args[2:] if not a.startswith("-")]))
        for warning in acls.warnings[before:]:
            self.ctx.warn(lineno, warning)

    def kw_stats(self, px, lineno, args, modifier):
        """stats enable|uri|realm|auth|refresh|hide-version|show-legends|scope: the HTML
        statistics page of this proxy (proxy/config/stats_section.py)."""
        if args[:1] == ["admin"]:
            # stats admin {if | unless} COND: who may change servers from the page.
            if len(args) < 3 or args[1] not in ("if", "unless"):
                raise self.ctx.error(lineno, "'stats admin' requires either 'if' or 'unless' "
                                     "followed by a condition", "e.g. 'stats admin if "
                                     "LOCALHOST'")
            try:
                cond = compile_condition(args[1:], self.proxy_acls(px), self.rule_ctx(px))
            except RulesError as exc:
                raise self.ctx.error(lineno, exc.message, exc.hint) from None
            page = px.values["stats"] or StatsPage()
            px.values["stats"] = dataclasses.replace(page, enabled=True, admin=cond)
            return
        try:
            px.values["stats"] = stats_keyword(
                px.values["stats"], args, lambda text: _time(self.ctx, lineno, "stats refresh",
                                                             text))
        except StatsError as exc:
            raise self.ctx.error(lineno, exc.message, exc.hint) from None

    def stats_actions(self, px):
        page = px.values["stats"]
        return ((None, stats_action(page)),) if page is not None and page.enabled else ()

    def kw_use_backend(self, px, lineno, args, modifier):
        """use_backend NAME|%[...] [if|unless COND]: the first rule that matches picks the
        backend, else default_backend (proxy/rules/routing.py)."""
        self.not_in_defaults(px, lineno, "use_backend")
        if self.notcap(px, lineno, "use_backend", FE):
            return
        acls = self.proxy_acls(px)
        if px.routes is None:
            px.routes = Routes(acls, self.rule_ctx(px))
        before = len(acls.warnings)
        try:
            px.routes.add(args)
        except RulesError as exc:
            raise self.ctx.error(lineno, exc.message, exc.hint) from None
        for warning in acls.warnings[before:]:
            self.ctx.warn(lineno, warning)
        if args and "%" not in args[0]:
            px.route_lines.append((args[0], lineno))

    def kw_monitor_uri(self, px, lineno, args, modifier):
        """monitor-uri URI: a request for exactly URI gets 200 (or `errorfile 200`),
        before any http-request rule, and never reaches a server."""
        if self.notcap(px, lineno, "monitor-uri", FE):
            return
        if len(args) != 1:
            raise self.ctx.error(lineno, "'monitor-uri' expects an URI", "e.g. 'monitor-uri /ready'")
        px.values["monitor_uri"] = args[0]

    def kw_monitor(self, px, lineno, args, modifier):
        """monitor fail if|unless COND: monitor-uri answers 503 while COND holds
        (several lines: any of them)."""
        if self.notcap(px, lineno, "monitor", FE):
            return
        if not args or args[0] != "fail" or len(args) < 3 or args[1] not in ("if", "unless"):
            raise self.ctx.error(lineno, "'monitor' expects 'fail' followed by 'if' or 'unless' "
                                 "and a condition", "e.g. 'monitor fail if { nbsrv(app) lt 1 }'")
        try:
            cond = compile_condition(args[1:], self.proxy_acls(px), self.rule_ctx(px))
        except RulesError as exc:
            raise self.ctx.error(lineno, exc.message, exc.hint) from None
        px.values["monitor_fail"].append(cond)

    def kw_errorfile(self, px, lineno, args, modifier):
        """errorfile CODE FILE: read and checked now, sent verbatim for CODE."""
        ctx = self.ctx
        if len(args) != 2:
            raise ctx.error(lineno, "'errorfile' expects <code> and <file> as arguments",
                            "e.g. 'errorfile 503 /etc/haproxy/errors/503.http'")
        code = _int(ctx, lineno, "errorfile", args[:1], minimum=100, maximum=599)
        if code not in errorfiles.CODES:
            ctx.warn(lineno, "status code '%d' not handled by 'errorfile', error "
                     "customization will be ignored" % code)
            return
        g = self.global_.build()
        try:
            data = errorfiles.read_errorfile(args[1], g.bufsize - g.maxrewrite)
        except errorfiles.ErrorfileError as exc:
            raise ctx.error(lineno, str(exc), "an error file holds a whole HTTP response: "
                            "status line, headers, an empty line, the body") from None
        px.values["errorfiles"][code] = data
        self.error_order(px, code)

    def kw_default_backend(self, px, lineno, args, modifier):
        if self.notcap(px, lineno, "default_backend", FE):
            return
        if len(args) != 1:
            raise self.ctx.error(lineno, "'default_backend' expects a backend name")
        px.values["default_backend"] = args[0]
        px.set_here["default_backend"] = lineno

    def kw_maxconn(self, px, lineno, args, modifier):
        if self.notcap(px, lineno, "maxconn", FE):
            return
        px.values["maxconn"] = _int(self.ctx, lineno, "maxconn", args, minimum=0, lenient=True)

    def kw_timeout(self, px, lineno, args, modifier):
        ctx = self.ctx
        caps = {"client": FE, "http-request": FE, "http-keep-alive": FE, "tarpit": FE | BE,
                "connect": BE, "server": BE, "queue": BE, "tunnel": BE, "check": BE}
        if not args or args[0] not in caps:
            got = args[0] if args else ""
            if got in keywords.TIMEOUTS:
                raise ctx.error(lineno, "'timeout %s' is not supported by keepwarm (yet)" % got,
                                UNSUPPORTED_HINT)
            close = difflib.get_close_matches(got, sorted(caps), n=1, cutoff=0.5)
            raise ctx.error(lineno, "'timeout' supports 'client', 'server', 'connect', "
                            "'check', 'queue', 'http-keep-alive', 'http-request' and "
                            "'tunnel' (got '%s')" % got,
                            "did you mean 'timeout %s'?" % close[0] if close else None)
        name = args[0]
        label = "timeout " + name
        if len(args) < 2:
            raise ctx.error(lineno, "'%s' expects an integer value (in milliseconds)" % label,
                            "e.g. '%s 30s'" % label)
        if len(args) > 2:
            raise ctx.error(lineno, "'%s' : unexpected extra argument '%s' after value '%s'"
                            % (label, args[2], args[1]))
        seconds = _time(ctx, lineno, label, args[1], lenient=True)
        if px.kind == "backend" and name in ("http-request", "http-keep-alive"):
            ctx.warn(lineno, "'%s' in a backend has no effect: the frontend's value applies"
                     % label)
            return
        if self.notcap(px, lineno, label, caps[name]):
            return
        # HAProxy: a zero timeout is "not set", i.e. infinite
        self.set_value(px, lineno, "timeout_" + name.replace("-", "_"),
                       seconds or None, label)

    def kw_balance(self, px, lineno, args, modifier):
        if self.notcap(px, lineno, "balance", BE):
            return
        try:
            algo, balance_args = parse_balance(args)
        except LbError as exc:
            raise self.ctx.error(lineno, str(exc), UNSUPPORTED_HINT if exc.unsupported
                                 else exc.hint) from None
        px.values.update(balance=algo, balance_args=balance_args)

    def kw_hash_type(self, px, lineno, args, modifier):
        if self.notcap(px, lineno, "hash-type", BE):
            return
        try:
            method, function, avalanche = parse_hash_type(args)
        except LbError as exc:
            raise self.ctx.error(lineno, str(exc), exc.hint) from None
        px.values.update(hash_type=method, hash_function=function, hash_avalanche=avalanche)

    def kw_retry_on(self, px, lineno, args, modifier):
        if not px.cap & BE:
            raise self.ctx.error(lineno, "'retry-on' only available in backend or listen "
                                 "section")
        try:
            px.values["retry_on"] = parse_retry_on(args)
        except LbError as exc:
            raise self.ctx.error(lineno, str(exc), exc.hint) from None

    def kw_http_rule(self, px, lineno, args, modifier, keyword):
        if px.kind == "defaults" and not px.name:
            raise self.ctx.error(lineno, "'%s' not allowed in anonymous 'defaults' section."
                                 % keyword, "name the section ('defaults NAME') and use "
                                 "'from NAME' where its rules should apply")
        if args and (args[0] in ACTIONS[keyword] or is_edit(keyword, args[0])):
            self.http_action(px, lineno, args, keyword)
            return
        try:
            action, name, value, cond_words = parse_header_rule(keyword, args, dynamic=True)
        except RuleError as exc:
            hint = exc.hint
            if exc.unsupported:
                hint = "%s; %s" % (hint, UNSUPPORTED_HINT) if hint else UNSUPPORTED_HINT
            raise self.ctx.error(lineno, str(exc), hint) from None
        if not cond_words and (value is None or "%" not in value):
            rule = (action, name, value)          # a constant rule: applied as bytes
        else:
            # A condition or a log-format value: compiled now, resolved per message.
            ctx = self.rule_ctx(px).replace(
                phase="req" if keyword == "http-request" else "res")
            try:
                cond = compile_condition(cond_words, self.proxy_acls(px), ctx) \
                    if cond_words else None
                fmt = compile_logformat(value, ctx, mode="http") \
                    if value is not None and "%" in value else None
            except RulesError as exc:
                raise self.ctx.error(lineno, exc.message, exc.hint) from None
            rule = DynamicRule(action, name, value, cond, fmt)
        side = "request" if keyword == "http-request" else "response"
        px.values[side + "_rules"] = px.values[side + "_rules"] + (rule,)
        # The same rule as an action, for when the section has other actions: all
        # then run in the order written (proxy/config/http_edits.py).
        px.values[side + "_actions"] = px.values[side + "_actions"] + (
            header_step(rule, side == "response"),)

    def http_action(self, px, lineno, args, keyword):
        """http-request|http-response ACTION ... [if|unless COND] (and `redirect`): an
        action that answers (allow, deny, return, redirect, tarpit) or changes the
        message or the variables (set-path, set-var...: http_edits.py)."""
        side = "request" if keyword == "http-request" else "response"
        ctx = self.rule_ctx(px)
        if side == "response":
            ctx = ctx.replace(phase="res")
        try:
            rule = compile_action(args, self.proxy_acls(px), ctx, keyword)
        except RulesError as exc:
            raise self.ctx.error(lineno, exc.message, exc.hint) from None
        px.values[side + "_actions"] = px.values[side + "_actions"] + (rule,)
        px.values[side + "_engine"] = True
        cap = getattr(rule[1], "capture", None)
        if cap is not None:
            self.capture_slot(px, lineno, keyword, cap)

    def capture_slot(self, px, lineno, keyword, cap):
        """http-request|http-response capture: `len N` adds a slot to the proxy's request
        captures (a frontend's: HAProxy refuses it elsewhere); `id N` names one, which
        a frontend must have by the end of the file (a backend's rule fills the slot
        of whichever frontend the request came through)."""
        side, how, n, slot = cap
        if how == "len":
            if not px.cap & FE or px.kind == "defaults":
                raise self.ctx.error(lineno, "error detected in %s '%s' while parsing '%s "
                                     "capture' rule : proxy '%s' has no frontend capability."
                                     % (px.kind, px.name, keyword, px.name))
            plog = px.values["log"]
            slot[0] = len(plog.req_captures)
            px.values["log"] = dataclasses.replace(
                plog, req_captures=plog.req_captures + (Capture(None, n),))
        elif px.cap & FE and px.kind != "defaults":
            self.capture_ids.append((px, lineno, keyword, side, n))

    def kw_redirect(self, px, lineno, args, modifier):
        """The older `redirect location|prefix|scheme ...` keyword: an http-request redirect."""
        self.http_action(px, lineno, ["redirect"] + args, "http-request")

    def kw_http_request(self, px, lineno, args, modifier):
        if args[:1] == ["auth"] and not (px.kind == "defaults" and not px.name):
            self.http_action(px, lineno, args, "http-request")    # proxy/config/auth.py
            return
        self.kw_http_rule(px, lineno, args, modifier, "http-request")

    def kw_http_response(self, px, lineno, args, modifier):
        self.kw_http_rule(px, lineno, args, modifier, "http-response")

    def kw_http_reuse(self, px, lineno, args, modifier):
        if self.notcap(px, lineno, "http-reuse", BE):
            return
        modes = ("never", "safe", "aggressive", "always")
        if len(args) != 1 or args[0] not in modes:
            raise self.ctx.error(lineno, "'http-reuse' only supports 'never', 'safe', "
                                 "'aggressive', 'always'")
        px.values["http_reuse"] = args[0]

    def kw_retries(self, px, lineno, args, modifier):
        if self.notcap(px, lineno, "retries", BE):
            return
        px.values["retries"] = _int(self.ctx, lineno, "retries", args, minimum=0, lenient=True)

    def kw_log(self, px, lineno, args, modifier):
        """log global | log TARGET ... | no log (proxy/config/logs.py)."""
        plog = px.values["log"]
        try:
            targets = logs.proxy_log_line(plog.targets, args, modifier,
                                          tuple(self.global_.log_targets), lineno)
        except logs.LogConfigError as exc:
            raise self.ctx.error(lineno, "log : %s" % exc.message, exc.hint) from None
        px.values["log"] = dataclasses.replace(plog, targets=targets)

    def kw_logging(self, px, lineno, args, modifier, kw):
        """log-tag, log-format, log-format-sd, error-log-format, capture, declare,
        unique-id-format, unique-id-header (proxy/config/logs.py)."""
        try:
            plog, warning = logs.proxy_keyword(px.values["log"], kw, args, px.kind,
                                               self.rule_ctx(px))
        except logs.LogConfigError as exc:
            raise self.ctx.error(lineno, exc.message, exc.hint) from None
        px.values["log"] = plog
        if warning:
            self.ctx.warn(lineno, warning)
        if logs.not_written(kw):
            self.ctx.warn(lineno, "'%s' %s" % (kw, logs.not_written(kw)))

    def kw_server(self, px, lineno, args, modifier):
        self.not_in_defaults(px, lineno, "server")
        if not px.cap & BE:
            raise self.ctx.error(lineno, "'server' not allowed in frontend '%s'" % px.name,
                                 "servers belong in a backend or listen section")
        if len(args) < 2:
            raise self.ctx.error(lineno, "'server' expects <name> and <addr>[:<port>] as "
                                 "arguments", "e.g. 'server web1 127.0.0.1:8080 check'")
        name, addr = args[0], args[1]
        if not _NAME_OK.fullmatch(name):
            raise self.ctx.error(lineno, "invalid server name '%s'" % name,
                                 "names use letters, digits, '-', '_', '.' and ':'")
        if name in px.server_lines:
            raise self.ctx.error(lineno, "%s '%s' has two servers named '%s' (first at line "
                                 "%d)" % (px.kind, px.name, name, px.server_lines[name]))
        try:
            host, port = parse_server_address(addr)
        except AddressError as exc:
            raise self.ctx.error(lineno, "server '%s': %s" % (name, exc),
                                 UNSUPPORTED_HINT if exc.unsupported else
                                 "write ADDR:PORT, e.g. 127.0.0.1:8080") from None
        fields = dict(px.server_defaults)
        server_options(self.ctx, lineno, name, args[2:], fields)
        fields["tls"] = self.server_tls(lineno, name, fields.pop("tls_words", ()), px)
        if fields["tls"] is not None and fields["tls"].sni_expr and fields.get("pool_warm_conn"):
            raise self.ctx.error(lineno, "server '%s': 'pool-warm-conn' with 'sni %s'"
                                 % (name, fields["tls"].sni_expr),
                                 "a warm connection would not know which name to send; "
                                 "use 'sni str(NAME)' or leave pool-warm-conn out")
        px.servers.append(Server(name=name, host=host, port=port, line=lineno, **fields))
        px.server_lines[name] = lineno

    def server_tls(self, lineno, name, words, px):
        """A server's TLS words (default-server's first) as a ServerTLS, its
        context made now: a CA or client certificate that does not load is an
        error at the server's line."""
        g = self.global_.build()
        verify = next((a[0] for k, a in g.ssl_defaults if k == "ssl-server-verify" and a),
                      "required")
        try:
            tls = parse_server_tls(list(words), g.ssl_defaults, g.ca_base, g.crt_base, verify)
            if tls is not None and tls.sni_expr:
                tls = dataclasses.replace(tls, sni_fetch=compile_sample(tls.sni_expr,
                                                                        self.rule_ctx(px)))
            if tls is not None:
                client_context(tls, bool(tls.hostname))
        except RulesError as exc:
            raise self.ctx.error(lineno, "server '%s': 'sni %s': %s" % (
                name, tls.sni_expr, exc.message), exc.hint) from None
        except TLSConfigError as exc:
            raise self.ctx.error(lineno, "server '%s': %s" % (name, exc.message),
                                 exc.hint) from None
        return tls

    def kw_default_server(self, px, lineno, args, modifier):
        if not px.cap & BE:
            raise self.ctx.error(lineno, "'default-server' not allowed in frontend '%s'"
                                 % px.name)
        server_options(self.ctx, lineno, None, args, px.server_defaults)

    def kw_option(self, px, lineno, args, modifier):
        ctx = self.ctx
        if not args:
            raise ctx.error(lineno, "'option' expects an option name")
        opt, rest = args[0], args[1:]
        if opt in (KAL, SCL, CLO):
            if rest:
                raise ctx.error(lineno, "'option %s' cannot handle unexpected argument '%s'"
                                % (opt, rest[0]),
                                SEED_HINTS["http-server-close"] if opt == SCL else
                                "'option %s' is a switch without a value" % opt)
            if modifier == "no":
                # "no option X" only switches back to the default if X was the mode
                if px.values["http_mode"] == opt:
                    px.values["http_mode"] = KAL
            elif modifier == "default":
                px.values["http_mode"] = px.base.values["http_mode"] if px.base else KAL
            else:
                px.values["http_mode"] = opt
            return
        if opt == "redispatch":
            if self.notcap(px, lineno, "option redispatch", BE):
                return
            if len(rest) > 1:
                raise ctx.error(lineno, "'option redispatch' cannot handle unexpected "
                                "argument '%s'" % rest[1])
            if modifier == "no":
                px.values.update(redispatch=False, redispatch_interval=0)
            elif modifier == "default":
                base = px.base.values if px.base else {"redispatch": False,
                                                       "redispatch_interval": -1}
                px.values.update(redispatch=base["redispatch"],
                                 redispatch_interval=base["redispatch_interval"])
            else:
                interval = -1
                if rest:
                    if not _INT.fullmatch(rest[0]):
                        raise ctx.error(lineno, "'option redispatch' expects an integer "
                                        "interval (got '%s')" % rest[0])
                    interval = decimal(rest[0])
                px.values.update(redispatch=interval != 0, redispatch_interval=interval)
            return
        if opt in SWITCH_OPTIONS:
            key, cap = SWITCH_OPTIONS[opt]
            if self.notcap(px, lineno, "option %s" % opt, cap):
                return
            if rest:
                raise ctx.error(lineno, "'option %s' cannot handle unexpected "
                                "argument '%s'" % (opt, rest[0]))
            if modifier == "default":
                px.values[key] = px.base.values[key] if px.base else False
            else:
                px.values[key] = modifier != "no"
            return
        if modifier and opt in ("httpchk", "forwardfor", "originalto") + tuple(keywords.LOG_OPTIONS - {
                "dontlognull", "dontlog-normal", "log-health-checks",
                "log-separate-errors", "logasap"}):
            raise ctx.error(lineno, "negation/default is not supported for option '%s'" % opt)
        if opt == "httpchk":
            if self.notcap(px, lineno, "option httpchk", BE):
                return
            try:
                warning = checks.option_httpchk(px.check, rest, lineno)
            except checks.CheckError as exc:
                raise ctx.error(lineno, str(exc), exc.hint) from None
            if warning:
                ctx.warn(lineno, warning)
            return
        if opt in ("forwardfor", "originalto"):
            try:
                px.values[opt] = parse_forwardfor(rest, opt)
            except RuleError as exc:
                raise ctx.error(lineno, str(exc), exc.hint) from None
            return
        if opt in keywords.LOG_OPTIONS:
            try:
                px.values["log"], _ = logs.option(px.values["log"], opt, rest, modifier,
                                                  px.base.values["log"] if px.base else None)
            except logs.LogConfigError as exc:
                raise ctx.error(lineno, exc.message, exc.hint) from None
            if logs.not_written("option " + opt, modifier):
                ctx.warn(lineno, "'%soption %s' %s" % ("%s " % modifier if modifier else "",
                                                       opt, logs.not_written("option " + opt)))
            return
        if opt == "http-tunnel":
            raise ctx.error(lineno, "option 'http-tunnel' is not supported any more since "
                            "HAProxy 2.1", "remove it: keep-alive is the default mode")
        if opt in keywords.OPTIONS:
            raise ctx.error(lineno, "'option %s' is not supported by keepwarm (yet)" % opt,
                            UNSUPPORTED_HINT)
        known = {KAL, SCL, CLO, "redispatch", "httpchk",
                 "forwardfor", "originalto"} | set(SWITCH_OPTIONS) | keywords.LOG_OPTIONS
        close = difflib.get_close_matches(opt, sorted(known), n=1, cutoff=0.6)
        raise ctx.error(lineno, "unknown option '%s' in '%s' section" % (opt, px.label),
                        "did you mean 'option %s'?" % close[0] if close else None)

    def kw_http_check(self, px, lineno, args, modifier):
        if self.notcap(px, lineno, "http-check", BE):
            return
        try:
            checks.http_check(px.check, args, lineno, px.expect_here and args[:1] == ["expect"])
        except checks.CheckError as exc:
            raise self.ctx.error(lineno, str(exc),
                                 exc.hint if not exc.unsupported or exc.hint else
                                 UNSUPPORTED_HINT) from None
        if args[:1] == ["expect"]:
            px.expect_here = True

    # ------------------------------------------------------------ userlist, http-errors

    def start_list_section(self, lineno: int, kind: str, args: List[str]) -> None:
        """`userlist NAME` or `http-errors NAME` (configuration manual 3.4 and 3.8)."""
        self.section, self.proxy, self.list_section = kind, None, None
        if len(args) != 1:
            raise self.ctx.error(lineno, "'%s' expects <name> as an argument" % kind,
                                 "e.g. '%s %s'" % (kind, "admins" if kind == "userlist"
                                                   else "site-errors"))
        name = args[0]
        if kind == "userlist":
            if name in self.userlist_sections:
                first = self.userlist_sections[name]
                raise self.ctx.error(lineno, "duplicated userlist '%s' (declared at %s:%d)"
                                     % (name, first.file, first.line),
                                     "HAProxy ignores the second one with a warning; "
                                     "merge them")
            self.list_section = self.userlist_sections[name] = UserlistSection(
                name, lineno, self.ctx.filename)
            return
        if name in self.http_errors:
            file, line, _ = self.http_errors[name]
            raise self.ctx.error(lineno, "http-errors section '%s' already exists (declared "
                                 "at %s:%d)" % (name, file, line))
        self.http_errors[name] = (self.ctx.filename, lineno, {})
        self.list_section = name

    def list_keyword(self, lineno: int, words: List[str], modifier) -> None:
        section = self.list_section
        if section is None:
            return                          # its header line was refused
        if self.section == "userlist":
            try:
                section.keyword(lineno, words)
            except UserlistError as exc:
                raise self.ctx.error(lineno, exc.message, exc.hint) from None
            return
        if words[0] != "errorfile":
            raise self.ctx.error(lineno, "unknown keyword '%s' in 'http-errors' section"
                                 % words[0], "an http-errors section holds 'errorfile CODE "
                                 "FILE' lines")
        args = words[1:]
        if len(args) != 2:
            raise self.ctx.error(lineno, "'errorfile' expects <code> and <file> as arguments")
        code = _int(self.ctx, lineno, "errorfile", args[:1], minimum=100, maximum=599)
        if code not in errorfiles.CODES:
            raise self.ctx.error(lineno, "errorfile : status code '%d' not handled" % code,
                                 "HAProxy generates 200, 400, 401, 403, 404, 405, 407, 408, "
                                 "410, 413, 425, 429, 500, 501, 502, 503 and 504")
        self.http_errors[section][2][code] = self.read_page(lineno, args[1])

    def read_page(self, lineno: int, path: str) -> bytes:
        g = self.global_.build()
        try:
            return errorfiles.read_errorfile(path, g.bufsize - g.maxrewrite)
        except errorfiles.ErrorfileError as exc:
            raise self.ctx.error(lineno, str(exc), "an error file holds a whole HTTP "
                                 "response: status line, headers, an empty line, the "
                                 "body") from None

    def error_order(self, px, code) -> None:
        """The proxy's page for `code` was just set (or reset): a later `errorfiles`
        line may replace it, an earlier one may not (resolved in finish_lists)."""
        self.error_seq += 1
        px.values["error_seq"] = dict(px.values.get("error_seq", {}), **{str(code):
                                                                          self.error_seq})

    def kw_errorfiles(self, px, lineno, args, modifier):
        """errorfiles NAME [CODE...]: the pages of an http-errors section (declared
        anywhere in the file), all of them or those of the codes listed."""
        if not args:
            raise self.ctx.error(lineno, "'errorfiles' expects <name> and optional error "
                                 "codes as arguments", "e.g. 'errorfiles site-errors 503'")
        codes = [_int(self.ctx, lineno, "errorfiles", [a], minimum=100, maximum=599)
                 for a in args[1:]]
        self.error_seq += 1
        px.values["error_imports"] = px.values.get("error_imports", ()) + (
            (self.error_seq, args[0], tuple(codes), self.ctx.filename, lineno),)

    def kw_http_error(self, px, lineno, args, modifier):
        """http-error status N [content-type T] [default-errorfiles | errorfile F |
        errorfiles NAME | file F | string S] [hdr NAME VALUE]*."""
        g = self.global_.build()
        try:
            reply = errorfiles.parse_http_error(args, g.bufsize - g.maxrewrite,
                                                lambda msg: self.ctx.warn(lineno, msg))
        except errorfiles.ErrorfileError as exc:
            raise self.ctx.error(lineno, str(exc), UNSUPPORTED_HINT if "keepwarm" in str(exc)
                                 else "e.g. 'http-error status 503 content-type text/plain "
                                 "string \"try again\"'") from None
        if reply.group is not None:
            self.error_seq += 1
            px.values["error_imports"] = px.values.get("error_imports", ()) + (
                (self.error_seq, reply.group, (reply.status,), self.ctx.filename, lineno),)
            return
        if reply.reset:
            px.values["errorfiles"].pop(reply.status, None)
        else:
            px.values["errorfiles"][reply.status] = reply.page
        self.error_order(px, reply.status)

    def finish_lists(self) -> None:
        """Userlists and http-errors sections, now that all are known: build the
        userlists, check the names rules used, give each proxy its imported pages."""
        ctx, errors = self.ctx, self.errors
        for section in self.userlist_sections.values():
            ctx.filename = section.file
            built, problems = section.build()
            self.userlists.lists[section.name] = built
            errors.extend(ctx.error(p.line, p.message, p.hint) for p in problems)
        for name, file, line in self.userlists.missing():
            ctx.filename = file
            errors.append(ctx.error(line, "unable to find userlist '%s'" % name,
                                    "declare it: 'userlist %s'" % name))
        for file, line, name, groups in self.auth_groups:
            known = self.userlists.lists.get(name)
            for group in groups if known is not None else ():
                if group.encode("utf-8", "surrogateescape") not in known.groups:
                    ctx.filename = file
                    errors.append(ctx.error(line, "acl: http_auth_group(%s): invalid group "
                                            "'%s'" % (name, group),
                                            "declare it in userlist '%s': 'group %s'"
                                            % (name, group)))
        for px in self.proxies + list(self.named_defaults.values()):
            seq = px.values.get("error_seq", {})
            pages = px.values["errorfiles"]
            for at, name, codes, file, line in px.values.get("error_imports", ()):
                ctx.filename = file
                if name not in self.http_errors:
                    errors.append(ctx.error(line, "proxy '%s': unknown http-errors section "
                                            "'%s'" % (px.name, name),
                                            did_you_mean_hint(name, self.http_errors)))
                    continue
                group = self.http_errors[name][2]
                for code in codes or sorted(group):
                    if code not in group:
                        ctx.warn(line, "proxy '%s': status '%d' not declared in http-errors "
                                 "section '%s'" % (px.name, code, name))
                    elif seq.get(str(code), 0) < at:
                        pages[code] = group[code]

    # ------------------------------------------------------------ the end

    def finish(self) -> Config:
        ctx = self.ctx
        errors = self.errors
        first_file = ctx.filename
        self.finish_lists()
        for px in self.proxies:
            ctx.filename = px.file
            if px.values["mode"] == "tcp":
                errors.append(ctx.error(px.line, "%s '%s' is in 'mode tcp' (from its defaults "
                                        "section), which keepwarm does not support (yet)"
                                        % (px.kind, px.name),
                                        "if it carries HTTP, add 'mode http' to it"))
            elif px.values["mode"] is None:
                # HAProxy: no `mode` in the section nor in its defaults is mode tcp.
                errors.append(ctx.error(px.line, "%s '%s' has no 'mode' line, nor has its "
                                        "defaults section: HAProxy runs it in 'mode tcp', "
                                        "which keepwarm does not support (yet)"
                                        % (px.kind, px.name),
                                        "if it carries HTTP, add 'mode http' to it or to "
                                        "its defaults section"))
        global_ = self.global_.build()
        self.check_names()
        built: List[Tuple[_Proxy, Frontend]] = []
        backends: List[Backend] = []
        for px in self.proxies:
            ctx.filename = px.file
            try:
                if px.cap & FE:
                    built.append((px, self.build_frontend(px, global_)))
                if px.cap & BE:
                    backends.append(self.build_backend(px))
            except ConfigError as exc:
                errors.append(exc)
        frontends = [fe for _, fe in built]
        for px, line, keyword, side, n in self.capture_ids:
            plog = px.values["log"]
            if n >= len(plog.res_captures if side else plog.req_captures):
                ctx.filename = px.file
                errors.append(ctx.error(line, "Proxy '%s': unable to find capture id '%d' "
                                        "referenced by %s capture rule." % (px.name, n, keyword),
                                        "declare it: 'declare capture %s len N'"
                                        % ("response" if side else "request")))
        names = {be.name for be in backends}
        for px, fe in built:
            ctx.filename = px.file
            line = px.set_here.get("default_backend", px.line)
            for name, at in px.route_lines:
                if name not in names:
                    close = difflib.get_close_matches(name, sorted(names), n=1)
                    errors.append(ctx.error(at, "proxy '%s': unable to find required "
                                            "use_backend: '%s'" % (fe.name, name),
                                            "did you mean '%s'?" % close[0] if close else
                                            "declare 'backend %s'" % name))
            if fe.default_backend is None:
                # HAProxy 2.6 accepts it (a request nothing answers gets a 503); a
                # port-80 frontend that only redirects is common, so warn only when
                # no rule at all could answer.
                if fe.routes is None and not fe.request_actions and not fe.request_rules:
                    ctx.warn(px.line, "frontend '%s' has no default_backend and no rules: "
                             "every request gets a 503" % fe.name)
            elif fe.default_backend not in names:
                close = difflib.get_close_matches(fe.default_backend, sorted(names), n=1)
                errors.append(ctx.error(line, "proxy '%s': unable to find required "
                                        "default_backend: '%s'" % (fe.name, fe.default_backend),
                                        "did you mean '%s'?" % close[0] if close else
                                        "declare 'backend %s'" % fe.default_backend))
        for px in self.proxies:
            ctx.filename = px.file
            self.warn_timeouts(px)
            if px.cap & BE and px.check["enabled"] is False and (
                    px.check["expect_kind"] or px.check["headers"]):
                ctx.warn(px.line, "%s '%s': 'http-check' rules have no effect without "
                         "'option httpchk'" % (px.kind, px.name))
        ctx.filename = first_file
        return Config(path=ctx.filename, global_=global_, frontends=tuple(frontends),
                      backends=tuple(backends), warnings=tuple(ctx.warnings))

    def check_names(self) -> None:
        seen: Dict[Tuple[int, str], _Proxy] = {}
        for px in self.proxies:
            self.ctx.filename = px.file
            for cap in (FE, BE):
                if not px.cap & cap:
                    continue
                other = seen.get((cap, px.name))
                if other is not None and other is not px:
                    self.errors.append(self.ctx.error(
                        px.line, "%s '%s' has the same name as %s '%s' declared at line %d"
                        % (px.kind, px.name, other.kind, other.name, other.line),
                        "proxy names must be unique per frontend/backend"))
                    continue
                seen[(cap, px.name)] = px

    def build_frontend(self, px: _Proxy, global_: Global) -> Frontend:
        v = px.values
        if not px.binds and "bind" not in px.set_here:
            raise self.ctx.error(px.line, "%s '%s' has no 'bind' directive. Please declare it "
                                 "as a backend if this was intended" % (px.kind, px.name),
                                 "add e.g. 'bind *:8080'")
        client = v["timeout_client"]
        request = v["timeout_http_request"] or client
        keep_alive = v["timeout_http_keep_alive"] or request
        mode = v["http_mode"]
        default_backend = v["default_backend"]
        if px.kind == "listen" and "default_backend" not in px.set_here:
            default_backend = px.name
        return Frontend(
            name=px.name, line=px.line, binds=tuple(px.binds), default_backend=default_backend,
            maxconn=v["maxconn"] or global_.maxconn, timeout_client=client,
            timeout_http_request=request, timeout_http_keep_alive=keep_alive,
            forwardfor=v["forwardfor"], originalto=v["originalto"],
            request_rules=() if v["request_engine"] else v["request_rules"],
            response_rules=() if v["response_engine"] else v["response_rules"],
            http_server_close=mode == SCL, httpclose=mode == CLO, http_keep_alive=mode == KAL,
            ignore_probes=v["ignore_probes"],
            idle_close_on_response=v["idle_close_on_response"],
            errorfiles=tuple(sorted(v["errorfiles"].items())), routes=px.routes,
            request_actions=monitor_action(v["monitor_uri"], v["errorfiles"].get(200),
                                           any_of(v["monitor_fail"]) if v["monitor_fail"]
                                           else None, v["errorfiles"].get(503))
            + (v["request_actions"] if v["request_engine"] else ()) + self.stats_actions(px),
            response_actions=v["response_actions"] if v["response_engine"] else (),
            timeout_tarpit=v["timeout_tarpit"] or v["timeout_connect"], log=v["log"])

    def build_backend(self, px: _Proxy) -> Backend:
        v = px.values
        chk = px.check
        httpchk = None
        if chk["enabled"]:
            httpchk = HttpCheck(
                method=chk["method"], uri=chk["uri"], version=chk["version"],
                headers=tuple(chk["headers"]), body=chk["body"],
                expect_status=chk["expect_status"], expect_kind=chk["expect_kind"],
                expect_string=chk["expect_string"], expect_negate=chk["expect_negate"],
                line=chk["line"])
        mode = v["http_mode"]
        return Backend(
            name=px.name, line=px.line, servers=tuple(px.servers), balance=v["balance"],
            balance_args=v["balance_args"], hash_type=v["hash_type"],
            hash_function=v["hash_function"], hash_avalanche=v["hash_avalanche"],
            allbackups=v["allbackups"], retry_on=v["retry_on"], forwardfor=v["forwardfor"],
            originalto=v["originalto"],
            request_rules=() if v["request_engine"] else v["request_rules"],
            response_rules=() if v["response_engine"] else v["response_rules"],
            http_reuse=v["http_reuse"], httpchk=httpchk,
            timeout_connect=v["timeout_connect"], timeout_server=v["timeout_server"],
            # HAProxy: "timeout queue" defaults to "timeout connect"
            timeout_queue=v["timeout_queue"] or v["timeout_connect"],
            timeout_tunnel=v["timeout_tunnel"], timeout_check=v["timeout_check"],
            retries=v["retries"], redispatch=v["redispatch"],
            redispatch_interval=v["redispatch_interval"],
            http_server_close=mode == SCL, httpclose=mode == CLO, http_keep_alive=mode == KAL,
            errorfiles=tuple(sorted(v["errorfiles"].items())),
            request_actions=(v["request_actions"] if v["request_engine"] else ())
            + (self.stats_actions(px) if px.kind == "backend" else ()),
            response_actions=v["response_actions"] if v["response_engine"] else (),
            timeout_tarpit=v["timeout_tarpit"] or v["timeout_connect"], log=v["log"])

    def warn_timeouts(self, px: _Proxy) -> None:
        missing = []
        if px.cap & FE and not px.values["timeout_client"]:
            missing.append("'timeout client'")
        if px.cap & BE:
            for name in ("connect", "server"):
                if not px.values["timeout_" + name]:
                    missing.append("'timeout %s'" % name)
        if missing:
            self.ctx.warn(px.line, "missing timeouts for %s '%s': %s. While not properly "
                          "invalid, you will certainly encounter various problems with such "
                          "a configuration; set them to non-zero values (in 'defaults' or "
                          "in this section)" % (px.kind, px.name, ", ".join(missing)))


def did_you_mean_hint(name, names):
    close = difflib.get_close_matches(name, sorted(names), n=1)
    return "did you mean '%s'?" % close[0] if close else "declare 'http-errors %s'" % name


_PROXY_KEYWORDS: Dict[str, Callable] = {
    "mode": _Parser.kw_mode,
    "bind": _Parser.kw_bind,
    "default_backend": _Parser.kw_default_backend,
    "errorfile": _Parser.kw_errorfile,
    "acl": _Parser.kw_acl,
    "use_backend": _Parser.kw_use_backend,
    "stats": _Parser.kw_stats,
    "redirect": _Parser.kw_redirect,
    "monitor-uri": _Parser.kw_monitor_uri,
    "monitor": _Parser.kw_monitor,
    "maxconn": _Parser.kw_maxconn,
    "timeout": _Parser.kw_timeout,
    "balance": _Parser.kw_balance,
    "hash-type": _Parser.kw_hash_type,
    "retry-on": _Parser.kw_retry_on,
    "http-request": _Parser.kw_http_request,
    "http-response": _Parser.kw_http_response,
    "http-reuse": _Parser.kw_http_reuse,
    "retries": _Parser.kw_retries,
    "log": _Parser.kw_log,
    "server": _Parser.kw_server,
    "default-server": _Parser.kw_default_server,
    "option": _Parser.kw_option,
    "http-check": _Parser.kw_http_check,
    "errorfiles": _Parser.kw_errorfiles,
    "http-error": _Parser.kw_http_error,
}
for _kw in ("log-tag", "log-format", "log-format-sd", "error-log-format", "capture", "declare",
            "unique-id-format", "unique-id-header"):
    _PROXY_KEYWORDS[_kw] = (lambda kw: lambda self, px, lineno, args, modifier:
                            self.kw_logging(px, lineno, args, modifier, kw))(_kw)

