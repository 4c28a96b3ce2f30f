"""HAProxy 2.6's statistics formats, from keepwarm's report: `show stat` (CSV, with
its `IID TYPE SID` filter), `show info`, `show servers state`, `show backend`.

Sans-IO: a report (proxy/stats.py's document) and the configuration in, text out.
The column order is HAProxy 2.6.12's and load-bearing: hatop reads the first 51
columns by position and skips a line with fewer commas (../shared/
RUNTIME-API-NOTES.md). A column keepwarm has no value for is empty, as HAProxy
leaves the ones that do not apply to a row's type.
"""

from __future__ import annotations

import json
import time
from typing import Dict, List, Optional, Tuple

from proxy import __release_date__

STAT_COLUMNS = (
    "pxname svname qcur qmax scur smax slim stot bin bout dreq dresp ereq econ eresp wretr "
    "wredis status weight act bck chkfail chkdown lastchg downtime qlimit pid iid sid throttle "
    "lbtot tracked type rate rate_lim rate_max check_status check_code check_duration hrsp_1xx "
    "hrsp_2xx hrsp_3xx hrsp_4xx hrsp_5xx hrsp_other hanafail req_rate req_rate_max req_tot "
    "cli_abrt srv_abrt comp_in comp_out comp_byp comp_rsp lastsess last_chk last_agt qtime ctime "
    "rtime ttime agent_status agent_code agent_duration check_desc agent_desc check_rise "
    "check_fall check_health agent_rise agent_fall agent_health addr cookie mode algo conn_rate "
    "conn_rate_max conn_tot intercepted dcon dses wrew connect reuse cache_lookups cache_hits "
    "srv_icur src_ilim qtime_max ctime_max rtime_max ttime_max eint idle_conn_cur safe_conn_cur "
    "used_conn_cur need_conn_est uweight agg_server_status agg_server_check_status "
    "agg_check_status - ssl_sess ssl_reused_sess ssl_failed_handshake h1_open_connections "
    "h1_open_streams h1_total_connections h1_total_streams h1_bytes_in h1_bytes_out "
    "h1_spliced_bytes_in h1_spliced_bytes_out").split()

# HAProxy's `show info` keys in 2.6's order (values keepwarm does not have read 0).
INFO_KEYS = (
    "Name Version Release_date Nbthread Nbproc Process_num Pid Uptime Uptime_sec Memmax_MB "
    "PoolAlloc_MB PoolUsed_MB PoolFailed Ulimit-n Maxsock Maxconn Hard_maxconn CurrConns "
    "CumConns CumReq MaxSslConns CurrSslConns CumSslConns Maxpipes PipesUsed PipesFree ConnRate "
    "ConnRateLimit MaxConnRate SessRate SessRateLimit MaxSessRate SslRate SslRateLimit MaxSslRate "
    "SslFrontendKeyRate SslFrontendMaxKeyRate SslFrontendSessionReuse_pct SslBackendKeyRate "
    "SslBackendMaxKeyRate SslCacheLookups SslCacheMisses CompressBpsIn CompressBpsOut "
    "CompressBpsRateLim Tasks Run_queue Idle_pct node Stopping Jobs Unstoppable_Jobs Listeners "
    "ActivePeers ConnectedPeers DroppedLogs BusyPolling FailedResolutions TotalBytesOut "
    "TotalSplicdedBytesOut BytesOutRate DebugCommandsIssued CumRecvLogs Build_info Memmax_bytes "
    "PoolAlloc_bytes PoolUsed_bytes Start_time_sec Tainted").split()

# `show stat typed|json` and `show info typed|json`: each field's tags (origin,
# nature, scope) and value type, as HAProxy 2.6.12 prints them (read from its
# `show stat typed` / `show info typed`): NAME:TAGS:TYPE, and per-object overrides.
_STAT_TAGS = (
    "pxname:KNS:str svname:KNS:str scur:MGP:u32 smax:MMP:u32 slim:CLP:u32 stot:MCP:u64 "
    "bin:MCP:u64 bout:MCP:u64 dreq:MCP:u64 dresp:MCP:u64 ereq:MCP:u64 status:SGP:str "
    "pid:KGP:u32 iid:KGS:u32 sid:KGS:u32 type:CGS:u32 rate:MRP:u32 rate_lim:CLP:u32 "
    "rate_max:MMP:u32 hrsp_1xx:MCP:u64 hrsp_2xx:MCP:u64 hrsp_3xx:MCP:u64 hrsp_4xx:MCP:u64 "
    "hrsp_5xx:MCP:u64 hrsp_other:MCP:u64 req_rate:MRP:u32 req_rate_max:MMP:u32 "
    "req_tot:MCP:u64 comp_in:MCP:u64 comp_out:MCP:u64 comp_byp:MCP:u64 comp_rsp:MCP:u64 "
    "mode:CGS:str conn_rate:MRP:u32 conn_rate_max:MMP:u32 conn_tot:MCP:u64 "
    "intercepted:MCP:u64 dcon:MCP:u64 dses:MCP:u64 wrew:MCP:u64 cache_lookups:MCP:u64 "
    "cache_hits:MCP:u64 eint:MCP:u64 ssl_sess:MCP:u64 ssl_reused_sess:MCP:u64 "
    "ssl_failed_handshake:MCP:u64 h2_headers_rcvd:MCP:u64 h2_data_rcvd:MCP:u64 "
    "h2_settings_rcvd:MCP:u64 h2_rst_stream_rcvd:MCP:u64 h2_goaway_rcvd:MCP:u64 "
    "h2_detected_conn_protocol_errors:MCP:u64 h2_detected_strm_protocol_errors:MCP:u64 "
    "h2_rst_stream_resp:MCP:u64 h2_goaway_resp:MCP:u64 h2_open_connections:MGP:u64 "
    "h2_backend_open_streams:MGP:u64 h2_total_connections:MCP:u64 "
    "h2_backend_total_streams:MCP:u64 h1_open_connections:MGP:u64 h1_open_streams:MGP:u64 "
    "h1_total_connections:MCP:u64 h1_total_streams:MCP:u64 h1_bytes_in:MCP:u64 "
    "h1_bytes_out:MCP:u64 h1_spliced_bytes_in:MCP:u64 h1_spliced_bytes_out:MCP:u64 "
    "qcur:MGP:u32 qmax:MMP:u32 econ:MCP:u64 eresp:MCP:u64 wretr:MCP:u64 wredis:MCP:u64 "
    "weight:MaP:u32 act:MGP:u32 bck:MGP:u32 lastchg:MAP:u32 lbtot:MCP:u64 cli_abrt:MCP:u64 "
    "srv_abrt:MCP:u64 lastsess:MAP:s32 qtime:MaP:u32 ctime:MaP:u32 rtime:MaP:u32 "
    "ttime:MaP:u32 addr:CGS:str connect:MCP:u64 reuse:MCP:u64 srv_icur:MGP:u32 "
    "qtime_max:MMP:u32 ctime_max:MMP:u32 rtime_max:MMP:u32 ttime_max:MMP:u32 "
    "idle_conn_cur:MGP:u32 safe_conn_cur:MGP:u32 used_conn_cur:MGP:u32 need_conn_est:MGP:u32 "
    "uweight:MaP:u32 chkdown:MCP:u64 downtime:MCP:u32 algo:CGS:str agg_server_status:MGP:u32 "
    "agg_server_check_status:MGP:u32 agg_check_status:MGP:u32 chkfail:MCP:u64 "
    "check_status:MOP:str check_duration:MDP:u64 last_chk:MOP:str check_desc:MOP:str "
    "check_rise:CGS:u32 check_fall:CGS:u32 check_health:CGS:u32 ")
_STAT_TAG_OVERRIDES = 'B.rate:MGP:u32 B.rate_max:MGP:u32 S.act:SGP:u32 S.bck:SGP:u32'
_INFO_TAGS = (
    "Name:POS:str Version:POS:str Release_date:POS:str Nbthread:CGS:u32 Nbproc:CGS:u32 "
    "Process_num:KGP:u32 Pid:SGP:u32 Uptime:MDP:str Uptime_sec:MDP:u32 Memmax_MB:CLP:u32 "
    "PoolAlloc_MB:MGP:u32 PoolUsed_MB:MGP:u32 PoolFailed:MCP:u32 Ulimit-n:CLP:u32 "
    "Maxsock:CLP:u32 Maxconn:CLP:u32 Hard_maxconn:CLP:u32 CurrConns:MGP:u32 CumConns:MCP:u32 "
    "CumReq:MCP:u32 MaxSslConns:MMP:u32 CurrSslConns:MGP:u32 CumSslConns:MCP:u32 "
    "Maxpipes:CLP:u32 PipesUsed:MGP:u32 PipesFree:MGP:u32 ConnRate:MRP:u32 "
    "ConnRateLimit:CLP:u32 MaxConnRate:MMP:u32 SessRate:MRP:u32 SessRateLimit:CLP:u32 "
    "MaxSessRate:MRP:u32 SslRate:MRP:u32 SslRateLimit:CLP:u32 MaxSslRate:MMP:u32 "
    "SslFrontendKeyRate:MGP:u32 SslFrontendMaxKeyRate:MMP:u32 "
    "SslFrontendSessionReuse_pct:MGP:u32 SslBackendKeyRate:MRP:u32 "
    "SslBackendMaxKeyRate:MMP:u32 SslCacheLookups:MCP:u32 SslCacheMisses:MCP:u32 "
    "CompressBpsIn:MRP:u32 CompressBpsOut:MRP:u32 CompressBpsRateLim:CLP:u32 Tasks:MGP:u32 "
    "Run_queue:MGP:u32 Idle_pct:MaP:u32 node:COS:str Stopping:MGP:u32 Jobs:MGP:u32 "
    "Unstoppable_Jobs:MGP:u32 Listeners:MGP:u32 ActivePeers:MGP:u32 ConnectedPeers:MGP:u32 "
    "DroppedLogs:MGP:u32 BusyPolling:MGP:u32 FailedResolutions:MGP:u32 TotalBytesOut:MGP:u64 "
    "TotalSplicdedBytesOut:MGP:u64 BytesOutRate:MRP:u64 DebugCommandsIssued:MGP:u32 "
    "CumRecvLogs:MCP:u32 Build_info:POS:str Memmax_bytes:CLP:u32 PoolAlloc_bytes:MGP:u64 "
    "PoolUsed_bytes:MGP:u64 Start_time_sec:MDP:u32 Tainted:SGP:str ")
_ORIGINS = {"K": "Key", "M": "Metric", "C": "Config", "S": "Status", "P": "Product"}
_NATURES = {"N": "Name", "G": "Gauge", "M": "Max", "L": "Limit", "C": "Counter", "R": "Rate",
            "a": "Avg", "A": "Age", "O": "Output", "D": "Duration", "T": "Time"}
_SCOPES = {"S": "Service", "P": "Process", "s": "System"}
STAT_TAGS = {w.split(":")[0]: tuple(w.split(":")[1:]) for w in _STAT_TAGS.split()}
INFO_TAGS = {w.split(":")[0]: tuple(w.split(":")[1:]) for w in _INFO_TAGS.split()}
_TAG_OVERRIDES = {tuple(w.split(":")[0].split(".")): tuple(w.split(":")[1:])
                  for w in _STAT_TAG_OVERRIDES.split()}

TYPE_FRONTEND, TYPE_BACKEND, TYPE_SERVER = 0, 1, 2
FIRST_IID = 2            # HAProxy numbers its proxies from 2 (1 is its stats socket's own)


class Proxy:
    """One proxy as HAProxy numbers and lists it: a frontend, a backend, or a
    listen section (both sides, one id), in the configuration's order."""

    __slots__ = ("name", "iid", "fe", "be")

    def __init__(self, name, iid, fe, be):
        self.name = name
        self.iid = iid
        self.fe = fe
        self.be = be


def proxies(config) -> List[Proxy]:
    """The configuration's proxies in file order with HAProxy's ids."""
    by_name: Dict[str, list] = {}
    for fe in config.frontends:
        by_name.setdefault(fe.name, [fe, None, fe.line])
    for be in config.backends:
        entry = by_name.setdefault(be.name, [None, be, be.line])
        entry[1] = be
        entry[2] = min(entry[2], be.line) if entry[0] is not None else be.line
    ordered = sorted(by_name.items(), key=lambda kv: kv[1][2])
    return [Proxy(name, FIRST_IID + i, fe, be) for i, (name, (fe, be, _)) in enumerate(ordered)]


def _server_rows(px: Proxy, be_doc) -> Tuple[List[dict], dict]:
    rows = []
    active = backup = 0
    weight = 0
    lastchg = None
    for sid, srv in enumerate(px.be.servers, 1):
        d = be_doc["servers"].get(srv.name, {})
        status = d.get("status") or "no check"
        up = status.startswith("UP") or status in ("no check", "DRAIN")
        w = d.get("weight", srv.weight)
        if up and status != "DRAIN":
            if srv.backup:
                backup += 1
            else:
                active += 1
            weight += w if not srv.backup else 0
        if d.get("lastchg") is not None:
            lastchg = d["lastchg"] if lastchg is None else min(lastchg, d["lastchg"])
        row = _counters(d)
        row.update({
            "pxname": px.name, "svname": srv.name, "status": status, "weight": w, "pid": 1,
            "act": 0 if srv.backup else 1, "bck": 1 if srv.backup else 0,
            "slim": srv.maxconn or "", "qlimit": srv.maxqueue or "",
            "chkfail": d.get("chkfail") if srv.check else "",
            "chkdown": d.get("chkdown") if srv.check else "",
            "lastchg": d.get("lastchg", ""), "downtime": "" if not srv.check else 0,
            "iid": px.iid, "sid": sid, "type": TYPE_SERVER, "lbtot": d.get("req_tot", 0),
            "check_status": (d.get("check_status") or "") if srv.check else "",
            "check_code": d.get("check_code") or "" if srv.check else "",
            "check_duration": d.get("check_duration", "") if srv.check else "",
            "check_rise": srv.rise if srv.check else "", "check_fall": srv.fall if srv.check
            else "", "check_health": "", "lastsess": -1,
            "addr": "%s:%d" % (srv.host, srv.port), "mode": "http",
            "uweight": srv.weight, "rate": d.get("rate", 0), "rate_max": d.get("rate_max", 0),
            "hanafail": 0,
            "ssl_sess": "" if srv.tls is None else 0,
            "ssl_failed_handshake": d.get("ssl_handshake_errors", "") if srv.tls else "",
        })
        rows.append(row)
    agg = {"act": active, "bck": backup, "weight": weight, "lastchg": lastchg}
    return rows, agg


def _counters(d) -> dict:
    keys = ("qcur", "qmax", "scur", "smax", "stot", "bin", "bout", "econ", "eresp", "wretr",
            "wredis", "hrsp_1xx", "hrsp_2xx", "hrsp_3xx", "hrsp_4xx", "hrsp_5xx", "hrsp_other",
            "req_tot", "cli_abrt", "srv_abrt", "conn_tot", "reuse", "idle_conn_cur")
    row = {k: d.get(k, 0) for k in keys}
    row["dresp"] = 0
    return row


def stat_rows(doc, config) -> List[dict]:
    """Every `show stat` row, in HAProxy's order: per proxy, its FRONTEND, its
    servers, its BACKEND."""
    out = []
    for px in proxies(config):
        if px.fe is not None:
            d = doc["frontends"].get(px.name, {})
            row = _counters(d)
            for k in ("qcur", "qmax", "econ", "eresp", "wretr", "wredis", "cli_abrt",
                      "srv_abrt", "reuse", "idle_conn_cur"):
                row[k] = ""
            row.update({
                "pxname": px.name, "svname": "FRONTEND", "pid": 1,
                "status": d.get("status", "OPEN"),
                "slim": px.fe.maxconn or "", "dreq": 0, "ereq": 0, "iid": px.iid, "sid": 0,
                "type": TYPE_FRONTEND, "rate": d.get("rate", 0), "rate_lim": 0,
                "rate_max": d.get("rate_max", 0), "req_rate": d.get("req_rate", 0),
                "req_rate_max": d.get("req_rate_max", 0), "mode": "http",
                "conn_rate": 0, "conn_rate_max": 0, "conn_tot": d.get("stot", 0),
                "intercepted": 0, "dcon": 0, "dses": 0, "wrew": 0,
                "ssl_sess": 0, "ssl_failed_handshake": d.get("ssl_handshake_errors", 0)})
            out.append(row)
        if px.be is not None:
            d = doc["backends"].get(px.name, {"servers": {}})
            servers, agg = _server_rows(px, d)
            out.extend(servers)
            row = _counters(d)
            up = agg["act"] or agg["bck"]
            row.update({
                "pxname": px.name, "svname": "BACKEND", "status": "UP" if up else "DOWN", "pid": 1,
                "weight": agg["weight"], "act": agg["act"], "bck": agg["bck"],
                "slim": "", "dreq": 0, "chkdown": 0,
                "lastchg": agg["lastchg"] if agg["lastchg"] is not None else "",
                "downtime": 0, "iid": px.iid, "sid": 0, "type": TYPE_BACKEND,
                "lbtot": d.get("req_tot", 0), "rate": d.get("rate", 0),
                "rate_max": d.get("rate_max", 0), "lastsess": -1,
                "mode": "http", "algo": px.be.balance,
                "wrew": 0, "eint": 0})
            out.append(row)
    return out


def _wanted(row, iid: int, types: int, sid: int) -> bool:
    if iid != -1 and row["iid"] != iid:
        return False
    bit = {TYPE_FRONTEND: 1, TYPE_BACKEND: 2, TYPE_SERVER: 4}[row["type"]]
    if types != -1 and not types & bit:
        return False
    return sid == -1 or row["type"] != TYPE_SERVER or row["sid"] == sid


def show_stat_csv(doc, config, iid: int = -1, types: int = -1, sid: int = -1,
                  scope=None) -> str:
    """`show stat [IID TYPE SID]`: the header, then one line per row; every line
    ends with a comma, and the reply with an empty line. `scope`: only these
    proxies (the stats page's `stats scope`)."""
    lines = ["# " + ",".join(STAT_COLUMNS) + ","]
    for row in stat_rows(doc, config):
        if _wanted(row, iid, types, sid) and (not scope or row["pxname"] in scope):
            lines.append(",".join(_cell(row.get(c, "")) for c in STAT_COLUMNS) + ",")
    return "\n".join(lines) + "\n"


def _cell(v) -> str:
    if v is None:
        return ""
    return str(v).replace(",", " ")


def uptime_text(seconds: float) -> str:
    s = int(seconds)
    return "%dd %dh%02dm%02ds" % (s // 86400, s // 3600 % 24, s // 60 % 60, s % 60)


def show_info(info, doc, config) -> str:
    """`show info`: HAProxy 2.6's keys in its order, `Key: value` a line."""
    fes = doc.get("frontends", {}).values()
    values = {
        "Name": "keepwarm", "Version": info.get("version", ""), "Release_date": __release_date__,
        "Nbthread": info.get("nbproc", 1), "Nbproc": 1, "Process_num": 1,
        "Pid": info.get("pid", 0), "Uptime": uptime_text(info.get("uptime", 0)),
        "Uptime_sec": int(info.get("uptime", 0)),
        "CurrConns": sum(f.get("scur", 0) for f in fes),
        "CumConns": sum(f.get("stot", 0) for f in fes),
        "CumReq": sum(f.get("req_tot", 0) for f in fes),
        "node": info.get("node", ""), "Stopping": 0, "Jobs": sum(f.get("scur", 0) for f in fes),
        "Listeners": sum(len(fe.binds) for fe in config.frontends),
        "DroppedLogs": info.get("dropped_logs", 0),
        "TotalBytesOut": sum(f.get("bout", 0) for f in fes),
        "Build_info": info.get("version", ""), "Idle_pct": 100,
        "Start_time_sec": int(info.get("started", 0)),
    }
    values["Maxconn"] = values["Hard_maxconn"] = config.global_.maxconn
    out = []
    for key in INFO_KEYS:
        out.append("%s: %s" % (key.replace("_Jobs", " Jobs").replace("Build_info", "Build info"),
                               values.get(key, 0)))
        if key == "node" and info.get("description"):
            out.append("description: %s" % info["description"])    # (only when set)
    return "\n".join(out) + "\n"


def show_servers_state(doc, config, backend: Optional[str] = None) -> Optional[str]:
    """`show servers state [BACKEND]`: version 1, the header, a line per server;
    None when `backend` names none."""
    lines = ["1", "# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state "
             "srv_uweight srv_iweight srv_time_since_last_change srv_check_status "
             "srv_check_result srv_check_health srv_check_state srv_agent_state "
             "bk_f_forced_id srv_f_forced_id srv_fqdn srv_port srvrecord srv_use_ssl "
             "srv_check_port srv_check_addr srv_agent_addr srv_agent_port"]
    found = backend is None
    for px in proxies(config):
        if px.be is None or (backend is not None and px.name != backend):
            continue
        found = True
        d = doc["backends"].get(px.name, {"servers": {}})
        for sid, srv in enumerate(px.be.servers, 1):
            s = d["servers"].get(srv.name, {})
            status = s.get("status") or "no check"
            op = 0 if status.startswith("DOWN") else 2      # SRV_ST_STOPPED / RUNNING
            admin = 1 if status == "MAINT" else 8 if status == "DRAIN" else 0
            lines.append(" ".join(str(v) for v in (
                px.iid, px.name, sid, srv.name, srv.host, op, admin, s.get("weight", srv.weight),
                srv.weight, s.get("lastchg") or 0, 6 if srv.check else 1,
                2 if srv.check and op else 0, srv.rise + srv.fall - 1 if srv.check and op else 0,
                6 if srv.check else 0, 0, 0, 0, "-", srv.port, "-",
                0 if srv.tls is None else 1, srv.check_port or 0, srv.check_addr or "-", "-", 0)))
    if not found:
        return None
    return "\n".join(lines) + "\n"


def show_backend(config) -> str:
    """`show backend`: the backends' names."""
    return "# name\n" + "".join("%s\n" % px.name for px in proxies(config) if px.be is not None)


_OBJ = {TYPE_FRONTEND: ("F", "Frontend"), TYPE_BACKEND: ("B", "Backend"),
        TYPE_SERVER: ("S", "Server")}


def _typed_value(typ, value):
    if typ == "str":
        return str(value)
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def stat_fields(doc, config, iid=-1, types=-1, sid=-1, scope=None):
    """Per row, its fields with values: (objtype letter, name, iid, id, [(pos, field,
    tags, type, value)...]), for `show stat typed|json`."""
    out = []
    for row in stat_rows(doc, config):
        if not _wanted(row, iid, types, sid) or scope and row["pxname"] not in scope:
            continue
        letter, kind = _OBJ[row["type"]]
        fields = []
        for pos, name in enumerate(STAT_COLUMNS):
            value = row.get(name, "")
            tags = _TAG_OVERRIDES.get((letter, name)) or STAT_TAGS.get(name)
            if value in ("", None) or tags is None:
                continue
            v = _typed_value(tags[1], value)
            if v is not None:
                fields.append((pos, name, tags[0], tags[1], v))
        out.append((letter, kind, row["iid"], row["sid"], fields))
    return out


def show_stat_typed(doc, config, iid=-1, types=-1, sid=-1) -> str:
    lines = []
    for letter, _, px_id, obj_id, fields in stat_fields(doc, config, iid, types, sid):
        for pos, name, tags, typ, v in fields:
            lines.append("%s.%d.%d.%d.%s.1:%s:%s:%s" % (letter, px_id, obj_id, pos, name, tags,
                                                        typ, v))
        lines.append("")
    return "\n".join(lines) + ("\n" if lines else "")


def _tags(tags):
    return {"origin": _ORIGINS.get(tags[0], tags[0]), "nature": _NATURES.get(tags[1], tags[1]),
            "scope": _SCOPES.get(tags[2], tags[2])}


def show_stat_json(doc, config, iid=-1, types=-1, sid=-1, scope=None) -> str:
    rows = []
    for _, kind, px_id, obj_id, fields in stat_fields(doc, config, iid, types, sid, scope):
        rows.append([{"objType": kind, "proxyId": px_id, "id": obj_id,
                      "field": {"pos": pos, "name": name}, "processNum": 1,
                      "tags": _tags(tags), "value": {"type": typ, "value": v}}
                     for pos, name, tags, typ, v in fields])
    return json.dumps(rows, separators=(",", ":")) + "\n"


def _info_fields(info, doc, config):
    text = show_info(info, doc, config)
    out = []
    for pos, line in enumerate(text.splitlines()):
        key, _, value = line.partition(": ")
        tags = INFO_TAGS.get(key.replace(" ", "_"))
        if tags is None:
            continue
        v = _typed_value(tags[1], value)
        if v is not None:
            out.append((pos, key, tags[0], tags[1], v))
    return out


def show_info_typed(info, doc, config) -> str:
    return "".join("%d.%s.1:%s:%s:%s\n" % (pos, key, tags, typ, v)
                   for pos, key, tags, typ, v in _info_fields(info, doc, config))


def show_info_json(info, doc, config) -> str:
    return json.dumps([{"field": {"pos": pos, "name": key}, "processNum": 1, "tags": _tags(tags),
                        "value": {"type": typ, "value": v}}
                       for pos, key, tags, typ, v in _info_fields(info, doc, config)],
                      separators=(",", ":")) + "\n"


def _date(when: float) -> str:
    t = time.localtime(when)
    return "%02d/%s/%04d:%02d:%02d:%02d.%03d" % (
        t.tm_mday, time.strftime("%b", t), t.tm_year, t.tm_hour, t.tm_min, t.tm_sec,
        int(when * 1000) % 1000)


def _dump(data: bytes) -> List[str]:
    """HAProxy's dump of a captured buffer: a line per input line, its offset first,
    what is not printable escaped."""
    out = []
    start = 0
    while start < len(data):
        end = data.find(b"\n", start)
        end = len(data) if end < 0 else end + 1
        text = "".join(chr(c) if 32 <= c < 127 and c != 92 else
                       {9: "\\t", 10: "\\n", 13: "\\r", 92: "\\\\"}.get(c, "\\x%02X" % c)
                       for c in data[start:end])
        out.append("  %05d  %s" % (start, text))
        start = end
    return out


def show_errors(errors: Dict, config, now: float) -> str:
    """`show errors`: the last request each frontend refused, as HAProxy lays it
    out (its date, frontend and id, the client, the length, the bytes)."""
    ids = {px.name: px.iid for px in proxies(config)}
    lines = ["Total events captured on [%s] : %d" % (_date(now), len(errors)), ""]
    for event, (fe, (when, src, port, data)) in enumerate(sorted(errors.items(),
                                                                 key=lambda kv: kv[1][0])):
        lines += ["[%s] frontend %s (#%d): invalid request" % (_date(when), fe,
                                                                ids.get(fe, -1)),
                  "  backend <NONE> (#-1), server <NONE> (#-1), event #%d, src %s:%s"
                  % (event, src, port),
                  "  buffer starts at 0 (including 0 out), %d free," % max(0, 16384 - len(data)),
                  "  len %d, wraps at 16336, error at position -1" % len(data), ""]
        lines += _dump(data) + [""]
    return "\n".join(lines) + "\n"
