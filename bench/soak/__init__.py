"""Soak run: keepwarm beside HAProxy under reloads, kills, idle and slow clients, hostile input."""
