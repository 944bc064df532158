"""The numba policy: a cache directory per kernel-source version, overridable, and warm()."""
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _cache_dir_in_fresh_process(env_extra: dict) -> str:
    env = {**os.environ, **env_extra}
    env.pop("NUMBA_CACHE_DIR", None)
    code = "import cryptolake.kernels, numba; print(numba.config.CACHE_DIR)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                         cwd=ROOT, timeout=120)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def test_cache_directory_is_overridable_and_keyed_by_kernel_sources(tmp_path):
    got = _cache_dir_in_fresh_process({"CRYPTOLAKE_NUMBA_CACHE": str(tmp_path)})
    assert Path(got).parent == tmp_path and Path(got).name.startswith("numba-")
    from cryptolake.kernels import _jit
    assert Path(got).name == "numba-" + _jit._source_digest()


def test_source_digest_changes_when_any_kernel_changes(tmp_path, monkeypatch):
    import shutil

    from cryptolake.kernels import _jit
    copy = tmp_path / "kernels"
    shutil.copytree(Path(_jit.__file__).parent, copy, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(_jit, "__file__", str(copy / "_jit.py"))
    before = _jit._source_digest()
    (copy / "ma.py").write_text((copy / "ma.py").read_text() + "\n# edited\n")
    assert _jit._source_digest() != before


def test_warm_compiles_every_registered_kernel():
    from cryptolake.kernels import warm
    assert warm() >= 4
