"""Build glue that pyproject.toml cannot express.

The extension object_storage_proxy._osp_cffi links against libosp.so, the Go
proxy built by ``make lib`` into build/. build_ext first runs make, then lets
cffi compile and link the extension, then copies libosp.so next to it: the
extension's rpath is $ORIGIN, so the installed package needs no
LD_LIBRARY_PATH. Set OSP_SKIP_MAKE=1 to use an already built build/libosp.so
(e.g. on a machine without the Go toolchain).

The version is OSP_VERSION in include/osp.h, the one place it is written:
libosp reports it, the extension is compiled with it, and the package
refuses at import a libosp.so of another one.
"""

from __future__ import annotations

import os
import re
import subprocess

from setuptools import setup
from setuptools.command.build_ext import build_ext

ROOT = os.path.dirname(os.path.abspath(__file__))
LIBOSP = os.path.join(ROOT, "build", "libosp.so")
HEADER = os.path.join(ROOT, "include", "osp.h")


def header_version() -> str:
    with open(HEADER, encoding="utf-8") as f:
        match = re.search(r'^#define OSP_VERSION "([^"]+)"$', f.read(), re.M)
    if match is None:
        raise RuntimeError(f"{HEADER} has no #define OSP_VERSION")
    return match.group(1)


class BuildExtWithLibosp(build_ext):
    def run(self) -> None:
        if not os.environ.get("OSP_SKIP_MAKE"):
            subprocess.run(["make", "-C", ROOT, "lib"], check=True)
        if not os.path.isfile(LIBOSP):
            raise RuntimeError(f"{LIBOSP} is missing: run `make lib` first")
        super().run()
        for ext in self.extensions:
            target = os.path.join(os.path.dirname(self.get_ext_fullpath(ext.name)), "libosp.so")
            self.copy_file(LIBOSP, target)

    def get_outputs(self) -> list[str]:
        # Declare the copied library so installs record (and uninstall) it.
        outputs = list(super().get_outputs())
        for ext in self.extensions:
            outputs.append(os.path.join(os.path.dirname(self.get_ext_fullpath(ext.name)), "libosp.so"))
        return outputs


setup(
    version=header_version(),
    package_dir={"": "python"},
    packages=["object_storage_proxy"],
    package_data={"object_storage_proxy": ["py.typed", "*.pyi"]},
    cffi_modules=["python/object_storage_proxy/_build_ffi.py:ffibuilder"],
    cmdclass={"build_ext": BuildExtWithLibosp},
    zip_safe=False,
    # cffi compiles against the stable ABI (the .abi3.so suffix): one wheel
    # serves every CPython from 3.9 on.
    # Setuptools' scratch files go under build/python, away from the sources
    # and from make's outputs in build/.
    options={
        "bdist_wheel": {"py_limited_api": "cp39"},
        "build": {"build_base": "build/python"},
        "egg_info": {"egg_base": "build/python"},
    },
)
