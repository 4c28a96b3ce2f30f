"""Parse ``bind`` and ``server`` addresses the way HAProxy writes them."""

from __future__ import annotations

import ipaddress
import re
from typing import List, Optional, Tuple

_LABEL = r"[A-Za-z0-9_](?:[A-Za-z0-9_-]*[A-Za-z0-9_])?"
_HOSTNAME = re.compile(r"(?=.{1,253}$)%s(?:\.%s)*\.?$" % (_LABEL, _LABEL))


class AddressError(ValueError):
    """An address HAProxy would refuse, or one keepwarm does not support (yet)."""

    def __init__(self, message: str, unsupported: bool = False):
        super().__init__(message)
        self.unsupported = unsupported


def _strip_family(text: str) -> Tuple[str, Optional[int]]:
    for prefix, family in (("ipv4@", 4), ("ipv6@", 6)):
        if text.startswith(prefix):
            return text[len(prefix):], family
    if "@" in text:
        kind = text.split("@", 1)[0]
        raise AddressError("address family '%s@' is not supported by keepwarm (yet)" % kind,
                           unsupported=True)
    if text.startswith("/"):
        raise AddressError("UNIX socket addresses are not supported by keepwarm (yet)",
                           unsupported=True)
    return text, None


def _split_host_port(text: str) -> Tuple[str, str]:
    """Split ``host:port``, ``[v6]:port`` or HAProxy's ``v6:port`` (last colon)."""
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            raise AddressError("unmatched '[' in address '%s'" % text)
        host, rest = text[1:end], text[end + 1:]
        if rest and not rest.startswith(":"):
            raise AddressError("invalid address '%s'" % text)
        return host, rest[1:]
    if ":" not in text:
        return text, ""
    host, _, port = text.rpartition(":")
    return host, port


def _check_host(host: str, family: Optional[int], original: str) -> str:
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        if family or not _HOSTNAME.match(host):
            raise AddressError("invalid address '%s'" % original)
        return host                     # a hostname: the proxy resolves it
    if family and ip.version != family:
        raise AddressError("'%s' is not an IPv%d address" % (host, family))
    return host


def _port(text: str, original: str) -> int:
    if not (text.isascii() and text.isdigit()) or len(text.lstrip("0")) > 5:
        raise AddressError("invalid port '%s' in '%s'" % (text[:20], original[:60]))
    port = int(text.lstrip("0") or "0")
    if not 1 <= port <= 65535:
        raise AddressError("invalid port %d in '%s' (1-65535)" % (port, original))
    return port


def unix_bind_path(text: str) -> Optional[str]:
    """The path of a UNIX-socket bind (``unix@/run/x.sock`` or ``/run/x.sock``), or None."""
    if text.startswith("unix@"):
        text = text[5:]
    elif not text.startswith("/"):
        return None
    if not text or "," in text:
        raise AddressError("a UNIX socket bind takes one path ('%s')" % text)
    return text


def parse_bind_address(text: str) -> List[Tuple[str, int]]:
    """``*:80``, ``:80``, ``ADDR:PORT``, ``ADDR:P1-P2`` -> [(host, port), ...]."""
    out: List[Tuple[str, int]] = []
    for item in text.split(","):
        if not item:
            raise AddressError("empty address in '%s'" % text)
        body, family = _strip_family(item)
        host, port = _split_host_port(body)
        if not port:
            raise AddressError("missing port in bind address '%s'" % item)
        if host in ("", "*"):
            host = "::" if family == 6 else "0.0.0.0"
        else:
            host = _check_host(host, family, item)
        if "-" in port:
            low_s, _, high_s = port.partition("-")
            low, high = _port(low_s, item), _port(high_s, item)
            if high < low:
                raise AddressError("invalid port range '%s' in '%s'" % (port, item))
            out.extend((host, p) for p in range(low, high + 1))
        else:
            out.append((host, _port(port, item)))
    return out


def parse_server_address(text: str) -> Tuple[str, int]:
    """``ADDR:PORT``, ``[v6]:PORT``, ``host:PORT`` -> (host, port)."""
    body, family = _strip_family(text)
    host, port = _split_host_port(body)
    if not host:
        raise AddressError("missing address in '%s'" % text)
    if not port:
        raise AddressError("server address '%s' has no port; HAProxy would reuse the "
                           "client's destination port, which keepwarm does not support "
                           "(yet)" % text, unsupported=True)
    if port[0] in "+-":
        raise AddressError("port offsets ('%s') are not supported by keepwarm (yet)" % text,
                           unsupported=True)
    if "-" in port:
        raise AddressError("port ranges are not allowed in a server address ('%s')" % text)
    return _check_host(host, family, text), _port(port, text)


def parse_ip(text: str) -> str:
    """A bare IPv4/IPv6 address (server ``addr``)."""
    try:
        return str(ipaddress.ip_address(text.strip("[]")))
    except ValueError:
        raise AddressError("'%s' is not an IPv4 or IPv6 address" % text) from None
