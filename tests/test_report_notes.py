"""Footnotes once per report, rows marked only with what differs, and paper tables only when
runs fill them (issue 14 item 14)."""

from __future__ import annotations

import re

from report_helpers import make_run, suite_tasks

from vlabench.report.build import report
from vlabench.report.notes import number_notes
from vlabench.report.render import Table

DEV = "suite.tasks=[0, 1] selects 2 of 10 tasks"


def _run(root, name, pruner, suite="libero_spatial", **kw):
    return make_run(root, name, model="openvla-oft", pruner=pruner, suite=suite,
                    tasks=suite_tasks(kw.pop("k", 8), 10, 2, latency_ms=kw.pop("lat", 80.0)),
                    retention=kw.pop("retention", 0.25 if pruner != "none" else None), **kw)


def _tables(text: str) -> dict[str, list[str]]:
    """Markdown report -> {title: its lines}."""
    return {part.splitlines()[0]: part.splitlines() for part in text.split("\n### ")[1:]}


def _table(text: str, prefix: str) -> list[str]:
    return next(lines for title, lines in _tables(text).items() if title.startswith(prefix))


def _rows(lines: list[str]) -> list[str]:
    return [line for line in lines if line.startswith("|") and not line.startswith("|---")][1:]


def test_numbering_is_report_wide_and_shared_notes_go_under_the_table():
    a, b = Table("a", "A", ["x"]), Table("b", "B", ["x"])
    a.add(["r1"], marks=["dev", "late"])
    a.add(["r2"], marks=["dev"])
    b.add(["r3"], marks=["other", "late"])
    b.add(["r4"], marks=["late", "other", "dev"])
    assert number_notes([a, b]) == ["dev", "late", "other"]
    assert (a.shared, a.row_marks) == ([1], [[2], []])
    assert (b.shared, b.row_marks) == ([2, 3], [[], [1]])
    assert b.display(1) == ["r4 [1]"] and b.footer() == ["All rows: [2][3]"]


def test_a_deviation_is_listed_once_with_one_number_in_every_table(tmp_path):
    _run(tmp_path, "base", "none", deviations=[DEV])
    _run(tmp_path, "sparse", "sparsevlm", deviations=[DEV])
    _run(tmp_path, "spec", "specprune", status="interrupted")  # no deviation: it differs
    text = report([str(tmp_path)], "md", plots=False)
    listed = [line for line in text.splitlines() if DEV in line]
    assert len(listed) == 1
    n = re.match(r"\[(\d+)\] deviation: ", listed[0]).group(1)
    for title in ("All runs", "SpecPrune-VLA Table 1"):
        rows = _rows(_table(text, title))
        marked = [r for r in rows if f"[{n}]" in r]
        assert len(marked) == 2 and all("SpecPrune" not in r for r in marked), (title, rows)
        spec = next(r for r in rows if "SpecPrune" in r)
        assert re.search(r"SpecPrune-VLA \(25%\) \[\d+\] \|", spec)     # its own note: interrupted
    assert len(re.findall(r"\[\d+\]", _rows(_table(text, "All runs"))[0])) == 1  # one mark per row


def test_what_every_row_shares_is_said_once_under_the_table(tmp_path):
    _run(tmp_path, "base", "none", deviations=[DEV])
    _run(tmp_path, "sparse", "sparsevlm", deviations=[DEV])
    text = report([str(tmp_path)], "md", plots=False)
    lines = _table(text, "SpecPrune-VLA Table 1")
    assert not any(re.search(r"\[\d+\]", r) for r in _rows(lines))
    shared = next(line for line in lines if line.startswith("All rows:"))
    n = re.search(rf"\[(\d+)\] deviation: {re.escape(DEV)}", text).group(1)
    assert f"[{n}]" in shared


def test_a_paper_table_holds_only_the_methods_its_paper_compared(tmp_path):
    _run(tmp_path, "base", "none", lat=100.0)
    _run(tmp_path, "spec", "specprune")
    _run(tmp_path, "vp", "vla-pruner")
    _run(tmp_path, "fastv", "fastv")
    text = report([str(tmp_path)], "md", plots=False)
    vp = " ".join(_rows(_table(text, "VLA-Pruner Table 1")))
    assert "VLA-Pruner" in vp and "FastV" in vp and "SpecPrune" not in vp
    spec = " ".join(_rows(_table(text, "SpecPrune-VLA Table 1")))
    assert "SpecPrune-VLA" in spec and "VLA-Pruner" not in spec and "FastV" not in spec
    assert len(_rows(_table(text, "All runs"))) == 4                # every run is still reported


def test_a_baseline_alone_fills_no_paper_table(tmp_path):
    _run(tmp_path, "base", "none")
    _run(tmp_path, "divprune", "divprune", suite="libero_goal")     # no baseline on goal: still listed
    titles = list(_tables(report([str(tmp_path)], "md", plots=False)))
    assert not any("SpecPrune-VLA" in t for t in titles)
    assert [t for t in titles if "Table" in t] == ["VLA-Pruner Table 1 (OpenVLA-OFT): success rate (%) "
                                                   "(relative accuracy), FLOPs (T), latency (ms) (speedup)"]


def test_ablation_table_needs_an_ablation_run(tmp_path):
    _run(tmp_path, "base", "none")
    _run(tmp_path, "spec", "specprune", retention=None)
    assert "SpecPrune-VLA Table 2" not in report([str(tmp_path)], "md", plots=False)
    _run(tmp_path, "spec-tech1", "specprune", retention=None, variant="tech1")
    t2 = _rows(_table(report([str(tmp_path)], "md", plots=False), "SpecPrune-VLA Table 2"))
    assert [r.split("|")[1].strip() for r in t2] == ["None", "SpecPrune-VLA", "SpecPrune-VLA [tech1]"]


def test_ratio_table_needs_two_pruning_ratios(tmp_path):
    _run(tmp_path, "base", "none", suite="libero_object")
    _run(tmp_path, "a06", "specprune", suite="libero_object", retention=None, alpha=0.6)
    assert "SpecPrune-VLA Table 3" not in report([str(tmp_path)], "md", plots=False)
    _run(tmp_path, "a08", "specprune", suite="libero_object", retention=None, alpha=0.8)
    t3 = _rows(_table(report([str(tmp_path)], "md", plots=False), "SpecPrune-VLA Table 3"))
    assert [r.split("|")[1].strip() for r in t3] == ["0.8", "0.6"]


def test_html_marks_link_to_the_one_list_of_notes(tmp_path):
    _run(tmp_path, "base", "none", deviations=[DEV])
    _run(tmp_path, "spec", "specprune")
    page = report([str(tmp_path)], "html", plots=False)
    assert page.count(f"deviation: {DEV}") == 1
    assert '<li id="note-1">' in page and 'Vanilla <a href="#note-1">[1]</a>' in page
