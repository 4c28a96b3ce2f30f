"""HAProxy's command line (`keepwarm -W -f /etc/haproxy -p PID -sf OLD`), so units and scripts
that call haproxy work with the name swapped.

`parse_args` is sans-IO: a list of words in, an Options or a UsageError out.
`main` runs what the options say: print the version, check, or run the master.
"""

import os
import signal
import sys
from dataclasses import dataclass, field
from typing import List, Optional, Tuple

USAGE = """\
Usage: keepwarm [-f <cfgfile|cfgdir>]* [-c] [-q] [-D | -db] [-W | -Ws] [-p <pidfile>]
                [-sf|-st <pid>*] [-x <socket>] [-S <socket>] [-v | -vv] [-- <cfgfile>*]
       keepwarm COMMAND ...   (run, check, stats, server, version; keepwarm --help)
  -f  configuration file, or a directory whose *.cfg files are read in lexical order
  -c  check the configuration and exit (0: valid, 1: not); -q: say nothing when valid
  -D  go to the background (as 'daemon'); -db or -d stay in the foreground
  -W  master-worker mode (keepwarm always runs a master and its workers)
  -Ws master-worker mode with systemd notify (Type=notify units)
  -p  write the master's pid to this file
  -sf/-st  once started, tell these old pids to finish (SIGUSR1) or stop (SIGTERM)
  -x  take the listening sockets over from the instance whose control socket this is
  -S  accepted for compatibility and ignored: there is no master CLI
  -v  version; -vv version and build details"""

# HAProxy flags keepwarm knows but does not implement: the reason says why.
UNSUPPORTED = {
    "-n": "set 'maxconn' in the global section instead",
    "-N": "set 'maxconn' in the defaults or frontend sections instead",
    "-m": "memory limits are not implemented",
    "-L": "peers are not implemented",
    "-C": "start keepwarm in the directory you want relative paths read from",
    "-cc": "conditions are not implemented",
}
IGNORED_DEBUG = {"-de", "-dp", "-dS", "-dG", "-dV", "-dr", "-dL", "-dD", "-dW", "-dR"}


class UsageError(Exception):
    """A command line keepwarm does not understand; one line, then the usage."""


@dataclass
class Options:
    configs: List[str] = field(default_factory=list)
    check: bool = False
    quiet: bool = False
    verbose: bool = False
    daemon: bool = False
    foreground: bool = False
    master_worker: bool = False
    systemd: bool = False
    pidfile: Optional[str] = None
    old_pids: Tuple[int, ...] = ()
    old_signal: int = signal.SIGUSR1
    takeover_socket: Optional[str] = None
    version: int = 0             # 1: -v, 2: -vv
    notes: List[str] = field(default_factory=list)


def parse_args(argv):
    """HAProxy 2.6's argument grammar (src/haproxy.c, init()): flags, then values;
    `-sf`/`-st` take the pids up to the next word that starts with '-'; after `--`
    every word is a configuration file."""
    opts = Options()
    old = []
    i = 0
    n = len(argv)

    def value(flag):
        if i + 1 >= n:
            raise UsageError("%s expects a value" % flag)
        return argv[i + 1]

    while i < n:
        word = argv[i]
        if not word.startswith("-") or word == "-":
            raise UsageError("unexpected argument '%s' (configuration files follow -f)" % word)
        if word == "--":
            opts.configs += argv[i + 1:]
            break
        if word in ("-v", "-vv"):
            opts.version = 2 if word == "-vv" else 1
        elif word == "-f":
            opts.configs.append(value(word))
            i += 1
        elif word == "-c":
            opts.check = True
        elif word == "-q":
            opts.quiet = True
        elif word == "-V":
            opts.verbose = True
        elif word == "-D":
            opts.daemon = True
        elif word in ("-d", "-db"):
            opts.foreground = True
        elif word == "-W":
            opts.master_worker = True
        elif word == "-Ws":
            opts.master_worker = opts.systemd = opts.foreground = True
        elif word == "-p":
            opts.pidfile = value(word)
            i += 1
        elif word in ("-sf", "-st"):
            opts.old_signal = signal.SIGUSR1 if word == "-sf" else signal.SIGTERM
            while i + 1 < n and not argv[i + 1].startswith("-"):
                i += 1
                text = argv[i].strip()
                if not text.isdigit() or int(text) <= 0:
                    raise UsageError("%s: '%s' is not a process id" % (word, argv[i]))
                old.append(int(text))
        elif word == "-S":
            # In HAProxy's own unit (EXTRAOPTS): refusing it would break a swapped unit.
            opts.notes.append("-S %s ignored: keepwarm has no master CLI; its control socket "
                              "is the config's 'stats socket' (`keepwarm stats`)" % value(word))
            i += 1
        elif word == "-x":
            opts.takeover_socket = value(word)
            i += 1
        elif word in IGNORED_DEBUG or word.startswith("-dM") or word.startswith("-dK"):
            opts.notes.append("%s ignored: an HAProxy debugging flag" % word)
        elif word in UNSUPPORTED:
            raise UsageError("HAProxy's %s is not supported by keepwarm: %s"
                             % (word, UNSUPPORTED[word]))
        else:
            raise UsageError("unknown option '%s'" % word)
        i += 1
    opts.old_pids = tuple(old)
    if not opts.version and not opts.configs:
        raise UsageError("no configuration file: give one with -f")
    return opts


def version_lines(level):
    import _native
    from proxy import __version__
    lines = ["keepwarm version %s - an HTTP/1.1 reverse proxy reading HAProxy 2.6 "
             "configurations" % __version__]
    if level > 1:
        lines += ["Running on: %s %s %s" % (os.uname().sysname, os.uname().release,
                                            os.uname().machine),
                  "Python: %s" % sys.version.split()[0],
                  "Head parser: %s" % _native.IMPLEMENTATION,
                  "Process model: master and forked workers, SO_REUSEPORT listeners",
                  "Features: +SYSTEMD_NOTIFY +DAEMON +CHROOT +CPU_MAP +REUSEPORT +TAKEOVER"]
    return lines


def _say(stream, text):
    try:
        stream.write(text + "\n")
        stream.flush()
    except OSError:
        pass


def main(argv):
    """Run HAProxy-flag mode; returns the exit status."""
    try:
        opts = parse_args(argv)
    except UsageError as exc:
        _say(sys.stderr, "keepwarm: %s\n%s" % (exc, USAGE))
        return 1
    if opts.version:
        _say(sys.stdout, "\n".join(version_lines(opts.version)))
        return 0
    from proxy.config import ConfigError, load
    from proxy.config.errors import alert_lines, warning_line
    try:
        # Several -f (files or directories of *.cfg) are read as one configuration.
        config = load(opts.configs)
    except ConfigError as exc:
        errors = getattr(exc, "errors", [exc])
        if len(errors) == 1 and not errors[0].line:
            _say(sys.stderr, "keepwarm: %s" % exc)     # a file that cannot be read at all
        else:
            _say(sys.stderr, "\n".join(alert_lines(exc, os.getpid())))
        return 1
    if opts.check:
        if not opts.quiet:
            for warning in config.warnings:
                _say(sys.stderr, warning_line(warning, os.getpid()))
            _say(sys.stdout, "Configuration file is valid")
        return 0
    for warning in config.warnings:
        _say(sys.stderr, warning_line(warning, os.getpid()))
    for note in opts.notes:
        _say(sys.stderr, "keepwarm: %s" % note)
    return run(opts, config, [os.path.abspath(p) for p in opts.configs])


def run(opts, config, paths):
    """Run the master; `paths` (absolute: a daemon chdirs to /) are read again on reload,
    a directory's *.cfg files listed anew, as HAProxy's re-executed master does."""
    from proxy.control import default_socket_path
    from proxy.master import Master
    from proxy.service import Service
    g = config.global_
    # HAProxy: -Ws and -db keep the foreground whatever 'daemon' says.
    daemon = (opts.daemon or g.daemon) and not opts.foreground
    socket_path = os.path.abspath(g.stats_socket or default_socket_path())
    master = Master(config, socket_path, config_path=paths[0] if len(paths) == 1 else paths)
    master.service = Service(
        daemon=daemon, pidfile=opts.pidfile or g.pidfile,
        notify_socket=os.environ.get("NOTIFY_SOCKET") if opts.systemd else None,
        old_pids=opts.old_pids, old_signal=opts.old_signal,
        takeover_socket=opts.takeover_socket and os.path.abspath(opts.takeover_socket),
        control_path=socket_path, log=master.log)
    return master.run()
