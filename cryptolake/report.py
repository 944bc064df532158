"""`IngestReport`: what one `lake.ingest(...)` did, for people (repr, HTML) and programs."""
from __future__ import annotations

import html
from dataclasses import dataclass, field

import pandas as pd

FILE_COLUMNS = ["key", "symbol", "period", "cadence", "status", "bytes", "sha256", "reason"]
STATUSES = ("downloaded", "unchanged", "failed", "quarantined")


@dataclass
class IngestReport:
    """files: one row per source file — archive zips and REST day pages (cadence `rest`) —
    with status in downloaded/unchanged/failed/quarantined; rows: rows written per table this
    run; gaps: missing-bar runs in the ingested range, with causes; conflicts: rows archive and
    REST disagree on (table, symbol, key, column, archive_value, rest_value); rejected: REST
    rows left out with their reason; errors: what went wrong; notes: what the user should know."""
    table: str
    files: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=FILE_COLUMNS))
    rows: dict[str, int] = field(default_factory=dict)
    gaps: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(
        columns=["symbol", "start", "end", "missing", "cause"]))
    conflicts: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(
        columns=["table", "symbol", "key", "column", "archive_value", "rest_value"]))
    rejected: list[dict] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        """True when no file failed or was quarantined in this run."""
        bad = self.files["status"].isin(["failed", "quarantined"]).any() if len(self.files) else False
        return not bad and not self.errors

    def counts(self) -> dict[str, int]:
        vc = self.files["status"].value_counts() if len(self.files) else {}
        return {s: int(vc.get(s, 0)) for s in STATUSES}

    def __repr__(self) -> str:
        c = self.counts()
        parts = ", ".join(f"{v} {k}" for k, v in c.items() if v) or "no files"
        rows = sum(self.rows.values())
        return (f"<IngestReport {self.table}: {'ok' if self.ok else 'NOT OK'}; {parts}; "
                f"{rows:,} rows written; {len(self.gaps)} gaps; {len(self.conflicts)} conflicts; "
                f"{len(self.errors)} errors; "
                f"{self.seconds:.1f}s>")

    def _repr_html_(self) -> str:
        c = self.counts()
        color = "#2a7" if self.ok else "#c33"
        head = (f"<b>IngestReport</b> <code>{html.escape(self.table)}</code> — "
                f"<span style='color:{color}'>{'ok' if self.ok else 'not ok'}</span>, "
                f"{self.seconds:.1f}s<br>files: " +
                ", ".join(f"{v} {k}" for k, v in c.items()) +
                f"<br>rows written: {html.escape(str(self.rows))}; gaps: {len(self.gaps)}")
        errs = "".join(f"<li>{html.escape(e)}</li>" for e in self.errors[:10])
        if len(self.errors) > 10:
            errs += f"<li>… {len(self.errors) - 10} more in report.errors</li>"
        notes = "".join(f"<li>{html.escape(n)}</li>" for n in self.notes)
        bad = self.files[self.files["status"].isin(["failed", "quarantined"])] if len(self.files) else self.files
        table = bad.head(20).to_html(index=False) if len(bad) else ""
        return (head + (f"<br>errors:<ul>{errs}</ul>" if errs else "") +
                (f"notes:<ul>{notes}</ul>" if notes else "") + table +
                f"<br>next: <code>lake.silver['{html.escape(self.table)}'].coverage()</code>")
