"""The `stats` keywords of a proxy (the HTML statistics page, HAProxy 2.6's
configuration manual 4.2): parsed into `StatsPage`, then compiled into the
request action that answers the page's URI, after the proxy's own
http-request rules, as HAProxy evaluates them.

    stats enable | uri <prefix> | realm <realm> | auth <user>:<password> |
          refresh <delay> | hide-version | show-legends | scope <proxy> | admin ...

`;csv` after the URI (`/stats;csv`) gives `show stat`'s CSV, `;json` its JSON. `stats admin
{if|unless} COND` lets the requests that meet COND change servers from the
page: a form per backend, posted to the URI, sent to the master (which does
what the runtime API's commands do), then a 303 back to `URI;st=DONE`.
"""

from __future__ import annotations

import base64
import dataclasses
from dataclasses import dataclass, field
from typing import Optional, Tuple
from urllib.parse import parse_qs

from _native.constants import R_END
from proxy import stats_page
from proxy.haproxy_stats import proxies, show_stat_csv, show_stat_json


class StatsError(Exception):
    def __init__(self, message: str, hint: Optional[str] = None):
        super().__init__(message)
        self.message = message
        self.hint = hint


@dataclass(frozen=True)
class StatsPage:
    enabled: bool = False
    uri: str = "/haproxy?stats"            # HAProxy's default
    realm: str = "HAProxy Statistics"
    users: Tuple[Tuple[str, str], ...] = ()
    refresh: int = 0
    hide_version: bool = False
    show_legends: bool = False
    scope: Tuple[str, ...] = ()
    admin: Optional[object] = field(default=None, compare=False)   # cond(txn): may change


def stats_keyword(page: Optional[StatsPage], args, time_arg) -> StatsPage:
    """One `stats ...` line of a proxy over what earlier lines set; `time_arg(text)`
    reads a delay in seconds (the parser's, for its errors)."""
    page = page or StatsPage()
    if not args:
        raise StatsError("'stats' expects 'enable', 'uri', 'realm', 'auth', 'scope', "
                         "'refresh', 'hide-version' or 'show-legends'")
    kw, rest = args[0], args[1:]
    one = rest[0] if len(rest) == 1 else None
    if kw == "enable" and not rest:
        return dataclasses.replace(page, enabled=True)
    if kw == "uri" and one:
        return dataclasses.replace(page, enabled=True, uri=one)
    if kw == "realm" and rest:
        return dataclasses.replace(page, enabled=True, realm=" ".join(rest))
    if kw == "auth" and one:
        user, colon, password = one.partition(":")
        if not colon or not user:
            raise StatsError("'stats auth' expects <user>:<password>")
        return dataclasses.replace(page, enabled=True, users=page.users + ((user, password),))
    if kw == "refresh" and one:
        return dataclasses.replace(page, enabled=True, refresh=max(1, int(time_arg(one))))
    if kw == "hide-version" and not rest:
        return dataclasses.replace(page, enabled=True, hide_version=True)
    if kw == "show-legends" and not rest:
        return dataclasses.replace(page, enabled=True, show_legends=True)
    if kw == "scope" and one:
        return dataclasses.replace(page, enabled=True, scope=page.scope + (one,))
    if kw in ("http-request", "show-node", "show-desc", "bind-process"):
        raise StatsError("'stats %s' is not supported by keepwarm (yet)" % kw)
    raise StatsError("'stats %s' expects %s" % (kw, {
        "uri": "a URI prefix", "realm": "a realm", "auth": "<user>:<password>",
        "refresh": "a delay", "scope": "a proxy name"}.get(kw, "no argument"))
        if kw in ("enable", "uri", "realm", "auth", "refresh", "hide-version", "show-legends",
                  "scope") else "unknown keyword 'stats %s'" % kw)


def stats_action(page: StatsPage):
    """The request action that answers the page's URI (None for other requests)."""
    uri = page.uri.encode()
    realm = page.realm.replace('"', "'").encode()
    creds = {base64.b64encode(("%s:%s" % u).encode()) for u in page.users}

    admin = page.admin

    def serve(txn):
        target = txn.target
        if not target.startswith(uri):
            return None
        may_admin = admin is not None and bool(admin(txn))
        if creds:
            got = [v for v in txn.index().get(b"authorization", ()) if v[:6].lower() == b"basic "]
            if not got or got[0][6:].strip() not in creds:
                body = b"<html><body><h1>401 Unauthorized</h1>\nYou need a valid user and " \
                       b"password to access this content.\n</body></html>\n"
                return (401, b"HTTP/1.1 401 Unauthorized\r\ncontent-length: %d\r\n"
                        b"content-type: text/html\r\ncache-control: no-cache\r\n"
                        b"www-authenticate: Basic realm=\"%s\"\r\n\r\n" % (len(body), realm)
                        + body)
        doc, config = txn.world.stats()
        if doc is None:
            doc = {"info": {}, "frontends": {}, "backends": {}}
        if txn.method == b"POST" and may_admin:
            return _admin_post(txn, config, uri, page.scope)
        if target[len(uri):].startswith(b";csv"):
            body = show_stat_csv(doc, config, scope=page.scope).encode()
            ctype = b"text/plain"
        elif target[len(uri):].startswith(b";json"):
            body = show_stat_json(doc, config, scope=page.scope).encode()
            ctype = b"application/json"
        else:
            done = b";st=DONE" in target[len(uri):]
            body = stats_page.render(doc, config, page, admin=may_admin, done=done)
            ctype = b"text/html"
        return (200, b"HTTP/1.1 200 OK\r\ncache-control: no-cache\r\ncontent-type: %s\r\n"
                b"content-length: %d\r\n\r\n" % (ctype, len(body)) + body)
    serve.stats_service = True
    return serve


def _admin_post(txn, config, uri, scope=()):
    """A `stats admin` form: b=<backend or #id>, s=<server> (repeated), action=...;
    sent to the master, then back to the page."""
    r = txn.res
    body = bytes(txn.data[r[R_END]:]) if r.__class__ is not tuple else b""
    form = parse_qs(body.decode("latin-1"), keep_blank_values=True)
    backend = (form.get("b") or [""])[0]
    if backend.startswith("#"):
        ids = {"#%d" % px.iid: px.name for px in proxies(config) if px.be is not None}
        backend = ids.get(backend, "")
    action = (form.get("action") or [""])[0]
    servers = form.get("s") or []
    if scope and backend not in scope:
        backend = ""                     # (a backend the page does not show)
    if backend and servers and action in ("ready", "drain", "maint", "dhlth", "ehlth",
                                          "shutdown"):
        txn.world.admin({"backend": backend, "servers": servers, "action": action})
        state = b"DONE"
    else:
        state = b"NONE"
    return (303, b"HTTP/1.1 303 See Other\r\ncontent-length: 0\r\ncache-control: no-cache\r\n"
            b"location: %s;st=%s\r\n\r\n" % (uri, state))


def serves_stats(config) -> bool:
    """Does a proxy show the statistics (the page, the Prometheus exporter)? The
    master then sends the workers its report every second."""
    return any(getattr(action, "stats_service", False)
               for px in config.frontends + config.backends
               for _, action in px.request_actions)
