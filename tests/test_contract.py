"""Each contract is written once, and what repeats it is checked against it.

- include/osp.h is the C contract: cffi reads its declarations from it, and
  its OSP_VERSION is the version of the package and of libosp (the package
  refuses a libosp.so of another version at import).
- libosp's defaults (osp_config_defaults) are the configuration defaults;
  ProxyServerConfig's declaration is the Python side of every setting, and
  the header's key list and the README's signature block and tables are
  checked against both.
"""

from __future__ import annotations

import ast
import importlib.metadata
import importlib.util
import inspect
import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any, Dict, List, Set

import pytest

import object_storage_proxy
from object_storage_proxy import ProxyServerConfig, _native
from object_storage_proxy.config import _ENTRY_SPELLINGS, CALLABLE_KINDS, SETTINGS
from object_storage_proxy.configfile import server_keys

ROOT = Path(__file__).resolve().parent.parent
HEADER = ROOT / "include" / "osp.h"
README = (ROOT / "README.md").read_text(encoding="utf-8")


def _build_ffi() -> Any:
    """python/object_storage_proxy/_build_ffi.py, loaded from the source tree."""
    spec = importlib.util.spec_from_file_location("_build_ffi", ROOT / "python" / "object_storage_proxy" / "_build_ffi.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# -- the C contract -------------------------------------------------------------


def test_header_filter_keeps_declarations_and_drops_the_preprocessor() -> None:
    text = textwrap.dedent(
        """\
        #ifndef X_H
        #define X_H
        #include <stdint.h>
        #define X_VERSION "1.0"
        #ifdef __cplusplus
        extern "C" {
        #endif
        #define X_OK 0
        /* a comment */
        int32_t x_call(const char *in);
        #ifdef __cplusplus
        }
        #endif
        #endif
        """
    )
    kept = [line for line in _build_ffi().header_declarations(text).splitlines() if line]
    assert kept == ["#define X_OK 0", "/* a comment */", "int32_t x_call(const char *in);"]
    # Line numbers stay the header's, for cffi's messages.
    assert len(_build_ffi().header_declarations(text).splitlines()) == len(text.splitlines())


def _header_functions() -> Set[str]:
    declarations = _build_ffi().header_declarations(HEADER.read_text(encoding="utf-8"))
    return set(re.findall(r"\b(osp_\w+)\s*\(", re.sub(r"/\*.*?\*/", "", declarations, flags=re.S)))


def test_every_header_function_is_in_the_extension() -> None:
    functions = _header_functions()
    assert {"osp_server_start", "osp_server_reload", "osp_config_defaults", "osp_version"} <= functions
    assert functions <= set(dir(_native.lib)), functions - set(dir(_native.lib))


def test_the_header_declares_what_go_exports() -> None:
    """cgo's export signature is the truth (char *, never const): the header
    is included by libosp's own build, so a mismatch fails that build; here
    the exports and the header name the same functions."""
    exported: Set[str] = set()
    for source in (ROOT / "go" / "capi").glob("*.go"):
        exported |= set(re.findall(r"^//export (\w+)$", source.read_text(encoding="utf-8"), re.M))
    assert exported == _header_functions()


def test_one_version_everywhere() -> None:
    (header_version,) = re.findall(r'^#define OSP_VERSION "([^"]+)"$', HEADER.read_text(encoding="utf-8"), re.M)
    assert object_storage_proxy.__version__ == header_version
    assert _native.version() == header_version  # the libosp.so loaded
    assert importlib.metadata.version("object-storage-proxy") == header_version  # the installed metadata


def test_a_libosp_of_another_version_is_refused_at_import(tmp_path: Path) -> None:
    """The extension answers for a libosp.so that reports another version:
    importing the package fails, naming both."""
    fake = textwrap.dedent(
        """
        import importlib.machinery, importlib.util, os, sys, types
        import object_storage_proxy as installed
        folder = os.path.dirname(installed.__file__)
        for name in [n for n in sys.modules if n.startswith("object_storage_proxy")]:
            del sys.modules[name]
        (path,) = [os.path.join(folder, f) for f in os.listdir(folder) if f.startswith("_osp_cffi") and f.endswith(".so")]
        spec = importlib.util.spec_from_file_location("object_storage_proxy._osp_cffi", path)
        real = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(real)

        class OtherLib:
            other = real.ffi.new("char[]", b"9.9.9")
            def __getattr__(self, name):
                return getattr(real.lib, name)
            def osp_version(self):
                return self.other

        sys.modules["object_storage_proxy._osp_cffi"] = types.SimpleNamespace(ffi=real.ffi, lib=OtherLib())
        try:
            import object_storage_proxy
        except ImportError as exc:
            print("ImportError:", exc)
        else:
            print("imported")
        """
    )
    out = subprocess.run([sys.executable, "-c", fake], capture_output=True, text=True, cwd=tmp_path, check=True)
    version = object_storage_proxy.__version__
    assert out.stdout.startswith("ImportError:"), out
    assert f"object_storage_proxy {version}" in out.stdout and "libosp.so loaded is 9.9.9" in out.stdout, out.stdout


# -- the configuration ---------------------------------------------------------------


def _header_config_keys() -> Dict[str, Set[str]]:
    """The keys the header's config_json comment lists: top level and of a
    cos_map entry."""
    text = HEADER.read_text(encoding="utf-8")
    block = text[text.index(' *   {"cos_map"'): text.index("\n *\n", text.index(' *   {"cos_map"'))]
    entry = block[block.index('{"host"'): block.index("}")]
    top = block.replace(entry, "")
    # "bucket" is cos_map's example key, "access_key" hmac_keystore's.
    return {"config": set(re.findall(r'"(\w+)":', top)) - {"bucket", "access_key"},
            "bucket": set(re.findall(r'"(\w+)":', entry))}


def test_the_header_lists_every_key_libosp_reads() -> None:
    defaults = _native.config_defaults()
    listed = _header_config_keys()
    assert listed["config"] == set(defaults["config"]), listed["config"] ^ set(defaults["config"])
    assert listed["bucket"] == set(defaults["bucket"]), listed["bucket"] ^ set(defaults["bucket"])


def test_the_declaration_sends_every_key_libosp_reads() -> None:
    sent = {spec.key or name for name, spec in SETTINGS.items()}
    sent |= {f"{kind}_identity" for kind in ("validator", "bucket_creds_fetcher")}
    assert sent == set(_native.config_defaults()["config"])
    assert set(_ENTRY_SPELLINGS.values()) == set(_native.config_defaults()["bucket"])


def _empty(value: Any) -> Any:
    return None if value in ("", {}, [], None) else value


def test_a_default_config_sends_libosp_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    """What a config left at its defaults sends is what libosp would fill in
    anyway: the Python package adds no default of its own."""
    for env in ("OSP_LOG_FORMAT", "OSP_LOG_LEVEL", "OSP_IAM_URL"):
        monkeypatch.delenv(env, raising=False)
    config = ProxyServerConfig({"b": {"host": "h", "port": 1, "api_key": "k"}}, http_port=0)
    sent = json.loads(config.to_native_json())
    defaults = _native.config_defaults()
    assert {key: _empty(value) for key, value in sent.items() if key not in ("cos_map", "http_port")} == {
        key: _empty(value) for key, value in defaults["config"].items() if key not in ("cos_map", "http_port")
    }
    entry = sent["cos_map"]["b"]
    assert {key: entry[key] for key in entry if key not in ("host", "port", "api_key")} == {
        key: value for key, value in defaults["bucket"].items() if key in entry and key not in ("host", "port", "api_key")
    }


def _readme_signature() -> inspect.Signature:
    """The README's `ProxyServerConfig(...)` block, parsed as a def."""
    match = re.search(r"`ProxyServerConfig\((cos_map,.*?)\)`", README, re.S)
    assert match, "the README's ProxyServerConfig signature block is missing"
    (function,) = ast.parse(f"def f({match.group(1)}): pass").body
    assert isinstance(function, ast.FunctionDef)
    args = function.args
    positional = [
        inspect.Parameter(a.arg, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=inspect.Parameter.empty)
        for a in args.args
    ]
    for parameter, default in zip(reversed(range(len(positional))), reversed(args.defaults)):
        positional[parameter] = positional[parameter].replace(default=ast.literal_eval(default))
    keyword = [
        inspect.Parameter(a.arg, inspect.Parameter.KEYWORD_ONLY, default=ast.literal_eval(d) if d else inspect.Parameter.empty)
        for a, d in zip(args.kwonlyargs, args.kw_defaults)
    ]
    return inspect.Signature(positional + keyword)


def test_readme_signature_is_the_declaration() -> None:
    assert str(_readme_signature()) == str(inspect.signature(ProxyServerConfig))


def _readme_row(table: str) -> List[str]:
    (row,) = [line for line in README.splitlines() if line.startswith(f"| `{table}")]
    return re.findall(r"`([^`]+)`", row.split("|")[2])


def test_readme_server_table_lists_every_server_key() -> None:
    listed = {re.sub(r"^\[server\.(\w+)\]$", r"\1", key) for key in _readme_row("[server]")}
    listed -= {"[keystore]", "ProxyServerConfig"}
    assert listed == set(server_keys()), listed ^ set(server_keys())


def test_readme_bucket_table_lists_every_entry_key() -> None:
    listed = {_ENTRY_SPELLINGS.get(key, key) for key in _readme_row("[buckets.NAME]")}
    listed -= {"[buckets.\"team-a-*\"]"}
    assert listed == set(_native.config_defaults()["bucket"]), listed ^ set(_native.config_defaults()["bucket"])


def test_readme_callables_row_lists_every_callable() -> None:
    assert set(CALLABLE_KINDS) <= set(_readme_row("[callables]"))


def test_example_file_names_only_real_keys() -> None:
    """examples/osp.toml shows [server] settings (some commented out): each
    is a real one."""
    text = (ROOT / "examples" / "osp.toml").read_text(encoding="utf-8")
    server = text[text.index("[server]"): text.index("[keystore]")]
    named = set(re.findall(r"^#? ?(\w+) = ", server, re.M))
    assert named and named <= set(server_keys()), named - set(server_keys())
