"""The worker's selector: selectors' epoll selector with a faster path for what the loop does most.

The data path registers a socket per client connection, changes interest when a
peer is slow, and dispatches a few events per request. The standard
`EpollSelector` spends a handful of Python calls on each of those (file object
lookups, key validation, building the ready list); this subclass keeps its
bookkeeping (`get_key`, `get_map`, `select` still work) but registers sockets
and dispatches callbacks directly. Only Linux's epoll gets the fast path; any
other platform uses the standard selector and `select()`.
"""

import select
import selectors
from selectors import EVENT_READ, EVENT_WRITE, SelectorKey

MAX_EVENTS = 256     # events taken per wakeup; the rest wait for the next one (HAProxy: 200)

if hasattr(select, "epoll"):
    _IN, _OUT = select.EPOLLIN, select.EPOLLOUT
    # selectors' mask -> epoll's mask
    _TO_EPOLL = (0, _IN, _OUT, _IN | _OUT)
    # epoll's mask (its low 5 bits: IN, PRI, OUT, ERR, HUP) -> what select() would give:
    # an error or hang-up wakes both directions. One lookup per event. Only IN and OUT
    # are ever registered (_TO_EPOLL), so no other bit (EPOLLRDHUP...) can come back.
    _LOW = 31
    _FROM_EPOLL = tuple((EVENT_WRITE if ev & ~_IN else 0) | (EVENT_READ if ev & ~_OUT else 0)
                        for ev in range(_LOW + 1))

    class Selector(selectors.EpollSelector):
        """An EpollSelector whose objects are sockets (anything with fileno()) and whose
        data is the callback to run with the event mask."""

        def register(self, fileobj, events, data=None):
            fd = fileobj.fileno()
            keys = self._fd_to_key
            if fd in keys:
                raise KeyError("%r (fd %d) is already registered" % (fileobj, fd))
            key = SelectorKey(fileobj, fd, events, data)
            self._selector.register(fd, _TO_EPOLL[events & 3])
            keys[fd] = key
            return key

        def unregister(self, fileobj):
            fd = fileobj.fileno()
            key = self._fd_to_key.pop(fd)
            try:
                self._selector.unregister(fd)
            except OSError:
                pass        # already closed: the kernel forgot it with the fd
            return key

        def modify(self, fileobj, events, data=None):
            fd = fileobj.fileno()
            key = self._fd_to_key[fd]
            if events != key.events:
                self._selector.modify(fd, _TO_EPOLL[events & 3])
            self._fd_to_key[fd] = SelectorKey(fileobj, fd, events, data)
            return key

        # A transport is its own selector key (fileobj, fd, events, data: the callback):
        # registering one builds no SelectorKey, and its owner changes its callback
        # by assigning `data`, with no system call (workers/xprt.py).

        def add(self, key, events):
            self._selector.register(key.fd, _TO_EPOLL[events & 3])
            self._fd_to_key[key.fd] = key

        def change(self, key, events):
            self._selector.modify(key.fd, _TO_EPOLL[events & 3])

        def remove(self, key):
            self._fd_to_key.pop(key.fd, None)
            try:
                self._selector.unregister(key.fd)
            except OSError:
                pass        # already closed: the kernel forgot it with the fd

        def dispatch(self, timeout, woke):
            """Wait up to `timeout` seconds, call `woke()` (the caller reads its clock
            there, so that what the callbacks time is measured from the wakeup, not
            from before the wait), then each ready callback with its mask.

            Each key is looked up just before its callback runs, so a socket closed
            by an earlier callback of the same batch is skipped. Masks are what
            `select()` would give (an error or hang-up wakes both directions)."""
            get = self._fd_to_key.get
            ready = self._selector.poll(timeout, MAX_EVENTS)
            woke()
            for fd, ev in ready:
                key = get(fd)
                if key is not None:
                    key.data(_FROM_EPOLL[ev & _LOW] & key.events)

else:   # pragma: no cover - not Linux
    class Selector(selectors.DefaultSelector):
        def add(self, key, events):
            self.register(key.fileobj, events, key)

        def change(self, key, events):
            self.modify(key.fileobj, events, key)

        def remove(self, key):
            self.unregister(key.fileobj)

        def dispatch(self, timeout, woke):
            ready = self.select(timeout)
            woke()
            for key, mask in ready:
                data = key.data
                (data if callable(data) else data.data)(mask)
