"""Client-side HTTP/1: one client connection (HAProxy's mux_h1 on a frontend connection).

An `H1Front` reads requests (pipelined ones wait in its input buffer), parses
their heads, frames request bodies with a `BodyDecoder` (_native), decides the
client's keep-alive in one place (`client_ka`: set from the request, lowered
by the response or a stop, never raised again for that request), writes the
response head's client-side ending, sends keepwarm's own error pages, and
closes without losing a response in flight (linger). Its timeouts are the
client side's: `timeout http-request`, `http-keep-alive`, `client`, linger.

Everything about the server side is its `Stream`'s (workers/stream.py), made
once with the connection and reset per request; the stream talks back through
the methods its docstring lists (the waist). After a 101 the connection
becomes a `Tunnel` (workers/tunnel.py) and this object is done. It is the hot
path: locals, no logging, no per-header objects."""

from selectors import EVENT_READ, EVENT_WRITE

from _native import (BODY_DONE, ERROR_STATUS, F_CONN_UPGRADE, F_HOP, F_UPGRADE, M_HEAD, R_BODY,
                     R_BODY_LEN, R_END, R_FLAGS, R_METHOD, R_METHOD_OFF, R_PERSIST, R_STATUS,
                     R_VERDICT, R_VERSION)
from proxy.http1.errors import error_response
from proxy.http1.rewrite import (
    DROP_TE, END, END_CLOSE, END_KEEPALIVE_10, END_UPGRADE, apply_rules, edit_response,
    forward_head, has_length, rule_page,
)
from proxy.http1.rules import (
    BODY_CHUNKED, BODY_CLOSE, BODY_LENGTH, BODY_NONE, STATUS_CLASS, websocket_handshake_ok,
)
from workers.runtime import NEVER
from workers.stream import Stream
from workers.tunnel import Tunnel

RECV_SIZE = 65536
PIPELINE_HOLD = 65536          # pipelined bytes held while a response is in flight
LINGER_TIME = 2.0

# Connection states (the request message's, then the connection's end).
RQ_HEAD = 0      # waiting for (the rest of) a request head
RQ_BODY = 1      # forwarding the request body
RQ_DONE = 2      # request forwarded; its response is awaited or under way
LINGER = 3       # our side is shut; reading and dropping until the client closes
CLOSED = 4       # closed, or handed over to a tunnel


class H1Front:
    """One client connection: its requests, one at a time, and their answers."""

    __slots__ = (
        "worker", "frontend", "fc", "xprt", "peer", "write", "recv", "state", "stream",
        "inbuf", "prev_len", "nreq", "deadline", "client_eof", "reading", "draining",
        # the current request
        "method", "version", "client_ka", "req_dec", "upgrading", "dechunk", "pair",
        "held", "t_first", "nout",
    )
    stream_class = Stream        # workers/txlog.py's logging one for a frontend that logs

    def __init__(self, worker, frontend, sock, peer, transport=None):
        self.worker = worker
        self.frontend = frontend
        self.fc = frontend.counters          # counted on every request: one lookup less
        self.xprt = xprt = (transport or worker.transport)(worker.sel, sock, self.on_client)
        self.peer = peer
        self.write = xprt.write      # bound once: the hot path's two calls into the transport
        self.recv = xprt.recv
        self.state = RQ_HEAD
        self.inbuf = b""
        self.prev_len = self.nreq = self.nout = 0   # nreq: heads received; nout: bytes sent
        self.client_eof = self.upgrading = False
        self.reading = True
        self.draining = False    # stream_done() is taking pipelined requests from inbuf
        self.dechunk = None      # a decoder, while relaying a chunked body to an HTTP/1.0 client
        self.req_dec = self.held = None     # held: a tarpit's (answer, keep) until its time
        self.deadline = worker.now + frontend.t_http_request
        self.pair = frontend.pair
        self.stream = self.stream_class(worker, self, frontend, peer,
                                        xprt.sock.getsockname() if frontend.needs_local else None)
        frontend.counters.session_start()

    # ----------------------------------------------------------- reading the client

    def pause(self):
        self.reading = False
        self.xprt.set_events(EVENT_WRITE if self.xprt.out else 0)

    def resume(self):
        if self.reading or self.client_eof or self.state >= LINGER:
            return
        self.reading = True
        self.xprt.set_events(EVENT_READ | EVENT_WRITE if self.xprt.out else EVENT_READ)

    def watch(self):                    # a connection just accepted: wait for its request
        self.xprt.set_events(EVENT_READ)

    def start(self):
        """A connection just accepted from a `defer-accept` bind, so its request is
        already there: read it at once, then wait in the selector only for what is
        still to come. A client that said `Connection: close` and now waits for its
        response is not watched at all (its last read, linger, happens at close; a
        client gone meanwhile is noticed at the send). That saves a wakeup per
        connection and, for such a client, both epoll_ctl calls."""
        self.on_client(EVENT_READ)
        if self.xprt.events or self.state == CLOSED or not self.reading:
            return           # closed, or registered for what it awaits (a slow write)
        if self.state == RQ_DONE and not self.client_ka and not self.upgrading:
            return
        self.xprt.set_events(EVENT_READ)

    def on_client(self, mask):
        """The client socket is ready: write what waits for it, then read what it sent."""
        if mask & EVENT_WRITE:
            self.flush()
            if self.state == CLOSED or not mask & EVENT_READ:
                return
        try:
            data = self.recv(RECV_SIZE)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        state = self.state
        if not data:
            self.on_client_eof()
            return
        if state == LINGER:
            return                      # dropped: we are closing
        self.fc.bin += len(data)
        if state == RQ_HEAD:
            inbuf = self.inbuf
            if inbuf:
                data = inbuf + data
            self.on_head_data(data)
        elif state == RQ_BODY:
            self.deadline = self.worker.now + self.frontend.t_client
            self.on_body_data(data)
        else:
            # Pipelined request while the previous response is in flight: hold it.
            self.inbuf += data
            if len(self.inbuf) >= PIPELINE_HOLD:
                self.pause()

    def on_client_eof(self):
        state = self.state
        self.client_eof = True
        if state == RQ_DONE:
            # The client half-closed after its request; answer it (and the requests it
            # pipelined before, held in inbuf: on_head_data marks the last one), then close.
            if not self.inbuf:
                self.client_ka = False
            self.pause()
            return
        if state == RQ_BODY:
            self.fc.cli_abrt += 1
        elif state == RQ_HEAD and self.xprt.out:
            # Between requests, the last answer still on its way: finish it, then close.
            self.close_gracefully()
            return
        self.close()

    def on_head_data(self, data):
        """Parse the request head at the start of `data` and hand it to the stream."""
        worker = self.worker
        parser = worker.parser
        r = parser.request_rc(data, len(data), 0, self.prev_len)
        if r <= 0:
            if r == 0:
                if not self.prev_len:
                    # First bytes of a head: from now on `timeout http-request` runs.
                    self.t_first = now = worker.now     # (the access log's Ti)
                    self.deadline = now + self.frontend.t_http_request
                self.inbuf = data
                self.prev_len = len(data)
                return
            self.reject(ERROR_STATUS[r], bad=data)
            return
        r = parser.result()
        self.inbuf = b""
        self.prev_len = 0
        # The parser decided the framing and the verdict (proxy.http1.rules.classify_request).
        if r[R_VERDICT]:
            self.reject(r[R_VERDICT])
            return
        end = r[R_END]
        dlen = len(data)
        version = r[R_VERSION]
        self.version = version
        fe = self.frontend
        st = self.stream
        # The backend, and with it what the two proxies decide together (the pair):
        # the stream's one routing call, skipped without use_backend rules.
        self.pair = pair = fe.pair if st.router is None else st.route(r, data)
        if pair.__class__ is tuple:
            self.rule_answer(pair, r, data, end)
            return
        self.client_ka = r[R_PERSIST] and fe.keepalive and pair.client_ka
        if pair.dynamic_responses and st.router is None:
            st.new_txn(data)                # the response's rules read it
        kind = r[R_BODY]
        flags = r[R_FLAGS]
        if flags & F_HOP or version == 10 or r[R_METHOD_OFF] or pair.edit_requests:
            head = self.request_head(r, data, flags, version, pair)
            if self.upgrading and not websocket_handshake_ok(parser.headers(data), False):
                self.reject(400)         # a WebSocket upgrade without its key (HAProxy: 400)
                return
        else:
            # The common case: the original head bytes, untouched.
            self.upgrading = False
            head = data if end == dlen else data[:end]
        if kind == BODY_NONE:
            done = True
            if end != dlen:
                self.inbuf = data[end:]
        else:
            # One decoder for both framings (_native's BodyDecoder): what of the
            # bytes in hand is body, and whether it is all there.
            dec = self.req_dec
            if dec is None:
                dec = self.req_dec = worker.new_body_decoder()
            if kind == BODY_LENGTH:
                dec.start_length(r[R_BODY_LEN])
            else:
                dec.start_chunked()
            n = dec.feed_rc(data, dlen, end)
            if n < 0:
                self.reject(400)
                return
            done = n >= BODY_DONE
            if done:
                n -= BODY_DONE
                self.inbuf = data[end + n:]
            head += data[end:end + n]
        if self.client_eof:
            # Pipelined behind a half-close. The rest of a body can never come (the
            # answer before it may still be on its way: finish that, then close); the
            # last complete request's answer ends the connection.
            if not done:
                self.fc.cli_abrt += 1
                self.close_gracefully()
                return
            if not self.inbuf:
                self.client_ka = False
        self.fc.req_tot += 1
        self.nreq += 1
        if done:
            self.state = RQ_DONE
            self.deadline = NEVER        # the stream's timeouts run now
        else:
            self.state = RQ_BODY
            self.deadline = worker.now + fe.t_client
        st.start(head, r, data, done)

    def rule_answer(self, answer, r, data, end):
        """An http-request rule answered (deny, return, redirect, tarpit): send it (a
        tarpit's after its delay), go on if we can."""
        status, page = answer[0], answer[1]
        fe = self.frontend
        self.pair = fe.pair
        fc = self.fc
        fc.req_tot += 1
        fc.hrsp[STATUS_CLASS[status]] += 1
        self.nreq += 1
        keep = (r[R_PERSIST] and fe.keepalive and fe.pair.client_ka and r[R_BODY] == BODY_NONE
                and self.version == 11)
        if r[R_BODY] == BODY_NONE and end != len(data):
            self.inbuf = data[end:]          # pipelined behind it
        self.state = RQ_DONE
        page = rule_page(page, r[R_METHOD] == M_HEAD)
        if len(answer) == 3:                 # tarpit: the tick answers it (on_timeout)
            self.held = (page, keep)
            self.deadline = self.worker.now + answer[2]
            return
        self.send_rule_page(page, keep)

    def send_rule_page(self, page, keep):
        """A rule's whole answer, instead of a server's: then the next request, or close."""
        if self.client_eof and not self.inbuf or not has_length(page):
            keep = False                 # (an errorfile without a length ends with the close)
        self.client_ka = keep
        page = rule_page(page, False, not keep)
        self.send(page)
        if self.state == CLOSED:
            return
        if keep:
            self.stream_done()
        else:
            self.close_gracefully()

    def request_head(self, r, data, flags, version, fe):
        """The head to send when the original bytes will not do: hop-by-hop headers to
        drop, HTTP/1.0, an Upgrade, leading empty lines, or a configuration that edits
        requests (header rules, forwardfor, http-server-close/httpclose); `fe`: the
        frontend's Pairing with the request's backend."""
        self.upgrading = upgrading = bool(flags & F_UPGRADE and flags & F_CONN_UPGRADE
                                          and version == 11)
        return forward_head(self.worker.parser, r, data, upgrading, fe,
                            self.peer[0] if self.peer else None,
                            lambda: self.stream.request_txn(data), self.xprt.sock)

    def on_body_data(self, data):
        """Request body bytes: frame them; what follows the body is the next request."""
        n = self.req_dec.feed_rc(data, len(data), 0)
        if n < 0:
            self.reject(400, counted=True)
            return
        done = n >= BODY_DONE
        if done:
            n -= BODY_DONE
            if n != len(data):
                self.inbuf = data[n:]       # pipelined after the body
                data = data[:n]
            self.state = RQ_DONE
            self.deadline = NEVER
        self.stream.body(data, done)

    # ----------------------------------------------------------- the stream's calls (the waist)

    def response_head(self, data, r, end, kind, whole):
        """The final response head (and, when `whole`, all of the response) is in
        `data`: decide the client's keep-alive and the head's ending; send it all
        when whole (None), else return the head to send with the first body bytes."""
        version = self.version
        # RFC 9112 §7.1: an HTTP/1.0 recipient gets a chunked body decoded, ended by the close.
        dechunk = kind == BODY_CHUNKED and version == 10
        # An answer before the whole request body arrived ends the connection: the
        # rest of the body must never be read as a next request.
        client_ka = (self.client_ka and kind != BODY_CLOSE and self.state == RQ_DONE
                     and not dechunk)
        self.client_ka = client_ka
        fe = self.pair
        if r[R_FLAGS] & F_HOP or not client_ka or version == 10 or fe.response_rules:
            if not client_ka:
                tail = END_CLOSE
            elif version == 10:
                tail = END_KEEPALIVE_10
            else:
                tail = END
            parser = self.worker.parser
            if whole and not fe.response_rules:
                # Small responses: the rewritten head and the whole body in one copy, one send.
                n = parser.rewrite_rc(data, len(data), 0, tail, len(tail))
                self.send(parser.rewritten(n) if n >= 0 else parser.rewrite(data, tail))
                return None
            head = parser.strip_hop(data)
            if fe.response_rules:
                head = edit_response(head, fe, self.stream.txn, r[R_STATUS], data, parser)
                if head.__class__ is tuple:     # http-response deny|return: not the server's
                    self.stream.drop_conn()
                    self.send_rule_page(head[1], self.state == RQ_DONE and self.client_ka)
                    return None
            if dechunk:
                head = apply_rules(head, DROP_TE)
                self.dechunk = dec = self.worker.new_body_decoder()
                dec.start_chunked()
                self.stream.sink = self.send_decoded     # until stream_done()
                self.send(head + tail)   # the body goes through send_decoded
                return b""
            head += tail
            if whole:
                self.send(head + data[end:])
                return None
            return head
        if whole:
            self.send(data)              # forwarded as received, head and body
            return None
        return data if end == len(data) else data[:end]

    def send_decoded(self, data):
        """The stream's sink while an HTTP/1.0 client gets a chunked body: its data only."""
        n, spans = self.dechunk.feed_spans(data, 0)
        self.send(b"".join([data[off:off + ln] for off, ln in spans]))

    def interim(self, head):
        """A 1xx response (100 Continue, 103 Early Hints): relayed, never to an
        HTTP/1.0 client (RFC 9110 §15.2)."""
        if self.version != 10:
            self.send(head)

    def answer(self, status, page=None):
        """Send keepwarm's own error response for the current stream, then go on or
        close; `page`: an `errorfile`'s response instead (rule_page(): as HAProxy)."""
        keep = self.client_ka and self.state == RQ_DONE
        if page is not None:        # as HAProxy: an errorfile without a length closes
            keep = keep and has_length(page)
            page = rule_page(page, False, not keep, errorfile=True)
        if page is None or page:
            self.send(error_response(status, close=not keep) if page is None else page)
        if self.state == CLOSED:
            return
        if keep:
            self.stream_done()
        else:
            self.close_gracefully()

    def continues(self):
        """Will this connection carry another request after the current response?"""
        return self.client_ka and not self.client_eof and self.state == RQ_DONE

    def stream_done(self):
        """The exchange ended: take the next request, or close."""
        if self.dechunk is not None:
            self.dechunk = None
            self.stream.sink = self.send
        if self.state == RQ_BODY or not self.client_ka:
            self.close_gracefully()
            return
        self.state = RQ_HEAD
        worker = self.worker
        # timeout http-keep-alive starts once the response is fully sent (HAProxy).
        self.deadline = worker.now + (self.frontend.t_client if self.xprt.out
                                      else self.frontend.t_keepalive)
        if self.inbuf:
            if self.draining:
                # Answered at once (an error page) while the loop below, further up
                # the stack, is taking pipelined requests: it takes the next one.
                return
            # A loop, not recursion: thousands of pipelined requests answered at once
            # (503, no server) would otherwise nest a call chain per request.
            self.draining = True
            try:
                while self.inbuf and self.state == RQ_HEAD and not self.prev_len:
                    data = self.inbuf
                    self.inbuf = b""
                    self.deadline = worker.now + self.frontend.t_http_request
                    self.on_head_data(data)
            finally:
                self.draining = False
            if self.client_eof and self.state == RQ_HEAD:
                self.close_gracefully()     # the rest of a head that will never come
                return
        if not self.reading and self.state == RQ_HEAD:
            self.resume()

    def upgraded(self, data, end, server_xprt, server, t_tunnel):
        """The server answered 101 to the Upgrade this request asked for: relay its
        head, then hand both transports to a tunnel. False if no (valid) Upgrade
        was asked for: the stream answers 502."""
        parser = self.worker.parser
        if not (self.upgrading and self.state == RQ_DONE
                and websocket_handshake_ok(parser.headers(data), True)):
            return False
        head = parser.strip_hop(data, True) + END_UPGRADE
        # Bytes the client sent after its request head belong to the new protocol.
        early, self.inbuf = self.inbuf, b""
        self.state = CLOSED              # handed over: the tunnel closes the transports
        tunnel = Tunnel(self.worker, self.frontend, self.xprt, server_xprt, server, t_tunnel,
                        self.stream)
        self.worker.session_replaced(self, tunnel)
        tunnel.start(head + data[end:], early, self.client_eof)
        return True

    # ----------------------------------------------------------- answers and timeouts

    def reject(self, status, counted=False, bad=None):
        """Refuse an invalid request: error response, then close. `counted`: already in
        req_tot (it failed mid-body); `bad`: the unparsed bytes, for `show errors`."""
        if bad is not None:
            self.worker.capture_error(self.frontend, bad, self.peer)
        fc = self.fc
        fc.hrsp[STATUS_CLASS[status]] += 1
        if not counted:
            fc.req_tot += 1
        self.client_ka = False
        self.inbuf = b""
        page = self.frontend.errorfiles.get(status)
        if page is None:
            self.send(error_response(status, close=True))
        elif page:
            self.send(page)                # errorfile: verbatim
        if self.state != CLOSED:
            self.close_gracefully()

    def on_timeout(self, now):
        """The tick found a deadline due: the stream's (queue, connect, server) or ours."""
        if self.state == CLOSED:
            return
        st = self.stream
        if st.deadline <= now:
            st.on_timeout()
            return
        if self.deadline > now:
            return
        state = self.state
        if state == LINGER:
            self.close()                   # the client never closed its side
        elif state == RQ_HEAD:
            if self.inbuf:
                self.reject(408)           # a head trickled too slowly (slowloris)
            elif self.nreq == 0 and not self.frontend.ignore_probes:
                # A connection that never sent a byte: 408, as HAProxy does unless
                # `option http-ignore-probes` (browsers' speculative pre-connects).
                self.reject(408)
            else:
                self.close()               # idle keep-alive connection, or an ignored probe
        elif state == RQ_BODY and not st.resp_started:
            self.reject(408, counted=True)  # timeout client: the body stopped coming
        elif self.held is not None:
            (page, keep), self.held = self.held, None
            self.deadline = NEVER
            self.send_rule_page(page, keep)      # a tarpit's time is up
        else:
            self.write_timed_out()

    def write_timed_out(self):         # timeout client: our output is not taken
        self.abort()

    # ----------------------------------------------------------- what the worker asks

    def idle_between_requests(self):
        """Between two requests, with nothing read of the next one and nothing left to
        send: a connection a stopping worker may close. One that has not sent its
        first request yet is not idle: it was accepted to be served. Nor is one of
        a frontend with `option idle-close-on-response`."""
        return (self.state == RQ_HEAD and self.nreq and not self.inbuf and not self.prev_len
                and not self.xprt.out and not self.frontend.idle_close_on_response)

    def close_if_idle(self):
        """A stopping worker closes an idle connection: a request may have arrived
        since, unread: serve it; close only what has nothing pending, without a
        reset (close_gracefully reads once more, then closes, or shuts down and
        lingers if bytes came meanwhile)."""
        self.on_client(EVENT_READ)
        if self.idle_between_requests():
            self.close_gracefully()

    def stopping(self):
        """The worker stops: a response not begun yet says `Connection: close`."""
        if (self.state == RQ_BODY or self.state == RQ_DONE) and not self.stream.resp_started:
            self.client_ka = False

    def on_server_down(self, matches):
        """on-marked-down shutdown-sessions: end at once if the exchange is on such a server."""
        st = self.stream
        if st.uses_server(matches):
            st.server.counters.srv_abrt += 1
            self.abort()

    # ----------------------------------------------------------- output and closing

    def send(self, data):
        xprt = self.xprt
        n = self.write(data)
        if n < 0:
            self.abort()
            return
        self.fc.bout += n
        self.nout += len(data)           # handed over (what waits in `out` included)
        if not xprt.out:
            return
        # The client is slower than the server: stop reading the server until it drains.
        self.stream.hold()
        xprt.set_events(EVENT_READ | EVENT_WRITE if self.reading else EVENT_WRITE)
        self.deadline = self.worker.now + self.frontend.t_client

    def flush(self):
        xprt = self.xprt
        n = xprt.flush()
        if n < 0:
            self.abort()
            return
        self.fc.bout += n
        now = self.worker.now
        self.deadline = now + self.frontend.t_client
        if xprt.out:
            return
        state = self.state
        if state == LINGER:
            self.linger()
            return
        if state == RQ_HEAD:
            if not self.inbuf and not self.prev_len:
                self.deadline = now + self.frontend.t_keepalive
        elif state == RQ_DONE:
            self.deadline = NEVER        # the stream's timeouts run
        xprt.set_events(EVENT_READ if self.reading else 0)
        self.stream.unhold()

    def close_gracefully(self):
        """Close after the pending output is written, without resetting it.

        Closing a socket with unread input makes the kernel send a reset that can
        destroy the response still in flight; so shut our side, then read and drop
        until the client closes (or LINGER_TIME passes).
        """
        self.stream.stop()
        self.state = LINGER
        self.reading = True
        self.deadline = self.worker.now + LINGER_TIME
        if self.xprt.out:
            self.xprt.set_events(EVENT_WRITE)
            return
        self.linger()

    def linger(self):
        if self.client_eof:
            self.close()
            return
        # Common case: the client sent nothing more. One non-blocking read
        # proves it, and a plain close then sends FIN, not a reset.
        try:
            data = self.recv(RECV_SIZE)
        except (BlockingIOError, OSError):
            self.close()
            return
        if not data or not self.xprt.shutdown_write():
            self.close()
            return
        self.xprt.set_events(EVENT_READ)

    def abort(self):
        """Close everything at once (broken peer, unrecoverable mid-stream error)."""
        self.close()

    def close(self):
        if self.state == CLOSED:
            return
        self.state = CLOSED
        self.stream.stop()
        self.xprt.close()
        self.fc.scur -= 1
        self.worker.session_closed(self, self.frontend)
