"""Kernels never import pandas: checked in a fresh interpreter and by reading the source."""
from __future__ import annotations

import ast
import pathlib
import subprocess
import sys

import cryptolake

PKG = pathlib.Path(cryptolake.__file__).resolve().parent
KERNELS = PKG / "kernels"

SCRIPT = f"""
import importlib, pkgutil, sys, types
pkg = types.ModuleType("cryptolake")
pkg.__path__ = [{str(PKG)!r}]          # a bare package: cryptolake/__init__.py is not executed
sys.modules["cryptolake"] = pkg
import cryptolake.kernels as k
names = [m.name for m in pkgutil.iter_modules(k.__path__)]
for name in names:
    importlib.import_module("cryptolake.kernels." + name)
assert "pandas" not in sys.modules, sorted(m for m in sys.modules if m.startswith("pandas"))[:5]
print(len(names))
"""


def test_importing_every_kernel_module_does_not_import_pandas():
    res = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True,
                         timeout=300)
    assert res.returncode == 0, res.stderr
    assert int(res.stdout.strip()) >= 3


def test_no_kernel_source_imports_pandas():
    offenders = []
    for path in sorted(KERNELS.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            else:
                continue
            offenders += [f"{path.name}: {n}" for n in names if n.split(".")[0] == "pandas"]
    assert not offenders, offenders
