"""cffi builder for the ``object_storage_proxy._osp_cffi`` extension.

API mode (out of line): the C compiler checks these declarations against
include/osp.h, so a drift between the header and this cdef fails the build
instead of corrupting memory at run time. setup.py runs this file through
``cffi_modules``; it can also be run by hand: ``python _build_ffi.py``.
"""

from __future__ import annotations

import os

from cffi import FFI

_REPO = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))

# A hand-written mirror of include/osp.h: cffi cannot run the C preprocessor.
CDEF = """
#define OSP_CB_OK 0
#define OSP_CB_NONE 1
#define OSP_CB_ERROR 2
#define OSP_CB_BAD_TYPE 3
#define OSP_CB_TOO_LONG 4

typedef int32_t (*osp_callback_fn)(uint64_t callable_id, const char *args_json,
                                   char *out, size_t out_cap, size_t *out_len);

void osp_register_callback(osp_callback_fn fn);

int64_t osp_server_start(const char *config_json, char **err);
char *osp_server_ports(int64_t handle);
char *osp_server_stop(int64_t handle, int64_t timeout_ms);
char *osp_server_reload(int64_t handle, char *config_json);

void osp_set_request_counting(int32_t enabled);
int64_t osp_get_request_count(void);
void osp_reset_request_count(void);

void osp_free(char *s);
const char *osp_version(void);

/* The one trampoline Python hands to osp_register_callback. */
extern "Python" int32_t _osp_trampoline(uint64_t, const char *, char *, size_t, size_t *);
"""

ffibuilder = FFI()
ffibuilder.cdef(CDEF)
ffibuilder.set_source(
    "object_storage_proxy._osp_cffi",
    '#include "osp.h"',
    include_dirs=[os.path.join(_REPO, "include")],
    library_dirs=[os.path.join(_REPO, "build")],
    libraries=["osp"],
    # libosp.so is shipped next to the extension: find it there, so no
    # LD_LIBRARY_PATH is needed wherever the package is installed.
    extra_link_args=["-Wl,-rpath,$ORIGIN"],
)

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
