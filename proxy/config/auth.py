"""`http-request auth [realm REALM]`: answer 401 with a Basic challenge, compiled at
load into an action with `proxy/config/http_actions.py`'s contract:
`action(txn) -> (status, response bytes)`.

The page is the proxy's 401 page (an `errorfile 401`, `errorfiles`, `http-error
status 401`) or HAProxy's own, with every `www-authenticate` header replaced by
one challenge after the other headers. Measured on HAProxy 2.6.12::

    HTTP/1.1 401 Unauthorized\r\n
    content-length: 112\r\n
    cache-control: no-cache\r\n
    content-type: text/html\r\n
    www-authenticate: Basic realm="fe"\r\n
    \r\n
    <html><body><h1>401 Unauthorized</h1>\n
    You need a valid user and password to access this content.\n
    </body></html>\n

The realm defaults to the name of the proxy whose rule it is (a backend's rule
says the backend's name); the connection stays open when the request allows it.
HAProxy answers 407 instead only under `option http-use-proxy-header`, which
keepwarm does not have.
"""

from __future__ import annotations

from typing import List

from proxy.rules import RuleError

_BODY = (b"<html><body><h1>401 Unauthorized</h1>\nYou need a valid user and password to "
         b"access this content.\n</body></html>\n")
DEFAULT_401 = (b"HTTP/1.1 401 Unauthorized\r\ncontent-length: %d\r\ncache-control: no-cache\r\n"
               b"content-type: text/html\r\n\r\n" % len(_BODY) + _BODY)


def challenge(page: bytes, realm: bytes) -> bytes:
    """`page` (a whole response) with its www-authenticate headers replaced by a Basic
    challenge for `realm`, placed last."""
    end = page.find(b"\r\n\r\n")
    if end < 0:
        return page                  # an empty errorfile: close without a response
    lines = [line for line in page[:end].split(b"\r\n")
             if not line.lower().startswith(b"www-authenticate:")]
    lines.append(b'www-authenticate: Basic realm="%s"' % realm)
    return b"\r\n".join(lines) + page[end:]


def compile_auth(args: List[str], ctx, keyword: str = "http-request"):
    """`args` after `auth` (the condition already taken off): `[realm REALM]`."""
    realm = None
    if args:
        if args[0] != "realm" or len(args) != 2:
            raise RuleError("'%s auth' expects only 'realm <realm>' (found '%s')"
                            % (keyword, " ".join(args)),
                            "e.g. '%s auth realm \"Admin area\" unless auth_ok'" % keyword)
        realm = args[1].encode("utf-8", "surrogateescape")
    # The proxy's error pages, complete once the whole file is read (errorfiles
    # sections may come later): read at the first answer, then kept.
    pages = getattr(ctx, "error_pages", None)
    if pages is None:
        pages = {}
    name = getattr(ctx, "proxy_name", None)
    if realm is None and name is not None:
        realm = name.encode("utf-8", "surrogateescape")
    built = {}

    def auth(txn):
        r = realm if realm is not None else txn.fe_name     # a defaults section's rule
        page = built.get(r)
        if page is None:
            page = built[r] = challenge(pages.get(401, DEFAULT_401), r)
        return 401, page
    return auth
