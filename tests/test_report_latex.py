"""`report --format latex` compiles with pdflatex in a two-column paper, tables fit the page
(issue 14 item 12)."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest
from report_helpers import make_run, suite_tasks

from vlabench.report.build import report
from vlabench.report.latex import PACKAGES, tex_escape

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
