"""Living under a service manager: systemd notify, daemon mode, the pidfile, old pids, privileges.

The master calls a Service at fixed moments of its life (bound, ready,
reloading, reloaded, stopping, exited), so that master.py keeps its loop and
this module keeps what HAProxy does around it. The worker side (cpu-map,
chroot, user/group, set-dumpable) is `enter_worker`, run in each forked worker
before it serves anything.
"""

import ctypes
import dataclasses
import errno
import os
import resource
import signal
import socket
import sys

DAEMON_READY_TIMEOUT = 60.0   # how long `-D` waits for the daemon's workers before giving up
PR_SET_DUMPABLE = 4


class ServiceError(Exception):
    """Something the service setup cannot do; shown in one line before detaching."""


# ---------------------------------------------------------------- systemd notify (sans-IO part)

def notify_address(value):
    """The sockaddr of $NOTIFY_SOCKET: a path, or an abstract name when it starts with '@'.
    None when unset or empty (not started by systemd with Type=notify)."""
    if not value:
        return None
    if value.startswith("@"):
        return "\0" + value[1:]
    return value


def notify_message(**fields):
    """One sd_notify datagram: KEY=value lines, in the order given (READY=1 first)."""
    return "".join("%s=%s\n" % (key, str(value).replace("\n", " "))
                   for key, value in fields.items()).encode("utf-8", "replace")


def sd_notify(address, data):
    """Send one datagram to systemd's notify socket; False when it could not go.
    Written by hand as sd_notify(3) documents it: one AF_UNIX SOCK_DGRAM sendto."""
    if address is None:
        return False
    try:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    except OSError:
        return False
    try:
        sock.settimeout(1.0)
        sock.sendto(data, address)
        return True
    except OSError:
        return False
    finally:
        sock.close()


# ---------------------------------------------------------------- listener takeover (-x)

GETSOCKS = b"_getsocks"       # the request on the control socket, as HAProxy names it
TAKEOVER_TIMEOUT = 5.0
MAX_TAKEOVER = 4096           # listening sockets one answer may carry


def peer_may_take(sock):
    """Whether the process at the other end of a UNIX socket may have our listening
    sockets: root, or our own user (SO_PEERCRED)."""
    import struct
    try:
        creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    except OSError:
        return False
    _, uid, _ = struct.unpack("3i", creds)
    return uid == 0 or uid == os.geteuid()


def send_listeners(sock, listeners):
    """Answer a takeover request: one message per listening socket, its address as a
    text line, the descriptor alongside (SCM_RIGHTS); then close. `listeners` is a
    list of sockets; the peer's uid was checked by the caller."""
    sock.settimeout(TAKEOVER_TIMEOUT)
    # Read the request out first: a UNIX socket closed with unread bytes resets its peer
    # before it has read what was sent.
    try:
        sock.recv(256)
    except OSError:
        pass
    for lst in listeners[:MAX_TAKEOVER]:
        host, port = lst.getsockname()[:2]
        line = ("%d %s %d\n" % (lst.family, host, port)).encode()
        socket.send_fds(sock, [line], [lst.fileno()])


def fetch_listeners(path):
    """-x PATH: ask the instance whose control socket is PATH for its listening
    sockets. Returns {(family, host, port): [socket, ...]}, the shape the master's
    open_listeners() takes for sockets to reuse. Raises OSError or ValueError."""
    got = {}
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.settimeout(TAKEOVER_TIMEOUT)
        sock.connect(path)
        sock.sendall(GETSOCKS + b"\n")
        count = 0
        while count < MAX_TAKEOVER:
            # Each message carries one descriptor: the kernel does not merge a
            # message with descriptors into the next read.
            data, fds, _, _ = socket.recv_fds(sock, 256, 1)
            if not data and not fds:
                break
            if len(fds) != 1:
                for fd in fds:
                    os.close(fd)
                raise ValueError("an answer without its socket (not a keepwarm control socket?)")
            lst = socket.socket(fileno=fds[0])
            family, host, port = data.decode().split()
            lst.setblocking(False)
            got.setdefault((int(family), host, int(port)), []).append(lst)
            count += 1
    except BaseException:
        for socks in got.values():
            for lst in socks:
                lst.close()
        raise
    finally:
        sock.close()
    return got


# ---------------------------------------------------------------- cpu-map (sans-IO part)

def cpus_for_worker(cpu_map, worker):
    """The CPUs `cpu-map` gives worker number `worker` (1-based), or None when no line
    names it. A later line replaces an earlier one that names the same worker, as in
    HAProxy."""
    chosen = None
    for workers, cpus in cpu_map:
        if worker in workers:
            chosen = tuple(cpus)
    return chosen


def fd_limit_wanted(global_, margin):
    """The RLIMIT_NOFILE keepwarm sets: `ulimit-n` when written, else what maxconn
    needs (a client and a server connection each, plus `margin`)."""
    if global_.ulimit_n:
        return global_.ulimit_n
    return 2 * global_.maxconn + margin


def fit_maxconn(config, margin):
    """`ulimit-n N` without `maxconn`: maxconn is what N descriptors allow (a client and
    a server connection each, after `margin`), as HAProxy derives it from the limit."""
    g = config.global_
    if not g.ulimit_n or g.maxconn_set:
        return config
    maxconn = max(1, (g.ulimit_n - margin) // 2)
    return dataclasses.replace(config, global_=dataclasses.replace(g, maxconn=maxconn))


# ---------------------------------------------------------------- privileges

def check_privileges(global_):
    """Why `chroot`/`user`/`group` cannot work here, or None. Run by the master before
    it detaches, so the reason reaches the terminal."""
    if global_.chroot is not None:
        if not os.path.isdir(global_.chroot):
            return "chroot %s: not a directory" % global_.chroot
        if os.geteuid() != 0:
            return ("chroot %s needs keepwarm to be started as root (it chroots its "
                    "workers after binding)" % global_.chroot)
    if global_.uid is not None and global_.uid != os.geteuid() and os.geteuid() != 0:
        return "user/uid %d needs keepwarm to be started as root" % global_.uid
    if global_.gid is not None and global_.gid != os.getegid() and os.geteuid() != 0:
        return "group/gid %d needs keepwarm to be started as root" % global_.gid
    return None


def _preload_for_chroot():
    """Modules a worker may import late: inside a chroot the interpreter's files are
    out of reach, so they are imported before."""
    import encodings.idna     # noqa: F401 - socket names
    import encodings.latin_1  # noqa: F401
    import traceback          # noqa: F401 - the worker's last words


def enter_worker(global_, worker, log):
    """In a freshly forked worker (`worker` is 1-based), before it serves: cpu-map,
    then chroot, then drop groups, gid, uid (HAProxy's order), then set-dumpable.
    Raises ServiceError when a privilege step fails: a worker that cannot drop its
    privileges must not serve."""
    cpus = cpus_for_worker(global_.cpu_map, worker)
    if cpus:
        try:
            os.sched_setaffinity(0, cpus)
        except (OSError, ValueError) as exc:
            log("cpu-map: cannot bind worker %d to CPUs %s: %s"
                % (worker, ",".join(map(str, cpus)), getattr(exc, "strerror", None) or exc))
    if global_.chroot is not None:
        _preload_for_chroot()
        try:
            os.chroot(global_.chroot)
            os.chdir("/")
        except OSError as exc:
            raise ServiceError("cannot chroot(%s): %s" % (global_.chroot, exc.strerror)) from None
    try:
        if global_.gid is not None:
            os.setgroups([])
            os.setgid(global_.gid)
        if global_.uid is not None:
            os.setuid(global_.uid)
    except OSError as exc:
        raise ServiceError("cannot set uid/gid %s/%s: %s"
                           % (global_.uid, global_.gid, exc.strerror)) from None
    if global_.set_dumpable:
        set_dumpable(log)


def set_dumpable(log):
    """`set-dumpable`: allow core dumps after a uid change (prctl PR_SET_DUMPABLE)
    and raise the core size limit to its hard limit."""
    try:
        soft, hard = resource.getrlimit(resource.RLIMIT_CORE)
        resource.setrlimit(resource.RLIMIT_CORE, (hard, hard))
    except (OSError, ValueError):
        pass
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(PR_SET_DUMPABLE, 1, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), os.strerror(ctypes.get_errno()))
    except (OSError, AttributeError) as exc:
        log("set-dumpable: cannot set the dumpable flag, no core will be dumped: %s" % exc)


# ---------------------------------------------------------------- the service

class Service:
    """What HAProxy does around its master: the choices of the command line and the
    global section, acted on at the master's milestones."""

    def __init__(self, *, daemon=False, pidfile=None, notify_socket=None, old_pids=(),
                 old_signal=signal.SIGUSR1, takeover_socket=None, control_path=None,
                 log=None):
        self.daemon = daemon
        self.pidfile = os.path.abspath(pidfile) if pidfile else None
        self.notify = notify_address(notify_socket)
        self.old_pids = tuple(old_pids)
        self.old_signal = old_signal
        self.takeover_socket = takeover_socket
        # -sf/-st without -x: the old instance is asked on the control socket this
        # configuration names (its own, when the configuration did not change it).
        self.control_path = control_path
        self.log = log or (lambda message: None)
        self.pid_fd = None
        self.ready_w = None          # -D: the pipe the waiting parent reads "ready" from
        self.started = False         # READY=1 sent once for the start
        self.pid_written = None

    @property
    def takeover(self):
        """Whether an older instance is being replaced (-sf/-st, -x): its control
        socket path is taken over rather than refused."""
        return bool(self.old_pids or self.takeover_socket)

    def inherited_listeners(self):
        """The old instance's listening sockets, by address: from -x's socket, or with
        -sf/-st alone from the control socket both instances share. Taking them over
        rather than binding beside them is what loses no connection: one queued on an
        old worker's own SO_REUSEPORT socket when it closes would be reset. Empty when
        nobody is replaced or the old instance cannot be asked: then bind anew."""
        path, label = self.takeover_socket, "-x %s" % self.takeover_socket
        if not path and self.old_pids and self.control_path:
            path, label = self.control_path, "-sf/-st: control socket %s" % self.control_path
            if not os.path.exists(path):
                self.log("%s absent; binding anew beside the old instance" % label)
                return {}
        if not path:
            return {}
        try:
            got = fetch_listeners(path)
        except (OSError, ValueError, UnicodeError) as exc:
            self.log("%s: cannot take the listening sockets over (%s); binding anew "
                     "beside the old instance" % (label, getattr(exc, "strerror", None) or exc))
            return {}
        self.log("%s: took %d listening socket(s) over"
                 % (label, sum(len(v) for v in got.values())))
        return got

    # -- milestones ----------------------------------------------------------

    def bound(self):
        """Listeners and the control socket are open: open the pidfile (an error
        still reaches the terminal), detach if asked, then write the pid."""
        if self.pidfile:
            try:
                self.pid_fd = os.open(self.pidfile, os.O_WRONLY | os.O_CREAT | os.O_TRUNC
                                      | os.O_CLOEXEC, 0o644)
            except OSError as exc:
                raise ServiceError("cannot create pidfile %s: %s"
                                   % (self.pidfile, exc.strerror)) from None
        if self.daemon:
            self.detach()
        if self.pid_fd is not None:
            pid = os.getpid()
            try:
                os.write(self.pid_fd, b"%d\n" % pid)
                self.pid_written = pid
            except OSError as exc:
                self.log("cannot write pidfile %s: %s" % (self.pidfile, exc.strerror))
            os.close(self.pid_fd)
            self.pid_fd = None

    def ready(self, nworkers):
        """Every worker of the first generation is ready: tell systemd, the waiting
        parent of a daemon, and the old instance to go."""
        if self.started:
            return
        self.started = True
        sd_notify(self.notify, notify_message(
            READY=1, MAINPID=os.getpid(), STATUS="ready, %d worker(s)" % nworkers))
        if self.ready_w is not None:
            try:
                os.write(self.ready_w, b"1")
            except OSError:
                pass
            os.close(self.ready_w)
            self.ready_w = None
        self.tell_old_pids()

    # Before the first READY=1 systemd is still waiting for the start: a reload
    # then says nothing, and the start's READY=1 comes when the workers are ready.

    def reloading(self):
        if self.started:
            sd_notify(self.notify, notify_message(RELOADING=1, STATUS="reloading"))

    def reloaded(self, nworkers):
        sd_notify(self.notify, notify_message(
            READY=1, STATUS="reloaded, %d worker(s)" % nworkers))

    def reload_failed(self, reason):
        if not self.started:
            return
        sd_notify(self.notify, notify_message(
            READY=1, STATUS="reload failed, still running the previous configuration: %s"
            % reason))

    def stopping(self):
        sd_notify(self.notify, notify_message(STOPPING=1))

    def exited(self):
        """The master is leaving: remove the pidfile if it still names us (a newer
        instance started with -sf may have written its own pid there)."""
        if self.ready_w is not None:
            os.close(self.ready_w)
            self.ready_w = None
        if self.pidfile and self.pid_written == os.getpid():
            try:
                with open(self.pidfile, "rb") as f:
                    mine = f.read().strip() == b"%d" % os.getpid()
                if mine:
                    os.unlink(self.pidfile)
            except OSError as exc:
                if exc.errno != errno.ENOENT:
                    self.log("cannot remove pidfile %s: %s" % (self.pidfile, exc.strerror))

    def close_after_fork(self):
        """In a worker: nothing of the service's is the worker's."""
        if self.ready_w is not None:
            os.close(self.ready_w)
            self.ready_w = None

    # -- actions ---------------------------------------------------------------

    def tell_old_pids(self):
        """-sf/-st: the old instance's master finishes (SIGUSR1) or stops (SIGTERM)."""
        name = signal.Signals(self.old_signal).name
        for pid in self.old_pids:
            try:
                os.kill(pid, self.old_signal)
                self.log("sent %s to old pid %d" % (name, pid))
            except ProcessLookupError:
                self.log("old pid %d is already gone" % pid)
            except PermissionError:
                self.log("cannot signal old pid %d: permission denied" % pid)

    def detach(self):
        """Daemon mode: fork, setsid, fork again, chdir /, stdio on /dev/null. The
        first process waits until the daemon's workers are ready (or it died) and
        exits 0 (or 1), so that `keepwarm -D` fails visibly when it cannot start."""
        sys.stdout.flush()
        sys.stderr.flush()
        ready_r, ready_w = os.pipe()
        pid = os.fork()
        if pid:
            os.close(ready_w)
            os._exit(_wait_daemon(ready_r, pid))
        os.close(ready_r)
        os.setsid()
        if os.fork():
            os._exit(0)
        os.chdir("/")
        fd = os.open(os.devnull, os.O_RDWR)
        for target in (0, 1, 2):
            os.dup2(fd, target)
        if fd > 2:
            os.close(fd)
        os.set_inheritable(ready_w, False)
        self.ready_w = ready_w


def _wait_daemon(ready_r, child):
    """In the process `-D` started from: 0 once the daemon says it is ready, 1 if it
    went away first (its messages went to /dev/null)."""
    import select
    try:
        os.waitpid(child, 0)        # the intermediate process exits at once
    except ChildProcessError:
        pass
    ready, _, _ = select.select([ready_r], [], [], DAEMON_READY_TIMEOUT)
    data = os.read(ready_r, 1) if ready else b""
    if data == b"1":
        return 0
    try:
        sys.stderr.write("keepwarm: the daemon stopped while starting (its messages went to "
                         "/dev/null); run it in the foreground (-db) to see why\n"
                         if ready else
                         "keepwarm: the daemon's workers were not ready after %.0f s; it "
                         "keeps running in the background\n" % DAEMON_READY_TIMEOUT)
        sys.stderr.flush()
    except OSError:
        pass
    return 1
