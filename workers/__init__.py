"""keepwarm workers: one process, one selectors loop, its own listeners, pools and counters."""
