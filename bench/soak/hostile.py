"""Hostile inputs: each proxy's verdict on every case of cases.py, and what reached the backend.

A verdict is the status code the client got, or `closed` / `reset` /
`timeout` (no byte within the wait). The scripted backend is reset before
each case and asked afterwards how many requests it received and with which
heads, so a case the proxy forwarded shows `fwd N`; for `Content-Length: 5, 5`
the report shows the Content-Length lines the backend received.
"""

from . import clients
from .cases import CASES, CL_LIST

WAIT_S = 2.0


def outcome(rec):
    """What a verdict amounts to: forwarded, rejected (an error status), closed or timeout."""
    if rec["forwarded"]:
        return "forwarded"
    if rec["verdict"].isdigit():
        return "rejected" if int(rec["verdict"]) >= 400 else "answered"
    return "closed" if rec["verdict"] in ("closed", "reset") else rec["verdict"]


def content_length_lines(head):
    return [line for line in head.split("\r\n") if line.lower().startswith("content-length")]


def run_cases(proxy, backend_port, cases=CASES):
    out = {}
    for name, data, how in cases:
        clients.backend_stats(backend_port, reset=True)
        verdict, secs = clients.exchange(proxy.port, data, wait=WAIT_S, shut=how == "shut")
        got = clients.backend_stats(backend_port)
        rec = {"verdict": verdict, "secs": round(secs, 2), "forwarded": got.get("requests", 0),
               "smuggled_seen": got.get("smuggled_seen", 0),
               "backend_bad_framing": got.get("bad_framing", 0),
               "alive_after": clients.alive(proxy.port)}
        if name == CL_LIST:
            rec["backend_cl"] = [content_length_lines(h) for h in got.get("heads", [])]
        out[name] = rec
    return out


def cell(rec):
    """One proxy's table cell for one case."""
    text = rec["verdict"]
    if rec["forwarded"]:
        text += f", fwd {rec['forwarded']}"
    if rec["smuggled_seen"]:
        text += f", SMUGGLED {rec['smuggled_seen']}"
    if not rec["alive_after"]:
        text += ", PROXY DOWN"
    return text


def agree(a, b):
    """`yes` for the same verdict, `yes, codes differ` for the same outcome, else `NO`."""
    if outcome(a) != outcome(b):
        return "NO"
    codes_differ = a["verdict"] != b["verdict"] and a["verdict"].isdigit()
    return "yes, codes differ" if codes_differ else "yes"


def cl_cell(rec):
    """What the backend received for `Content-Length: 5, 5`."""
    heads = rec.get("backend_cl") or []
    if not heads:
        return "not forwarded"
    return " / ".join(" + ".join(lines) or "no CL" for lines in heads)
