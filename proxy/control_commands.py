"""The control socket's command grammar: a request in, the master's action called, the reply out.

Two grammars, one per audience: msgpack maps from the CLI (`{"cmd": "stats"}`,
answered with a map), and HAProxy's stats-socket text lines for people and tools
(`show stat`, `set server be/srv state drain`, answered with HAProxy's texts).
Tokenizing, usage errors and the exact reply texts live here; what changes state
lives in the master, reached through a small set of methods on the object passed
in (`actions`), so the grammar is tested without a master:

    report()                        the statistics (proxy.stats' report: info, frontends, backends)
    info()                          the process's information (pid, version, uptime, workers…)
    configured_weight(be, srv)      the weight the configuration gives a server; KeyError if none
    set_server_admin(be, srv, st)   put a server in state `st` (one of ADMIN_STATES); KeyError if none
    set_server_weight(be, srv, w)   give a server weight `w` (0..256) in every worker

The stats socket's commands as HAProxy's tools send them: ../shared/RUNTIME-API-NOTES.md.
"""

from proxy.config.lexer import decimal
from proxy.health import ADMIN_STATES
from proxy.stats import format_table, show_stat_csv

MAX_WEIGHT = 256             # HAProxy's limit for `weight` and `set weight`

HELP = ("The following commands are valid at this level:\n"
        "  help                                   : this message\n"
        "  show info                              : report information about the running process\n"
        "  show stat                              : report counters for each proxy and server (CSV)\n"
        "  show table                             : the same as a human table\n"
        "  disable server <be>/<srv>              : put a server in maintenance\n"
        "  enable server <be>/<srv>               : take it out of maintenance\n"
        "  set server <be>/<srv> state <st>       : ready, drain or maint\n"
        "  set server <be>/<srv> weight <w>       : change a server's weight (0..256 or N%)\n"
        "  set weight <be>/<srv> <w>              : the same\n")
DONE = "\n"                  # HAProxy's answer to a command that worked: an empty line


def answer(actions, request):
    """The CLI's msgpack request (a map with "cmd") answered as a map."""
    cmd = request.get("cmd") if isinstance(request, dict) else None
    if cmd == "stats":
        return actions.report()
    if cmd == "info":
        return actions.info()
    return {"error": "unknown request %r" % (cmd,)}


# Commands that change state: HAProxy's "admin" level only.
ADMIN_ONLY = {("disable", "server"), ("enable", "server"), ("set", "server"), ("set", "weight")}
DENIED = "Permission denied\n"


def answer_text(actions, line, level="admin"):
    """One stats-socket text command line answered in text, as HAProxy words it;
    `level` is the socket's (`stats socket ... level user|operator|admin`)."""
    words = line.split()
    if level != "admin" and tuple(words[:2]) in ADMIN_ONLY:
        return DENIED
    if words[:2] == ["show", "stat"]:
        return show_stat_csv(actions.report())
    if words[:2] == ["show", "info"]:
        return show_info(actions.info())
    if len(words) == 3 and words[0] in ("disable", "enable") and words[1] == "server":
        return set_admin(actions, words[2], "maint" if words[0] == "disable" else "ready")
    if len(words) == 5 and words[:2] == ["set", "server"] and words[3] == "state":
        return set_admin(actions, words[2], words[4])
    if len(words) == 5 and words[:2] == ["set", "server"] and words[3] == "weight":
        return set_weight(actions, words[2], words[4])
    if len(words) == 4 and words[:2] == ["set", "weight"]:
        return set_weight(actions, words[2], words[3])
    if words[:2] == ["show", "table"] or words[:1] == ["show"]:
        return format_table(actions.report()) + "\n"
    if words[:1] == ["help"] or not words:
        return HELP
    return "Unknown command: '%s'. Type 'help' for the list.\n" % line


def show_info(info):
    """`show info`: `Key: value` lines, with the key names hatop and haproxyadmin read."""
    keys = (("Name", "keepwarm"), ("Version", info["version"]), ("Pid", info["pid"]),
            ("Uptime_sec", int(info["uptime"])), ("Nbproc", info["nbproc"]),
            ("Parser", info["parser"]), ("node", info.get("node", "")),
            ("description", info.get("description", "")),
            ("DroppedLogs", info.get("dropped_logs", 0)))
    return "".join("%s: %s\n" % kv for kv in keys)


def set_admin(actions, target, state):
    """`disable server BE/SRV`, `enable server BE/SRV`, `set server BE/SRV state ready|drain|maint`."""
    # The state is checked before the server, as the health checker always did.
    if state not in ADMIN_STATES:
        return "'set server <srv> state' expects 'ready', 'drain' and 'maint'.\n"
    backend, _, server = target.partition("/")
    try:
        actions.set_server_admin(backend, server, state)
    except KeyError:
        return "No such server: '%s'.\n" % target
    return DONE


def set_weight(actions, target, value):
    """`set weight BE/SRV N` or `set server BE/SRV weight N` (0..256, or N% of the configured)."""
    backend, _, server = target.partition("/")
    try:
        configured = actions.configured_weight(backend, server)
    except KeyError:
        return "No such server: '%s'.\n" % target
    weight = parse_weight(value, configured)
    if weight is None:
        return "Weight must be an integer between 0 and 256, or a percentage.\n"
    actions.set_server_weight(backend, server, weight)
    return DONE


def parse_weight(value, configured):
    """`N` (0..256) or `N%` of the configured weight, as `set weight` takes it; None if neither."""
    try:
        weight = (configured * decimal(value[:-1]) // 100) if value.endswith("%") \
            else decimal(value)
    except ValueError:
        return None
    return weight if 0 <= weight <= MAX_WEIGHT else None
