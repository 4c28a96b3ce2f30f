"""A msgpack-framed conversation over one stream socket: the master's pipe to each worker, a control connection.

msgpack frames itself (each message says its own length), so the framing is the
encoding: bytes in, whole messages out, whatever the reads cut. One class for
every end of every pipe, so the framing is written once:

- `receive()` reads what the socket has without blocking and returns the
  messages it completed (`feed()` does the same for bytes read elsewhere);
- `send(msg)` frames and sends without blocking, queueing what the socket did
  not take; the queue goes out first on the next `send()` or `flush()`, so a
  message is never interleaved with another;
- `send_blocking(msg, timeout)` sends the queue and the message whole or raises,
  for an end that would rather wait a little than keep a queue (the master
  writing to a worker, a worker's last words, the control client).

It lives in `workers/` because both the worker and the master (and the control
client above it) use it; it depends on nothing but msgpack.
"""

import msgpack

RECV_SIZE = 65536


class ChannelError(ValueError):
    """The peer sent bytes that are not msgpack: the conversation cannot go on."""


class Channel:
    """One end of a msgpack-framed stream socket."""

    __slots__ = ("sock", "unpacker", "out", "error")

    def __init__(self, sock):
        self.sock = sock
        self.unpacker = msgpack.Unpacker(raw=False)
        self.out = b""           # framed bytes the socket has not taken yet
        self.error = None        # set once the peer sent bytes that are not msgpack

    def feed(self, data):
        """The messages `data` completes, after what earlier calls left incomplete.

        Bytes that are not msgpack raise ChannelError, once the messages before
        them have been returned: a frame that cannot be decoded leaves no way to
        find the next one, so every later call raises it too."""
        if self.error is not None:
            raise self.error
        msgs = []
        try:
            self.unpacker.feed(data)
            for msg in self.unpacker:
                msgs.append(msg)
        except (ValueError, msgpack.UnpackException) as exc:
            self.error = ChannelError("not msgpack: %s" % exc)
            if not msgs:
                raise self.error from None
        return msgs

    def receive(self, size=RECV_SIZE):
        """Read once without blocking: the messages completed so far ([] when the
        socket had nothing or only part of a message), or None when the peer has
        closed (or the socket failed: either way nothing more will come)."""
        try:
            data = self.sock.recv(size)
        except BlockingIOError:
            return []
        except OSError:
            return None
        if not data:
            return None
        return self.feed(data)

    def send(self, msg):
        """Frame `msg` and send what the socket takes now, queueing the rest behind
        what is already queued. False when the peer is gone."""
        self.out += msgpack.packb(msg, use_bin_type=True)
        return self.flush()

    def flush(self):
        """Send what is queued without blocking. False when the peer is gone."""
        out = self.out
        if not out:
            return True
        try:
            n = self.sock.send(out)
        except BlockingIOError:
            return True
        except OSError:
            return False
        self.out = out[n:]
        return True

    def send_blocking(self, msg, timeout):
        """Send the queue, then `msg`, waiting up to `timeout` seconds (None: for as
        long as it takes); raise OSError (socket.timeout among them) when the socket
        does not take it all. The socket's own timeout is put back afterwards.

        After a failure the peer may hold part of a frame: its reader can no
        longer find the next message, so the caller gives the channel up."""
        data, self.out = self.out + msgpack.packb(msg, use_bin_type=True), b""
        sock = self.sock
        previous = sock.gettimeout()
        try:
            sock.settimeout(timeout)
            sock.sendall(data)
        finally:
            try:
                sock.settimeout(previous)
            except OSError:
                pass

    def close(self):
        self.sock.close()
