"""A scripted HTTP/1.1 backend for the soak run: records what it got, may drop idle connections.

    python3 -m bench.soak.backend PORT [--close-idle-max-ms MS]

Every request except the control paths is answered 200 with a small body.
`--close-idle-max-ms MS` closes each idle keep-alive connection after a random
idle time, uniform in [0, MS] ms, with no `Connection: close` notice: the
server every pooled connection races against. Control paths, asked directly
(not through a proxy):

- `GET /__stats`: JSON counters: requests, connections, idle closes, POSTs,
  duplicated POSTs (an `X-Req-Id` seen twice: a non-idempotent request
  delivered twice), requests whose target says "smug" (smuggled out of
  another request's body), and the raw
  heads of the last requests (latin-1), so a caller can see what was forwarded.
- `GET /__reset`: clears all of it.

Framing is strict where a proxy must have been: a head that is not plain
CRLF-terminated lines, a Content-Length that is not digits (or a list of one
repeated value), or both Content-Length and Transfer-Encoding closes the
connection and is counted as `bad_framing`.
"""

import argparse
import asyncio
import collections
import json
import random

MAX_HEAD = 256 * 1024
KEEP_HEADS = 50
BODY = b"k" * 64
QUIET_IDLE_S = 120.0  # without --close-idle-max-ms: still no connection is kept forever


class Record:
    """What the backend saw since the last reset."""

    def __init__(self):
        self.counts = collections.Counter()
        self.post_ids = collections.Counter()
        self.heads = collections.deque(maxlen=KEEP_HEADS)

    def reset(self):
        self.__init__()

    def report(self):
        dups = [k for k, v in self.post_ids.items() if v > 1]
        return {**self.counts, "post_ids": len(self.post_ids), "post_dups": len(dups),
                "dup_sample": dups[:5], "heads": list(self.heads)}


def content_length(values):
    """The length a list of Content-Length field values means, or None if invalid.

    RFC 9112 §6.3 (5): a list of identical values may be read as one value."""
    parts = [p.strip() for v in values for p in v.split(",")]
    if not parts or any(not p.isdigit() for p in parts) or len(set(int(p) for p in parts)) != 1:
        return None
    return int(parts[0])


def parse_head(head):
    """(method, target, {lower name: [values]}) of a head, or None if it is not plain HTTP/1.1."""
    text = head.decode("latin-1")
    lines = text[:-4].split("\r\n")
    if any("\r" in line or "\n" in line for line in lines):
        return None
    first = lines[0].split(" ")
    if len(first) != 3:
        return None
    fields = collections.defaultdict(list)
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if not sep:
            return None
        fields[name.strip().lower()].append(value.strip())
    return first[0], first[1], fields


async def read_body(reader, fields):
    """The request body per its framing, or None when the framing is invalid."""
    te = fields.get("transfer-encoding")
    cl = fields.get("content-length")
    if te and cl:
        return None
    if te:
        if [v.lower() for v in te] != ["chunked"]:
            return None
        body = b""
        for _ in range(10000):
            line = await reader.readuntil(b"\r\n")
            size_text = line.split(b";")[0].strip()
            if not size_text or any(c not in b"0123456789abcdefABCDEF" for c in size_text):
                return None
            size = int(size_text, 16)
            if size == 0:
                while (await reader.readuntil(b"\r\n")) != b"\r\n":  # trailers
                    pass
                return body
            body += await reader.readexactly(size)
            if await reader.readexactly(2) != b"\r\n":
                return None
        return None
    if cl:
        n = content_length(cl)
        return None if n is None else await reader.readexactly(n)
    return b""


class Backend:
    def __init__(self, close_idle_max_ms):
        self.close_idle_max_s = close_idle_max_ms / 1000.0
        self.rec = Record()

    def idle_limit(self):
        return random.uniform(0, self.close_idle_max_s) if self.close_idle_max_s else QUIET_IDLE_S

    async def serve(self, reader, writer):
        rec = self.rec
        rec.counts["conns"] += 1
        try:
            while True:
                try:
                    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"),
                                                  self.idle_limit())
                except asyncio.TimeoutError:
                    rec.counts["idle_closes"] += 1
                    return
                parsed = parse_head(head)
                if parsed is None:
                    rec.counts["bad_framing"] += 1
                    return
                method, target, fields = parsed
                body = await read_body(reader, fields)
                if body is None:
                    rec.counts["bad_framing"] += 1
                    return
                out = self.answer(method, target, fields, head, body)
                close = "close" in ",".join(fields.get("connection", [])).lower()
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
                             b"Content-Length: %d\r\n%s\r\n%s"
                             % (len(out), b"Connection: close\r\n" if close else b"",
                                b"" if method == "HEAD" else out))
                await writer.drain()
                if close:
                    return
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            return
        finally:
            writer.close()

    def answer(self, method, target, fields, head, body):
        rec = self.rec
        if target == "/__stats":
            return json.dumps(rec.report()).encode()
        if target == "/__reset":
            rec.reset()
            return b"reset"
        rec.counts["requests"] += 1
        rec.counts["m_" + method] += 1
        rec.heads.append(head.decode("latin-1"))
        if "smug" in target.lower():  # a request cut from another's body (cases.py)
            rec.counts["smuggled_seen"] += 1
        if method == "POST" and fields.get("x-req-id"):
            rec.post_ids[fields["x-req-id"][0]] += 1
        return BODY


async def main(port, close_idle_max_ms):
    backend = Backend(close_idle_max_ms)
    server = await asyncio.start_server(backend.serve, "127.0.0.1", port, backlog=4096,
                                        limit=MAX_HEAD)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    ap = argparse.ArgumentParser(prog="python3 -m bench.soak.backend", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("port", type=int)
    ap.add_argument("--close-idle-max-ms", type=float, default=0.0,
                    help="close idle keep-alive connections after uniform(0, MS) ms (0: never)")
    args = ap.parse_args()
    try:
        asyncio.run(main(args.port, args.close_idle_max_ms))
    except KeyboardInterrupt:
        pass
