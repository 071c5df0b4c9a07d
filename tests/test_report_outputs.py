"""Report outputs: plots (PNG + SVG), a self-contained HTML page, LaTeX and CSV."""

from __future__ import annotations

import base64
import re

import pytest
from report_helpers import make_run, suite_tasks

from vlabench.report.build import report
from vlabench.report.plots import pareto_front


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    for suite in ("libero_spatial", "libero_goal"):
        make_run(root, f"none-{suite}", model="openvla-oft", pruner="none", suite=suite,
                 tasks=suite_tasks(45, 50, 5, latency_ms=100.0, jitter=3.0, calls_per_episode=2))
        for ret, k, lat in ((0.5, 44, 70.0), (0.25, 40, 55.0), (0.125, 30, 48.0)):
            for pruner, dk in (("fastv", 0), ("vla-pruner", 3)):
                make_run(root, f"{pruner}-{ret}-{suite}", model="openvla-oft", pruner=pruner,
                         suite=suite, retention=ret,
                         tasks=suite_tasks(min(50, k + dk), 50, 5, latency_ms=lat + dk, jitter=2.0,
                                           calls_per_episode=2, tokens_kept=int(512 * ret)))
    return root


def test_html_is_one_self_contained_page_with_tables_and_plots(runs, tmp_path):
    msg = report([str(runs)], "html", tmp_path)
    assert "report.html" in msg
    page = (tmp_path / "report.html").read_text()
    assert page.startswith("<!DOCTYPE html>") and "</html>" in page
    assert "VLA-Pruner Table 1" in page
    assert "SpecPrune-VLA Table 1" not in page  # FastV and VLA-Pruner are not in that paper's table
    images = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    assert len(images) >= 3
    assert all(base64.b64decode(img)[:8] == b"\x89PNG\r\n\x1a\n" for img in images)
    assert not re.search(r'src="(?!data:)', page)  # nothing loaded from elsewhere


def test_plots_are_written_as_png_and_svg(runs, tmp_path):
    report([str(runs)], "md", tmp_path)
    plots = tmp_path / "plots"
    for stem in ("sr_vs_retention-openvla-oft", "pareto-openvla-oft", "tasks-openvla-oft-libero_spatial"):
        png, svg = plots / f"{stem}.png", plots / f"{stem}.svg"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000
        assert "<svg" in svg.read_text()[:500]
    assert (tmp_path / "report.md").read_text().startswith("vlabench report of 14 run(s)")
    assert "vla-pruner-0.25-libero_goal" in (tmp_path / "runs.csv").read_text()


def test_html_without_out_goes_to_stdout_and_writes_nothing(runs, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    page = report([str(runs)], "html")
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    assert "data:image/png;base64," in page        # plots drawn in a temporary folder, embedded
    assert list(tmp_path.iterdir()) == []          # no ./results/report/ behind the user's back


def test_cli_html_without_out_prints_the_page_and_nothing_on_stderr(cli, runs):
    res = cli("report", str(runs), "--format", "html", "--no-plots")
    assert res.returncode == 0, res.stderr
    assert res.stdout.startswith("<!DOCTYPE html>") and res.stderr == ""


def test_html_with_out_says_where_it_wrote(runs, tmp_path):
    msg = report([str(runs)], "html", tmp_path / "r", plots=False)
    assert msg == f"wrote {tmp_path / 'r' / 'report.html'} (3 tables)\n"


def test_csv_with_out_writes_the_tidy_table_and_the_notes(runs, tmp_path):
    text = report([str(runs)], "csv", tmp_path, plots=False)
    assert text.startswith("table,source,row,model,pruner,retention,variant,column,suite,task,metric,value,")
    assert (tmp_path / "report.csv").read_text() == text
    assert (tmp_path / "notes.csv").read_text().startswith("note,text\n")


def test_statistics_table_has_intervals_paired_tests_and_latency_spread(runs):
    text = report([str(runs)], "md", plots=False)
    row = next(line for line in text.splitlines()
               if line.startswith("| openvla-oft | FastV (12.5%) [") and "| libero_spatial |" in line)
    # the fabricated runs record equal FLOPs, so a 2.08x speedup exceeds its FLOPs bound: flagged
    mark = row.split("FastV (12.5%) ")[1].split(" ")[0]
    assert re.search(rf"^{re.escape(mark)} fastv-0\.125-libero_spatial: speedup 2\.08× exceeds what its "
                     rf"FLOPs allow", text, re.M)
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[4] == "60.0 [46.2, 72.4]"            # Wilson 95% of 30/50
    assert cells[5] == "-30.0 ▼"                       # 15 discordant pairs, all one way
    assert cells[6].startswith("6.1e-05 (50)")         # McNemar exact 2 * 0.5**15
    assert cells[7] == "48.0 / 48.0 / 50.0"
    # episodes resampled (the default): the ±jitter alternates within each episode, so every episode's
    # mean is its task's latency and the interval is a point; resampling calls it is not
    assert cells[8] == "2.08× [2.08, 2.08]"
    calls = report([str(runs)], "md", plots=False, ci_unit="call")
    row = next(line for line in calls.splitlines()
               if line.startswith("| openvla-oft | FastV (12.5%) [") and "| libero_spatial |" in line)
    assert re.fullmatch(r"2\.08× \[2\.0\d, 2\.1\d\]", [c.strip() for c in row.strip("|").split("|")][8])
    assert "≈ within noise" in text


def test_cli_report_with_reference_prints_paper_rows(cli, runs):
    res = cli("report", str(runs), "--with-reference")
    assert res.returncode == 0, res.stderr
    assert "| paper: FastV |" in res.stdout and "| Δ ours − paper |" in res.stdout
    assert "(paper only)" in res.stdout                # SparseVLM, DivPrune ... of the paper


def test_pareto_front_keeps_only_undominated_points():
    pts = [(1.0, 90.0), (1.5, 85.0), (1.4, 80.0), (2.0, 60.0), (1.2, 92.0)]
    assert pareto_front(pts) == [4, 1, 3]
