"""HTTP/1.x head parser and body decoder: the C module when built, else the pure-Python twin.

Both implementations have the same API and give the same answer for every input
(tests/test_parser_differential.py).  Set KEEPWARM_PURE=1 to force the twin.
"""

import os

from .constants import *  # noqa: F401,F403  (R_*, F_*, E_*, M_*, ERROR_STATUS, ERROR_NAMES)
from .constants import ERROR_NAMES, ERROR_STATUS  # noqa: F401

IMPLEMENTATION = "python"
if os.environ.get("KEEPWARM_PURE", "") not in ("", "0"):
    from .pure import BodyDecoder, ChunkedDecoder, Parser
else:
    try:
        from .native import BodyDecoder, ChunkedDecoder, Parser
        IMPLEMENTATION = "native"
    except ImportError:
        from .pure import BodyDecoder, ChunkedDecoder, Parser
