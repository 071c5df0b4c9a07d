"""Find, load and validate run directories; the RunSet that tables are built from.

A run is identified in tables by (model, method, suite), where method = (pruner, retention,
variant). `variant` is `pruner.variant` from the run's config (set it with `+pruner.variant=...`
for ablations); when two runs would still share a cell, their run names become the variants
so both are shown; runs of one cell that differ only by `suite.protocol` are tagged with it.
A run's protocol (`suite.protocol`, e.g. LIBERO's `openvla-oft` or SpecPrune-VLA's own loop
`specprune`) comes from its manifest; its baseline is the pruner=none run of the same protocol.
Bad records raise RecordsError, bad arguments ConfigError (one line each).
"""

from __future__ import annotations

import glob
import math
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
import yaml

from vlabench.core import registry, yamlio
from vlabench.core.errors import ConfigError
from vlabench.core.schema import CALL_COLUMNS, EPISODE_COLUMNS, SUMMARY_COLUMNS
from vlabench.core.timing import timing_tag
from vlabench.records.files import (
    RecordsError,
    check_call_counts,
    decode_text,
    parse_rows,
    read_rows,
)
from vlabench.records.verify import check_final_newlines, load_config, load_manifest, verify_records
from vlabench.report.csvframe import empty_column, read_frame

_INT_EPISODE = ("task_id", "episode", "success")
DEFAULT_PROTOCOLS = (None, "", "openvla-oft")  # unmarked in tables (SIMPLER suites have none)
_NUM_CALLS = ("task_id", "episode", "warmup", "lat_total_ms", "flops", "tokens_in", "tokens_kept")
_TEXT_CALLS = ("source", "mem_kind", "tokens_by_layer", "mode")   # the other columns are numbers
# calls.csv columns no table reads: not kept in memory (a table grid holds millions of calls)
UNUSED_CALL_COLUMNS = ("call", "step", "lat_vision_ms", "lat_llm_ms", "lat_action_head_ms",
                       "lat_pruner_ms", "lat_preprocess_ms", "tokens_by_layer", "mode", "queue_wait_ms",
                       "sim_latency_ms", "delay_steps", "expired_actions")


class Method(NamedTuple):
    pruner: str
    retention: float | None
    variant: str


@dataclass
class Run:
    """One loaded run directory."""

    path: Path
    name: str
    model: str
    pruner: str
    suite: str
    protocol_version: Any
    status: str
    retention: float | None
    variant: str
    alpha: float | None
    deviations: list[str]
    device: str | None
    episodes: pd.DataFrame
    calls: pd.DataFrame
    config: dict[str, Any] = field(default_factory=dict)
    cache: dict[Any, Any] = field(default_factory=dict, repr=False)
    protocol: str | None = None
    timing: str = ""   # "sync@400ms" for a latency-aware run (suite.timing), "" for frozen

    @property
    def method(self) -> Method:
        return Method(self.pruner, self.retention, self.variant)

    @property
    def default_protocol(self) -> bool:
        return self.protocol in DEFAULT_PROTOCOLS


def canonical_pruner(name: str, plugin: str | None) -> str:
    """One method name per plugin: `vla-pruner-25` (a config of VLA-Pruner at 25%) is
    `vla-pruner`; the retention tells the settings apart."""
    if not plugin:
        return name
    try:
        same = [n for n, e in registry.entries("pruner").items() if e.plugin == plugin]
    except Exception:  # an unreadable config tree must not stop a report
        return name
    return min(same, key=lambda n: (len(n), n)) if same else name


def model_family(model: str) -> str:
    """The published model a run's model stands for ("openvla-oft-tiny" -> "openvla-oft")."""
    return model.removesuffix("-tiny")


def _setting(cfg: dict[str, Any], key: str, suite: str) -> Any:
    """pruner.<key>, which may be a scalar or a mapping suite -> value."""
    v = (cfg.get("pruner") or {}).get(key)
    if isinstance(v, dict):
        v = v.get(suite, v.get(suite.removeprefix("libero_")))
    return v


def _float_or_none(v: Any, what: str, path: Path) -> float | None:
    if v is None or v == "":
        return None
    try:
        f = float(v)
    except (TypeError, ValueError):
        raise RecordsError(f"{path}: {what}={v!r} is not a number") from None
    return None if math.isnan(f) else f


def _numeric(df: pd.DataFrame, cols: tuple[str, ...], path: Path) -> pd.DataFrame:
    """Convert columns to numbers; a non-numeric cell is a hand-edited or corrupt file."""
    out = df.copy()
    for c in cols:
        conv = pd.to_numeric(out[c].mask(out[c] == ""), errors="coerce")
        bad = conv.isna() & (out[c] != "")
        if bad.any():
            i = int(bad.to_numpy().nonzero()[0][0])
            raise RecordsError(f"{path}:{i + 2}: column {c} has non-numeric value {out[c].iloc[i]!r}")
        out[c] = conv
    return out


def _rows(path: Path, data: bytes | None, columns: list[str]) -> list[dict[str, str]]:
    """Rows of a records file already read (None: the file does not exist)."""
    return [] if data is None else parse_rows(path, decode_text(path, data), columns)


def _load_episodes(path: Path, data: bytes | None) -> pd.DataFrame:
    text = tuple(c for c in EPISODE_COLUMNS if c not in _INT_EPISODE)
    df = None if data is None else read_frame(path, data, EPISODE_COLUMNS, text, text_dtype=object)
    if df is None:
        df = pd.DataFrame(_rows(path, data, EPISODE_COLUMNS), columns=EPISODE_COLUMNS, dtype=object)
        df = _numeric(df, _INT_EPISODE, path)
    if df[list(_INT_EPISODE)].isna().any().any():
        raise RecordsError(f"{path}: empty task_id/episode/success cells")
    if not df["success"].isin([0, 1]).all():
        raise RecordsError(f"{path}: success must be 0 or 1")
    if df.duplicated(["task_id", "episode"]).any():
        raise RecordsError(f"{path}: duplicate (task_id, episode) rows; was it edited by hand?")
    for c in _INT_EPISODE:
        df[c] = df[c].astype(int)
    df["task_name"] = df["task_name"].astype(str)
    return df


def _load_calls(path: Path, data: bytes | None) -> pd.DataFrame:
    """calls.csv: one C pass (csvframe) where its strict checks vouch for the file, else the
    exact parser; the columns in UNUSED_CALL_COLUMNS left out either way."""
    df = None if data is None else read_frame(path, data, CALL_COLUMNS, _TEXT_CALLS,
                                              UNUSED_CALL_COLUMNS, "category")
    if df is None:
        rows = _rows(path, data, CALL_COLUMNS)
        df = _numeric(pd.DataFrame(rows, columns=CALL_COLUMNS, dtype=object), _NUM_CALLS, path)
        df = df.drop(columns=list(UNUSED_CALL_COLUMNS))
        df["source"] = df["source"].astype(str)
    if df["task_id"].isna().any() or df["episode"].isna().any():
        raise RecordsError(f"{path}: empty task_id/episode cells")
    for c in ("task_id", "episode"):
        df[c] = df[c].astype("int32")   # compact: millions of rows
    df["warmup"] = df["warmup"].fillna(0).astype("int8")   # 0/1 (an empty cell: 0)
    for c in df.columns.difference(_NUM_CALLS):   # an optional number no call recorded (all cells
        if df[c].dtype.kind == "f" and df[c].isna().all():   # empty): "" as an older layout's
            df[c] = empty_column(len(df))
    return df


def _check_call_counts(run_dir: Path, eps: pd.DataFrame, calls: pd.DataFrame) -> None:
    """`check_call_counts` on frames: counted in one pass; the exact check (and its message)
    only where some episode's policy_calls differs from its calls.csv rows."""
    want = eps["policy_calls"].astype(str).str.strip()
    recorded = want != ""
    if not recorded.any():
        return
    have, counts = np.unique(episode_keys(calls), return_counts=True)   # calls per episode
    keys = episode_keys(eps.loc[recorded])
    at = np.searchsorted(have, keys).clip(max=max(have.size - 1, 0))
    got = np.where(have[at] == keys, counts[at], 0) if have.size else np.zeros(keys.size, dtype=int)
    if want[recorded].str.isdigit().all() and (want[recorded].astype(int).to_numpy() == got).all():
        return
    check_call_counts(run_dir / "episodes.csv",
                      eps[["task_id", "episode", "policy_calls"]].to_dict("records"),
                      run_dir / "calls.csv", calls[["task_id", "episode"]].to_dict("records"))


def _check_summary(run_dir: Path, eps: pd.DataFrame) -> None:
    """A complete run's summary.csv must agree with its episodes (summaries are never typed)."""
    rows = read_rows(run_dir / "summary.csv", SUMMARY_COLUMNS)
    for r in rows:
        if r["level"] == "suite":
            try:
                n, k = int(r["episodes"]), int(r["successes"])
            except ValueError:
                raise RecordsError(f"{run_dir / 'summary.csv'}: non-integer episodes/successes") from None
            if (n, k) != (len(eps), int(eps["success"].sum())):
                raise RecordsError(
                    f"{run_dir / 'summary.csv'} says {k}/{n} successes but episodes.csv has "
                    f"{int(eps['success'].sum())}/{len(eps)}; was a file edited by hand?")


def load_run(run_dir: Path) -> Run:
    """Load and validate one run directory."""
    run_dir = Path(run_dir)
    man = load_manifest(run_dir)
    cfg = load_config(run_dir, man)
    data = verify_records(run_dir, man)
    eps = _load_episodes(run_dir / "episodes.csv", data["episodes.csv"])
    calls = _load_calls(run_dir / "calls.csv", data["calls.csv"])
    check_final_newlines(run_dir, data)
    _check_call_counts(run_dir, eps, calls)
    for key in ("model", "pruner", "suite"):
        other = set(eps[key].astype(str)) - {man[key]}
        if other:
            raise RecordsError(f"{run_dir / 'episodes.csv'}: {key} {sorted(other)} differs from "
                               f"the manifest's {man[key]!r}")
    committed = np.isin(episode_keys(calls), episode_keys(eps))   # calls of committed episodes only
    calls = calls if committed.all() else calls[committed]
    if man.get("status") == "complete" and (run_dir / "summary.csv").exists():
        _check_summary(run_dir, eps)
    suite = str(man["suite"])
    retention = _float_or_none(_setting(cfg, "retention", suite), "pruner.retention", run_dir)
    if man["pruner"] == "none":
        retention = None
    variant = _setting(cfg, "variant", suite)
    return Run(
        path=run_dir, name=str(man.get("run_name") or run_dir.name), model=str(man["model"]),
        pruner=canonical_pruner(str(man["pruner"]), (cfg.get("pruner") or {}).get("plugin")), suite=suite, protocol_version=man.get("protocol_version"),
        status=str(man.get("status", "unknown")), retention=retention,
        variant="" if variant is None else str(variant),
        alpha=_float_or_none(_setting(cfg, "alpha", suite), "pruner.alpha", run_dir),
        deviations=[str(d) for d in man.get("deviations") or []], device=man.get("device"),
        episodes=eps, calls=calls.reset_index(drop=True), config=cfg,
        protocol=_protocol(man, cfg), timing=timing_tag(cfg),
    )


def _protocol(man: dict[str, Any], cfg: dict[str, Any]) -> Any:
    """suite.protocol, with a latency-aware run's mode after it: its baseline is the
    pruner=none run of the same mode and latency (sync and frozen runs never pair)."""
    protocol = man.get("protocol", (cfg.get("suite") or {}).get("protocol"))
    tag = timing_tag(cfg)
    return f"{protocol or 'default'}+{tag}" if tag else protocol


def find_run_dirs(patterns: list[str] | None, default: str = "results") -> list[Path]:
    """Run directories named by paths or globs; a directory that is not a run is searched (for
    runs, not shards: see `is_shard_dir`)."""
    found: list[Path] = []
    skipped: list[Path] = []
    for pat in patterns or [default]:
        paths = sorted(Path(p) for p in glob.glob(pat)) if glob.has_magic(pat) else [Path(pat)]
        if not paths or not all(p.exists() for p in paths):
            raise ConfigError(f"no runs found: {pat} does not exist")
        for p in paths:
            if (p / "episodes.csv").exists():
                found.append(p)   # named: loaded even when it is a shard
            elif p.is_dir():
                inside = sorted(f.parent for f in p.rglob("episodes.csv") if "reference" not in f.parts)
                shards = [d for d in inside if is_shard_dir(d)]
                skipped += shards
                found += [d for d in inside if d not in shards]
    unique = list(dict.fromkeys(p.resolve() for p in found))
    if not unique:
        hint = (f"; {len(skipped)} shard directories were skipped: join them with `vlabench merge`"
                if skipped else "")
        raise ConfigError(f"no runs found in {', '.join(patterns or [default])} "
                          f"(a run directory holds episodes.csv and manifest.json){hint}")
    return unique


def is_shard_dir(run_dir: Path) -> bool:
    """The run directory holds one shard of a run (config.yaml's run.shard is set): a folder
    search skips it, since `vlabench merge` (or run.launcher=ray) joins it into the run."""
    from vlabench.records.shards import config_shard

    try:
        cfg = yamlio.safe_load((run_dir / "config.yaml").read_bytes().decode("utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return False   # unreadable: load_run says what is wrong
    return isinstance(cfg, dict) and config_shard(cfg) is not None


class RunSet:
    """The runs of one report, checked for protocol compatibility, indexed for tables."""

    def __init__(self, runs: list[Run]):
        self.notes: list[str] = []
        self.ci_unit = "episode"   # what the report's bootstrap intervals resample (stats.CI_UNITS)
        self.runs = [r for r in runs if len(r.episodes)]
        for r in runs:
            if not len(r.episodes):
                self.notes.append(f"{r.name}: no finished episodes yet; left out")
        _check_protocols(self.runs)
        _disambiguate(self.runs)

    @classmethod
    def load(cls, patterns: list[str] | None) -> RunSet:
        return cls([load_run(p) for p in find_run_dirs(patterns)])

    def models(self, suites: list[str] | None = None) -> list[str]:
        return sorted({r.model for r in self.runs if suites is None or r.suite in suites})

    def get(self, model: str, method: Method, suite: str) -> Run | None:
        for r in self.runs:
            if r.model == model and r.method == method and r.suite == suite:
                return r
        return None

    def baseline(self, model: str, suite: str, protocol: Any = "*") -> tuple[Run | None, str]:
        """The pruner=none run of model+suite (of `protocol` where one is; "*": any), or None
        and the footnote saying why."""
        cands = [r for r in self.runs if r.model == model and r.suite == suite and r.pruner == "none"]
        if protocol != "*" and any(r.protocol == protocol for r in cands):
            cands = [r for r in cands if r.protocol == protocol]
        if len(cands) == 1:
            return cands[0], ""
        if not cands:
            return None, f"n/a: no pruner=none run of {model} on {suite} among the inputs"
        names = ", ".join(sorted(r.name for r in cands))
        return None, f"n/a: several pruner=none runs of {model} on {suite} ({names}); pass one"

    def methods(self, model: str, suites: list[str]) -> list[Method]:
        return sorted({r.method for r in self.runs if r.model == model and r.suite in suites},
                      key=lambda m: (m.pruner, m.retention or 0.0, m.variant))


def numbers(column: pd.Series) -> np.ndarray:
    """A records column as floats (NaN where empty or not a number), as pd.to_numeric(errors=
    "coerce") gives them; a category column (text, or numbers no call recorded) converts each
    category once."""
    if isinstance(column.dtype, pd.CategoricalDtype):
        cats = pd.to_numeric(pd.Series(column.cat.categories.astype(object)), errors="coerce")
        return np.append(cats.to_numpy(float), np.nan)[column.cat.codes.to_numpy()]   # code -1: NaN
    return pd.to_numeric(column, errors="coerce").to_numpy(float)


def episode_keys(calls: pd.DataFrame) -> np.ndarray:
    """One int64 per row of `calls` naming its (task_id, episode): the bootstrap's clusters."""
    return (calls["task_id"].to_numpy(np.int64) << 32) + calls["episode"].to_numpy(np.int64)


def _check_protocols(runs: list[Run]) -> None:
    by_suite: dict[str, dict[Any, list[str]]] = defaultdict(lambda: defaultdict(list))
    for r in runs:
        by_suite[r.suite][r.protocol_version].append(r.name)
    for suite, versions in sorted(by_suite.items()):
        if len(versions) > 1:
            parts = "; ".join(f"v{v}: {', '.join(sorted(n))}" for v, n in versions.items())
            raise ConfigError(f"runs of {suite} mix protocol versions ({parts}); "
                              "report them separately")


def _disambiguate(runs: list[Run]) -> None:
    cells: dict[tuple, list[Run]] = defaultdict(list)
    for r in runs:
        cells[(r.model, r.method, r.suite)].append(r)
    for group in cells.values():
        if len(group) > 1 and len({r.protocol for r in group}) == len(group):
            for r in group:  # one run per protocol: the protocol tells them apart
                if not r.default_protocol:
                    r.variant = f"{r.variant}@{r.protocol}" if r.variant else str(r.protocol)
            continue
        if len(group) > 1 and group[0].pruner != "none":
            alphas = [r.alpha for r in group]
            by_alpha = len(set(alphas)) == len(alphas)  # distinct pruner.alpha tells them apart
            for r in group:
                if by_alpha and r.alpha is None:
                    continue
                tag = f"alpha={r.alpha:g}" if by_alpha else r.name
                r.variant = f"{r.variant}@{tag}" if r.variant else tag
