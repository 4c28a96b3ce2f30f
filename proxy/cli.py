"""The `keepwarm` command line: run, check, stats, version; HAProxy's flags (`keepwarm -f FILE -W ...`)."""

import errno
import json
import os
import re
import signal
import sys
import time

import click

import _native
from proxy import __version__
from proxy.config import ConfigError, load
from proxy.config.errors import alert_lines, warning_line
from proxy.control import ControlError, default_socket_path, request, request_text


def _fail(message):
    click.echo("keepwarm: %s" % message, err=True)
    sys.exit(1)


def _warn(message):
    click.echo(message, err=True)


def _note(message):
    """A line on stderr that a running proxy must not die of (stderr on a full disk)."""
    try:
        _warn(message)
    except OSError:
        pass


def _load(path, say=_warn):
    """The configuration at `path` (a file, a directory, or a list of them), its
    warnings said on stderr with `say`. Errors as HAProxy prints them: every one of
    the file, an `[ALERT]` line each (a file that cannot be read at all: one line)."""
    try:
        config = load(path)
    except ConfigError as exc:
        errors = getattr(exc, "errors", [exc])
        if len(errors) == 1 and not errors[0].line:
            _fail(str(exc))
        for line in alert_lines(exc, os.getpid()):
            _warn(line)
        sys.exit(1)
    for warning in config.warnings:
        say(warning_line(warning, os.getpid()))
    return config


MIGRATE_REQ = "/proc/sys/net/ipv4/tcp_migrate_req"


def migrate_req_report(path=MIGRATE_REQ):
    """One line on the kernel's net.ipv4.tcp_migrate_req (Linux >= 5.14): whether the
    connections queued on a listening socket that closes are moved to its
    SO_REUSEPORT siblings or reset (DESIGN.md §3)."""
    try:
        with open(path) as f:
            value = f.read().strip()
    except OSError:
        return ("net.ipv4.tcp_migrate_req: not available (Linux < 5.14); connections queued "
                "on a listening socket that closes are reset")
    if value == "1":
        return ("net.ipv4.tcp_migrate_req = 1: connections queued on a listening socket that "
                "closes move to the other workers' sockets")
    return ("net.ipv4.tcp_migrate_req = %s: connections queued on a listening socket that closes "
            "(a bind removed, or fewer workers, at a reload) are reset; "
            "'sysctl -w net.ipv4.tcp_migrate_req=1' moves them to the other workers' sockets"
            % value)


def _encodes(text):
    """Whether `text` (an argument, maybe with undecodable bytes) can be sent as UTF-8."""
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


def _socket_path(config):
    return config.global_.stats_socket or default_socket_path()


# What a write to stdout or stderr fails with when the output cannot go anywhere.
WRITE_ERRORS = frozenset((errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EIO, errno.EBADF))


def haproxy_flags(args):
    """Whether a command line is HAProxy's (`keepwarm -f FILE -Ws ...`) rather than a
    keepwarm COMMAND: it starts with a flag other than help."""
    return bool(args) and args[0].startswith("-") and args[0] not in ("-h", "--help")


class _Commands(click.Group):
    """The command group. An OSError nothing else handled ends the command with one
    line and status 1 instead of a traceback: most often output that cannot be
    written (stdout or stderr on a full disk); click itself already handles a
    closed pipe (`| head`). A command line that starts with a flag is HAProxy's
    (proxy/haproxy_cli.py)."""

    def main(self, args=None, *rest, **kwargs):
        words = list(sys.argv[1:] if args is None else args)
        try:
            if haproxy_flags(words):
                from proxy import haproxy_cli
                try:
                    status = haproxy_cli.main(words)
                except KeyboardInterrupt:     # Ctrl-C before the master's handlers are set
                    status = 130
                sys.exit(status)
            return super().main(args, *rest, **kwargs)
        except OSError as exc:
            what = "cannot write the output: " if exc.errno in WRITE_ERRORS else ""
            try:
                sys.stderr.write("keepwarm: %s%s\n" % (what, exc.strerror or exc))
                sys.stderr.flush()
            except (OSError, AttributeError):
                pass
            # What is still buffered goes nowhere, so the exit flush cannot fail again.
            for stream in (sys.stdout, sys.stderr):
                try:
                    fd = os.open(os.devnull, os.O_WRONLY)
                    os.dup2(fd, stream.fileno())
                    os.close(fd)
                except (OSError, ValueError, AttributeError):
                    pass
            sys.exit(1)


@click.group(cls=_Commands, context_settings={"help_option_names": ["-h", "--help"]})
def main():
    """keepwarm: an HTTP/1.1 reverse proxy that keeps connections warm on both sides.

    It reads HAProxy's configuration language. Start with
    `keepwarm run -f examples/quickstart.cfg --with-demo-backends`.
    """


@main.command()
@click.option("-f", "config_path", required=True, type=click.Path(dir_okay=False),
              help="Configuration file (HAProxy syntax).")
@click.option("--with-demo-backends", is_flag=True,
              help="Also start small demo HTTP servers on every server address of the config.")
def run(config_path, with_demo_backends):
    """Run the master and its workers in the foreground until SIGTERM/SIGINT.

    SIGUSR1 or SIGQUIT stop gracefully (streams in flight finish). SIGHUP or
    SIGUSR2 reload: the file is read again and, if valid, new workers start on
    it while the old ones finish their streams; if not, the error is logged and
    nothing changes. The control socket is the config's `stats socket`, else
    $KEEPWARM_SOCKET, else /tmp/keepwarm-<uid>.sock.
    """
    from proxy.master import Master
    from proxy.service import Service

    config = _load(config_path, say=_note)
    if config.global_.daemon:
        _note("keepwarm: 'daemon' is ignored by `keepwarm run`, which stays in the foreground "
              "(`keepwarm -D -f FILE` goes to the background)")
    if with_demo_backends:
        from proxy.demo import start_in_background
        addrs = sorted({(s.host, s.port) for b in config.backends for s in b.servers})
        try:
            pids = start_in_background(addrs)
        except (RuntimeError, OSError) as exc:
            _fail(str(exc))
        _note("keepwarm: demo backends on %s" % ", ".join("%s:%d" % a for a in addrs))
    else:
        pids = []
    try:
        status = Master(config, _socket_path(config), config_path=config_path,
                        service=Service(pidfile=config.global_.pidfile, log=_note)).run()
    finally:
        for pid in pids:
            try:
                os.kill(pid, signal.SIGTERM)
                os.waitpid(pid, 0)
            except (ProcessLookupError, ChildProcessError):
                pass
    sys.exit(status)


@main.command()
@click.option("-f", "config_paths", required=True, multiple=True, type=click.Path(),
              help="Configuration file or directory (*.cfg) to validate; several are "
                   "read as one configuration.")
def check(config_paths):
    """Validate a configuration without starting anything (exit 0 if valid, 1 if not);
    every error and warning is reported, in HAProxy's form."""
    config = _load(list(config_paths))
    nfe, nbe = len(config.frontends), len(config.backends)
    nsrv = sum(len(b.servers) for b in config.backends)
    click.echo("Configuration file is valid: %d frontend(s), %d backend(s), %d server(s)%s"
               % (nfe, nbe, nsrv, ", %d warning(s)" % len(config.warnings) if config.warnings else ""))
    click.echo(migrate_req_report())


@main.command()
@click.option("-s", "socket_path", type=click.Path(), default=None,
              help="Control socket of the instance (default: $KEEPWARM_SOCKET or /tmp/keepwarm-<uid>.sock).")
@click.option("-f", "config_path", type=click.Path(dir_okay=False), default=None,
              help="Find the instance through this config's `stats socket`.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for machines.")
@click.option("--watch", is_flag=True,
              help="A live view: rates per second, refreshed each interval; q quits.")
@click.option("--interval", type=click.FloatRange(0.2, 60), default=1.0, show_default=True,
              help="Seconds between two frames of --watch.")
@click.option("--count", type=click.IntRange(1), default=None,
              help="Stop --watch after this many frames.")
def stats(socket_path, config_path, as_json, watch, interval, count):
    """Show counters per frontend, backend and server of a running instance.

    Field names are HAProxy's `show stat` names; reuse_ratio is requests per
    server connection opened. --watch shows rates live (plain repeated frames
    when the output is not a terminal).
    """
    if socket_path and config_path:
        raise click.UsageError("use either -s or -f, not both")
    if watch and as_json:
        raise click.UsageError("use either --watch or --json, not both")
    if config_path:
        socket_path = _socket_path(_load(config_path))
    socket_path = socket_path or default_socket_path()
    if watch:
        _watch(socket_path, interval, count)
        return
    try:
        doc = request(socket_path, {"cmd": "stats"})
    except ControlError as exc:
        _fail(str(exc))
    if isinstance(doc, dict) and isinstance(doc.get("error"), str):
        _fail("%s: %s" % (socket_path, doc["error"]))
    if not (isinstance(doc, dict) and all(isinstance(doc.get(k), dict)
                                          for k in ("info", "frontends", "backends"))):
        _fail("unexpected answer from %s: not keepwarm's statistics (another program's "
              "socket, or another version?)" % socket_path)
    from proxy.stats import format_table
    try:
        text = json.dumps(doc, indent=2, sort_keys=True) if as_json else format_table(doc)
    except Exception as exc:     # noqa: BLE001 - whatever the peer sent, one line
        _fail("unexpected answer from %s: statistics in a shape this version cannot show "
              "(%s: %s)" % (socket_path, type(exc).__name__, exc))
    click.echo(text)


@main.command()
@click.argument("action", type=click.Choice(["enable", "disable", "drain", "ready", "maint", "weight"]))
@click.argument("target", metavar="BACKEND/SERVER")
@click.argument("value", required=False)
@click.option("-s", "socket_path", type=click.Path(), default=None,
              help="Control socket of the instance (default: $KEEPWARM_SOCKET or /tmp/keepwarm-<uid>.sock).")
@click.option("-f", "config_path", type=click.Path(dir_okay=False), default=None,
              help="Find the instance through this config's `stats socket`.")
def server(action, target, value, socket_path, config_path):
    """Change a server's state or weight in a running instance.

    \b
    keepwarm server disable be/s1      maintenance: no traffic (HAProxy: disable server)
    keepwarm server enable be/s1       back to check-driven state (enable server)
    keepwarm server drain be/s1        no new sessions, current ones finish
    keepwarm server weight be/s1 50    0..256, or N% of the configured weight
    """
    if "/" not in target or any(c.isspace() for c in target) or not _encodes(target):
        raise click.UsageError("the server is named BACKEND/SERVER, e.g. be/s1")
    if (action == "weight") != (value is not None):
        raise click.UsageError("'weight' takes a value; the other actions take none")
    if action == "weight" and not re.fullmatch(r"[0-9]{1,9}%?", value):
        raise click.UsageError("a weight is 0..256, or N%% of the configured weight (got %r)"
                               % value)
    if socket_path and config_path:
        raise click.UsageError("use either -s or -f, not both")
    if config_path:
        socket_path = _socket_path(_load(config_path))
    command = {
        "enable": "enable server %s" % target,
        "ready": "set server %s state ready" % target,
        "disable": "disable server %s" % target,
        "maint": "set server %s state maint" % target,
        "drain": "set server %s state drain" % target,
        "weight": "set server %s weight %s" % (target, value),
    }[action]
    try:
        answer = request_text(socket_path or default_socket_path(), command).strip()
    except ControlError as exc:
        _fail(str(exc))
    if answer:
        _fail(answer.splitlines()[0])


def _fetch_stats(socket_path):
    try:
        doc = request(socket_path, {"cmd": "stats"})
    except ControlError as exc:
        _fail(str(exc))
    if not (isinstance(doc, dict) and all(isinstance(doc.get(k), dict)
                                          for k in ("info", "frontends", "backends"))):
        _fail("unexpected answer from %s: not keepwarm's statistics" % socket_path)
    return doc


def _watch(socket_path, interval, count):
    """`stats --watch`: a frame per interval; on a terminal the screen is redrawn
    and `q` quits, otherwise frames follow each other separated by a blank line."""
    import select
    import shutil
    import termios
    import tty
    from proxy.stats_watch import frame
    tty_out = sys.stdout.isatty()
    tty_in = tty_out and sys.stdin.isatty()
    saved = None
    if tty_in:
        saved = termios.tcgetattr(sys.stdin.fileno())
        tty.setcbreak(sys.stdin.fileno())
    before, then, shown = None, None, 0
    try:
        while count is None or shown < count:
            doc = _fetch_stats(socket_path)
            now = time.monotonic()
            width = shutil.get_terminal_size((80, 24)).columns if tty_out else 80
            lines = frame(doc, before, (now - then) if then else 0.0, max(40, width))
            if tty_out:
                click.echo("\x1b[H\x1b[2J" + "\n".join(lines), nl=True)
            else:
                click.echo("\n".join(lines) + "\n")
            shown += 1
            before, then = doc, now
            if count is not None and shown >= count:
                break
            if tty_in:
                ready, _, _ = select.select([sys.stdin], [], [], interval)
                if ready and sys.stdin.read(1) in ("q", "Q"):
                    break
            else:
                time.sleep(interval)
    except KeyboardInterrupt:
        pass
    finally:
        if saved is not None:
            termios.tcsetattr(sys.stdin.fileno(), termios.TCSADRAIN, saved)


@main.command()
def version():
    """Print the version and which head parser is active."""
    click.echo("keepwarm %s" % __version__)
    click.echo("parser: %s" % _native.IMPLEMENTATION)


if __name__ == "__main__":
    main()
