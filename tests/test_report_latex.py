"""`report --format latex` compiles with pdflatex in a two-column paper, tables fit the page
(issue 14 item 12)."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest
from report_helpers import make_run, suite_tasks

from vlabench.report.build import report
from vlabench.report.latex import PACKAGES, tex_escape, tex_prose

DEVIATION = "suite.tasks=[0, 1] selects 2 of 10 tasks; run.max_steps=50 ≥ 10 − 0"


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("latex-runs")
    for suite in ("libero_spatial", "libero_goal"):
        make_run(root, f"base-{suite}", model="openvla-oft", pruner="none", suite=suite,
                 tasks=suite_tasks(8, 10, 2, latency_ms=100.0), deviations=[DEVIATION])
        for pruner, ret in (("sparsevlm", 0.5), ("vla-pruner", 0.25), ("fastv", 0.25)):
            make_run(root, f"{pruner}-{suite}", model="openvla-oft", pruner=pruner, suite=suite,
                     retention=ret, tasks=suite_tasks(7, 10, 2, latency_ms=70.0), deviations=[DEVIATION])
    make_run(root, "specprune-tech1", model="openvla-oft", pruner="specprune", suite="libero_spatial",
             variant="tech1", status="interrupted", tasks=suite_tasks(6, 10, 2, latency_ms=60.0))
    return root


def test_every_symbol_becomes_ascii_latex():
    text = "SR ≥ 50% − Δ × ± ≈ ▲ ▼ ✓ ✗ α µ — é … & $x_1$ #1 {a} ~ ^ \\ <b> |"
    out = tex_escape(text)
    assert out.isascii()
    for symbol, tex in (("≥", r"$\geq$"), ("−", "$-$"), ("✓", r"\checkmark{}"), ("%", r"\%"),
                        ("_", r"\_"), ("<", r"\textless{}"), ("é", "e")):
        assert tex_escape(symbol) == tex


def test_code_spans_in_notes_are_typewriter_not_quotes():
    assert tex_prose("see `vlabench bench bench.flops=paper`, 5%") == \
        r"see \texttt{vlabench bench bench.flops=paper}, 5\%"
    assert tex_prose("an unpaired ` stays") == "an unpaired ` stays"


def test_latex_report_is_ascii_and_names_its_packages(runs):
    tex = report([str(runs)], "latex", plots=False, with_reference=True)
    assert tex.isascii()
    assert tex.splitlines()[0] == r"% Needs in the document preamble: \usepackage{" + ",".join(PACKAGES) + "}"
    assert tex.count(r"\begin{tabular}") == tex.count(r"\end{tabular}") >= 4
    assert tex.count(r"\resizebox{\ifdim\width>\linewidth\linewidth\else\width\fi}{!}") == tex.count(r"\begin{tabular}")


def test_wide_tables_span_both_columns_and_narrow_ones_one(runs):
    tex = report([str(runs)], "latex", plots=False)
    floats = re.findall(r"\\begin\{(table\*?)\}\[(\w+)\]\n\\centering\n\\small\n\\caption\{([^\n]*)\}", tex)
    kinds = {caption.split(":")[0].split(" (")[0]: (env, where) for env, where, caption in floats}
    assert kinds["All runs"] == ("table*", "tp")                    # 11 columns
    assert kinds["SpecPrune-VLA Table 2"] == ("table", "tbp")       # 4 short columns
    assert all(where != "h" for _, where in kinds.values())


def _compile(tmp_path, tex: str, twocolumn: bool = True) -> str:
    (tmp_path / "tables.tex").write_text(tex)
    options = "[twocolumn]" if twocolumn else ""
    (tmp_path / "paper.tex").write_text(
        f"\\documentclass{options}{{article}}\n\\usepackage{{{','.join(PACKAGES)}}}\n"
        "\\begin{document}\nSome text.\n\\input{tables.tex}\n\\end{document}\n")
    res = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "paper.tex"],
                         cwd=tmp_path, capture_output=True, text=True, timeout=120)
    log = (tmp_path / "paper.log").read_text(errors="replace")
    assert res.returncode == 0, "\n".join(line for line in log.splitlines() if line.startswith("!"))
    return log


@pytest.mark.skipif(shutil.which("pdflatex") is None,
                    reason="pdflatex not on PATH (apt-get install --no-install-recommends "
                           "texlive-latex-base texlive-latex-recommended)")
@pytest.mark.parametrize("twocolumn", [True, False])
def test_report_compiles_with_pdflatex_and_every_table_fits(runs, tmp_path, twocolumn):
    tex = report([str(runs)], "latex", plots=False, with_reference=True)
    log = _compile(tmp_path, tex, twocolumn)
    assert re.search(r"Output written on paper\.pdf \(\d+ pages?", log)
    assert "Overfull \\hbox" not in log           # nothing wider than its column or page
    assert "Float too large" not in log


RESIZE = r"\resizebox{\ifdim\width>\linewidth\linewidth\else\width\fi}{!}{%"
MEASURE = (r"\newsavebox\vlabbox" "\n"
           r"\newcommand\vlabmeasure[1]{\sbox\vlabbox{#1}\typeout{VLABWIDTH \the\wd\vlabbox\space"
           r"\the\linewidth}\resizebox{\ifdim\wd\vlabbox>\linewidth\linewidth\else\wd\vlabbox\fi}{!}"
           r"{\usebox\vlabbox}}" "\n")


@pytest.fixture(scope="module")
def wide_runs(tmp_path_factory):
    """Runs whose calls carry memory and CUDA time: the all-runs table has 15 columns."""
    import pandas as pd

    root = tmp_path_factory.mktemp("latex-wide")
    for suite in ("libero_spatial", "libero_10"):
        for pruner, ret in (("none", None), ("fastv", 0.25), ("vla-pruner", 0.125)):
            d = make_run(root, f"{pruner}-{suite}", model="openvla-oft", pruner=pruner, suite=suite,
                         retention=ret, tasks=suite_tasks(7, 10, 2, latency_ms=80.0),
                         deviations=[DEVIATION] if pruner == "fastv" else None)
            calls = pd.read_csv(d / "calls.csv", dtype=str, keep_default_na=False)
            calls["mem_peak_mb"], calls["mem_kind"], calls["cuda_ms"] = "15234.5", "cuda", "61.25"
            (d / "calls.csv").write_text(calls.to_csv(index=False))   # no records digest: allowed
    return root


def font_sizes(tmp_path, tex: str, twocolumn: bool = True) -> list[float]:
    """The point size every tabular of `tex` prints at in a 10 pt article: \\small (9 pt) times
    the \\resizebox factor, from the natural and line widths pdflatex measures."""
    assert tex.count(RESIZE) == tex.count(r"\begin{tabular}")
    log = _compile(tmp_path, MEASURE + tex.replace(RESIZE, r"\vlabmeasure{%"), twocolumn)
    pairs = [(float(w), float(line)) for w, line in re.findall(r"VLABWIDTH ([\d.]+)pt ([\d.]+)pt", log)]
    assert len(pairs) == tex.count(r"\begin{tabular}")
    return [9.0 * min(1.0, line / w) for w, line in pairs]


@pytest.mark.skipif(shutil.which("pdflatex") is None, reason="pdflatex not on PATH")
def test_every_table_prints_at_7pt_or_more_in_a_two_column_paper(wide_runs, tmp_path):
    tex = report([str(wide_runs)], "latex", plots=False, with_reference=True)
    assert "Peak memory (GB)" in tex and "All runs" in tex
    parts = re.findall(r"\\caption\{All runs[^\n]*\(part (\d) of (\d)\)\}\n.*?\n(.*?)\\bottomrule", tex, re.S)
    assert len(parts) >= 2   # split by column groups, each float with the rows' key columns
    assert "McNemar" in parts[0][2] and "Peak memory" not in parts[0][2] and "Peak memory" in parts[-1][2]
    assert all("Model & Method & Suite &" in body for _, _, body in parts)
    sizes = font_sizes(tmp_path, tex)
    assert min(sizes) >= 7.0, sizes


@pytest.mark.skipif(shutil.which("pdflatex") is None, reason="pdflatex not on PATH")
def test_the_15_column_table_unsplit_would_print_below_7pt(wide_runs, tmp_path, monkeypatch):
    from vlabench.report import latex

    monkeypatch.setattr(latex, "SPLIT_PT", 1e9)   # the old layout: one shrunk float
    tex = report([str(wide_runs)], "latex", plots=False)
    assert min(font_sizes(tmp_path, tex)) < 7.0   # what the check above guards against


def test_markers_are_superscripts_and_each_float_lists_the_notes_it_cites(wide_runs):
    tex = report([str(wide_runs)], "latex", plots=False)
    assert not re.search(r"\[\d+\]", tex)                 # no bracketed markers
    for body in re.findall(r"\\begin\{table\*?\}(.*?)\\end\{table\*?\}", tex, re.S):
        tabular, _, foot = body.partition(r"\end{tabular}")
        cited = {int(n) for group in re.findall(r"\\textsuperscript\{([\d,]+)\}", tabular)
                 for n in group.split(",")}
        listed = {int(n) for n in re.findall(r"\\textsuperscript\{(\d+)\} \w", foot)}
        assert cited <= listed, (cited, listed)
    assert "deviation" in tex.split(r"\end{tabular}", 1)[1].split(r"\end{table", 1)[0]
