"""The differential corpus (issue 15): HAProxy configurations in tests/corpus/*.cfg,
each with the requests to send it, run once through HAProxy 2.6 (tests/fixtures/
record_corpus.py) and replayed against keepwarm (tests/test_e2e_corpus.py).

A corpus file is a configuration as HAProxy reads it, with placeholders:

    @PORT@       the port its one `bind 127.0.0.1:@PORT@` listens on
    @NAME@       the address of a scripted server called NAME (lowercase letters,
                 digits, `_`), started for the run; each answers its own name
    @DIR@        tests/corpus/files (maps, pattern files, error files)

and lines `#> ` that each give one request, sent on a fresh connection:

    #> METHOD TARGET [HTTP/x.y] [| Name: value]...

`Host: www.example` is added to an HTTP/1.1 request that names no Host, and
`Connection: close` to every one. A line `#= KEY => STATUS reason` records a
difference from HAProxy (the request KEY, keepwarm's status, why: HAProxy's
status when only the bytes differ); KEY is the request as written after `#> `.

A server answers 200 with a JSON body: its name, the request line and the header
fields it received. A request with `X-Reply-Status: N` gets that status instead,
and `X-Reply-Header: Name: value` adds a response header.
"""

import json
import re
import socket
import time
from pathlib import Path

from support.backend import Reply

CORPUS = Path(__file__).resolve().parent.parent / "corpus"
FILES = CORPUS / "files"
_SERVER = re.compile(r"@([a-z0-9_]+)@")


def corpus_files():
    return sorted(CORPUS.glob("*.cfg"))


def requests_of(text):
    """[(key, raw request bytes)] from the `#> ` lines."""
    out = []
    for line in text.splitlines():
        line = line.strip()
        if not line.startswith("#> "):
            continue
        key = line[3:].strip()
        parts = [p.strip() for p in key.split("|")]
        words = parts[0].split()
        version = words[2] if len(words) > 2 else "HTTP/1.1"
        headers = parts[1:]
        if version == "HTTP/1.1" and not any(h.lower().startswith("host:") for h in headers):
            headers.insert(0, "Host: www.example")
        head = "%s %s %s\r\n" % (words[0], words[1], version)
        head += "".join(h + "\r\n" for h in headers) + "Connection: close\r\n\r\n"
        out.append((key, head.encode("latin-1")))
    return out


def differences_of(text):
    """{key: (keepwarm's status, reason)} from the `#= ` lines."""
    out = {}
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("#= "):
            m = re.match(r"#= (.+?) => (\d{3}) (.+)$", line)
            assert m, "a difference reads '#= KEY => STATUS reason': %r" % line
            out[m.group(1).strip()] = (int(m.group(2)), m.group(3))
    return out


def server_names(text):
    return sorted(set(_SERVER.findall(text)) - {"port"})


def render(text, port, servers, sock=None):
    """The configuration with its placeholders filled; `sock`: a stats socket line
    added to `global` (keepwarm's readiness check asks it)."""
    text = text.replace("@PORT@", str(port)).replace("@DIR@", str(FILES))
    text = _SERVER.sub(lambda m: "127.0.0.1:%d" % servers[m.group(1)].port, text)
    if sock is not None:
        text = re.sub(r"(?m)^global[ \t]*$", "global\n    stats socket %s" % sock, text, 1)
    return text


def echo(backend, req):
    """A corpus server's answer: who it is and what it received."""
    status = int(req.header("x-reply-status") or 200)
    headers = [("Content-Type", "application/json")]
    extra = req.header("x-reply-header")
    if extra:
        name, _, value = extra.partition(":")
        headers.append((name.strip(), value.strip()))
    body = json.dumps({"be": backend.name, "line": "%s %s %s" % (req.method, req.target,
                                                                  req.version),
                       "headers": [[k.lower(), v] for k, v in req.headers]})
    return Reply(status, headers=headers, body=body.encode())


def ask(port, raw, timeout=5.0):
    """Send one request on a fresh connection, read the answer to the close: a dict
    of status, reason, response header fields (`response`, names lowercased), and
    either what the server saw (`be`, `line`, `headers`) or the body the proxy wrote."""
    data = b""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(raw)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                chunk = s.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status_line = lines[0].split(" ", 2)
    answer = {"status": int(status_line[1]) if len(status_line) > 1 else None,
              "reason": status_line[2] if len(status_line) > 2 else "",
              "response": [[k.strip().lower(), v.strip()] for k, _, v in
                           (l.partition(":") for l in lines[1:])]}
    try:
        seen = json.loads(body)
        if not isinstance(seen, dict) or "be" not in seen:
            raise ValueError
        answer.update(seen)
    except ValueError:
        answer["body"] = body.decode("latin-1")
    return answer
