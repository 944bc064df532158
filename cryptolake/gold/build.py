"""Building gold tables: validation, per-symbol builds, build records and staleness.

A build record `gold/_builds/<table>.json` holds the kind, the sources and the versions read,
the parameters, and per source table and symbol a fingerprint of every (symbol, month)
partition (a hash of its Delta data files' paths and sizes: a republished or new file
rewrites the partition, so its fingerprint changes; metadata only). It also keeps per symbol
the gold months written, the partial bars dropped, and, for tick/volume/dollar bars, the
unfinished bar's state at the end of every month, so an incremental build continues exactly
where a full pass would be. Every gold commit's `cryptolake_note` (Delta custom metadata)
names the kind, sources@versions and parameters too.

Dependencies (which gold months a changed source month makes stale): bars, funding bars and
time trade bars: months M-1, M, M+1 (a bar at a phase offset or a calendar week may straddle
a month end); tick/volume/dollar bars: every month from M on (the carry); features: the
whole symbol (indicators are recursive).
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa
from tqdm.auto import tqdm

from .. import grid, layout, schema
from ..layers import silver as silver_layer
from ..ops import indicators as oind
from ..storage import Storage
from . import kinds

RECORDS = "gold/_builds"
KIND_ORDER = ("bars", "funding_bars", "trade_bars", "features")
KLINE_LIKE = schema.KLINE_TYPES
_PARAMS = {
    "bars": {"rule", "phases", "partial", "start", "end", "symbols", "name"},
    "funding_bars": {"rule", "partial", "start", "end", "symbols", "name"},
    "trade_bars": {"rule", "by", "size", "start", "end", "symbols", "name"},
    "features": {"indicators", "phase", "start", "end", "symbols", "name"},
}


@dataclass
class Spec:
    """A validated build: the gold table, its kind, source tables ("silver.x" / "gold.y") and
    JSON-able parameters."""
    name: str
    kind: str
    market: str
    sources: list[str]
    params: dict = field(default_factory=dict)

    @property
    def time_col(self) -> str:
        return schema.parse_gold_name(self.name).time_col

    @property
    def info_bars(self) -> bool:
        return self.kind == "trade_bars" and self.params.get("by") is not None


# ---------------------------------------------------------------- validation
def _json_value(v):
    if isinstance(v, (pd.Timestamp, dt.date)):
        return str(v)
    if isinstance(v, tuple):
        return [_json_value(x) for x in v]
    if isinstance(v, list):
        return [_json_value(x) for x in v]
    if isinstance(v, dict):
        return {k: _json_value(x) for k, x in v.items()}
    return v


def _silver_source(lake, source, what: str):
    if not isinstance(source, str):
        raise ValueError(f"source must be a silver table name (e.g. 'um_klines_1m'); got {source!r}")
    name = source.split(".", 1)[1] if source.startswith("silver.") else source
    if name not in lake.silver.tables:
        raise ValueError(f"no silver table {name!r} for {what}; silver tables: {lake.silver.tables or 'none'}")
    return name, schema.parse_table_name(name)


def make_spec(lake, kind, source, **params) -> Spec:
    """Check a build request (every error a ValueError naming what is allowed) and return its Spec."""
    if kind not in KIND_ORDER:
        raise ValueError(f"unknown gold kind {kind!r}; allowed: {', '.join(KIND_ORDER)}")
    unknown = set(params) - _PARAMS[kind]
    if unknown:
        raise ValueError(f"unknown parameter(s) {sorted(unknown)} for kind {kind!r}; allowed: {sorted(_PARAMS[kind])}")
    p = {k: v for k, v in params.items() if v is not None and k != "name"}
    if "symbols" in p:
        p["symbols"] = [p["symbols"]] if isinstance(p["symbols"], str) else sorted(p["symbols"])
    for k in ("start", "end"):
        if k in p:
            p[k] = str(pd.Timestamp(p[k]))
    if kind in ("bars", "funding_bars"):
        src, (market, dtype, interval) = _silver_source(lake, source, kind)
        if dtype not in KLINE_LIKE or interval is None or grid.is_calendar(interval):
            raise ValueError(f"{kind} need a kline silver table with a fixed interval (e.g. um_klines_1m); "
                             f"{src} holds {dtype}")
        if "rule" not in p:
            raise ValueError(f"{kind} need rule=, e.g. rule='1h' (fixed) or 'W'/'ME' (calendar)")
        token, rule_us = kinds.rule_spec(p["rule"])
        step = grid.step_us(interval)
        if rule_us is not None and (rule_us % step or rule_us < step):
            raise ValueError(f"rule {p['rule']!r} is not a multiple of the source interval {interval}")
        sources = [f"silver.{src}"]
        if kind == "funding_bars":
            if market == "spot":
                raise ValueError("funding bars join perpetual futures funding; spot has none. "
                                 "Use a um or cm klines table (e.g. um_klines_1m)")
            if rule_us is None:
                raise ValueError(f"funding bars need a fixed rule like '1h', '4h', '8h'; got {p['rule']!r}")
            fund = schema.table_name(market, "fundingRate")
            if fund not in lake.silver.tables:
                raise ValueError(f"funding bars need silver.{fund}; ingest it with "
                                 f"lake.ingest({market!r}, 'fundingRate', ...)")
            sources.append(f"silver.{fund}")
        else:
            p["phases"] = kinds.phase_list(p.get("phases"), rule_us, step)
        p["partial"] = bool(p.get("partial", False))
        p["step_us"] = step
        name = f"{market}_{kind}_{token}"
    elif kind == "trade_bars":
        src, (market, dtype, interval) = _silver_source(lake, source, kind)
        if dtype not in ("aggTrades", "trades"):
            raise ValueError(f"trade bars need an aggTrades or trades silver table (e.g. um_agg_trades); "
                             f"{src} holds {dtype}")
        if ("rule" in p) == ("by" in p):
            raise ValueError("trade bars need rule= (time bars, e.g. '1min') or by= and size= "
                             "(by one of tick, volume, dollar)")
        if "rule" in p:
            token, rule_us = kinds.rule_spec(p["rule"])
            if rule_us is None:
                raise ValueError(f"trade time bars need a fixed rule like '1min' or '1h'; got {p['rule']!r}")
        else:
            from ..ops.info_bars import _check
            _check(p["by"], p.get("size"))
            p["size"] = float(p["size"])
            token = f"{p['by']}_{schema.size_token(p['size'])}"
        sources = [f"silver.{src}"]
        name = f"{market}_trade_bars_{token}"
    else:   # features
        src = source.split(".", 1)[1] if isinstance(source, str) and source.startswith("gold.") else source
        try:
            g = schema.parse_gold_name(src)
        except ValueError:
            g = None
        if g is None or g.kind != "bars" or src not in lake.gold.tables:
            raise ValueError(f"features are computed on a gold bars table; got {source!r}; gold bars tables: "
                             f"{[t for t in lake.gold.tables if t.startswith(('spot_bars_', 'um_bars_', 'cm_bars_'))]}")
        market, token = g.market, g.token
        specs = p.get("indicators")
        if not specs:
            raise ValueError(f"features need indicators=[...]; available: {sorted(oind.INDICATORS)}")
        specs = [specs] if isinstance(specs, (str, tuple)) else list(specs)
        for s in specs:
            oind._parse(s)
        p["indicators"] = [s if isinstance(s, str) else [s[0], dict(s[1])] for s in specs]
        p["phase"] = kinds.phase_label(p.get("phase", "0min"))
        sources = [f"gold.{src}"]
        name = f"{market}_features_{token}"
    if params.get("name"):
        g = schema.parse_gold_name(params["name"])
        if g.kind != kind:
            raise ValueError(f"name {params['name']!r} is a {g.kind} name; a {kind} table needs "
                             f"<market>_{kind}_<rule>")
        name = params["name"]
    return Spec(name, kind, market, sources, _json_value(p))


# ---------------------------------------------------------------- fingerprints and records
def fingerprints(storage: Storage, qualified: str, version: int | None = None) -> dict:
    """{symbol: {month: hash of the partition's data files (path, size)}} from the Delta log."""
    layer, name = qualified.split(".", 1)
    d = storage.open_table(layout.table_dir(layer, name), version)
    a = pa.table(d.get_add_actions(flatten=True)).to_pandas()
    out: dict = {}
    if a.empty:
        return out
    a = a[a["num_records"].fillna(1) > 0]
    for (sym, month), g in a.groupby(["partition.symbol", "partition.month"]):
        h = hashlib.sha1("\n".join(sorted(f"{p}:{s}" for p, s in zip(g["path"], g["size_bytes"]))).encode())
        out.setdefault(sym, {})[month] = h.hexdigest()[:16]
    return out


def read_record(storage: Storage, name: str) -> dict | None:
    rel = f"{RECORDS}/{name}.json"
    return json.loads(storage.read_bytes(rel)) if storage.exists(rel) else None


def records(storage: Storage) -> dict[str, dict]:
    out = {}
    for rel in storage.find(RECORDS, ".json"):
        rec = json.loads(storage.read_bytes(rel))
        out[rec["name"]] = rec
    return out


def _shift(month: str, k: int) -> str:
    return str(pd.Period(month, "M") + k)


def _shifts(spec: Spec) -> tuple[int, ...]:
    """Which gold months a changed source month M touches, as offsets from M: a bar is
    stored in the month of its label, fixed-rule bars that can straddle a month end (a phase
    offset, a rule that does not divide a day) also in M-1, calendar weeks (labelled by
    their Sunday) also in M+1."""
    rule = spec.params.get("rule")
    if rule is None:
        return (0,)
    token, rule_us = kinds.rule_spec(rule)
    if rule_us is None:
        return (0, 1) if token == "w" else (0,)
    phases = spec.params.get("phases", ["0min"])
    straddle = (kinds._DAY_US % rule_us != 0) or any(p != "0min" for p in phases)
    return (-1, 0) if straddle else (0,)


def stale_months(spec: Spec, rec: dict, now: dict) -> dict[str, list[str] | None]:
    """{symbol: months to rebuild} (None: the whole symbol) comparing `now` fingerprints
    ({source: {symbol: {month: fp}}}) with the record's."""
    wanted = spec.params.get("symbols")
    out: dict = {}
    syms = set()
    for src in spec.sources:
        syms |= set(now.get(src, {})) | set(rec["fingerprints"].get(src, {}))
    for sym in sorted(syms):
        if wanted is not None and sym not in wanted:
            continue
        changed, new_months = set(), set()
        for src in spec.sources:
            old, cur = rec["fingerprints"].get(src, {}).get(sym, {}), now.get(src, {}).get(sym, {})
            changed |= {m for m in set(old) | set(cur) if old.get(m) != cur.get(m)}
            new_months |= set(cur)
        if not changed:
            continue
        gold_months = set(rec.get("symbols", {}).get(sym, {}).get("months", []))
        relevant = new_months | gold_months
        if spec.kind == "features" or sym not in rec.get("symbols", {}):
            out[sym] = None
        elif spec.info_bars:
            lo = min(changed)
            out[sym] = sorted(m for m in relevant if m >= lo)
        else:
            out[sym] = sorted({_shift(m, k) for m in changed for k in _shifts(spec)} & relevant)
    return out


def stale(storage: Storage, pins=None) -> pd.DataFrame:
    """The stale (table, symbol, month) of every gold table with a build record."""
    rows = []
    for name, rec in sorted(records(storage).items()):
        spec = Spec(rec["name"], rec["kind"], rec["market"], rec["sources"], rec["params"])
        now = {s: fingerprints(storage, s) for s in spec.sources if _exists(storage, s)}
        for sym, months in stale_months(spec, rec, now).items():
            if months is None:
                months = sorted(set().union(*(now.get(s, {}).get(sym, {}).keys() for s in spec.sources)))
            rows += [(name, sym, m) for m in months]
    return pd.DataFrame(rows, columns=["table", "symbol", "month"])


def _exists(storage: Storage, qualified: str) -> bool:
    layer, name = qualified.split(".", 1)
    return storage.is_delta(layout.table_dir(layer, name))


# ---------------------------------------------------------------- one symbol
_LIST_TYPES = {"funding_rates": pa.list_(pa.float64()), "funding_mark_prices": pa.list_(pa.float64()),
               "funding_times": pa.list_(schema.TS)}


def arrow_schema(df: pd.DataFrame) -> pa.Schema:
    """A deterministic Arrow schema from a frame's dtypes (the same for an empty frame)."""
    fields = []
    for c, t in df.dtypes.items():
        if c in _LIST_TYPES:
            f = _LIST_TYPES[c]
        elif isinstance(t, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_dtype(t):
            f = schema.TS
        elif pd.api.types.is_bool_dtype(t):
            f = pa.bool_()
        elif pd.api.types.is_integer_dtype(t):
            f = pa.int64()
        elif pd.api.types.is_float_dtype(t):
            f = pa.float64()
        else:
            f = pa.string()
        fields.append(pa.field(c, f))
    return pa.schema(fields)


def _to_arrow(df: pd.DataFrame, sch: pa.Schema) -> pa.Table:
    cols = []
    for f in sch:
        s = df[f.name]
        if f.name in _LIST_TYPES:
            vals = [None if v is None else [pd.Timestamp(x).to_pydatetime() for x in v]
                    if f.name == "funding_times" else v for v in s]
            cols.append(pa.array(vals, f.type))
        elif isinstance(s.dtype, pd.CategoricalDtype):
            cats = pa.array(s.cat.categories.astype(str), f.type)
            cols.append(cats.take(pa.array(s.cat.codes.to_numpy(), pa.int32())) if len(s) else pa.array([], f.type))
        elif pa.types.is_timestamp(f.type):
            cols.append(pa.array(pd.to_datetime(s, utc=True).dt.as_unit("us"), f.type))
        else:
            cols.append(pa.array(s, f.type, from_pandas=True))
    return pa.table(cols, schema=sch)


def _read(storage: Storage, qualified: str, version: int, symbol: str, start, end, where=None) -> pd.DataFrame:
    from ..query import Table
    layer, name = qualified.split(".", 1)
    t = Table(storage, layer, name, pin=version)
    df = t.read_arrow([symbol], start, end, where=where).to_pandas()
    return df.drop(columns=["symbol"]).set_index(t.time_col)


def _window(months, params) -> tuple:
    lo = params.get("start")
    hi = params.get("end")
    if months:
        a = pd.Period(_shift(min(months), -1), "M").start_time.tz_localize("UTC")
        b = pd.Period(_shift(max(months), 1), "M").end_time.tz_localize("UTC")
        lo = a if lo is None else max(pd.Timestamp(lo), a)
        hi = b if hi is None else min(pd.Timestamp(hi), b)
    return lo, hi


def _carry_from(rec_carry: dict, m0: str | None, by: str, size: float):
    from ..ops.info_bars import Carry
    c = Carry(by, size)
    if m0 is None or not rec_carry:
        return c, None
    prior = [m for m in rec_carry if m < m0]
    if not prior:
        return c, None
    m = max(prior)
    f, i = rec_carry[m]
    c.state[None] = (np.array(f, float), np.array(i, np.int64))
    return c, m


def build_symbol(url: str, options: dict, spec_d: dict, versions: dict, symbol: str,
                 months: list[str] | None, carry_in: dict | None = None) -> dict:
    """Compute and commit one symbol's gold partitions (`months`: those to rebuild; None: the
    whole symbol). Runs in this process or on a Dask worker (arguments are plain data)."""
    storage = Storage(url, options)
    spec = Spec(**spec_d)
    p, kind, tcol = spec.params, spec.kind, spec.time_col
    dropped, carry_out = 0, {}
    if spec.info_bars:
        from ..ops.info_bars import bars as info_bars
        carry, base = _carry_from(carry_in or {}, min(months) if months else None, p["by"], p["size"])
        start = p.get("start")
        if base is not None:
            b = pd.Period(_shift(base, 1), "M").start_time.tz_localize("UTC")
            start = b if start is None else max(pd.Timestamp(start), b)
        src = _read(storage, spec.sources[0], versions[spec.sources[0]], symbol, start, p.get("end"))
        frames = []
        mon = src.index.tz_localize(None).to_period("M").astype(str) if len(src) else pd.Index([])
        for m in sorted(set(mon)):
            chunk = src[mon == m]
            frames.append(info_bars(chunk, by=p["by"], size=p["size"], carry=carry))
            f, i = carry.get(None)
            carry_out[m] = [f.tolist(), i.tolist()]
        out = pd.concat(frames) if frames else info_bars(src.iloc[:0], by=p["by"], size=p["size"])
        out.index = out.index.as_unit("us")
    else:
        lo, hi = _window(months, p)
        src = _read(storage, spec.sources[0], versions[spec.sources[0]], symbol, lo, hi,
                    where=(__import__("pyarrow.dataset").dataset.field("phase") == p["phase"])
                    if kind == "features" else None)
        if kind == "bars":
            out, dropped = kinds.bars(src, p["rule"], p["phases"], p["step_us"], p["partial"], tcol)
        elif kind == "funding_bars":
            out, dropped = kinds.bars(src, p["rule"], ["0min"], p["step_us"], p["partial"], tcol)
            out = out.drop(columns="phase")
            fund = _read(storage, spec.sources[1], versions[spec.sources[1]], symbol, lo,
                         None if hi is None else pd.Timestamp(hi) + pd.Timedelta(p["rule"]))
            out = kinds.join_funding(out, fund, kinds.rule_spec(p["rule"])[1])
        elif kind == "trade_bars":
            from ..ops.bars import trades_to_bars
            out = trades_to_bars(src, p["rule"]) if len(src) else _empty_trade_bars(src)
            out.index = out.index.as_unit("us").rename(tcol)
        else:
            out = kinds.features(src.drop(columns=["phase"], errors="ignore"), p["indicators"])
            out["phase"] = p["phase"]
    out = out.reset_index()
    # month of every row without per-row objects: datetime64[M] codes, strings for the unique ones
    mcode = out[tcol].dt.tz_convert("UTC").dt.tz_localize(None).to_numpy("datetime64[us]").astype("datetime64[M]")
    uniq = np.unique(mcode)
    from ..query import Table
    rel = layout.table_dir("gold", spec.name)
    have = set()
    if storage.is_delta(rel):
        have = {m for s, m in Table(storage, "gold", spec.name)._partitions() if s == symbol}
    produced = {str(u) for u in uniq}
    if months is None:
        targets = produced | have
    else:
        lo_m = min(months)
        targets = set(months) | ({m for m in produced | have if m >= lo_m} if spec.info_bars else set())
    sch = arrow_schema(out)
    if storage.is_delta(rel):
        old = storage.open_table(rel).to_pyarrow_dataset().schema
        sch = pa.schema([old.field(n) for n in old.names if n not in ("symbol", "month")])
    parts = {(symbol, m): _to_arrow(out[mcode == np.datetime64(m, "M")] if len(out) else out, sch)
             for m in sorted(targets)}
    note = (f"build_gold {kind} {spec.name} from "
            + ", ".join(f"{s}@v{versions[s]}" for s in spec.sources)
            + f" params={json.dumps(p, sort_keys=True, default=str)}")
    rows, _ = silver_layer.write_partitions(storage, "gold", spec.name, sch, tcol, None, parts, note)
    months_now = sorted((have | produced) - {m for m in targets if m not in produced})
    return {"symbol": symbol, "rows": int(rows), "months_built": sorted(targets), "partial_dropped": dropped,
            "months": months_now, "carry": carry_out}


def _empty_trade_bars(src: pd.DataFrame) -> pd.DataFrame:
    from ..ops.bars import BAR_COLUMNS
    cols = {c: np.zeros(0, np.int64 if c == "trades" else float) for c in BAR_COLUMNS}
    return pd.DataFrame(cols, index=pd.DatetimeIndex([], tz="UTC", name="open_time").as_unit("us"))


# ---------------------------------------------------------------- the build
def run(lake, spec: Spec, plan: dict[str, list[str] | None], rec: dict | None, client=None,
        progress: bool = True) -> pd.DataFrame:
    """Build `plan` ({symbol: months or None}) of `spec`, on `client`'s workers if given,
    then write the build record. Returns one row per symbol built."""
    storage = lake.storage
    versions = {}
    for s in spec.sources:
        layer, name = s.split(".", 1)
        versions[s] = lake.silver[name].version if layer == "silver" else lake.gold[name].version
    fps = {s: fingerprints(storage, s, versions[s]) for s in spec.sources}
    rec_syms = (rec or {}).get("symbols", {})
    args = [(storage.url, storage._options, asdict(spec), versions, sym, months,
             rec_syms.get(sym, {}).get("carry")) for sym, months in sorted(plan.items())]
    if client is not None:
        futs = client.map(lambda a: build_symbol(*a), args, pure=False)
        results = client.gather(futs)
    else:
        results = [build_symbol(*a) for a in tqdm(args, desc=f"gold.{spec.name}", unit="symbol",
                                                   disable=not progress)]
    syms = dict(rec_syms)
    for r in results:
        prev = syms.get(r["symbol"], {})
        carry = {k: v for k, v in prev.get("carry", {}).items()
                 if not r["months_built"] or k < min(r["months_built"])}
        carry.update(r["carry"])
        syms[r["symbol"]] = {"months": r["months"], "rows": r["rows"], "partial_dropped": r["partial_dropped"],
                             "carry": carry}
    now = pd.Timestamp.now(tz="UTC").isoformat()
    history = list((rec or {}).get("history", []))[-49:] + [
        {"built_at": now, "versions": versions, "symbols": sorted(plan),
         "partial_dropped": int(sum(r["partial_dropped"] for r in results))}]
    record = {"name": spec.name, "kind": spec.kind, "market": spec.market, "sources": spec.sources,
              "params": spec.params, "versions": versions, "built_at": now, "fingerprints": fps,
              "symbols": syms, "gold_version": lake.gold[spec.name].version if spec.name in lake.gold else None,
              "history": history}
    storage.write_bytes(f"{RECORDS}/{spec.name}.json", json.dumps(record, default=str).encode())
    cols = ["table", "symbol", "months_built", "rows", "partial_dropped"]
    return pd.DataFrame([(spec.name, r["symbol"], len(r["months_built"]), r["rows"], r["partial_dropped"])
                         for r in results], columns=cols)


def build_gold(lake, kind=None, source=None, client=None, progress: bool = True, **params) -> pd.DataFrame:
    """See `Lake.build_gold`."""
    lake._check_writable()
    if kind is None:
        if source is not None or params:
            raise ValueError("lake.build_gold() with no kind rebuilds what is stale and takes no source or "
                             "parameters; to build a table give kind and source")
        recs = records(lake.storage)
        out = []
        for name, rec in sorted(recs.items(), key=lambda kv: (KIND_ORDER.index(kv[1]["kind"]), kv[0])):
            spec = Spec(rec["name"], rec["kind"], rec["market"], rec["sources"], rec["params"])
            now = {s: fingerprints(lake.storage, s) for s in spec.sources if _exists(lake.storage, s)}
            plan = stale_months(spec, rec, now)
            if plan:
                out.append(run(lake, spec, plan, rec, client, progress))
        cols = ["table", "symbol", "months_built", "rows", "partial_dropped"]
        return pd.concat(out, ignore_index=True) if out else pd.DataFrame(columns=cols)
    spec = make_spec(lake, kind, source, **params)
    layer, src = spec.sources[0].split(".", 1)
    syms = (lake.silver if layer == "silver" else lake.gold)[src].symbols
    wanted = spec.params.get("symbols")
    if wanted is not None:
        missing = [s for s in wanted if s not in syms]
        if missing:
            raise ValueError(f"symbols {missing} are not in {spec.sources[0]}; it has {syms[:20]}")
        syms = wanted
    rec = read_record(lake.storage, spec.name)
    if rec is not None and (rec["kind"], rec["sources"], rec["params"]) != (spec.kind, spec.sources, spec.params):
        rec = None                         # a different build of the same name: start afresh
    return run(lake, spec, {s: None for s in syms}, rec, client, progress)
