"""keepwarm's configuration: HAProxy's language parsed into a frozen model.

    load(path) -> Config          read and validate a file, a directory, or a list of them
    parse(text, filename) -> Config
    ConfigError                   .file .line .message .hint
"""

from __future__ import annotations

import os

from .errors import ConfigError, ConfigErrors
from .model import Backend, Bind, Config, Frontend, Global, HttpCheck, Server

__all__ = ["load", "parse", "ConfigError", "ConfigErrors", "Config", "Global", "Frontend", "Backend",
           "Server", "Bind", "HttpCheck"]


def parse(text: str, filename: str = "<string>", env=None) -> Config:
    """Parse configuration text; raise ConfigErrors (a ConfigError: the first one)
    listing every mistake."""
    from .parser import parse_text
    return parse_text(text, filename, env=env)


MAX_CONFIG_BYTES = 16 << 20     # far above any real configuration; /dev/zero is not one


def load(path, env=None) -> Config:
    """Read and parse the configuration at ``path``: a file, a directory (its
    ``*.cfg`` files in lexical order, as HAProxy reads one), or a list of those
    (HAProxy's ``-f A -f B``), read as one configuration."""
    from .parser import parse_files
    paths = [path] if isinstance(path, str) else list(path)
    files = []
    for p in paths:
        if os.path.isdir(p):
            names = sorted(n for n in os.listdir(p) if n.endswith(".cfg")
                           and not n.startswith("."))
            if not names:
                raise ConfigError(p, 0, "no *.cfg file in this directory")
            files.extend(_read(os.path.join(p, n)) for n in names)
        else:
            files.append(_read(p))
    return parse_files(files, env=env)


def _read(path: str):
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_CONFIG_BYTES + 1)
    except OSError as exc:
        raise ConfigError(path, 0, "cannot read configuration file: %s" % exc.strerror)
    if len(data) > MAX_CONFIG_BYTES:
        raise ConfigError(path, 0, "configuration file is larger than %d MiB"
                          % (MAX_CONFIG_BYTES >> 20), "is this the right file?")
    try:
        return path, data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        raise ConfigError(path, line, "configuration file is not valid UTF-8")
