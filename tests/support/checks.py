"""Small assertions and helpers shared by the end-to-end tests."""

import re
import threading


def assert_html_error(resp, status):
    """An error the proxy generated: that status, a small well-formed HTML body."""
    assert resp.status == status, "expected %d, got %d %s" % (status, resp.status, resp.reason)
    ctype = (resp.header("Content-Type") or "").lower()
    assert ctype.startswith("text/html"), "error %d has Content-Type %r" % (status, ctype)
    assert resp.framing in ("length", "chunked"), "error %d body not framed: %s" % (status, resp.framing)
    body = resp.body.decode("utf-8", "replace").strip().lower()
    assert body.startswith("<html") and body.endswith("</html>"), "not an HTML document: %r" % body
    assert str(status) in body, "the body does not name status %d: %r" % (status, body)
    assert len(resp.body) < 4096
    assert resp.header("X-Conn-Id") is None, "the error came from a backend, not the proxy"


def run_parallel(fn, n, timeout=30.0):
    """Run ``fn(i)`` in ``n`` threads; return results in order; re-raise the first failure."""
    results, errors = [None] * n, []

    def work(i):
        try:
            results[i] = fn(i)
        except BaseException as exc:   # reported below, in the test's thread
            errors.append((i, exc))

    threads = [threading.Thread(target=work, args=(i,), daemon=True) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout)
    stuck = [i for i, t in enumerate(threads) if t.is_alive()]
    assert not stuck, "client threads still running after %.0f s: %s" % (timeout, stuck)
    if errors:
        i, exc = errors[0]
        raise AssertionError("client %d failed (%d failures in all): %r" % (i, len(errors), exc)) \
            from exc
    return results


def sum_servers(stats, field, backend="be"):
    return sum(s[field] for s in stats["backends"][backend]["servers"].values())


def conn_number(conn_id):
    """'s1-7' -> 7."""
    return int(re.sub(r"^.*-", "", conn_id))
