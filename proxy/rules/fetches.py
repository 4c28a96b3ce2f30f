"""The sample fetches: HAProxy 2.6's names, arguments and types (section 7.3).

Each ``make(args, ctx)`` returns ``fn(txn)`` with the arguments bound; header
fetches also have a ``many`` form that yields every occurrence, which ACLs
use (``hdr_beg(x) a`` matches when any value does).
"""

from __future__ import annotations

import binascii
import re

from .codegen import attach
from .errors import RuleError
from .sample import Arg, T_ANY, T_BOOL, T_INT, T_IP, T_STR, _str2ip as str2ip, fetch, read_int

S, I = Arg.STR, Arg.INT


# ------------------------------------------------------------------ constants and internal

@fetch("always_true", T_BOOL, match="bool")
def _always_true(args, ctx):
    return lambda txn: True


@fetch("always_false", T_BOOL, match="bool")
def _always_false(args, ctx):
    return lambda txn: False


@fetch("int", T_INT, (I,), 1)
def _int(args, ctx):
    n = args[0]
    return lambda txn: n


@fetch("str", T_STR, (S,), 1)
def _str(args, ctx):
    s = args[0].encode("utf-8", "surrogateescape")
    return lambda txn: s


@fetch("bool", T_BOOL, (I,), 1)
def _bool(args, ctx):
    b = bool(args[0])
    return lambda txn: b


@fetch("env", T_STR, (S,), 1)
def _env(args, ctx):
    # Read once at load: workers never see their environment change after it.
    v = ctx.env.get(args[0])
    v = None if v is None else v.encode("utf-8", "surrogateescape")
    return lambda txn: v


@fetch("var", T_ANY, (Arg.VAR, S), 1)
def _var(args, ctx):
    (scope, name) = args[0]
    default = args[1].encode("utf-8", "surrogateescape") if len(args) > 1 else None
    if scope == "proc":
        return lambda txn: txn.world.proc_vars.get(name, default)
    attr = {"sess": "sess_vars", "txn": "txn_vars", "req": "req_vars", "res": "res_vars"}[scope]

    def read(txn):
        return getattr(txn, attr).get(name, default)
    return read


@fetch("nbsrv", T_INT, (Arg.BACKEND,), 0)
def _nbsrv(args, ctx):
    if args:
        name = args[0]
        return lambda txn: txn.world.nbsrv(name)
    if ctx.proxy == "frontend":
        # Measured: "proxy 'x', referenced in arg 1 of sample fetch keyword 'nbsrv'
        # ..., has not backend capability."
        raise RuleError("fetch method 'nbsrv' without a backend name reads this proxy's "
                        "servers, and a frontend has none", "name one: nbsrv(BACKEND)")
    return lambda txn: txn.world.nbsrv(txn.be_name.decode("ascii", "replace"))


@fetch("fe_name", T_STR)
def _fe_name(args, ctx):
    return attach(lambda txn: txn.fe_name, "txn.fe_name")


@fetch("be_name", T_STR, use="be")
def _be_name(args, ctx):
    return lambda txn: txn.be_name or None


@fetch("src", T_IP, match="ip")
def _src(args, ctx):
    return attach(lambda txn: txn.src, "txn.src")


@fetch("src_port", T_INT)
def _src_port(args, ctx):
    return attach(lambda txn: txn.src_port, "txn.src_port")


@fetch("dst", T_IP, match="ip")
def _dst(args, ctx):
    return attach(lambda txn: txn.dst, "txn.dst")


@fetch("dst_port", T_INT)
def _dst_port(args, ctx):
    return attach(lambda txn: txn.dst_port, "txn.dst_port")


# ------------------------------------------------------------------ TLS (bind ... ssl)
# `txn.xprt.tls`: the client connection's SSLSocket once its handshake is done,
# None on a plain connection (every ssl_* fetch then finds nothing, ssl_fc false).

def _tls(txn):
    x = txn.xprt
    return None if x is None else x.tls


@fetch("ssl_fc", T_BOOL, match="bool")
def _ssl_fc(args, ctx):
    return lambda txn: _tls(txn) is not None


def _tls_fetch(name, type_, get, match=None):
    def make(args, ctx):
        def fetch_it(txn):
            tls = _tls(txn)
            return None if tls is None else get(tls)
        return fetch_it
    fetch(name, type_, match=match)(make)


_DN_SHORT = {"countryName": "C", "stateOrProvinceName": "ST", "localityName": "L",
             "organizationName": "O", "organizationalUnitName": "OU", "commonName": "CN",
             "emailAddress": "emailAddress", "domainComponent": "DC"}


def _dn(cert, which):
    """A certificate's subject or issuer as HAProxy writes it: /C=FR/O=x/CN=y."""
    if not cert:
        return None
    parts = ["/%s=%s" % (_DN_SHORT.get(k, k), v) for rdn in cert.get(which, ()) for k, v in rdn]
    return "".join(parts).encode("utf-8", "surrogateescape")


def _text(v):
    return None if v is None else v.encode("ascii", "replace")


_tls_fetch("ssl_fc_sni", T_STR, lambda t: _text(getattr(t, "sni", None)))
_tls_fetch("ssl_fc_protocol", T_STR, lambda t: _text(t.version()))
_tls_fetch("ssl_fc_cipher", T_STR, lambda t: _text((t.cipher() or (None,))[0]))
_tls_fetch("ssl_fc_alpn", T_STR, lambda t: _text(t.selected_alpn_protocol()))
_tls_fetch("ssl_c_used", T_BOOL, lambda t: bool(t.getpeercert()), match="bool")
# A certificate that fails verification ends the handshake: a used one verified (0).
_tls_fetch("ssl_c_verify", T_INT, lambda t: 0)
_tls_fetch("ssl_c_s_dn", T_STR, lambda t: _dn(t.getpeercert(), "subject"))
_tls_fetch("ssl_c_i_dn", T_STR, lambda t: _dn(t.getpeercert(), "issuer"))


# ------------------------------------------------------------------ request line

@fetch("method", T_STR, use="req_info", match="meth")
def _method(args, ctx):
    return attach(lambda txn: txn.method, "txn.method")


@fetch("path", T_STR, use="req")
def _path(args, ctx):
    return attach(lambda txn: txn.path, "txn.path")


@fetch("url", T_STR, use="req")
def _url(args, ctx):
    return attach(lambda txn: txn.target, "txn.target")


def _url_host(txn):
    """The host of an absolute-form target ('http://1.2.3.4:8080/x'), and its port."""
    t = txn.target
    s = t.find(b"://")
    if s < 0:
        return None, None
    end = len(t)
    for c in (b"/", b"?"):
        i = t.find(c, s + 3)
        if 0 <= i < end:
            end = i
    host = t[s + 3:end].rpartition(b"@")[2]
    if host.startswith(b"["):
        h, _, rest = host[1:].partition(b"]")
        port = rest[1:] if rest.startswith(b":") else b""
    else:
        h, _, port = host.partition(b":")
    return h, (int(port) if port.isdigit() else 80 if t[:s].lower() == b"http" else
               443 if t[:s].lower() == b"https" else None)


@fetch("url_ip", T_IP, use="req", match="ip")
def _url_ip(args, ctx):
    def ip(txn):
        host = _url_host(txn)[0]
        return None if host is None else str2ip(host)
    return ip


@fetch("url_port", T_INT, use="req")
def _url_port(args, ctx):
    return lambda txn: _url_host(txn)[1]


@fetch("query", T_STR, use="req")
def _query(args, ctx):
    return attach(lambda txn: txn.query, "txn.query")


@fetch("base", T_STR, use="req")
def _base(args, ctx):
    # Measured against HAProxy 2.6.12: 'http://h.com' and '*' give the Host alone.
    def base(txn):
        path = txn.path
        host = txn.index().get(b"host")
        if host:
            return host[0] + (path or b"")
        return path
    return base


@fetch("req.ver", T_STR, use="req", aliases=("req_ver",))
def _req_ver(args, ctx):
    return lambda txn: txn.version


@fetch("req.proto_http", T_BOOL, use="req", match="bool")
def _proto_http(args, ctx):
    return lambda txn: True


@fetch("wait_end", T_BOOL, match="bool")
def _wait_end(args, ctx):
    return lambda txn: True


@fetch("req.len", T_INT, use="req", aliases=("req_len",))
def _req_len(args, ctx):
    # The request bytes in hand after the head: the body's first bytes.
    def length(txn):
        r = txn.res
        return 0 if r.__class__ is tuple else max(0, len(txn.data) - r[0])
    return length


@fetch("status", T_INT, use="res_info")
def _status(args, ctx):
    return lambda txn: txn.status


# ------------------------------------------------------------------ headers

def split_values(value: bytes):
    """A field's comma-separated values, trimmed, commas inside quotes kept."""
    if b"," not in value:
        return [value.strip(b" \t")]
    out, start, quoted, i, n = [], 0, False, 0, len(value)
    while i < n:
        c = value[i]
        if c == 0x22:
            quoted = not quoted
        elif c == 0x5C and quoted:
            i += 1
        elif c == 0x2C and not quoted:
            out.append(value[start:i].strip(b" \t"))
            start = i + 1
        i += 1
    out.append(value[start:].strip(b" \t"))
    return out


def _pick(values, occ):
    """HAProxy's <occ>: 1 is the first, -1 the last, 0 (or beyond) none."""
    if occ > 0:
        return values[occ - 1] if occ <= len(values) else None
    if occ < 0:
        return values[occ] if -occ <= len(values) else None
    return None


def _header_fetch(side, full):
    """hdr/req.hdr/req.fhdr/res.hdr...: `side` picks the header index, `full`
    keeps whole lines (fhdr) instead of comma-separated values."""
    def values_of(txn, key):
        index = txn.index() if side(txn) else txn.res_index()
        if key is None:
            lines = [v for vs in index.values() for v in vs]
        else:
            lines = index.get(key)
            if not lines:
                return ()
        if full:
            return lines
        for line in lines:
            if b"," in line:
                return [v for line in lines for v in split_values(line)]
        return lines                 # the parser trimmed them already: nothing to split

    def make(args, ctx):
        key = args[0].lower().encode("latin-1") if args and args[0] else None
        occ = args[1] if len(args) > 1 else -1

        def one(txn):
            return _pick(values_of(txn, key), occ)
        return one

    def many(args, ctx):
        key = args[0].lower().encode("latin-1") if args and args[0] else None
        if len(args) > 1:
            occ = args[1]
            return lambda txn: [v for v in (_pick(values_of(txn, key), occ),) if v is not None]
        return attach(lambda txn: values_of(txn, key), "{values_of}(txn, {key})",
                      values_of=values_of, key=key)
    return make, many, values_of


def _is_req(txn):
    return True


def _is_res(txn):
    return False


def _register_headers():
    for names, side, full, use in (
            (("req.hdr",), _is_req, False, "req"),
            (("req.fhdr",), _is_req, True, "req"),
            (("res.hdr", "shdr"), _is_res, False, "res"),
            (("res.fhdr",), _is_res, True, "res")):
        make, many, values_of = _header_fetch(side, full)
        fetch(names[0], T_STR, (S, I), 0, many=many, use=use, aliases=names[1:])(make)
        cnt = _counter(values_of)
        prefix = names[0]
        fetch(prefix + "_cnt", T_INT, (S,), 0, use=use)(cnt)
        fetch(prefix + "_val", T_INT, (S, I), 0, use=use)(_valued(make))
        if not full:
            make_ip, many_ip = _ip_of(make, many)
            fetch(prefix + "_ip", T_IP, (S, I), 0, many=many_ip, use=use, match="ip")(make_ip)
    # hdr() & co read the request in request rules and the response in response
    # rules, as HAProxy's direction-dependent forms do; resolved at compile time.
    for name, req_name, res_name in (("hdr", "req.hdr", "res.hdr"),
                                     ("hdr_cnt", "req.hdr_cnt", "res.hdr_cnt"),
                                     ("hdr_val", "req.hdr_val", "res.hdr_val"),
                                     ("fhdr", "req.fhdr", "res.fhdr"),
                                     ("hdr_ip", "req.hdr_ip", "res.hdr_ip")):
        _directional(name, req_name, res_name)


def header_ip(v: bytes):
    """A header value as an address (RFC 7239 forms; an IPv4 address may carry a
    ':port', dropped); anything else is no address."""
    if v[:1] == b"[" or v[:1] == b'"':
        v = v.strip(b'"')
        if v[:1] == b"[":
            v = v[1:].partition(b"]")[0]
    elif v.count(b":") == 1:
        v, _, port = v.partition(b":")
        if not port.isdigit() or int(port) > 65535:
            return None
    return str2ip(v)


def _ip_of(make_str, many_str):
    def make(args, ctx):
        one = make_str(args, ctx)

        def value(txn):
            v = one(txn)
            return None if v is None else header_ip(v)
        return value

    def many(args, ctx):
        every = many_str(args, ctx)

        def values(txn):
            return [ip for ip in map(header_ip, every(txn)) if ip is not None]
        return values
    return make, many


def _counter(values_of):
    def make(args, ctx):
        key = args[0].lower().encode("latin-1") if args and args[0] else None
        return lambda txn: len(values_of(txn, key))
    return make


def _valued(make_str):
    def make(args, ctx):
        one = make_str(args, ctx)

        def value(txn):
            v = one(txn)
            return None if v is None else read_int(v)
        return value
    return make


def _directional(name, req_name, res_name):
    from .sample import FETCHES
    req, res = FETCHES[req_name], FETCHES[res_name]

    def pick(ctx):
        return res if ctx.phase == "res" else req

    def make(args, ctx):
        return pick(ctx).make(args, ctx)

    def many(args, ctx):
        f = pick(ctx)
        return (f.many or (lambda a, c: None))(args, ctx)
    fetch(name, req.type, req.spec, req.nmin, many=many if req.many else None, use="dir",
          match=req.match)(make)


_register_headers()


# ------------------------------------------------------------------ cookies and URL parameters

def _cookies(txn, side):
    index = txn.index() if side == "req" else txn.res_index()
    out = []
    if side == "req":
        for line in index.get(b"cookie", ()):
            for part in line.split(b";"):
                name, eq, value = part.partition(b"=")
                if eq:
                    out.append((name.strip(b" \t"), value.strip(b" \t")))
    else:
        for line in index.get(b"set-cookie", ()):
            name, eq, value = line.split(b";", 1)[0].partition(b"=")
            if eq:
                out.append((name.strip(b" \t"), value.strip(b" \t")))
    return out


def _register_cookies():
    for names, side in ((("req.cook", "cook"), "req"), (("res.cook", "scook"), "res")):
        def make(args, ctx, side=side):
            name = args[0].encode("latin-1") if args and args[0] else None

            def last(txn):
                found = None
                for n, v in _cookies(txn, side):
                    if name is None:
                        return v            # no name: the first cookie
                    if n == name:
                        found = v           # a name: its last occurrence
                return found
            return last

        def many(args, ctx, side=side):
            name = args[0].encode("latin-1") if args and args[0] else None
            return lambda txn: [v for n, v in _cookies(txn, side) if name is None or n == name]

        def count(args, ctx, many=many):
            every = many(args, ctx)
            return lambda txn: len(every(txn))

        def value(args, ctx, make=make):
            one = make(args, ctx)
            return lambda txn: None if (v := one(txn)) is None else read_int(v)
        fetch(names[0], T_STR, (S,), 0, many=many, use=side, aliases=names[1:])(make)
        fetch(names[0] + "_cnt", T_INT, (S,), 0, use=side, aliases=(names[1] + "_cnt",))(count)
        fetch(names[0] + "_val", T_INT, (S,), 0, use=side, aliases=(names[1] + "_val",))(value)


_register_cookies()


def _params(txn, delim):
    target = txn.target
    q = target.find(b"?")
    if delim:
        d = target.find(delim)
        if d >= 0 and (q < 0 or d < q):
            q = d
    if q < 0:
        return ()
    qs = target[q + 1:]
    if delim:
        qs = qs.replace(delim, b"&")
    out = []
    for part in qs.split(b"&"):
        name, eq, value = part.partition(b"=")
        if eq:
            out.append((name, value))
    return out


def _url_param_args(args):
    name = args[0].encode("latin-1") if args and args[0] else None
    delim = args[1].encode("latin-1")[:1] if len(args) > 1 else b""
    return name, delim


@fetch("url_param", T_STR, (S, S), 0, use="req", aliases=("urlp",),
       many=lambda args, ctx: _url_param_many(args))
def _url_param(args, ctx):
    name, delim = _url_param_args(args)

    def first(txn):
        for n, v in _params(txn, delim):
            if name is None or n == name:
                return v
        return None
    return first


def _url_param_many(args):
    name, delim = _url_param_args(args)
    return lambda txn: [v for n, v in _params(txn, delim) if name is None or n == name]


@fetch("urlp_val", T_INT, (S, S), 0, use="req")
def _urlp_val(args, ctx):
    one = _url_param(args, ctx)
    return lambda txn: None if (v := one(txn)) is None else read_int(v)


# ------------------------------------------------------------------ HTTP Basic authentication

def basic_credentials(txn):
    """(user, password) from the request's Authorization header, HTTP Basic only, as
    HAProxy 2.6.12 reads it (measured): the first value of the first header, the scheme
    in any case then one or more spaces, strict base64 (padding included), a ':'."""
    lines = txn.index().get(b"authorization")
    if not lines:
        return None
    value = split_values(lines[0])[0]
    scheme, space, rest = value.partition(b" ")
    if not space or scheme.lower() != b"basic":
        return None
    rest = rest.lstrip(b" ")
    if not rest or len(rest) % 4 or not _BASE64.fullmatch(rest):
        return None
    user, colon, password = binascii.a2b_base64(rest).partition(b":")
    return (user, password) if colon else None


_BASE64 = re.compile(rb"[A-Za-z0-9+/]*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?")


def _userlist(args, ctx, what):
    lists = getattr(ctx, "userlists", None)
    if lists is None:
        raise RuleError("unable to find userlist '%s' referenced in arg 1 of %s"
                        % (args[0], what), "declare it: 'userlist %s'" % args[0])
    return lists.want(args[0])


def _valid_user(get_list):
    def user(txn):
        creds = basic_credentials(txn)
        if creds is None or not get_list().check(*creds):
            return None
        return creds[0]
    return user


@fetch("http_auth", T_BOOL, (S,), 1, use="req", match="bool")
def _http_auth(args, ctx):
    valid = _valid_user(_userlist(args, ctx, "sample fetch 'http_auth'"))
    return lambda txn: valid(txn) is not None


def _http_auth_groups(args, ctx):
    get_list = _userlist(args, ctx, "sample fetch 'http_auth_group'")
    valid = _valid_user(get_list)

    def groups(txn):
        user = valid(txn)
        return () if user is None else get_list().groups_of(user)
    return groups


# The sample is the user's name; an ACL matches the user's groups against its
# patterns (HAProxy's group match), which the config parser checks at load.
@fetch("http_auth_group", T_STR, (S,), 1, use="req", many=_http_auth_groups)
def _http_auth_group(args, ctx):
    return _valid_user(_userlist(args, ctx, "sample fetch 'http_auth_group'"))


@fetch("http_auth_user", T_STR, use="req")
def _http_auth_user(args, ctx):
    return lambda txn: None if (c := basic_credentials(txn)) is None else c[0]


@fetch("http_auth_pass", T_STR, use="req")
def _http_auth_pass(args, ctx):
    return lambda txn: None if (c := basic_credentials(txn)) is None else c[1]
