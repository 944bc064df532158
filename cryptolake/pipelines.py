"""Run the parameterized notebooks under notebooks/pipelines/ with papermill (what
`cryptolake run NAME -p key value` calls) and leave a reproducible run record.

    rec = run_pipeline("daily_update", {"symbols": ["BTCUSDT"], "top_up": False},
                       lake_url="s3://bucket/lake", storage_options={...})
    rec["status"], rec["versions"], rec["path"]

Every run writes, through the lake's own storage (local or S3), under
`_runs/<pipeline>/<UTC time>/`: the executed notebook, `record.json` (see `cryptolake.runs`)
and `figures/*.png` (the notebook saves them into the `figures_dir` parameter the runner
passes). A failing cell still writes all three (status "failed", the cell's error) and then
raises `PipelineError`; the lake stays at its last committed version (Delta commits are atomic).
"""
from __future__ import annotations

import datetime as dt
import importlib
import json
import platform
import tempfile
import time
from pathlib import Path

import pandas as pd

_runs = importlib.import_module(f"{__package__}.runs")   # the module (cl.runs is the function)

PIPELINES = Path(__file__).resolve().parents[1] / "notebooks" / "pipelines"
ALIASES: dict[str, str] = {}
# parameters the runner fills in itself when the notebook declares them
RUNNER_PARAMS = ("figures_dir",)


class PipelineError(RuntimeError):
    """A pipeline notebook raised; the message names the cell, the error and the run record.
    `.record` is the run record (status "failed")."""

    def __init__(self, msg: str, record: dict | None = None):
        super().__init__(msg)
        self.record = record


def available() -> list[str]:
    """Names of the pipelines (notebooks under notebooks/pipelines/, without .ipynb)."""
    return sorted({p.stem for p in PIPELINES.glob("*.ipynb")} | set(ALIASES))


def notebook_path(name: str) -> Path:
    src = PIPELINES / f"{ALIASES.get(name, name)}.ipynb"
    if not name or "/" in name or not src.exists():
        raise ValueError(f"no pipeline {name!r}; available: {', '.join(available()) or 'none'}")
    return src


def declared(name: str) -> dict[str, dict]:
    """{parameter: {"type": declared type name, "default": source text, "help": comment}} of
    a pipeline's `parameters` cell (what `papermill --help-notebook` shows)."""
    from papermill.inspection import inspect_notebook
    return {k: {"type": v["inferred_type_name"], "default": v["default"], "help": v["help"]}
            for k, v in inspect_notebook(str(notebook_path(name))).items()}


_TYPES = {"str": (str,), "bool": (bool,), "int": (int,), "float": (int, float), "dict": (dict,),
          "list": (list,)}


def parse_value(text: str):
    """A command-line value parsed as YAML: `false` -> False, `[BTCUSDT, ETHUSDT]` -> a list,
    `{key: x}` -> a dict, `3` -> 3; anything YAML cannot parse stays the string."""
    import yaml
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def check_params(name: str, params: dict, raw: dict | None = None) -> dict:
    """`params` checked against the notebook's declared parameters and types; returns them
    coerced (a str parameter keeps the text as typed; a list parameter takes a
    comma-separated string). Unknown names or wrong types raise ValueError naming what is
    allowed. `raw`: the unparsed command-line text per name."""
    decl = declared(name)
    out = {}
    for key, value in params.items():
        if key not in decl:
            raise ValueError(f"{name} has no parameter {key!r}; allowed: {', '.join(decl)}")
        want = decl[key]["type"]
        allowed = _TYPES.get(want)
        if allowed is None or value is None:
            out[key] = value
            continue
        if want == "str" and not isinstance(value, str):
            if raw and key in raw:
                value = raw[key]                     # e.g. -p start 2024-01-01 stays text
            elif isinstance(value, (dt.date, int, float)) and not isinstance(value, bool):
                value = str(value)
        if want == "list" and isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        if want == "float" and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        bad = not isinstance(value, allowed) or (want in ("int", "float") and isinstance(value, bool))
        if bad:
            shown = raw.get(key, value) if raw else value
            hint = {"bool": "true or false", "list": "a list like [BTCUSDT, ETHUSDT] or a,b",
                    "dict": "a mapping like {key: value}"}.get(want, f"a {want}")
            raise ValueError(f"{name} parameter {key!r} must be {want} ({hint}); got "
                             f"{type(value).__name__} {shown!r}")
        out[key] = value
    return out


def _now() -> pd.Timestamp:
    return pd.Timestamp.now(tz="UTC")


def _rows(lake) -> dict[str, int]:
    out = {}
    for layer in (lake.silver, lake.gold):
        for t in layer.tables:
            try:
                out[f"{layer.layer}.{t}"] = int(layer[t].partition_stats()["rows"].sum())
            except Exception:               # a table without stats still gets listed
                out[f"{layer.layer}.{t}"] = None
    return out


def _cell_error(nb) -> dict | None:
    for i, c in enumerate(nb.cells):
        for o in c.get("outputs", []):
            if o.get("output_type") == "error":
                return {"ename": o.get("ename"), "evalue": o.get("evalue"), "cell": i,
                        "execution_count": c.get("execution_count")}
    return None


def _run_rel(lake, name: str, started: pd.Timestamp) -> str:
    base = f"{_runs.RUNS_DIR}/{name}/{_runs.run_dir_name(started)}"
    rel, n = base, 1
    while lake.storage.exists(rel):
        n += 1
        rel = f"{base}-{n}"
    return rel


def run_pipeline(name: str, params: dict | None = None, lake_url: str | None = None,
                 storage_options: dict | None = None, kernel_name: str = "python3",
                 progress: bool = False, raw: dict | None = None) -> dict:
    """Execute notebooks/pipelines/NAME.ipynb with `params` against the lake at `lake_url`
    (default: the `lake_url` parameter, else the notebook's default) and write the run record.

    Returns the record (dict; "path" is the run directory). A failing cell raises
    PipelineError (its `.record` has status "failed"). Unknown pipeline or parameter names
    and wrong parameter types raise ValueError before anything runs.
    """
    import papermill as pm
    from papermill.exceptions import PapermillExecutionError

    from . import __version__
    from .lake import Lake

    src = notebook_path(name)
    params = dict(params or {})
    decl = declared(name)
    if lake_url is not None:
        params["lake_url"] = lake_url
    if storage_options is not None:
        params["storage_options"] = storage_options
    for k in RUNNER_PARAMS:
        if k in params:
            raise ValueError(f"{k!r} is set by the runner (the run directory); leave it out")
    params = check_params(name, params, raw)
    from . import config
    url = params.get("lake_url") or _default(decl, "lake_url") or config.default_root()
    if "://" not in url:
        import os
        url = os.path.abspath(os.path.expanduser(url))   # the kernel runs in the repo root
    params["lake_url"] = url
    opts = params.get("storage_options") or None
    lake = Lake(url, storage_options=opts)
    versions_before = lake.versions()
    started = _now()
    rel = _run_rel(lake, name, started)
    secrets = _runs.secret_strings(params)

    with tempfile.TemporaryDirectory(prefix="cryptolake-run-") as tmp:
        tmp = Path(tmp)
        figures = tmp / "figures"
        figures.mkdir()
        run_params = dict(params)
        if "figures_dir" in decl:
            run_params["figures_dir"] = str(figures)
        out = tmp / f"{name}.ipynb"
        error = None
        t0 = time.perf_counter()
        try:
            pm.execute_notebook(str(src), str(out), parameters=run_params, kernel_name=kernel_name,
                                progress_bar=progress, cwd=str(PIPELINES.parent.parent),
                                # no kernel start-up warnings on our stderr (one-line failures)
                                extra_arguments=["--IPKernelApp.log_level=ERROR"])
        except PapermillExecutionError as e:
            error = {"ename": e.ename, "evalue": str(e.evalue), "cell": None,
                     "execution_count": e.exec_count}
        except Exception as e:            # the kernel died or would not start: still recorded
            error = {"ename": type(e).__name__, "evalue": str(e), "cell": None,
                     "execution_count": None}
        duration = time.perf_counter() - t0
        finished = _now()
        if error is not None:
            for s in secrets:
                error["evalue"] = error["evalue"].replace(s, _runs.REDACTED)
        if error is not None and out.exists():
            import nbformat
            found = _cell_error(nbformat.read(str(out), as_version=4))
            if found:
                error["cell"] = found["cell"]
        after = Lake(url, storage_options=opts)
        fig_names = sorted(p.name for p in figures.glob("*") if p.is_file())
        record = {
            "pipeline": name,
            "parameters": _runs.redact(params),
            "status": "failed" if error else "ok",
            "error": error,
            "started": started.isoformat(),
            "finished": finished.isoformat(),
            "duration_s": round(duration, 3),
            "rows": _rows(after),
            "versions_before": versions_before,
            "versions": after.versions(),
            "python": platform.python_version(),
            "cryptolake": __version__,
            "notebook": f"{rel}/{name}.ipynb",
            "figures": [f"{rel}/figures/{n}" for n in fig_names if n.lower().endswith(".png")],
            "files": [f"{rel}/figures/{n}" for n in fig_names if not n.lower().endswith(".png")],
            "path": _runs.run_url(lake, rel),
        }
        if out.exists():
            text = out.read_text()
            for s in secrets:                            # the injected cell holds the options
                text = text.replace(s, _runs.REDACTED)
            lake.storage.write_bytes(f"{rel}/{name}.ipynb", text.encode())
        for n in fig_names:
            lake.storage.write_bytes(f"{rel}/figures/{n}", (figures / n).read_bytes())
        lake.storage.write_bytes(f"{rel}/{_runs.RECORD}",
                                 json.dumps(record, indent=2, default=str).encode())
    if error:
        msg = str(error["evalue"]).strip().splitlines()[0] if str(error["evalue"]).strip() else ""
        where = f" in cell {error['cell']}" if error["cell"] is not None else ""
        raise PipelineError(f"pipeline {name!r} failed{where}: {error['ename']}: "
                            f"{msg} (run record: {record['path']}/{_runs.RECORD})", record)
    return record


def _default(decl: dict, key: str):
    if key not in decl:
        return None
    import ast
    try:
        return ast.literal_eval(decl[key]["default"])
    except (ValueError, SyntaxError):
        return None
