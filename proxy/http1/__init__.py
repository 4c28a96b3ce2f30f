"""HTTP/1.1 rules with no I/O: framing, connection persistence, reuse policy, error pages."""
