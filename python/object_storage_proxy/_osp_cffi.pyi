# Type stub for the cffi-generated extension (built from _build_ffi.py).
from typing import Any

ffi: Any
lib: Any
