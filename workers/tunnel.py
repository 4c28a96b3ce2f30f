"""A tunnel: bytes both ways between two transports, unparsed (HAProxy's tunnel mode).

What an HTTP/1 connection becomes after `101 Switching Protocols`: the client
side hands over its transport and the bytes it read past the request head,
the server connection its transport and the bytes past the response head
(h11's `trailing_data`), and from then on no HTTP code runs. `mode tcp` will
build one straight from an accepted connection and a stream's server choice.

Half-close passes through: a client that shuts its side is passed on to the
server, whose answer keeps flowing until it closes; a server that closes ends
the tunnel once what it sent has reached the client. `timeout tunnel` bounds
the time both sides stay silent. A slow reader stops the other side's reads
until it drains. For the worker a tunnel is a session like a client endpoint:
it is timed by `deadline`, ended by `close()`.
"""

from selectors import EVENT_READ, EVENT_WRITE

from workers.runtime import NEVER

RECV_SIZE = 65536


class Tunnel:
    """A client transport `a` and a server transport `b`, relayed both ways."""

    __slots__ = ("worker", "frontend", "fc", "server", "sc", "a", "b", "stream", "deadline",
                 "t_tunnel", "a_eof", "b_eof", "b_shut", "closed")

    def __init__(self, worker, frontend, a, b, server, t_tunnel, stream):
        self.worker = worker
        self.frontend = frontend
        self.fc = frontend.counters
        self.server = server
        self.sc = server.counters
        self.a = a
        self.b = b
        self.stream = stream         # what chose the server (its deadline no longer runs)
        self.t_tunnel = t_tunnel
        self.deadline = worker.now + t_tunnel
        self.a_eof = False           # the client shut its side
        self.b_eof = False
        self.b_shut = False          # the client's half-close was passed on
        self.closed = False
        a.retarget(self.on_client)
        b.retarget(self.on_server)

    def start(self, to_client, to_server, client_eof):
        """Send what each side already sent past its head; then relay."""
        self.a_eof = client_eof
        if not self.relay(self.b, self.a, to_client, self.fc, False):
            return
        if to_server and not self.relay(self.a, self.b, to_server, self.sc, True):
            return
        if client_eof and not self.b.out:
            self.b_shut = True
            if not self.b.shutdown_write():
                self.close()
                return
        self.watch()

    def relay(self, src, dst, data, counters, to_server):
        """Write `data` read from `src` on `dst`; False if the tunnel closed."""
        n = dst.write(data)
        if n < 0:
            self.close()
            return False
        if to_server:
            counters.bin += len(data)
        else:
            counters.bout += len(data)
        return True

    def watch(self):
        """Read a side only while the other has nothing left to send."""
        a, b = self.a, self.b
        a.set_events((0 if self.a_eof or b.out else EVENT_READ) | (EVENT_WRITE if a.out else 0))
        b.set_events((0 if self.b_eof or a.out else EVENT_READ) | (EVENT_WRITE if b.out else 0))

    def on_client(self, mask):
        self.on_io(mask, self.a, self.b, True)

    def on_server(self, mask):
        self.on_io(mask, self.b, self.a, False)

    def on_io(self, mask, src, dst, from_client):
        """`src` is ready: flush what waits for it, then move what it sent to `dst`."""
        self.deadline = self.worker.now + self.t_tunnel
        if mask & EVENT_WRITE and src.out and src.flush() < 0:
            self.close()
            return
        eof = self.a_eof if from_client else self.b_eof
        if mask & EVENT_READ and not eof:
            try:
                data = src.recv(RECV_SIZE)
            except BlockingIOError:
                data = None
            except OSError:
                data = b""
            if data:
                if from_client:
                    self.fc.bin += len(data)
                else:
                    self.sc.bout += len(data)
                if not self.relay(src, dst, data, self.sc if from_client else self.fc,
                                  from_client):
                    return
            elif data is not None:
                if from_client:
                    self.a_eof = True    # passed on to the server once its bytes went
                else:
                    self.b_eof = True    # the client gets what is left, then the end
        if self.b_eof and not self.a.out:
            self.close()
            return
        if self.a_eof and not self.b.out and not self.b_shut:
            self.b_shut = True
            if not self.b.shutdown_write():
                self.close()
                return
        self.watch()

    def on_timeout(self, now):
        if not self.closed and self.deadline <= now:
            self.close()                 # timeout tunnel: both sides silent too long

    def idle_between_requests(self):
        return False

    def stopping(self):
        """A graceful stop lets a tunnel run until it ends or the stop's limit."""

    def on_server_down(self, matches):
        if matches(self.server):
            self.sc.srv_abrt += 1
            self.close()

    def abort(self):
        self.close()

    def close(self):
        if self.closed:
            return
        self.closed = True
        self.deadline = NEVER
        self.a.close()
        self.b.close()
        self.fc.scur -= 1
        self.sc.scur -= 1
        self.worker.session_closed(self, self.frontend)
