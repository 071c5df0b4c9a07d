"""The report says which protocol each row ran (issue 11 item 9: SpecPrune-VLA's own loop,
`suite.protocol=specprune`, next to the default openvla-oft protocol)."""

from __future__ import annotations

import json

from report_helpers import make_run, suite_tasks

from vlabench.report.build import report
from vlabench.report.runs import RunSet


def _run(root, name, pruner, protocol, k=8, lat=80.0):
    d = make_run(root, name, model="openvla-oft", pruner=pruner, suite="libero_spatial",
                 tasks=suite_tasks(k, 10, 2, latency_ms=lat),
                 retention=0.5 if pruner != "none" else None, protocol_version=2)
    if protocol is not None:
        path = d / "manifest.json"
        path.write_text(json.dumps({**json.loads(path.read_text()), "protocol": protocol}))
    return d


def _tables(text: str) -> list[list[str]]:
    """The markdown report's tables, each as its lines (rows and footnotes)."""
    return [part.splitlines() for part in text.split("\n### ")[1:]]


def test_rows_of_the_specprune_protocol_carry_a_footnote_naming_it(tmp_path):
    _run(tmp_path, "base", "none", "openvla-oft")
    _run(tmp_path, "sp", "specprune", "specprune")
    text = report([str(tmp_path)], "md", plots=False)
    note = "protocol specprune: run with suite.protocol=specprune"
    assert "rows without this mark ran the openvla-oft protocol" in text
    listed = [line for line in text.splitlines() if note in line]
    assert len(listed) == 1                             # said once per report ...
    mark = listed[0].split()[0]                         # ... as "[n]", the same in every table
    checked = 0
    for lines in _tables(text):
        rows = [line for line in lines if line.startswith("|") and not line.startswith("|---")][1:]
        sp_rows = [r for r in rows if "SpecPrune-VLA (50%)" in r]
        if not sp_rows:
            continue
        others = [r for r in rows if r not in sp_rows]
        if others:      # the mark tells the SpecPrune rows from the others
            assert all(mark in r for r in sp_rows), (mark, sp_rows)
            assert not any(mark in r for r in others), rows
        else:           # every row shares it: one line under the table, no row marks
            assert f"All rows: {mark}" in [ln.strip() for ln in lines] and not any(mark in r for r in rows)
        checked += 1
    assert checked == 4  # runs, mean speedup, SpecPrune Tables 1 and 4 (no ablation variant: no Table 2)


def test_only_default_protocol_runs_have_no_protocol_note(tmp_path):
    _run(tmp_path, "base", "none", "openvla-oft")
    _run(tmp_path, "fastv", "fastv", None)  # an older manifest without the key
    assert "protocol" not in report([str(tmp_path)], "md", plots=False).replace("protocol_version", "")


def test_each_protocol_is_compared_with_its_own_baseline(tmp_path):
    _run(tmp_path, "base-oft", "none", "openvla-oft", k=10, lat=100.0)
    _run(tmp_path, "base-sp", "none", "specprune", k=6, lat=50.0)
    _run(tmp_path, "sp", "specprune", "specprune", k=6, lat=25.0)
    _run(tmp_path, "sp-oft", "specprune", "openvla-oft", k=10, lat=50.0)
    rs = RunSet.load([str(tmp_path)])
    by_name = {r.name: r for r in rs.runs}
    assert by_name["sp"].variant == "specprune" and by_name["sp-oft"].variant == ""
    assert by_name["base-sp"].variant == "specprune" and by_name["base-oft"].variant == ""
    assert rs.baseline("openvla-oft", "libero_spatial", "specprune")[0] is by_name["base-sp"]
    assert rs.baseline("openvla-oft", "libero_spatial", "openvla-oft")[0] is by_name["base-oft"]
    text = report([str(tmp_path)], "md", plots=False)
    runs_rows = [line for line in text.splitlines() if line.startswith("| openvla-oft |")]
    sp_row = next(line for line in runs_rows if "SpecPrune-VLA (50%) [specprune]" in line)
    oft_row = next(line for line in runs_rows if "SpecPrune-VLA (50%) |" in line)
    assert "2.00×" in sp_row and "2.00×" in oft_row  # 50 -> 25 ms and 100 -> 50 ms
