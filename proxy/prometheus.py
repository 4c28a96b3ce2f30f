"""`http-request use-service prometheus-exporter`: the statistics in Prometheus'
text format (0.0.4), with HAProxy 2.6's metric names, types and labels, so the
dashboards and alerts written for HAProxy's exporter read keepwarm unchanged.

Sans-IO: a report (proxy/stats.py's document) and the configuration in, the
body out. Only the metrics keepwarm has values for are written (HAProxy's list
is longer: compression, caches, SSL rates...), plus keepwarm's own reuse
counters under the `keepwarm_` prefix. `?scope=` limits the output as in
HAProxy (`global`, `frontend`, `backend`, `server`, several allowed; an empty
scope writes nothing).
"""

from __future__ import annotations

from typing import Dict, Iterable, List, Optional, Tuple

SCOPES = ("global", "frontend", "backend", "server")
CONTENT_TYPE = b"text/plain; version=0.0.4"

# (name, type, help, kinds): the per-proxy families, from report fields (a str) or
# a function of (row, extra) giving the value.
_G, _C = "gauge", "counter"
_PROXY_FAMILIES = (
    ("current_queue", _G, "Requests waiting in the queue now.", "bs", "qcur"),
    ("max_queue", _G, "Most requests seen waiting in the queue.", "bs", "qmax"),
    ("current_sessions", _G, "Sessions (streams) in progress now.", "fbs", "scur"),
    ("max_sessions", _G, "Most sessions seen at once.", "fbs", "smax"),
    ("limit_sessions", _G, "The configured session limit (maxconn).", "fs", "slim"),
    ("sessions_total", _C, "Sessions since the start.", "fbs", "stot"),
    ("bytes_in_total", _C, "Request bytes received.", "fbs", "bin"),
    ("bytes_out_total", _C, "Response bytes sent.", "fbs", "bout"),
    ("requests_denied_total", _C, "Requests denied by rules.", "fb", "dreq"),
    ("request_errors_total", _C, "Requests refused as invalid.", "f", "ereq"),
    ("connection_errors_total", _C, "Failed connections to servers.", "bs", "econ"),
    ("response_errors_total", _C, "Responses that failed.", "bs", "eresp"),
    ("retry_warnings_total", _C, "Connection attempts retried.", "bs", "wretr"),
    ("redispatch_warnings_total", _C, "Requests redispatched to another server.", "bs",
     "wredis"),
    ("weight", _G, "The effective weight.", "bs", "weight"),
    ("active_servers", _G, "Active servers usable now.", "b", "act"),
    ("backup_servers", _G, "Backup servers usable now.", "b", "bck"),
    ("check_failures_total", _C, "Failed health checks.", "s", "chkfail"),
    ("check_up_down_total", _C, "UP to DOWN transitions.", "s", "chkdown"),
    ("check_last_change_seconds", _G, "Seconds since the last UP/DOWN change.", "s",
     "lastchg"),
    ("loadbalanced_total", _C, "Times chosen by the load balancer.", "bs", "lbtot"),
    ("max_session_rate", _G, "Highest sessions per second seen.", "fbs", "rate_max"),
    ("http_requests_rate_max", _G, "Highest HTTP requests per second seen.", "f",
     "req_rate_max"),
    ("http_requests_total", _C, "HTTP requests.", "fb", "req_tot"),
    ("client_aborts_total", _C, "Transfers aborted by the client.", "bs", "cli_abrt"),
    ("server_aborts_total", _C, "Transfers aborted by the server.", "bs", "srv_abrt"),
    ("connections_total", _C, "Connections accepted.", "f", "conn_tot"),
    ("connection_attempts_total", _C, "Connections opened to servers.", "bs", "conn_tot"),
    ("connection_reuses_total", _C, "Requests sent on a reused server connection.", "bs",
     "reuse"),
    ("idle_connections_current", _G, "Idle server connections in the pools.", "s",
     "idle_conn_cur"),
)
_KIND_NAMES = {"f": "frontend", "b": "backend", "s": "server"}
_SERVER_STATES = ("DOWN", "UP", "MAINT", "DRAIN", "NOLB")

# keepwarm's own: why a request opened a server connection, how idle ones ended.
_KEEPWARM = (
    ("keepwarm_server_new_connections_total", _C,
     "Server connections opened instead of reusing one, by reason.",
     (("reason", "first", "nreuse_first"), ("reason", "empty", "nreuse_empty"),
      ("reason", "private", "nreuse_private"))),
    ("keepwarm_server_idle_closed_total", _C, "Idle server connections that ended, by whom.",
     (("by", "server", "idle_srv_closed"), ("by", "purge", "idle_purged"))),
    ("keepwarm_server_warm_connections_total", _C,
     "Connections opened by pool-warm-conn, and requests that were the first on one.",
     (("event", "opened", "warm_opened"), ("event", "used", "warm_used"))),
    ("keepwarm_server_replays_total", _C,
     "Requests sent again after a pooled connection died under them.",
     ((None, None, "replays"),)),
)


def scopes_of(query: Optional[bytes]) -> Tuple[str, ...]:
    """The `scope=` values of the query string (none given: every scope)."""
    if not query:
        return SCOPES
    got = []
    seen = False
    for part in query.split(b"&"):
        key, _, value = part.partition(b"=")
        if key == b"scope":
            seen = True
            v = value.decode("ascii", "replace")
            if v in SCOPES:
                got.append(v)
            elif v == "*":
                got.extend(SCOPES)
    return tuple(got) if seen else SCOPES


def _labels(pairs: Iterable[Tuple[str, str]]) -> str:
    return ",".join('%s="%s"' % (k, str(v).replace("\\", "\\\\").replace('"', '\\"')
                                 .replace("\n", "\\n")) for k, v in pairs)


def render(doc, rows: List[dict], query: Optional[bytes] = None) -> bytes:
    """The exporter's body. `rows`: haproxy_stats.stat_rows(doc, config) (the values
    by HAProxy's column names), `doc`: the report (its `info`)."""
    scopes = scopes_of(query)
    out: List[str] = []
    info = doc.get("info", {})
    if "global" in scopes:
        _global(out, info, doc)
    kinds = {"frontend": 0, "backend": 1, "server": 2}
    for scope in ("frontend", "backend", "server"):
        if scope not in scopes:
            continue
        mine = [r for r in rows if r["type"] == kinds[scope]]
        if not mine:
            continue
        code = scope[0]
        prefix = "haproxy_%s_" % scope
        _family(out, prefix + "status", _G, "The service's state, one series per state.",
                [(_ids(r, scope) + [("state", s)], 1 if _state(r, scope) == s else 0)
                 for r in mine for s in (_SERVER_STATES if scope == "server"
                                         else ("DOWN", "UP"))])
        for name, typ, text, where, field in _PROXY_FAMILIES:
            if code not in where:
                continue
            series = [(_ids(r, scope), r.get(field)) for r in mine]
            series = [(labels, v) for labels, v in series if v not in ("", None)]
            if series:
                _family(out, prefix + name, typ, text, series)
        codes = ("1xx", "2xx", "3xx", "4xx", "5xx", "other")
        _family(out, prefix + "http_responses_total", _C, "HTTP responses, by status class.",
                [(_ids(r, scope) + [("code", c)], r.get("hrsp_" + c) or 0)
                 for r in mine for c in codes])
        if scope == "server":
            for name, typ, text, parts in _KEEPWARM:
                series = []
                for r in mine:
                    for key, value, field in parts:
                        labels = _ids(r, scope) + ([(key, value)] if key else [])
                        series.append((labels, r.get(field) or 0))
                _family(out, name, typ, text, series)
    return "".join(out).encode()


def _ids(row, scope) -> List[Tuple[str, str]]:
    if scope == "server":
        return [("proxy", row["pxname"]), ("server", row["svname"])]
    return [("proxy", row["pxname"])]


def _state(row, scope) -> str:
    status = str(row.get("status", ""))
    if scope == "frontend":
        return "UP" if status == "OPEN" else "DOWN"
    if scope == "backend":
        return "UP" if status == "UP" else "DOWN"
    if status.startswith("UP") or status == "no check":
        return "UP"
    for s in ("MAINT", "DRAIN", "NOLB"):
        if status.startswith(s):
            return s
    return "DOWN"


def _family(out: List[str], name: str, typ: str, text: str, series) -> None:
    out.append("# HELP %s %s\n# TYPE %s %s\n" % (name, text, name, typ))
    for labels, value in series:
        out.append("%s{%s} %s\n" % (name, _labels(labels), _number(value)))


def _number(v) -> str:
    if isinstance(v, bool):
        return "1" if v else "0"
    if isinstance(v, float):
        return repr(v)
    try:
        return str(int(v))
    except (TypeError, ValueError):
        return "0"


def _global(out: List[str], info: Dict, doc) -> None:
    fes = list(doc.get("frontends", {}).values())
    fams = (
        ("haproxy_process_nbthread", _G, "Worker processes (HAProxy's threads).",
         info.get("nbproc", 1)),
        ("haproxy_process_nbproc", _G, "Processes (always 1: the master's group).", 1),
        ("haproxy_process_relative_process_id", _G, "This process' number.", 1),
        ("haproxy_process_uptime_seconds", _G, "Seconds since the start.",
         int(info.get("uptime", 0))),
        ("haproxy_process_current_connections", _G, "Client connections open now.",
         sum(f.get("scur", 0) for f in fes)),
        ("haproxy_process_connections_total", _C, "Client connections since the start.",
         sum(f.get("stot", 0) for f in fes)),
        ("haproxy_process_requests_total", _C, "HTTP requests since the start.",
         sum(f.get("req_tot", 0) for f in fes)),
        ("haproxy_process_dropped_logs_total", _C, "Log lines dropped.",
         info.get("dropped_logs", 0)),
        ("haproxy_process_bytes_out_total", _C, "Bytes sent to clients.",
         sum(f.get("bout", 0) for f in fes)),
    )
    for name, typ, text, value in fams:
        out.append("# HELP %s %s\n# TYPE %s %s\n%s %s\n" % (name, text, name, typ, name,
                                                          _number(value)))
    _family(out, "haproxy_process_build_info", _G, "The version running.",
            [([("version", info.get("version", ""))], 1)])
