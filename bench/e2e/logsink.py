"""The -log variants' syslog receiver: a UNIX datagram socket bound at PATH, drained.

    python3 -m bench.e2e.logsink PATH

Receives and discards every datagram until SIGTERM, then prints how many lines
(and bytes) it got, so the harness's log shows whether the proxies' lines
arrived. A large receive buffer keeps a short stall from dropping lines; the
proxies never wait for it either way (they drop and count).
"""

import os
import signal
import socket
import sys


def main(path):
    if os.path.exists(path):
        os.unlink(path)
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
    s.bind(path)
    s.settimeout(0.5)                 # wakes to see SIGTERM's flag
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    lines = nbytes = 0
    while not stop:
        try:
            data = s.recv(65536)
        except (socket.timeout, InterruptedError):
            continue
        lines += 1
        nbytes += len(data)
    s.close()
    os.unlink(path)
    print("logsink: %d lines, %d bytes" % (lines, nbytes), flush=True)


if __name__ == "__main__":
    main(sys.argv[1])
