"""End-to-end benchmark harness: keepwarm beside HAProxy and nginx (run: python3 -m bench.e2e)."""
