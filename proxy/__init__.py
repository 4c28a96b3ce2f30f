"""keepwarm: an HTTP/1.1 reverse proxy that keeps connections warm on both sides."""

__version__ = "0.1.0"
__release_date__ = "2026/12/06"     # `show info`'s Release_date (hatop requires one)
