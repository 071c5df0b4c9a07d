"""`vlabench report`: run directories -> tables (md | latex | csv | html), plots, metrics CSV."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from vlabench.registry import ConfigError
from vlabench.report import cells
from vlabench.report.cells import Col
from vlabench.report.grid import to_table
from vlabench.report.layouts import LAYOUTS
from vlabench.report.reference import REFERENCE_DIR, Reference
from vlabench.report.render import RENDERERS, Table
from vlabench.report.runs import RunSet, model_family
from vlabench.report.runstable import runs_table, speedup_table

FORMATS = {"md": "md", "latex": "tex", "csv": "csv", "html": "html"}
DEFAULT_HTML_DIR = Path("results") / "report"


def build_tables(rs: RunSet, ref: Reference | None) -> list[Table]:
    """The statistics table, then every paper layout that the runs fill."""
    tables = [runs_table(rs)]
    speed = speedup_table(rs)
    if speed.rows:
        tables.append(speed)
    for layout in LAYOUTS.values():
        tables += [to_table(g) for g in layout(rs, ref)]
    return tables


def metrics_csv(rs: RunSet) -> str:
    """Every run's numbers, one row per run (machine-readable companion of the tables)."""
    rows = []
    for run in rs.runs:
        base, _ = rs.baseline(run.model, run.suite, run.protocol)
        m = cells.metrics(run, base, Col("", run.suite), boot=base is not None and base is not run)
        rows.append({"run": run.name, "model": run.model, "pruner": run.pruner,
                     "retention": run.retention, "variant": run.variant, "suite": run.suite,
                     "status": run.status, "protocol_version": run.protocol_version, **m})
    keys = list(dict.fromkeys(k for r in rows for k in r))
    buf = io.StringIO()
    w = csv.DictWriter(buf, keys, lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    return buf.getvalue()


def preamble(rs: RunSet, with_reference: bool = False) -> list[str]:
    names = ", ".join(sorted(r.name for r in rs.runs))
    lines = [f"vlabench report of {len(rs.runs)} run(s): {names}"] + rs.notes
    stand_ins = sorted({r.model for r in rs.runs if r.model != model_family(r.model)})
    if with_reference and stand_ins:
        lines.append(f"Note: {', '.join(stand_ins)} stand(s) in for the published model in the paper "
                     "rows; differences to a test-size model say nothing about the method.")
    return lines


def report(paths: list[str] | None, fmt: str = "md", out: Path | None = None,
           with_reference: bool = False, reference_dir: Path | None = None,
           plots: bool = True) -> str:
    """Build the report; write files under `out`; return the text to print."""
    if fmt not in FORMATS:
        raise ConfigError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    rs = RunSet.load(paths)
    ref = Reference.load(reference_dir or REFERENCE_DIR) if with_reference else None
    tables = build_tables(rs, ref)
    intro = preamble(rs, with_reference)
    if fmt == "html":
        from vlabench.report.html import page
        from vlabench.report.plots import make_plots

        out = Path(out or DEFAULT_HTML_DIR)
        images = make_plots(rs, out / "plots") if plots else []
        target = out / "report.html"
        target.write_text(page("vlabench report", intro, tables, images), encoding="utf-8")
        (out / "runs.csv").write_text(metrics_csv(rs))
        return f"wrote {target} ({len(tables)} tables, {len(images)} plots)\n"
    render = RENDERERS[fmt]
    if fmt == "csv":
        text = "\n".join(f"# {t.title}\n{render(t)}" for t in tables)
    else:
        head = "\n".join(intro)
        text = (f"{head}\n\n" if fmt == "md" else "% " + head.replace("\n", "\n% ") + "\n\n")
        text += "\n".join(render(t) for t in tables)
    if out is not None:
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        (out / f"report.{FORMATS[fmt]}").write_text(text, encoding="utf-8")
        (out / "runs.csv").write_text(metrics_csv(rs))
        if fmt == "csv":
            for t in tables:
                (out / f"{t.key}.csv").write_text(render(t), encoding="utf-8")
        if plots:
            from vlabench.report.plots import make_plots

            make_plots(rs, out / "plots")
    return text
