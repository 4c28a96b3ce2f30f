"""The -log variants' syslog receiver: a UNIX datagram socket bound at PATH, drained.

    python3 -m bench.e2e.logsink PATH

The harness runs `command(path, workdir)`: logsink.c built with the machine's C
compiler when there is one (it keeps up with HAProxy; this Python loop does
not: ~30% of HAProxy's lines dropped, measured), else this module.

Receives and discards every datagram until SIGTERM, then prints how many lines
(and bytes) it got, so the harness's log shows whether the proxies' lines
arrived. A large receive buffer keeps a short stall from dropping lines; the
proxies never wait for it either way (they drop and count). The kernel's queue
of a UNIX datagram socket holds only net.unix.max_dgram_qlen (10 here) lines,
so the loop is kept short: a blocking recv_into with a kernel timeout
(SO_RCVTIMEO, to see SIGTERM's flag), not a poll() before each recv.
"""

import os
import shutil
import signal
import socket
import struct
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def command(path, workdir):
    """The argv of the fastest receiver this machine can run for `path`."""
    cc = shutil.which("cc") or shutil.which("gcc")
    exe = os.path.join(str(workdir), "logsink")
    if cc and not os.path.exists(exe):
        try:
            subprocess.run([cc, "-O2", "-o", exe, os.path.join(HERE, "logsink.c")],
                           check=True, capture_output=True, timeout=60)
        except (OSError, subprocess.SubprocessError):
            pass
    if os.path.exists(exe):
        return [exe, str(path)]
    return [sys.executable, "-m", "bench.e2e.logsink", str(path)]


def main(path):
    if os.path.exists(path):
        os.unlink(path)
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
    s.bind(path)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, struct.pack("ll", 0, 500000))
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    lines = nbytes = 0
    buf = bytearray(65536)
    recv_into = s.recv_into
    while not stop:
        try:
            n = recv_into(buf)
        except (BlockingIOError, InterruptedError):     # the 0.5 s timeout, or a signal
            continue
        lines += 1
        nbytes += n
    s.close()
    os.unlink(path)
    print("logsink: %d lines, %d bytes" % (lines, nbytes), flush=True)


if __name__ == "__main__":
    main(sys.argv[1])
