"""Machine-readable report: a tidy long CSV, and JSON with the same values plus provenance.

CSV shape (one row per table x row x column x metric; `pandas.read_csv` / `readr::read_csv`
read it as is, no comment lines, one number per cell):

    table      table key ("runs", "speedup", "specprune-vla-table1-openvla-oft", ...)
    source     ours | paper (the published number, with --with-reference)
    row        the row's label as printed, without footnote markers
    model, pruner, retention, variant   what the row is (retention empty: none set)
    column     the column header as printed
    suite, task                         what the column is about (task empty: the whole suite)
    metric     a name of cells.metrics (success_rate, speedup, latency_ms, flops_pct, ...)
    value      the number, unrounded (empty: not available); success_rate and its interval
               are fractions in [0, 1], as in summary.csv and runs.csv (the tables print %)
    ci_low, ci_high                     its 95% interval where there is one (success: Wilson;
                                        speedup: bootstrap), else empty
    notes      the report-wide footnote numbers of the row, ";"-separated (texts in the JSON
               and in notes.csv)
    runs       the run names behind the row, ";"-separated

Pivot it with e.g. `df[df.table == "runs"].pivot_table(index=["model", "pruner", "retention",
"suite"], columns="metric", values="value")`. "Δ ours − paper" rows are left out: join the
ours and paper rows on (table, row position, column, metric) to compute them.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
from typing import Any

from vlabench.report.render import CI, Table
from vlabench.report.runs import RunSet

COLUMNS = ["table", "source", "row", "model", "pruner", "retention", "variant", "column", "suite",
           "task", "metric", "value", "ci_low", "ci_high", "notes", "runs"]
SOURCES = ("ours", "paper")
_CI_KEYS = {c for pair in CI.values() for c in pair}
# success rates leave the tables in percent and every machine-readable file as a fraction (the
# unit of summary.csv): these metrics are divided by 100 in the tidy rows and runs.csv
FRACTIONS = ("success_rate", "sr_ci_low", "sr_ci_high")


def as_fraction(metric: str, v: Any) -> Any:
    """`v` in the machine-readable unit of `metric` (FRACTIONS: percent -> fraction)."""
    return v / 100 if metric in FRACTIONS and isinstance(v, int | float) else v


def _num(v: Any) -> float | None:
    return None if v is None or (isinstance(v, float) and math.isnan(v)) else float(v)


def long_rows(tables: list[Table], notes: list[str]) -> list[dict[str, Any]]:
    """Every number of the tables, one dict per (table, row, column, metric); None: missing."""
    number = {text: i for i, text in enumerate(notes, 1)}
    out = []
    for t in tables:
        for i, kind in enumerate(t.kinds):
            if kind not in SOURCES:
                continue
            ids = t.ids[i]
            row_notes = ";".join(str(number[n]) for n in t.marks[i] if n in number)
            for j, vals in enumerate(t.values[i]):
                suite, task = t.locs[i][j]
                for metric, v in vals.items():
                    if metric in _CI_KEYS:
                        continue
                    lo, hi = CI.get(metric, ("", ""))
                    out.append({
                        "table": t.key, "source": kind, "row": t.rows[i][t.mark_col],
                        "model": ids.get("model", ""),
                        "pruner": ids.get("pruner", ""), "retention": ids.get("retention"),
                        "variant": ids.get("variant", ""), "column": t.header[j],
                        "suite": suite or ids.get("suite", ""), "task": task, "metric": metric,
                        "value": _num(as_fraction(metric, v)),
                        "ci_low": _num(as_fraction(lo, vals.get(lo))),
                        "ci_high": _num(as_fraction(hi, vals.get(hi))),
                        "notes": row_notes, "runs": ";".join(ids.get("runs", [])),
                    })
    return out


def csv_text(rows: list[dict[str, Any]]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, COLUMNS, lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: "" if r[k] is None else (repr(r[k]) if isinstance(r[k], float) else r[k])
                    for k in COLUMNS})
    return buf.getvalue()


def notes_csv(notes: list[str]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["note", "text"])
    w.writerows(enumerate(notes, 1))
    return buf.getvalue()


def provenance(rs: RunSet) -> list[dict[str, Any]]:
    """Per run: where it is, what it is, and its manifest (commit, device and machine,
    deviations ...); manifest_sha256 is the digest of manifest.json as read."""
    out = []
    for r in sorted(rs.runs, key=lambda r: r.name):
        raw = (r.path / "manifest.json").read_bytes()
        man = json.loads(raw.decode("utf-8"))
        out.append({
            "name": r.name, "path": str(r.path), "model": r.model, "pruner": r.pruner,
            "retention": r.retention, "variant": r.variant, "suite": r.suite,
            "protocol": r.protocol, "protocol_version": r.protocol_version, "status": r.status,
            "episodes": len(r.episodes), "device": r.device, "machine": man.get("machine"),
            "deviations": r.deviations,
            "git_commit": man.get("git_commit"), "git_dirty": man.get("git_dirty"),
            "manifest_sha256": hashlib.sha256(raw).hexdigest(), "manifest": man,
        })
    return out


def json_text(rs: RunSet, tables: list[Table], notes: list[str], intro: list[str]) -> str:
    """The tidy values, the tables' titles and notes, and each run's provenance."""
    from vlabench import __version__

    doc = {
        "vlabench_version": __version__,
        "preamble": intro,
        "runs": provenance(rs),
        "notes": [{"note": i, "text": n} for i, n in enumerate(notes, 1)],
        "tables": [{"key": t.key, "title": t.title, "header": t.header, "notes": t.notes,
                    "all_rows_notes": t.shared} for t in tables],
        "columns": COLUMNS,
        "values": long_rows(tables, notes),
    }
    return json.dumps(doc, indent=1, allow_nan=False, default=str) + "\n"
