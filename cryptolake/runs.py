"""Run records: what a pipeline run left under the lake's `_runs/<pipeline>/<UTC time>/`.

Each run directory holds the executed notebook (`<pipeline>.ipynb`), `record.json` and the
figures the notebook drew (`figures/*.png`). `record.json` has: pipeline, parameters (secrets
REDACTED), status ("ok" or "failed"), error (None, or the failing cell's ename/evalue/cell),
started/finished (ISO UTC), duration_s, rows (per table after the run), versions_before and
versions (`lake.versions()` before and after), python, cryptolake, notebook, figures, path.

    cl.runs(lake)                       # one row per run, oldest first
    lake.at(cl.runs(lake).iloc[-1])     # the lake as the last run left it
"""
from __future__ import annotations

import json
import re

import pandas as pd

RUNS_DIR = "_runs"
RECORD = "record.json"
REDACTED = "REDACTED"
COLUMNS = ["pipeline", "started", "finished", "status", "duration", "error", "path", "versions"]

_SECRET_KEY = re.compile(r"secret|password|passwd|token|credential|sas|(^|_)key$|^key|api_?key|"
                         r"session", re.I)
_URL_AUTH = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://)(?P<auth>[^/@\s]+)@", re.I)


def redact(value, key: str = ""):
    """`value` with every secret replaced by "REDACTED": values under keys that name a secret
    (key, secret, token, password, ...; nested dicts too) and user:password in URLs."""
    if isinstance(value, dict):
        return {k: redact(v, str(k)) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact(v) for v in value]
    if key and _SECRET_KEY.search(key) and value not in (None, "", {}):
        return REDACTED
    if isinstance(value, str):
        return _URL_AUTH.sub(lambda m: f"{m['scheme']}{REDACTED}@", value)
    return value


def secret_strings(value, key: str = "") -> list[str]:
    """Every secret string inside `value` that `redact` would hide (to scrub other text)."""
    out: list[str] = []
    if isinstance(value, dict):
        for k, v in value.items():
            out += secret_strings(v, str(k))
    elif isinstance(value, (list, tuple)):
        for v in value:
            out += secret_strings(v)
    elif key and _SECRET_KEY.search(key) and isinstance(value, (str, int)) and len(str(value)) >= 4:
        out.append(str(value))
    elif isinstance(value, str):
        out += [m["auth"] for m in _URL_AUTH.finditer(value)]
    return out


def run_dir_name(when: pd.Timestamp) -> str:
    """The directory name of a run started at `when`: 2026-11-27T16-20-05Z."""
    return when.tz_convert("UTC").strftime("%Y-%m-%dT%H-%M-%SZ")


def _lake(lake, storage_options=None):
    from .lake import Lake
    return lake if isinstance(lake, Lake) else Lake(lake, storage_options=storage_options)


def read_record(lake, rel: str) -> dict:
    """The record.json at `rel` (relative to the lake root) as a dict."""
    return json.loads(_lake(lake).storage.read_bytes(rel))


def runs(lake, pipeline: str | None = None, storage_options: dict | None = None) -> pd.DataFrame:
    """Every pipeline run recorded in `lake` (a Lake or its URL), oldest first: pipeline,
    started, finished, status, duration (Timedelta), error, path (the run directory, as a
    URL or local path `lake.at()` accepts) and versions (`lake.versions()` after the run).
    `pipeline=` keeps one pipeline's runs. Records that cannot be read are skipped."""
    lake = _lake(lake, storage_options)
    st = lake.storage
    rows = []
    for rel in st.find(RUNS_DIR, "/" + RECORD):
        try:
            rec = json.loads(st.read_bytes(rel))
        except (ValueError, OSError):
            continue
        if not isinstance(rec, dict) or (pipeline and rec.get("pipeline") != pipeline):
            continue
        run_rel = rel.rsplit("/", 1)[0]
        err = rec.get("error")
        rows.append({
            "pipeline": rec.get("pipeline"),
            "started": pd.Timestamp(rec.get("started")) if rec.get("started") else pd.NaT,
            "finished": pd.Timestamp(rec.get("finished")) if rec.get("finished") else pd.NaT,
            "status": rec.get("status"),
            "duration": pd.Timedelta(seconds=float(rec.get("duration_s") or 0)),
            "error": f"{err.get('ename')}: {err.get('evalue')}" if isinstance(err, dict) else err,
            "path": run_url(lake, run_rel),
            "versions": rec.get("versions") or {},
        })
    df = pd.DataFrame(rows, columns=COLUMNS)
    for c in ("started", "finished"):
        df[c] = pd.to_datetime(df[c], utc=True)
    return df.sort_values(["started", "path"], kind="stable").reset_index(drop=True)


def run_url(lake, rel: str) -> str:
    """The full location of `rel` inside the lake: a local path, or proto://bucket/...."""
    st = _lake(lake).storage
    p = st.path(rel)
    return p if st.is_local else f"{st.protocol}://{p}"


def resolve(lake, run) -> dict:
    """A run given as a record dict, a row of `runs()` (Series), or a path/URL to a run
    directory or its record.json -> the record dict (with at least "versions")."""
    if isinstance(run, pd.Series):
        run = run.to_dict()
    if isinstance(run, dict):
        return run
    if not isinstance(run, str):
        raise ValueError(f"a run is a record dict, a row of cl.runs(lake) or a path; got {type(run).__name__}")
    st = _lake(lake).storage
    path = run.rstrip("/")
    if not path.endswith(".json"):
        path = f"{path}/{RECORD}"
    import os
    if "://" in path:
        fs = st.fs
        return json.loads(fs.cat_file(path))
    if os.path.exists(path):
        with open(path) as f:
            return json.load(f)
    if st.exists(path):
        return json.loads(st.read_bytes(path))
    raise ValueError(f"no run record at {run!r} (give a record.json path, a run directory "
                     f"under {RUNS_DIR}/, a record dict or a row of cl.runs(lake))")
