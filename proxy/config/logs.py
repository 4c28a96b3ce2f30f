"""The logging keywords (issue 17): ``log`` targets, ``log-tag``, the log formats,
captures and the unique id, read into ``model.LogTarget`` and ``model.ProxyLog``.

Checked as HAProxy 2.6.12 checks them (messages measured with ``haproxy -c``);
each function raises ``LogConfigError(message, hint)`` that the parser reports
with file:line. A log-format string is compiled here, so a bad ``%`` variable
is refused at load. The workers write the lines (workers/txlog.py); what is
accepted and not acted on yet would warn at its line (``NOT_WRITTEN``).
"""

from __future__ import annotations

import dataclasses
import re
import socket
from typing import Dict, List, Optional, Tuple

from proxy.log import httplog, syslog
from proxy.rules import Ctx, RuleError, compile_logformat

from .model import Capture, LogTarget, ProxyLog

# What is parsed and still not acted on (the rest is written by workers/txlog.py):
# keyword -> the warning printed at its line. Nothing, today.
NOT_WRITTEN: Dict[str, str] = {}


def not_written(kw: str, modifier=None) -> Optional[str]:
    """The warning for a logging keyword keepwarm parses but does not act on, or None."""
    if modifier == "no":
        return None              # turning off what is not done is not misleading
    return NOT_WRITTEN.get(kw)


# HAProxy 2.6's "option tcplog" format, kept so that the option has its real value.
TCPLOG = "%ci:%cp [%t] %ft %b/%s %Tw/%Tc/%Tt %B %ts %ac/%fc/%bc/%sc/%rc %sq/%bq"

# `option X` -> the ProxyLog field it switches
LOG_SWITCHES = {"dontlognull": "dontlognull", "dontlog-normal": "dontlog_normal",
                "log-separate-errors": "log_separate_errors",
                "log-health-checks": "log_health_checks", "logasap": "logasap"}

MAX_CAPTURE_LEN = 65535


class LogConfigError(Exception):
    def __init__(self, message: str, hint: Optional[str] = None):
        super().__init__(message)
        self.message, self.hint = message, hint


# ------------------------------------------------------------------ log targets

def _address(text: str) -> Dict[str, object]:
    """The target of a `log` line: stdout/stderr, fd@N, a UNIX datagram socket
    path, or a UDP address (udp@, udp4@, udp6@, ipv4@, ipv6@, or none)."""
    if text in ("stdout", "stderr"):
        return {"kind": "fd", "fd": 1 if text == "stdout" else 2}
    if text.startswith("fd@"):
        if not text[3:].isdigit():
            raise LogConfigError("invalid file descriptor in '%s'" % text, "e.g. 'fd@1'")
        return {"kind": "fd", "fd": int(text[3:])}
    if text.startswith("ring@"):
        raise LogConfigError("'%s': ring buffers are not supported by keepwarm (yet)" % text,
                             "send to a UNIX datagram socket ('/dev/log'), UDP "
                             "('udp@127.0.0.1:514') or 'stdout'")
    for prefix in ("tcp@", "tcp4@", "tcp6@", "uxst@"):
        if text.startswith(prefix):
            raise LogConfigError("'%s': logging over a stream (TCP, UNIX stream) is not "
                                 "supported by keepwarm (yet)" % text,
                                 "use a datagram target: 'udp@ADDR:PORT' or a UNIX "
                                 "datagram socket path")
    if text.startswith("unix@"):
        text = text[5:]
    if text.startswith("/") or text.startswith("./"):
        return {"kind": "unix", "path": text}
    family = None
    for prefix, fam in (("udp@", None), ("udp4@", socket.AF_INET), ("ipv4@", socket.AF_INET),
                        ("udp6@", socket.AF_INET6), ("ipv6@", socket.AF_INET6)):
        if text.startswith(prefix):
            text, family = text[len(prefix):], fam
            break
    m = re.fullmatch(r"\[([0-9A-Fa-f:.]+)\](?::([0-9]*))?|([^:]*)(?::([0-9]*))?|"
                     r"([0-9A-Fa-f:]*:[0-9A-Fa-f:.]*)", text)
    if not m or not text:
        raise LogConfigError("invalid log target address '%s'" % text,
                             "a UNIX socket path, 'stdout', 'stderr', or ADDR[:PORT]")
    if m.group(5) is not None:
        # a bare IPv6 address: HAProxy reads the last ':' field as the port
        host, _, port = text.rpartition(":")
    else:
        host = m.group(1) if m.group(1) is not None else m.group(3)
        port = m.group(2) if m.group(1) is not None else m.group(4)
    if port is not None and port != "" and not (port.isdigit() and 0 < int(port) < 65536):
        raise LogConfigError("invalid port in log target '%s'" % text)
    try:
        infos = socket.getaddrinfo(host, None, family or socket.AF_UNSPEC, socket.SOCK_DGRAM,
                                   0, socket.AI_NUMERICHOST if not host or host[0].isdigit()
                                   or ":" in host else 0)
    except (socket.gaierror, UnicodeError) as exc:
        raise LogConfigError("could not resolve log target address '%s': %s"
                             % (host, exc), "write an IP address") from None
    fam, _, _, _, sa = infos[0]
    return {"kind": "udp", "host": sa[0], "family": fam,
            "port": int(port) if port else 514}


def _sample(text: str) -> Tuple[Tuple[Tuple[int, int], ...], int]:
    """`sample RANGES:SIZE`, e.g. `1,3-4:5`."""
    ranges_text, colon, size_text = text.partition(":")
    if not colon:
        raise LogConfigError("Missing sample size", "e.g. 'sample 1:2' (one line in two)")
    ranges: List[Tuple[int, int]] = []
    for part in ranges_text.split(","):
        m = re.fullmatch(r"([0-9]+)(?:-([0-9]+))?", part)
        if not m or int(m.group(1)) == 0 or (m.group(2) and int(m.group(2)) < int(m.group(1))):
            raise LogConfigError("invalid sample range '%s'" % part,
                                 "ranges are N or N-M, numbered from 1")
        low, high = int(m.group(1)), int(m.group(2) or m.group(1))
        if any(low <= h and high >= lo for lo, h in ranges):
            raise LogConfigError("sample range '%s' overlaps another one" % part)
        ranges.append((low, high))
    if not size_text.isdigit() or int(size_text) == 0:
        raise LogConfigError("wrong sample size '%s' for sample range '%s'"
                             % (size_text, text))
    size = int(size_text)
    top = max(h for _, h in ranges)
    if size < top:
        raise LogConfigError("sample size %d should be greater or equal to %d the maximum "
                             "of the high ranges limits" % (size, top))
    return tuple(sorted(ranges)), size


def parse_target(args: List[str], lineno: int) -> LogTarget:
    """`log ADDRESS [len N] [format F] [sample R:S] FACILITY [LEVEL [MINLEVEL]]`
    (the words after `log`)."""
    if len(args) < 2:
        raise LogConfigError("expects <address> and <facility> as arguments",
                             "e.g. 'log /dev/log local0' or 'log stdout format raw local0'")
    fields = _address(args[0])
    i = 1
    if args[i] == "len":
        n = args[i + 1] if i + 1 < len(args) else ""
        if not n.isdigit() or not syslog.MIN_LEN <= int(n) <= syslog.MAX_LEN:
            raise LogConfigError("invalid log length '%s', must be between %d and %d"
                                 % (n, syslog.MIN_LEN, syslog.MAX_LEN))
        fields["maxlen"] = int(n)
        i += 2
    if i < len(args) and args[i] == "format":
        f = args[i + 1] if i + 1 < len(args) else ""
        if f not in syslog.FORMATS:
            raise LogConfigError("unknown log format '%s'" % f,
                                 "formats: %s" % ", ".join(syslog.FORMATS))
        fields["format"] = f
        i += 2
    if i < len(args) and args[i] == "sample":
        fields["sample"] = _sample(args[i + 1] if i + 1 < len(args) else "")
        i += 2
    if i >= len(args):
        raise LogConfigError("expects <address> and <facility> as arguments")
    if args[i] not in syslog.FACILITIES:
        raise LogConfigError("unknown log facility '%s'" % args[i],
                             "one of: %s" % " ".join(syslog.FACILITIES))
    fields["facility"] = syslog.FACILITIES.index(args[i])
    i += 1
    for key, what in (("level", "log level"), ("minlevel", "minimum log level")):
        if i < len(args):
            if args[i] not in syslog.LEVELS:
                raise LogConfigError("unknown optional %s '%s'" % (what, args[i]),
                                     "one of: %s" % " ".join(syslog.LEVELS))
            fields[key] = syslog.LEVELS.index(args[i])
            i += 1
    if i < len(args):
        raise LogConfigError("cannot handle unexpected argument '%s'" % args[i])
    return LogTarget(address=args[0], line=lineno, **fields)


def proxy_log_line(targets: Tuple[LogTarget, ...], args: List[str], modifier,
                   global_targets: Tuple[LogTarget, ...], lineno: int
                   ) -> Tuple[LogTarget, ...]:
    """A proxy's `log global`, `no log` or `log ...`: its new list of targets."""
    if modifier == "no":
        if args:
            raise LogConfigError("'no log' does not expect arguments")
        return ()
    if modifier == "default":
        raise LogConfigError("'default log' is not supported", "use 'no log' or 'log global'")
    if args == ["global"]:
        # HAProxy copies the global targets known so far, each once
        return targets + tuple(t for t in global_targets if t not in targets)
    return targets + (parse_target(args, lineno),)


# ------------------------------------------------------------------ proxy keywords

def _one_format(kw: str, args: List[str], ctx: Optional[Ctx]) -> str:
    if not args:
        raise LogConfigError("%s expects an argument." % kw)
    if len(args) > 1:
        raise LogConfigError("%s expects only one argument, don't forget to escape spaces!"
                             % kw, "write '\\ ' for a space, or quote the whole format")
    try:
        compile_logformat(args[0], ctx.replace(phase="log") if ctx else None, mode="log")
    except RuleError as exc:
        raise LogConfigError("%s: %s" % (kw, exc.message), exc.hint) from None
    return args[0]


def proxy_keyword(log: ProxyLog, kw: str, args: List[str], kind: str,
                  ctx: Optional[Ctx] = None) -> Tuple[ProxyLog, Optional[str]]:
    """log-tag, log-format, log-format-sd, error-log-format, capture, declare,
    unique-id-format, unique-id-header: the proxy's new ProxyLog and a warning
    (HAProxy's, or None). ``kind``: defaults, frontend, backend or listen."""
    warning = None
    if kw == "log-tag":
        if not args:
            raise LogConfigError("'log-tag' expects a tag for use in syslog.")
        return dataclasses.replace(log, tag=args[0]), None
    if kw in ("log-format", "log-format-sd", "error-log-format", "unique-id-format"):
        text = _one_format(kw, args, ctx)
        if kind == "backend" and kw != "unique-id-format":
            warning = "'%s' directive is ignored in backends." % kw
        key = {"log-format": "format", "log-format-sd": "format_sd",
               "error-log-format": "error_format", "unique-id-format": "unique_id_format"}[kw]
        if kw == "log-format" and kind == "defaults" and log.format is not None:
            warning = "'log-format' overrides previous '%s' in 'defaults' section." % (
                log.format_from or "log-format")
        return dataclasses.replace(log, **{key: text, "format_from": None} if key == "format"
                                   else {key: text}), warning
    if kw == "unique-id-header":
        if not args:
            raise LogConfigError("unique-id-header expects an argument.")
        return dataclasses.replace(log, unique_id_header=args[0]), None
    if kw == "capture":
        return _capture(log, args, kind)
    if kw == "declare":
        return _declare(log, args, kind)
    raise KeyError(kw)


def _length(text: str, what: str) -> int:
    if not text.isdigit() or not 0 < int(text) <= MAX_CAPTURE_LEN:
        raise LogConfigError("'%s' expects a length between 1 and %d (got '%s')"
                             % (what, MAX_CAPTURE_LEN, text))
    return int(text)


def _capture(log: ProxyLog, args: List[str], kind: str) -> Tuple[ProxyLog, Optional[str]]:
    """capture request|response header NAME len N (capture cookie: not yet)."""
    if args[:1] == ["cookie"]:
        raise LogConfigError("'capture cookie' is not supported by keepwarm (yet)",
                             "capture the header instead: 'capture request header Cookie "
                             "len 64'")
    if len(args) < 2 or args[0] not in ("request", "response") or args[1] != "header":
        raise LogConfigError("'capture' expects 'request header' or 'response header'",
                             "e.g. 'capture request header Host len 32'")
    what = "capture %s" % args[0]
    if kind == "defaults":
        raise LogConfigError("'%s' not allowed in 'defaults' section." % what)
    if len(args) > 5:
        raise LogConfigError("'%s' cannot handle unexpected argument '%s'." % (what, args[5]))
    if len(args) < 5 or args[3] != "len":
        raise LogConfigError("'%s' expects 'header' <header_name> 'len' <len>." % what)
    cap = Capture(args[2], _length(args[4], what))
    if kind == "backend":
        return log, "'capture' ignored because a backend has no frontend capability"
    if args[0] == "request":
        return dataclasses.replace(log, req_captures=log.req_captures + (cap,)), None
    return dataclasses.replace(log, res_captures=log.res_captures + (cap,)), None


def _declare(log: ProxyLog, args: List[str], kind: str) -> Tuple[ProxyLog, Optional[str]]:
    """declare capture request|response len N: a slot for `http-request capture ... id N`."""
    if args[:1] != ["capture"]:
        raise LogConfigError("'declare' only supports 'capture'.")
    if len(args) != 4 or args[1] not in ("request", "response") or args[2] != "len":
        raise LogConfigError("'declare capture' expects 'request' or 'response', then "
                             "'len' <length>", "e.g. 'declare capture request len 32'")
    if kind == "defaults" or kind == "backend":
        raise LogConfigError("'declare' only available in frontend or listen section",
                             "declare captures in a frontend or listen section")
    cap = Capture(None, _length(args[3], "declare capture"))
    if args[1] == "request":
        return dataclasses.replace(log, req_captures=log.req_captures + (cap,)), None
    return dataclasses.replace(log, res_captures=log.res_captures + (cap,)), None


def option(log: ProxyLog, opt: str, rest: List[str], modifier,
           base: Optional[ProxyLog]) -> Tuple[ProxyLog, Optional[str]]:
    """option httplog [clf] | tcplog | dontlognull | dontlog-normal |
    log-separate-errors | log-health-checks | logasap, with `no`/`default`."""
    if opt in ("httplog", "tcplog"):
        if rest and rest != ["clf"] or (opt == "tcplog" and rest):
            raise LogConfigError("keyword '%s' only supports option 'clf'" % opt
                                 if opt == "httplog" else
                                 "'option tcplog' cannot handle unexpected argument '%s'"
                                 % rest[0])
        if modifier:
            raise LogConfigError("negation/default is not supported for option '%s'" % opt)
        name = "option %s%s" % (opt, " clf" if rest else "")
        fmt = TCPLOG if opt == "tcplog" else (httplog.HTTPLOG_CLF if rest else httplog.HTTPLOG)
        return dataclasses.replace(log, format=fmt, format_from=name), None
    if rest:
        raise LogConfigError("'option %s' cannot handle unexpected argument '%s'"
                             % (opt, rest[0]))
    key = LOG_SWITCHES[opt]
    if modifier == "default":
        value = getattr(base, key) if base is not None else False
    else:
        value = modifier != "no"
    return dataclasses.replace(log, **{key: value}), None
