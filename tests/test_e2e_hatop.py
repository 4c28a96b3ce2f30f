"""hatop (Debian's package) against keepwarm's stats socket, through a pseudo-terminal:
it starts (its `prompt` session, `show info` regexes, `show stat` read by column
position), shows the frontend, backend and server rows, and a server disabled
from its command line leaves the rotation in every worker (issue 18)."""

import fcntl
import os
import pty
import re
import select
import shutil
import signal
import struct
import termios
import time

import pytest

from support.backend import Reply
from support.client import HttpClient

pytestmark = pytest.mark.skipif(shutil.which("hatop") is None, reason="hatop not installed")

_ESCAPES = re.compile(rb"\x1b\[[0-9;?]*[A-Za-z]|\x1b[()][A-Z0-9]|\x1b[=>]")


class Hatop:
    """hatop in a 140x40 pseudo-terminal; `screen()` is what it drew, escapes blanked."""

    def __init__(self, sock):
        self.pid, self.fd = pty.fork()
        if self.pid == 0:                        # the child: hatop itself
            os.environ["TERM"] = "xterm"
            os.execvp("hatop", ["hatop", "-s", str(sock), "-i", "1"])
        fcntl.ioctl(self.fd, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 140, 0, 0))
        self.out = b""

    def read_for(self, seconds):
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            ready, _, _ = select.select([self.fd], [], [], 0.1)
            if ready:
                try:
                    self.out += os.read(self.fd, 65536)
                except OSError:
                    return

    def wait_for(self, text, seconds=8.0):
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self.read_for(0.2)
            if text in self.screen():
                return True
        return False

    def screen(self):
        return _ESCAPES.sub(b" ", self.out).decode(errors="replace")

    def keys(self, data):
        os.write(self.fd, data)

    def stop(self):
        try:
            self.keys(b"q")
            self.read_for(0.5)
        except OSError:
            pass
        try:
            os.kill(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        os.waitpid(self.pid, 0)
        os.close(self.fd)


def test_hatop_shows_the_rows_and_disables_a_server_in_every_worker(backend_factory,
                                                                    proxy_factory, tmp_path):
    s1 = backend_factory("s1", lambda be, req: Reply(body=b"s1"))
    s2 = backend_factory("s2", lambda be, req: Reply(body=b"s2"))
    kw = proxy_factory([s1, s2], nbproc=2)
    top = Hatop(kw.sock)
    try:
        assert top.wait_for("BACKEND"), top.screen()[-2000:]
        screen = top.screen()
        assert "runtime error" not in screen
        for word in ("keepwarm", "FRONTEND", "OPEN", "s1", "s2", "BACKEND", "UP"):
            assert word in screen, (word, screen[-2000:])
        top.keys(b"\x1b5")                       # ESC-5: hatop's command line
        assert top.wait_for("interactive")
        for _ in range(3):
            top.keys(b"disable server be/s1\r")
            if top.wait_for("> disable server be/s1", 3.0):
                break
        kw.wait_stats(lambda st: st["backends"]["be"]["servers"]["s1"]["status"] == "MAINT",
                      what="s1 in maintenance")
        served = set()
        for _ in range(20):                      # new connections: both workers take some
            with HttpClient(kw.port) as c:
                served.add(c.request("GET", "/").body)
        assert served == {b"s2"}
        # hatop may drop keys typed while it redraws: type again until it echoes them.
        for _ in range(3):
            top.keys(b"enable server be/s1\r")
            if top.wait_for("> enable server be/s1", 3.0):
                break
        kw.wait_stats(lambda st: st["backends"]["be"]["servers"]["s1"]["status"] != "MAINT",
                      what="s1 back in rotation")
    finally:
        top.stop()
