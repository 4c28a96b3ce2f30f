"""Access and event logs in HAProxy 2.6's formats (issue 17).

- ``syslog``: one line on the wire per format (local, rfc3164, rfc5424, priority,
  short, timed, iso, raw), PRI, ``len`` truncation, facility and level names;
- ``sender``: a non-blocking sender per target (UNIX datagram, UDP, stdout/stderr)
  that drops and counts instead of waiting;
- ``httplog``: the access-log line (``option httplog [clf]``, ``log-format``)
  from a per-stream ``LogRecord``, through the rule engine's log-format compiler;
- ``termination``: HAProxy's termination state codes (``%ts``, ``%tsc``);
- ``output``: a proxy's targets together (level filter, minlevel, sampling,
  per-target format): what the wiring calls once per line;
- ``events``: the master's event lines (server UP/DOWN, no server available,
  maintenance, drain, proxy stopped) in HAProxy's wording, and their targets.

Sans-IO except ``sender``. The workers' wiring is workers/txlog.py.
"""
