"""pyproject.toml and environment.yml must install the same packages with the same bounds."""
import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
CONDA_TO_PYPI = {"matplotlib-base": "matplotlib", "pytables": "tables", "python-isal": "isal"}


def _split(spec: str) -> tuple[str, str]:
    m = re.match(r"^\s*([A-Za-z0-9_.\-]+)(?:\[[^\]]*\])?\s*(.*)$", spec)
    return m.group(1).lower().replace("_", "-"), m.group(2).replace(" ", "")


def _pyproject() -> dict[str, str]:
    proj = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    specs = list(proj["dependencies"]) + [s for extra in proj["optional-dependencies"].values() for s in extra]
    return dict(_split(s) for s in specs)


def _conda() -> tuple[dict[str, str], dict]:
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    deps = {}
    for d in env["dependencies"]:
        if isinstance(d, str):
            name, bound = _split(d)
            deps[CONDA_TO_PYPI.get(name, name)] = bound
    return deps, env


def test_environment_lists_every_pyproject_dependency_with_the_same_bound():
    py, (conda, _) = _pyproject(), _conda()
    missing = sorted(set(py) - set(conda))
    assert not missing, f"environment.yml lacks {missing}"
    differing = {n: (py[n], conda[n]) for n in py if py[n] != conda[n]}
    assert not differing, f"bounds differ (pyproject, environment.yml): {differing}"


def test_environment_python_pin_matches_requires_python_and_installs_the_project():
    _, env = _conda()
    proj = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert env["channels"] == ["conda-forge"]
    pins = [d for d in env["dependencies"] if isinstance(d, str) and _split(d)[0] == "python"]
    assert pins == ["python" + proj["requires-python"]]
    pip_section = [d for d in env["dependencies"] if isinstance(d, dict)]
    assert pip_section and "-e ." in pip_section[0]["pip"] and "pip" in env["dependencies"]


def test_no_conda_entry_is_unknown_to_pyproject():
    py, (conda, _) = _pyproject(), _conda()
    extra = sorted(set(conda) - set(py) - {"python", "pip"})
    assert not extra, f"environment.yml has packages pyproject.toml does not: {extra}"
