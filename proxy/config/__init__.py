"""keepwarm's configuration: HAProxy's language parsed into a frozen model.

    load(path) -> Config          read and validate a file
    parse(text, filename) -> Config
    ConfigError                   .file .line .message .hint
"""

from __future__ import annotations

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


def load(path: str, env=None) -> Config:
    """Read and parse the configuration file at ``path``."""
    from .parser import parse_text
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_CONFIG_BYTES + 1)
    except OSError as exc:
        raise ConfigError(path, 0, "cannot read configuration file: %s" % exc.strerror)
    if len(data) > MAX_CONFIG_BYTES:
        raise ConfigError(path, 0, "configuration file is larger than %d MiB"
                          % (MAX_CONFIG_BYTES >> 20), "is this the right file?")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        raise ConfigError(path, line, "configuration file is not valid UTF-8")
    return parse_text(text, path, env=env, require_final_lf=True)
