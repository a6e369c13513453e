"""The wheel carries libosp.so and loads it from its own folder: installed
into a fresh virtualenv, it imports and serves with no LD_LIBRARY_PATH."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_wheel_is_self_contained(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "LD_LIBRARY_PATH"}
    env["OSP_SKIP_MAKE"] = "1"  # the library is already built by make
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-build-isolation", "--no-index", "--no-deps",
         "-w", str(tmp_path / "dist"), str(ROOT)],
        check=True, env=env, cwd=tmp_path,
    )
    (wheel,) = (tmp_path / "dist").glob("object_storage_proxy-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "object_storage_proxy/libosp.so" in names
    assert any(n.startswith("object_storage_proxy/_osp_cffi") and n.endswith(".so") for n in names)
    assert "object_storage_proxy/py.typed" in names

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)], check=True)
    py = venv / "bin" / "python"
    subprocess.run([str(py), "-m", "pip", "install", "--quiet", "--no-index", "--no-deps", str(wheel)], check=True, env=env)
    probe = textwrap.dedent(
        """
        import object_storage_proxy as osp, urllib.request, urllib.error
        assert "site-packages" in osp.__file__, osp.__file__
        cfg = osp.ProxyServerConfig({"b": {"host": "127.0.0.1", "port": 9, "access_key": "a", "secret_key": "s"}},
                                    http_port=0, bind_address="127.0.0.1")
        with osp.ProxyServer(cfg) as server:
            try:
                urllib.request.urlopen(server.endpoint_url + "/b/k")
            except urllib.error.HTTPError as e:
                print(e.code, b"<Code>AccessDenied</Code>" in e.read())
        """
    )
    # Run from an empty folder so the source tree cannot be imported instead.
    out = subprocess.run([str(py), "-c", probe], check=True, env=env, cwd=tmp_path, capture_output=True, text=True)
    assert out.stdout.strip() == "403 True", out
