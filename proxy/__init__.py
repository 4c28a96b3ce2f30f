"""keepwarm: an HTTP/1.1 reverse proxy that keeps connections warm on both sides."""

__version__ = "0.1.0"
