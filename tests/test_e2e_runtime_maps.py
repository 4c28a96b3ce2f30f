"""Maps changed through the runtime API (issue 18): `show map`, `add map`, `set map`,
`del map`, `clear map`, `get map` on a running keepwarm, taking effect in every
worker at once (a host map routing to backends), with HAProxy 2.6.12's replies."""

from proxy.control import request_text
from support.backend import Reply
from support.client import HttpClient
from support.proxy import free_port


def prelude(tmp_path):
    """global (2 workers, the test's stats socket) and defaults."""
    return ("global\n    nbthread 2\n    stats socket %s\n" % (tmp_path / "kw0" / "stats.sock")
            + "defaults\n    mode http\n    timeout connect 2s\n    timeout client 5s\n"
            "    timeout server 5s\n")


def routed(port, host, n=6):
    """Which backends answered `n` requests for `host`, each on a new connection
    (both workers take some)."""
    got = set()
    for _ in range(n):
        with HttpClient(port) as c:
            got.add(c.request("GET", "/", host=host).body)
    return got


def test_map_changes_reach_every_worker(backend_factory, proxy_factory, tmp_path):
    web = backend_factory("web", lambda be, req: Reply(body=b"web"))
    api = backend_factory("api", lambda be, req: Reply(body=b"api"))
    hosts = tmp_path / "hosts.map"
    hosts.write_text("# host -> backend\napi.example.com api\n")
    port = free_port()
    text = (prelude(tmp_path) + "frontend fe\n    bind 127.0.0.1:%d\n"
            "    use_backend %%[req.hdr(host),lower,map(%s,web)]\n" % (port, hosts) +
            "backend web\n    server s 127.0.0.1:%d\n" % web.port +
            "backend api\n    server s 127.0.0.1:%d\n" % api.port)
    kw = proxy_factory(config=text, bind_ports=[port], nbproc=2)
    m = str(hosts)
    listing = request_text(kw.sock, "show map").splitlines()
    assert listing[0] == "# id (file) description"
    assert ("(%s)" % m) in listing[1] and listing[1].endswith("entry_cnt=1")
    assert routed(port, "new.example.com") == {b"web"}
    assert request_text(kw.sock, "add map %s new.example.com api" % m) == "\n"
    assert routed(port, "new.example.com") == {b"api"}
    entries = request_text(kw.sock, "show map %s" % m).splitlines()
    assert [e.split(" ", 1)[1] for e in entries if e] == ["api.example.com api",
                                                          "new.example.com api"]
    assert request_text(kw.sock, "get map %s new.example.com" % m) == (
        'type=str, case=sensitive, found=yes, idx=tree, key="new.example.com", '
        'value="api", type="str"\n\n')
    assert request_text(kw.sock, "set map %s new.example.com web" % m) == "\n"
    assert routed(port, "new.example.com") == {b"web"}
    assert request_text(kw.sock, "del map %s api.example.com" % m) == "\n"
    assert request_text(kw.sock, "del map %s api.example.com" % m) == "Key not found.\n\n"
    assert routed(port, "api.example.com") == {b"web"}
    assert request_text(kw.sock, "clear map #%s" % listing[1].split()[0]) == "\n"
    assert request_text(kw.sock, "show map %s" % m) == "\n"
    assert request_text(kw.sock, "show map /nope") == \
        "Unknown map identifier. Please use #<id> or <file>.\n\n"


def test_acl_pattern_files_change_in_every_worker(backend_factory, proxy_factory, tmp_path):
    web = backend_factory("web", lambda be, req: Reply(body=b"web"))
    paths = tmp_path / "blocked.acl"
    paths.write_text("/admin\n")
    port = free_port()
    text = (prelude(tmp_path) + "frontend fe\n    bind 127.0.0.1:%d\n"
            "    acl blocked path_beg -f %s\n"
            "    http-request deny if blocked\n    default_backend web\n" % (port, paths) +
            "backend web\n    server s 127.0.0.1:%d\n" % web.port)
    kw = proxy_factory(config=text, bind_ports=[port], nbproc=2)

    def statuses(path):
        got = set()
        for _ in range(6):
            with HttpClient(port) as c:
                got.add(c.request("GET", path).status)
        return got
    a = str(paths)
    assert statuses("/secret/x") == {200} and statuses("/admin/x") == {403}
    assert request_text(kw.sock, "add acl %s /secret" % a) == "\n"
    assert statuses("/secret/x") == {403}
    assert request_text(kw.sock, "get acl %s /secret/x" % a) == \
        "type=beg, case=sensitive, match=yes\n\n"
    assert [ln.split(" ", 1)[1] for ln in request_text(kw.sock, "show acl %s" % a).split("\n")
            if ln] == ["/admin", "/secret"]
    assert request_text(kw.sock, "del acl %s /admin" % a) == "\n"
    assert statuses("/admin/x") == {200}
    assert request_text(kw.sock, "show acl").splitlines()[1].endswith("entry_cnt=1")
    assert request_text(kw.sock, "add acl /nope /x") == \
        "Unknown ACL identifier. Please use #<id> or <file>.\n\n"
