"""Raw-socket HTTP/1.1 clients for the soak run: verdict exchanges, keep-alive loops, idle clients.

Every socket has a timeout and every read loop a byte bound, so a proxy that
misbehaves costs the run seconds, never a hang. Nothing here retries: every
failure is one the client saw.
"""

import json
import random
import socket
import threading
import time
import uuid

HOST = "127.0.0.1"
MAX_RESPONSE = 1 << 20


class Closed(Exception):
    """The peer closed before a whole response arrived."""


def status_of(data):
    """The status code of a response starting `data`, or None when it is not a status line."""
    line = data.split(b"\r\n", 1)[0].split(b" ")
    if len(line) >= 2 and line[0].startswith(b"HTTP/") and line[1].isdigit():
        return int(line[1])
    return None


def read_response(sock, buf=b""):
    """Read one response with a Content-Length body: (status, keeps_alive, bytes left over).

    Raises Closed on EOF, socket.timeout / OSError as they come."""
    while b"\r\n\r\n" not in buf:
        if len(buf) > MAX_RESPONSE:
            raise ValueError("response head too large")
        data = sock.recv(65536)
        if not data:
            raise Closed("eof before head")
        buf += data
    head, rest = buf.split(b"\r\n\r\n", 1)
    status = status_of(head)
    if status is None:
        raise ValueError("not a status line: %r" % head[:40])
    length, close = 0, False
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        name, value = name.strip().lower(), value.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"connection" and value == b"close":
            close = True
    while len(rest) < length:
        data = sock.recv(65536)
        if not data:
            raise Closed("eof in body")
        rest += data
    return status, not close, rest[length:]


def get(port, path="/small", timeout=3.0):
    """Status of one GET on a fresh connection that asks to close; raises on failure."""
    with socket.create_connection((HOST, port), timeout=timeout) as s:
        s.sendall(b"GET %s HTTP/1.1\r\nHost: soak\r\nConnection: close\r\n\r\n" % path.encode())
        return read_response(s)[0]


def alive(port, path="/small"):
    try:
        return get(port, path) == 200
    except (OSError, Closed, ValueError):
        return False


def exchange(port, data, wait=2.0, shut=False):
    """Send `data` whole and read what comes back until close or `wait` seconds of silence.

    Returns (verdict, seconds): the status code as text, "closed" (EOF with no
    byte), "reset", "timeout" (no byte within `wait`), or "garbage" (bytes that
    are not a status line)."""
    t0 = time.monotonic()
    got = b""
    with socket.create_connection((HOST, port), timeout=wait) as s:
        try:
            s.sendall(data)
            if shut:
                s.shutdown(socket.SHUT_WR)
            while len(got) < MAX_RESPONSE:
                chunk = s.recv(65536)
                if not chunk:
                    break
                got += chunk
                if b"\r\n\r\n" in got:
                    break  # the status line is all a verdict needs
        except socket.timeout:
            if not got:
                return "timeout", time.monotonic() - t0
        except OSError:  # reset, or a send refused because the proxy closed first
            if not got:
                return "reset", time.monotonic() - t0
    dt = time.monotonic() - t0
    if not got:
        return "closed", dt
    status = status_of(got)
    return (str(status) if status else "garbage"), dt


def keepalive_load(port, method, total, conc=8, think_s=0.002, path="/", timeout=10.0,
                   deadline_s=120.0):
    """`total` requests over `conc` keep-alive connections, 0..think_s seconds apart (at random).

    POSTs carry a unique X-Req-Id so the backend can count duplicates. Returns
    counts: ok, status_NNN, closed (EOF before a whole response), reset,
    timeout, other; a failed connection is reopened for the next request.
    Requests not sent by `deadline_s` are left out of the counts."""
    counts = {}
    end = time.monotonic() + deadline_s
    lock = threading.Lock()

    def count(key):
        with lock:
            counts[key] = counts.get(key, 0) + 1

    def one_client(n):
        sock, buf = None, b""
        for i in range(n):
            if time.monotonic() > end:
                break
            if method == "POST":
                body = b"payload-%d" % i
                req = (b"POST %s HTTP/1.1\r\nHost: soak\r\nX-Req-Id: %s\r\n"
                       b"Content-Length: %d\r\n\r\n%s"
                       % (path.encode(), uuid.uuid4().hex.encode(), len(body), body))
            else:
                req = b"GET %s HTTP/1.1\r\nHost: soak\r\n\r\n" % path.encode()
            try:
                if sock is None:
                    sock, buf = socket.create_connection((HOST, port), timeout=timeout), b""
                sock.sendall(req)
                status, keep, buf = read_response(sock, buf)
                count("ok" if 200 <= status < 300 else "status_%d" % status)
                if not keep:
                    sock.close()
                    sock = None
            except (Closed, socket.timeout, ConnectionResetError, ValueError, OSError) as exc:
                count({Closed: "closed", socket.timeout: "timeout",
                       ConnectionResetError: "reset"}.get(type(exc), "other"))
                if sock is not None:
                    sock.close()
                sock = None
            if think_s:
                time.sleep(random.uniform(0, think_s))
        if sock is not None:
            sock.close()

    threads = [threading.Thread(target=one_client, args=(total // conc,), daemon=True)
               for _ in range(conc)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(deadline_s + timeout + 1)
    return counts


def open_idle(port, n, path="/small", timeout=5.0, deadline_s=120.0):
    """n keep-alive connections, one GET answered on each, left open. Returns (socks, failures);
    those not tried by `deadline_s` count as failures ("deadline")."""
    socks, failures = [], {}
    req = b"GET %s HTTP/1.1\r\nHost: soak\r\n\r\n" % path.encode()
    end = time.monotonic() + deadline_s
    for i in range(n):
        if time.monotonic() > end:
            failures["deadline"] = n - i
            break
        try:
            s = socket.create_connection((HOST, port), timeout=timeout)
        except OSError as exc:
            failures[type(exc).__name__] = failures.get(type(exc).__name__, 0) + 1
            continue
        try:
            s.sendall(req)
            status, _keep, _rest = read_response(s)
            if status != 200:
                failures["status_%d" % status] = failures.get("status_%d" % status, 0) + 1
            socks.append(s)
        except (OSError, Closed, ValueError) as exc:
            failures[type(exc).__name__] = failures.get(type(exc).__name__, 0) + 1
            s.close()
    return socks, failures


def reuse_ok(socks, path="/small", deadline_s=30.0):
    """How many of `socks` (idle keep-alive connections) answer one more GET with 200."""
    ok = 0
    req = b"GET %s HTTP/1.1\r\nHost: soak\r\n\r\n" % path.encode()
    end = time.monotonic() + deadline_s
    for s in socks:
        if time.monotonic() > end:
            break
        try:
            s.sendall(req)
            ok += read_response(s)[0] == 200
        except (OSError, Closed, ValueError):
            pass
    return ok


def backend_stats(port, reset=False):
    """The scripted backend's /__stats (or /__reset) answer, asked directly."""
    path = "/__reset" if reset else "/__stats"
    with socket.create_connection((HOST, port), timeout=5.0) as s:
        s.sendall(b"GET %s HTTP/1.1\r\nHost: soak\r\nConnection: close\r\n\r\n" % path.encode())
        head_and_body = b""
        while b"\r\n\r\n" not in head_and_body and len(head_and_body) < MAX_RESPONSE:
            chunk = s.recv(65536)
            if not chunk:
                raise Closed("backend closed before answering " + path)
            head_and_body += chunk
        head, body = head_and_body.split(b"\r\n\r\n", 1)
        length = int(head.lower().split(b"content-length:", 1)[1].split(b"\r\n", 1)[0])
        while len(body) < length:
            chunk = s.recv(65536)
            if not chunk:
                raise Closed("backend closed in the body of " + path)
            body += chunk
    return None if reset else json.loads(body)
