"""`vlabench report`: run directories -> tables (md | latex | csv | json | html), plots, metrics CSV.

Every format prints to stdout when there is no --out (html too: a self-contained page, plots
embedded); with --out DIR the report, runs.csv and plots are written there and one line says
where. md, latex and html are for reading (numbers formatted, footnotes); csv and json are for
programs (tidy.py: one number per cell, intervals in their own columns, provenance in json).
"""

from __future__ import annotations

import csv
import io
import tempfile
from pathlib import Path

from vlabench.core.errors import ConfigError
from vlabench.metrics.stats import CI_UNITS
from vlabench.records.files import atomic_write_text, make_dirs, remove_stale_temporaries
from vlabench.report import cells, latex, tidy
from vlabench.report.cells import Col
from vlabench.report.grid import to_table
from vlabench.report.layouts import LAYOUTS
from vlabench.report.notes import number_notes
from vlabench.report.reference import REFERENCE_DIR, Reference
from vlabench.report.render import Table, markdown, markdown_notes
from vlabench.report.runs import RunSet, model_family
from vlabench.report.runstable import runs_table, speedup_table
from vlabench.report.timing_table import latency_tables

FORMATS = {"md": "md", "latex": "tex", "csv": "csv", "json": "json", "html": "html"}
ALIASES = {"markdown": "md", "tex": "latex"}


def build_tables(rs: RunSet, ref: Reference | None) -> list[Table]:
    """The statistics table, then every paper layout that the runs fill."""
    tables = [runs_table(rs)]
    speed = speedup_table(rs)
    if speed.rows:
        tables.append(speed)
    tables += latency_tables(rs)   # suite.timing=sync|async runs among the inputs
    for layout in LAYOUTS.values():
        tables += [to_table(g) for g in layout(rs, ref)]
    return tables


def metrics_csv(rs: RunSet) -> str:
    """Every run's numbers, one row per run (machine-readable companion of the tables; success
    rate and its interval as fractions, as in summary.csv)."""
    rows = []
    for run in rs.runs:
        base, _ = rs.baseline(run.model, run.suite, run.protocol)
        m = cells.metrics(run, base, Col("", run.suite), boot=base is not None and base is not run,
                          unit=rs.ci_unit)
        m = {k: tidy.as_fraction(k, v) for k, v in m.items()}   # success rate: a fraction
        rows.append({"run": run.name, "model": run.model, "pruner": run.pruner,
                     "retention": run.retention, "variant": run.variant, "suite": run.suite,
                     "status": run.status, "protocol_version": run.protocol_version, **m})
    keys = list(dict.fromkeys(k for r in rows for k in r))
    buf = io.StringIO()
    w = csv.DictWriter(buf, keys, lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    return buf.getvalue()


LISTED_RUNS = 8   # more runs are summarised by model, pruner and suite in the preamble


def preamble(rs: RunSet, with_reference: bool = False) -> list[str]:
    if len(rs.runs) <= LISTED_RUNS:
        what = ", ".join(sorted(r.name for r in rs.runs))
    else:   # a grid: what it spans (each run is a row of the all-runs table and runs.csv)
        what = "; ".join(f"{len(v)} {k} ({', '.join(v)})" for k, v in (
            ("model(s)", sorted({r.model for r in rs.runs})), ("pruner(s)", sorted({r.pruner for r in rs.runs})),
            ("suite(s)", sorted({r.suite for r in rs.runs})))) + "; one row per run in the all-runs table"
    lines = [f"vlabench report of {len(rs.runs)} run(s): {what}"] + rs.notes
    stand_ins = sorted({r.model for r in rs.runs if r.model != model_family(r.model)})
    if with_reference and stand_ins:
        lines.append(f"Note: {', '.join(stand_ins)} stand(s) in for the published model in the paper "
                     "rows; differences to a test-size model say nothing about the method.")
    return lines


def video_links(rs: RunSet, page_dir: Path | None) -> list[tuple[str, list[tuple[str, str]]]]:
    """Each run's episode videos (run.video): (run name, [(file name, href)]). With a report
    folder `page_dir` the videos are linked (else copied) into `page_dir/videos/<run>/` and the
    hrefs are relative, so the folder is self-contained (an uploaded CI artefact plays them); a
    page printed to stdout links file:// URIs."""
    import os
    import re
    import shutil
    from urllib.parse import quote

    def order(p: Path) -> tuple:
        return tuple(int(x) if x.isdigit() else x for x in re.split(r"(\d+)", p.name))

    out = []
    for run in rs.runs:
        folder = Path(run.path) / "videos"
        found = sorted((p for p in folder.glob("task*.mp4") if p.is_file()), key=order) \
            if folder.is_dir() else []
        if not found:
            continue
        links = []
        for p in found:
            if page_dir is None:
                href = p.resolve().as_uri()
            else:
                local = Path(page_dir) / "videos" / run.name / p.name
                local.parent.mkdir(parents=True, exist_ok=True)
                if not (local.exists() and local.samefile(p)):
                    local.unlink(missing_ok=True)
                    try:
                        os.link(p, local)
                    except OSError:   # another filesystem, or no hard links
                        shutil.copyfile(p, local)
                href = quote(local.relative_to(page_dir).as_posix())
            links.append((p.name, href))
        out.append((run.name, links))
    return out


def _html(rs: RunSet, tables: list[Table], notes: list[str], intro: list[str], plot_dir: Path | None,
          page_dir: Path | None = None, ref: Reference | None = None) -> str:
    from vlabench.report.html import page
    from vlabench.report.plots import make_plots

    images = make_plots(rs, plot_dir, ref) if plot_dir is not None else []
    return page("vlabench report", intro, tables, images, notes=notes,
                videos=video_links(rs, page_dir))


def _text(fmt: str, rs: RunSet, tables: list[Table], notes: list[str], intro: list[str]) -> str:
    if fmt == "csv":
        return tidy.csv_text(tidy.long_rows(tables, notes))
    if fmt == "json":
        return tidy.json_text(rs, tables, notes, intro)
    if fmt == "latex":
        return latex.header(intro) + "\n".join(latex.latex(t, notes) for t in tables)   # notes under each float
    return "\n".join(intro) + "\n\n" + markdown_notes(notes) + "\n".join(markdown(t) for t in tables)


def _clean(out: Path) -> None:
    """Make --out; drop the temporaries a killed earlier report left there and in plots/."""
    make_dirs(out)
    for folder in (out, out / "plots"):
        remove_stale_temporaries(folder)


def report(paths: list[str] | None, fmt: str = "md", out: Path | None = None,
           with_reference: bool = False, reference_dir: Path | None = None,
           plots: bool = True, ci_unit: str = "episode") -> str:
    """Build the report; write files under `out`; return the text to print. Its bootstrap
    intervals resample `ci_unit`s: episodes (clusters of calls) or calls."""
    fmt = ALIASES.get(fmt, fmt)
    if fmt not in FORMATS:
        raise ConfigError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)} (markdown = md)")
    if ci_unit not in CI_UNITS:
        raise ConfigError(f"unknown --ci-unit {ci_unit!r}; choose one of {', '.join(CI_UNITS)}")
    rs = RunSet.load(paths)
    rs.ci_unit = ci_unit
    ref = Reference.load(reference_dir or REFERENCE_DIR) if with_reference else None
    tables = build_tables(rs, ref)
    notes = number_notes(tables)
    intro = preamble(rs, with_reference)
    if fmt == "html" and out is None:
        with tempfile.TemporaryDirectory(prefix="vlabench-plots-") as tmp:
            return _html(rs, tables, notes, intro, Path(tmp) if plots else None, ref=ref)
    if fmt == "html":
        out = Path(out)
        _clean(out)
        target = out / "report.html"
        atomic_write_text(target, _html(rs, tables, notes, intro, out / "plots" if plots else None, out, ref))
        atomic_write_text(out / "runs.csv", metrics_csv(rs))
        return f"wrote {target} ({len(tables)} tables{', plots in ' + str(out / 'plots') if plots else ''})\n"
    text = _text(fmt, rs, tables, notes, intro)
    if out is not None:   # each file whole or not at all (vlabench/records/fsio.py)
        out = Path(out)
        _clean(out)
        atomic_write_text(out / f"report.{FORMATS[fmt]}", text)
        atomic_write_text(out / "runs.csv", metrics_csv(rs))
        if fmt == "csv":
            atomic_write_text(out / "notes.csv", tidy.notes_csv(notes))
        if plots:
            from vlabench.report.plots import make_plots

            make_plots(rs, out / "plots", ref)
    return text
