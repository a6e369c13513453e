"""cffi builder for the ``object_storage_proxy._osp_cffi`` extension.

The declarations come from include/osp.h itself (as pygit2 reads its
decl/*.h), so the header is the one copy of the C contract; only what
exists on the Python side alone is written here. API mode (out of line):
the extension is compiled against the same header. setup.py runs this file
through ``cffi_modules``; it can also be run by hand: ``python _build_ffi.py``.
"""

from __future__ import annotations

import os
import re

from cffi import FFI

_REPO = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
HEADER = os.path.join(_REPO, "include", "osp.h")

# Declared by the Python side only: the one trampoline Python hands to
# osp_register_callback, and OSP_VERSION (a string macro, which cffi's
# parser does not read as a #define) as the constant the extension was
# built against.
PYTHON_ONLY = """
extern "Python" int32_t _osp_trampoline(uint64_t, const char *, char *, size_t, size_t *);
static char *const OSP_VERSION;
"""

# A #define cffi can declare: a name and an integer.
_INTEGER_DEFINE = re.compile(r"#\s*define\s+\w+\s+-?\d+\s*$")


def header_declarations(text: str) -> str:
    """The C declarations of ``text`` (osp.h) as cffi's cdef takes them.

    cffi does not run the preprocessor, so this drops what it cannot parse:
    every preprocessor line but an integer ``#define`` (the include guard,
    the ``#include``s, the string OSP_VERSION), and the lines of an
    ``#ifdef __cplusplus`` block (the ``extern "C" {`` guard and its brace).
    Comments stay; cffi skips them. Lines are kept as blank lines, so that
    cffi's messages give the header's own line numbers.
    """
    out = []
    in_cplusplus = False
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("#ifdef __cplusplus"):
            in_cplusplus = True
        keep = not in_cplusplus and (not stripped.startswith("#") or _INTEGER_DEFINE.match(stripped) is not None)
        out.append(line if keep else "")
        if in_cplusplus and stripped.startswith("#endif"):
            in_cplusplus = False
    return "\n".join(out) + "\n"


def _read_header() -> str:
    try:
        with open(HEADER, encoding="utf-8") as f:
            return f.read()
    except OSError as exc:
        raise RuntimeError(f"{HEADER} is missing: build from the repository (it holds include/osp.h)") from exc


ffibuilder = FFI()
ffibuilder.cdef(header_declarations(_read_header()) + PYTHON_ONLY)
ffibuilder.set_source(
    "object_storage_proxy._osp_cffi",
    '#include "osp.h"',
    include_dirs=[os.path.dirname(HEADER)],
    library_dirs=[os.path.join(_REPO, "build")],
    libraries=["osp"],
    # libosp.so is shipped next to the extension: find it there, so no
    # LD_LIBRARY_PATH is needed wherever the package is installed.
    extra_link_args=["-Wl,-rpath,$ORIGIN"],
)

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
