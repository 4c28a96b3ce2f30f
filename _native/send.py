"""Many datagrams in one system call: ksend.c's sendmmsg(2) when the C module is
built, else a send(2) each (the same answers; KEEPWARM_PURE=1 forces the loop).

``send_datagrams(sock, lines)`` sends ``lines`` in order on the connected,
non-blocking datagram socket ``sock`` and returns how many went out: the first
that could not go and those after it did not. When none went out it raises the
first one's error (BlockingIOError when the receiver's queue is full).
"""

import os

IMPLEMENTATION = "python"


def _send_each(sock, lines):
    sent = 0
    send = sock.send
    for line in lines:
        try:
            send(line)
        except InterruptedError:
            try:
                send(line)
            except OSError:
                if sent:
                    return sent
                raise
        except OSError:
            if sent:
                return sent
            raise
        sent += 1
    return sent


send_datagrams = _send_each

if os.environ.get("KEEPWARM_PURE", "") in ("", "0"):
    try:
        from ._khttp import ffi as _ffi, lib as _lib
    except ImportError:
        pass
    else:
        _ksend = _lib.ksend_datagrams
        _ints = _ffi.new

        def send_datagrams(sock, lines):     # noqa: F811 - the C form, when built
            n = len(lines)
            r = _ksend(sock.fileno(), b"".join(lines), _ints("int[]", [len(x) for x in lines]),
                       n)
            if r < 0:
                raise OSError(-r, os.strerror(-r))
            return r

        IMPLEMENTATION = "native"
