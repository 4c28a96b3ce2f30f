"""cffi builder for the C head parser (API mode, out-of-line).

setup.py names it in cffi_modules ("_native/build.py:ffibuilder") and runs it
from the repository root; `python3 _native/build.py` builds _native/_khttp*.so
in place for development.
"""

import os
import re

from cffi import FFI

HERE = os.path.dirname(os.path.abspath(__file__))


HEADERS = ("khttp.h", "ksend.h")


def _cdef():
    """The declarations between the CDEF markers of each header, as cffi reads them."""
    out = []
    for name in HEADERS:
        with open(os.path.join(HERE, name)) as f:
            text = f.read()
        body = text.split("/* CDEF BEGIN */", 1)[1].split("/* CDEF END */", 1)[0]
        out.append(re.sub(r"/\*.*?\*/", "", body, flags=re.S))
    return "\n".join(out)


ffibuilder = FFI()
ffibuilder.cdef(_cdef())
ffibuilder.set_source(
    "_native._khttp",
    '#include "khttp.h"\n#include "ksend.h"',
    sources=["_native/khttp.c", "_native/ksend.c"],
    include_dirs=["_native"],
    extra_compile_args=["-O2"],
)

if __name__ == "__main__":
    os.chdir(os.path.dirname(HERE))  # the repository root: paths above are relative to it
    ffibuilder.compile(verbose=False)
