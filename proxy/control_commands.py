"""The control socket's command grammar: a request in, the master's action called, the reply out.

Two grammars, one per audience: msgpack maps from the CLI (`{"cmd": "stats"}`,
answered with a map), and HAProxy's stats-socket text lines for people and tools
(`show stat`, `set server be/srv state drain`, answered with HAProxy 2.6's texts,
each reply ended by an empty line). Tokenizing, usage errors and the exact reply
texts live here; what changes state lives in the master, reached through a small
set of methods on the object passed in (`actions`), so the grammar is tested
without a master:

    report()                        the statistics (proxy.stats' report: info, frontends, backends)
    info()                          the process's information (pid, version, uptime, workers…)
    config                          the configuration running (proxy.config.model.Config)
    configured_weight(be, srv)      the weight the configuration gives a server; KeyError if none
    set_server_admin(be, srv, st)   put a server in state `st` (one of ADMIN_STATES); KeyError if none
    set_server_weight(be, srv, w)   give a server weight `w` (0..256) in every worker

The stats socket's commands as HAProxy's tools send them: ../shared/RUNTIME-API-NOTES.md.
"""

import time

from proxy import haproxy_stats
from proxy.config.lexer import decimal
from proxy.health import ADMIN_STATES
from proxy.rules import refs as map_refs
from proxy.stats import format_table
from proxy.tls import tickets

MAX_WEIGHT = 256             # HAProxy's limit for `weight` and `set weight`

HELP = ("The following commands are valid at this level:\n"
        "  help                                    : this message\n"
        "  prompt                                  : toggle interactive mode with prompt\n"
        "  quit                                    : disconnect\n"
        "  set timeout cli <delay>                 : change this session's idle timeout (s)\n"
        "  show info                               : report information about the running "
        "process\n"
        "  show stat [<iid> <type> <sid>]          : report counters for each proxy and server\n"
        "  show servers state [<backend>]          : dump volatile server information\n"
        "  show backend                            : list backends in the current running "
        "config\n"
        "  show errors                             : the last request each frontend refused\n"
        "  show sess                               : the client connections of every worker\n"
        "  show pools | show activity              : a short honest subset\n"
        "  show table                              : keepwarm's counters as a human table\n"
        "  get weight <bk>/<srv>                   : report a server's current weight\n"
        "  set weight <bk>/<srv> (<w>|<w>%)        : change a server's weight\n"
        "  set server <bk>/<srv> state <st>        : ready, drain or maint\n"
        "  set server <bk>/<srv> weight <w>        : change a server's weight\n"
        "  disable server <bk>/<srv>               : disable a server for maintenance\n"
        "  enable server <bk>/<srv>                : enable a disabled server\n"
        "  set server <bk>/<srv> addr <ip> [port <p>] : change a server's address\n"
        "  set maxconn server <bk>/<srv> <n>       : change a server's maxconn\n"
        "  shutdown sessions server <bk>/<srv>     : kill sessions on a server\n"
        "  enable|disable health <bk>/<srv>        : resume or stop a server's checks\n"
        "  enable|disable frontend <frontend>      : resume or stop accepting on a frontend\n"
        "  set maxconn frontend <frontend> <n>     : change a frontend's maxconn\n"
        "  clear counters [all]                    : clear max statistics counters "
        "(or all)\n"
        "  show map [<map>]                        : list maps, or one map's entries\n"
        "  get map <map> <value>                   : look a value up\n"
        "  add|set map <map> <key> <value>         : add an entry, or change its value\n"
        "  del map <map> <key>                     : remove an entry\n"
        "  clear map <map>                         : remove every entry\n"
        "  show acl [<acl>]                        : list ACL pattern files, or one's "
        "patterns\n"
        "  get acl <acl> <value>                   : does a value match\n"
        "  add|del acl <acl> <pattern>             : add or remove a pattern\n"
        "  clear acl <acl>                         : remove every pattern\n"
        "  show tls-keys [id|*]                    : list TLS ticket key files, or their "
        "keys\n"
        "  set ssl tls-key <id> <tlskey>           : push a new TLS ticket key (base64)\n")
END = "\n"                   # what ends every reply: an empty line (HAProxy's framing)


def answer(actions, request):
    """The CLI's msgpack request (a map with "cmd") answered as a map."""
    cmd = request.get("cmd") if isinstance(request, dict) else None
    if cmd == "stats":
        return actions.report()
    if cmd == "info":
        return actions.info()
    return {"error": "unknown request %r" % (cmd,)}


# Commands that change state: HAProxy's "admin" level only (`clear counters`, the
# maxima alone, is "operator").
ADMIN_ONLY = {("disable", "server"), ("enable", "server"), ("set", "server"), ("set", "weight"),
              ("disable", "frontend"), ("enable", "frontend"), ("set", "maxconn"),
              ("shutdown", "sessions"), ("enable", "health"), ("disable", "health"),
              ("add", "map"), ("set", "map"), ("del", "map"), ("clear", "map"),
              ("add", "acl"), ("del", "acl"), ("clear", "acl"), ("show", "tls-keys"),
              ("set", "ssl")}
DENIED = "Permission denied\n"
NO_SERVER = "No such server.\n"


def answer_text(actions, line, level="admin"):
    """One stats-socket command (no ';' in it) answered as HAProxy 2.6 words it,
    its reply ended by the empty line; `level` is the socket's (`stats socket
    ... level user|operator|admin`)."""
    return command(actions, line, level) + END


def split_commands(line):
    """A request line's commands: HAProxy runs several separated by ';' in order."""
    return [c.strip() for c in line.split(";")] if ";" in line else [line.strip()]


def command(actions, line, level="admin"):
    """The output of one command, without the empty line that ends a reply."""
    words = line.split()
    if level != "admin" and (tuple(words[:2]) in ADMIN_ONLY or words == ["clear", "counters",
                                                                         "all"]):
        return DENIED
    if level == "user" and words[:2] == ["clear", "counters"]:
        return DENIED
    changed = runtime_command(actions, words)
    if changed is not None:
        return changed
    if words[:2] == ["show", "stat"]:
        return show_stat(actions, words[2:])
    if words[:2] == ["show", "info"]:
        show = {"typed": haproxy_stats.show_info_typed, "json": haproxy_stats.show_info_json}.get(
            words[2] if len(words) > 2 else None, haproxy_stats.show_info)
        return show(actions.info(), actions.report(), actions.config)
    if words[:3] == ["show", "servers", "state"] and len(words) <= 4:
        text = haproxy_stats.show_servers_state(actions.report(), actions.config,
                                                words[3] if len(words) == 4 else None)
        return "Can't find backend.\n" if text is None else text
    if words == ["show", "sess"]:
        # (alone on its line it is answered when the workers reply: proxy/control.py)
        return "'show sess' must be alone on its line in keepwarm.\n"
    if words == ["show", "pools"]:
        # An honest subset: keepwarm's objects are the Python interpreter's, not pools.
        return ("Dumping pools usage. keepwarm allocates through the Python interpreter: "
                "it has no memory pools to list.\nTotal: 0 pools, 0 bytes allocated, 0 used, "
                "0 failures, 0 users.\n")
    if words == ["show", "activity"]:
        info = actions.info()
        workers = info.get("workers") or []
        return ("thread_id: 1 (1..%d)\ndate_now: %.6f\nuptime_now: %.6f\nworkers: %s\n"
                "requests: %s\n" % (max(1, len(workers)), time.time(), info.get("uptime", 0),
                                    " ".join(str(w.get("pid")) for w in workers),
                                    " ".join(str(w.get("req_tot", 0)) for w in workers)))
    if words == ["show", "errors"]:
        return haproxy_stats.show_errors(actions.captured_errors(), actions.config, time.time())
    if words == ["show", "backend"]:
        return haproxy_stats.show_backend(actions.config)
    if len(words) == 3 and words[:2] == ["get", "weight"]:
        return get_weight(actions, words[2])
    if len(words) == 3 and words[0] in ("disable", "enable") and words[1] == "server":
        return set_admin(actions, words[2], "maint" if words[0] == "disable" else "ready")
    if len(words) == 5 and words[:2] == ["set", "server"] and words[3] == "state":
        return set_admin(actions, words[2], words[4])
    if len(words) == 5 and words[:2] == ["set", "server"] and words[3] == "weight":
        return set_weight(actions, words[2], words[4])
    if len(words) == 4 and words[:2] == ["set", "weight"]:
        return set_weight(actions, words[2], words[3])
    if words[:2] == ["show", "table"]:
        return format_table(actions.report()) + "\n"
    if words[:1] == ["help"] or not words:
        return HELP
    return "Unknown command: '%s'. Type 'help' for the list.\n" % line


def runtime_command(actions, words):
    """The commands that change frontends, servers and counters (proxy/runtime_actions.py);
    None when `words` is none of them."""
    if len(words) == 3 and words[0] in ("enable", "disable") and words[1] == "frontend":
        if words[2] not in actions.frontend_names():
            return "No such frontend.\n"
        enable = words[0] == "enable"
        if actions.frontend_enabled(words[2]) == enable:
            return ("All sockets are already enabled.\n" if enable
                    else "All sockets are already disabled.\n")
        actions.set_frontend_enabled(words[2], enable)
        return ""
    if len(words) == 5 and words[:3] == ["set", "maxconn", "frontend"]:
        if words[3] not in actions.frontend_names():
            return "No such frontend.\n"
        if not words[4].isdigit():
            return "Integer value expected.\n"
        actions.set_frontend_maxconn(words[3], int(words[4]))
        return ""
    if len(words) == 5 and words[:3] == ["set", "maxconn", "server"]:
        try:
            actions.configured_weight(*_server(words[3]))
        except KeyError:
            return NO_SERVER
        if not words[4].isdigit():
            return "maxconn string empty or preceded by garbage\n"
        actions.set_server_maxconn(*_server(words[3]), int(words[4]))
        return ""
    if len(words) in (5, 7) and words[:2] == ["set", "server"] and words[3] == "addr":
        return set_addr(actions, words[2], words[4], words[6] if len(words) == 7 else None,
                        len(words) == 7 and words[5] != "port")
    if len(words) == 4 and words[:3] == ["shutdown", "sessions", "server"]:
        try:
            actions.shutdown_server_sessions(*_server(words[3]))
        except KeyError:
            return NO_SERVER
        return ""
    if words in (["clear", "counters"], ["clear", "counters", "all"]):
        actions.clear_counters(len(words) == 3)
        return ""
    if len(words) >= 2 and words[1] == "map" and words[0] in ("show", "get", "add", "set",
                                                              "del", "clear"):
        return map_command(actions, words)
    if len(words) >= 2 and words[1] == "acl" and words[0] in ("show", "get", "add", "del",
                                                              "clear"):
        return acl_command(actions, words)
    if words[:2] == ["show", "tls-keys"] and len(words) <= 3:
        return tickets.show(actions.config, words[2] if len(words) == 3 else None)
    if words[:3] == ["set", "ssl", "tls-key"]:
        return set_tls_key(actions, words[3:])
    if len(words) == 3 and words[0] in ("enable", "disable") and words[1] == "health":
        try:
            checked = actions.set_server_health(*_server(words[2]), words[0] == "enable")
        except KeyError:
            return NO_SERVER
        if not checked and words[0] == "enable":
            return "Health check was not configured on this server, cannot enable.\n"
        return ""
    return None


def set_tls_key(actions, args):
    """`set ssl tls-key <id|file> <base64 key>`, as HAProxy 2.6 answers it."""
    if len(args) < 2:
        return ("'set ssl tls-key' expects a filename and the new TLS key in base64 "
                "encoding.\n")
    ring = tickets.find(actions.config, args[0])
    if ring is None:
        return "'set ssl tls-key' unable to locate referenced filename\n"
    raw = tickets.decode_key(args[1])
    if raw is None:
        return "'set ssl tls-key' received invalid base64 encoded TLS key.\n"
    if len(raw) != ring.size:
        return "'set ssl tls-key' received a key of wrong size.\n"
    actions.push_ticket_key(ring, raw)
    return "TLS ticket key updated!\n"


def _ref(words, kind):
    """The listing of `show map|acl`, or the ref `words[2]` names: (text, None) or
    (None, ref)."""
    if words[0] == "show" and len(words) == 2:
        return "# id (file) description\n" + "".join(
            "%d (%s) pattern loaded from file '%s' used by %s. curr_ver=0 next_ver=0 "
            "entry_cnt=%d\n" % (r.uid, r.path, r.path, kind, len(r.entries))
            for r in map_refs.all_maps(kind)), None
    label = "map" if kind == "map" else "ACL"
    if len(words) < 3:
        return "Missing %s identifier.\n" % label, None
    ref = map_refs.find(words[2], kind)
    if ref is None:
        return "Unknown %s identifier. Please use #<id> or <file>.\n" % label, None
    return None, ref


def map_command(actions, words):
    """show|get|add|set|del|clear map ... (proxy/rules/refs.py), as HAProxy 2.6 answers."""
    op = words[0]
    text, ref = _ref(words, "map")
    if ref is None:
        return text
    if op == "show":
        return "".join("0x%012x %s %s\n" % (eid, k, v) for eid, k, v in ref.entries)
    if op == "get" and len(words) == 4:
        hit = next((e for e in ref.entries if e[1] == words[3]), None)
        if hit is None:
            return 'type=str, case=sensitive, found=no, idx=tree, key="%s"\n' % words[3]
        return ('type=str, case=sensitive, found=yes, idx=tree, key="%s", value="%s", '
                'type="str"\n' % (hit[1], hit[2]))
    if op in ("add", "set") and len(words) >= 5:
        try:
            if actions.map_change(op, words[2], words[3], " ".join(words[4:])):
                return ""
        except ValueError:
            return "'%s map' failed: '%s' is not a valid key/value for this map.\n" % (
                op, " ".join(words[3:]))
        return "entry not found.\n"
    return _change(actions, words, "map")


def _change(actions, words, kind):
    """`del` and `clear` (and an ACL's `add`), common to maps and ACL files."""
    op = words[0]
    if op == "clear" and len(words) == 3:
        actions.map_change("clear", words[2], kind=kind)
        return ""
    if op == "del" and len(words) == 4:
        found = actions.map_change("del", words[2], words[3], kind=kind)
        return "" if found else "Key not found.\n"
    if op == "add" and len(words) == 4 and kind == "acl":
        try:
            actions.map_change("add", words[2], words[3], "", kind=kind)
        except ValueError:
            return "'add acl' failed: '%s' is not a valid pattern for this ACL.\n" % words[3]
        return ""
    return "'%s %s' expects <%s> %s.\n" % (op, kind, kind, {
        "get": "<value>", "add": "<key> <value>" if kind == "map" else "<pattern>",
        "set": "<key> <value>", "del": "<key>" if kind == "map" else "<pattern>",
        "clear": "alone"}.get(op, ""))


def acl_command(actions, words):
    """show|get|add|del|clear acl ... for the ACLs' pattern files (-f FILE)."""
    text, ref = _ref(words, "acl")
    if ref is None:
        return text
    if words[0] == "show":
        return "".join("0x%012x %s\n" % (eid, k) for eid, k, _ in ref.entries)
    if words[0] == "get" and len(words) == 4 and ref.probe is not None:
        method, icase, find = ref.probe
        hit = find(words[3].encode("utf-8", "surrogateescape")) is not None
        return "type=%s, case=%s, match=%s\n" % (method, "insensitive" if icase
                                                  else "sensitive", "yes" if hit else "no")
    return _change(actions, words, "acl")


def set_addr(actions, target, host, port, bad_syntax):
    """`set server B/S addr IP [port P]`, answered with HAProxy's sentence."""
    if bad_syntax:
        return "'set server <srv> addr' expects <addr>[:<port>] and optionally '<port>'.\n"
    backend, server = _server(target)
    try:
        old_host, old_port = actions.server_addr(backend, server)
    except KeyError:
        return NO_SERVER
    new_port = old_port
    if port is not None:
        if not port.isdigit() or not 0 < int(port) < 65536:
            return "Invalid port '%s' by 'stats socket command'\n" % port
        new_port = int(port)
    if host == old_host and new_port == old_port:
        return "no need to change the addr by 'stats socket command'\n"
    try:
        actions.set_server_addr(backend, server, host, new_port)
    except ValueError:
        return "Invalid addr '%s' by 'stats socket command'\n" % host
    said = []
    if host != old_host:
        said.append("IP changed from '%s' to '%s'" % (old_host, host))
    if new_port != old_port:
        said.append("port changed from '%d' to '%d'" % (old_port, new_port))
    return "%s by 'stats socket command'\n" % ", ".join(said)


def show_stat(actions, args):
    """`show stat [IID TYPE SID]` (-1: any; TYPE a mask: 1 frontends, 2 backends,
    4 servers), as hatop and haproxyadmin send it."""
    filters = [-1, -1, -1]
    form = None
    if args and args[0] in ("typed", "json"):
        form, args = args[0], args[1:]
    if args:
        if len(args) != 3:
            return "Usage: show stat [<iid> <type> <sid>]\n"
        try:
            filters = [int(a) for a in args]
        except ValueError:
            return "Usage: show stat [<iid> <type> <sid>]\n"
    if form == "typed":
        return haproxy_stats.show_stat_typed(actions.report(), actions.config, *filters)
    if form == "json":
        return haproxy_stats.show_stat_json(actions.report(), actions.config, *filters)
    return haproxy_stats.show_stat_csv(actions.report(), actions.config, *filters)


def _server(target):
    backend, _, server = target.partition("/")
    return backend, server


def get_weight(actions, target):
    """`get weight BE/SRV`: 'current (initial configured)'."""
    backend, server = _server(target)
    try:
        configured = actions.configured_weight(backend, server)
    except KeyError:
        return NO_SERVER
    srv = actions.report()["backends"].get(backend, {}).get("servers", {}).get(server, {})
    return "%d (initial %d)\n" % (srv.get("weight", configured), configured)


def set_admin(actions, target, state):
    """`disable server BE/SRV`, `enable server BE/SRV`, `set server BE/SRV state ready|drain|maint`."""
    # The state is checked before the server, as HAProxy does.
    if state not in ADMIN_STATES:
        return "'set server <srv> state' expects 'ready', 'drain' and 'maint'.\n"
    backend, server = _server(target)
    try:
        actions.set_server_admin(backend, server, state)
    except KeyError:
        return NO_SERVER
    return ""


def set_weight(actions, target, value):
    """`set weight BE/SRV N` or `set server BE/SRV weight N` (0..256, or N% of the configured)."""
    backend, server = _server(target)
    try:
        configured = actions.configured_weight(backend, server)
    except KeyError:
        return NO_SERVER
    weight = parse_weight(value, configured)
    if weight is None:
        if value.endswith("%"):
            return "Relative weight must be positive.\n"
        return "Absolute weight can only be between 0 and %d inclusive.\n" % MAX_WEIGHT
    actions.set_server_weight(backend, server, weight)
    return ""


def parse_weight(value, configured):
    """`N` (0..256) or `N%` of the configured weight, as `set weight` takes it; None if neither."""
    try:
        weight = (configured * decimal(value[:-1]) // 100) if value.endswith("%") \
            else decimal(value)
    except ValueError:
        return None
    return weight if 0 <= weight <= MAX_WEIGHT else None
