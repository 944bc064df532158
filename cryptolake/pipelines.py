"""Run the parameterized notebooks under notebooks/pipelines/ with papermill (what
`cryptolake run NAME -p key value` calls)."""
from __future__ import annotations

import datetime as dt
from pathlib import Path

PIPELINES = Path(__file__).resolve().parents[1] / "notebooks" / "pipelines"


def available() -> list[str]:
    return sorted(p.stem for p in PIPELINES.glob("*.ipynb"))


def _coerce(value):
    """Command-line strings to the types a parameters cell expects (YAML-like)."""
    if not isinstance(value, str):
        return value
    low = value.lower()
    if low in ("true", "false"):
        return low == "true"
    if low in ("none", "null"):
        return None
    for cast in (int, float):
        try:
            return cast(value)
        except ValueError:
            pass
    return value


def run_pipeline(name: str, params: dict | None = None, output_dir: str | None = None,
                 kernel_name: str = "python3", progress: bool = False) -> Path:
    """Execute notebooks/pipelines/NAME.ipynb with `params`; returns the executed notebook path.

    The executed copy is written to `output_dir` (default: runs/ beside the pipelines) as
    NAME-YYYYmmddTHHMMSS.ipynb; a failing cell raises papermill's PapermillExecutionError.
    """
    import papermill as pm

    src = PIPELINES / f"{name}.ipynb"
    if not src.exists():
        raise ValueError(f"no pipeline {name!r}; available: {', '.join(available()) or 'none'}")
    out_dir = Path(output_dir) if output_dir else PIPELINES.parent / "runs"
    out_dir.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%S")
    out = out_dir / f"{name}-{stamp}.ipynb"
    try:
        pm.execute_notebook(str(src), str(out),
                            parameters={k: _coerce(v) for k, v in (params or {}).items()},
                            kernel_name=kernel_name, progress_bar=progress,
                            cwd=str(PIPELINES.parent.parent))
    except pm.PapermillExecutionError as e:
        raise PipelineError(f"pipeline {name!r} failed in cell {e.exec_count}: {e.ename}: "
                            f"{e.evalue} (executed notebook: {out})") from None
    return out


class PipelineError(RuntimeError):
    """A pipeline notebook raised; the message names the cell, the error and the notebook."""
