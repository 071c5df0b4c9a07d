"""Bad input is one clear line and exit code 2; missing baselines are n/a with a footnote."""

from __future__ import annotations

import json
import re

import pytest
from report_helpers import make_run, suite_tasks

from vlabench.core.errors import ConfigError
from vlabench.records.files import RecordsError
from vlabench.report.build import report
from vlabench.report.runs import RunSet


def _run(root, name="fastv-spatial", pruner="fastv", suite="libero_spatial", **kw):
    return make_run(root, name, model="openvla-oft", pruner=pruner, suite=suite,
                    tasks=suite_tasks(kw.pop("k", 8), kw.pop("n", 10), 2, latency_ms=kw.pop("lat", 80.0)),
                    retention=kw.pop("retention", 0.5 if pruner != "none" else None), **kw)


def _cli_error(cli, *args):
    res = cli("report", *args)
    assert res.returncode == 2, (res.stdout, res.stderr)
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("vlabench: error: "), res.stderr
    return lines[0]


def test_no_runs_found_is_one_line_and_exit_2(cli, tmp_path):
    (tmp_path / "empty").mkdir()
    assert "no runs found" in _cli_error(cli, str(tmp_path / "empty"))
    assert "no runs found" in _cli_error(cli, str(tmp_path / "nothing-*"))


def test_unknown_format_is_one_line_and_exit_2(cli, tmp_path):
    _run(tmp_path)
    assert "unknown format 'pdf'" in _cli_error(cli, str(tmp_path), "--format", "pdf")


def test_mixed_protocol_versions_in_one_table_are_refused(cli, tmp_path):
    _run(tmp_path, "base", pruner="none", protocol_version=1)
    _run(tmp_path, "new", protocol_version=2)
    line = _cli_error(cli, str(tmp_path))
    assert "mix protocol versions" in line and "libero_spatial" in line


def test_truncated_calls_csv_is_refused(cli, tmp_path):
    d = _run(tmp_path)
    text = (d / "calls.csv").read_text()
    (d / "calls.csv").write_text(text[: len(text) - 20])  # cut inside the last row
    line = _cli_error(cli, str(d))
    assert "calls.csv" in line and "fields" in line


def test_hand_edited_success_cell_is_refused(tmp_path):
    d = _run(tmp_path)
    lines = (d / "episodes.csv").read_text().splitlines()
    head = lines[0].split(",")
    row = lines[1].split(",")
    row[head.index("success")] = "yes"
    (d / "episodes.csv").write_text("\n".join([lines[0], ",".join(row), *lines[2:]]) + "\n")
    with pytest.raises(RecordsError, match="success.*'yes'"):
        RunSet.load([str(d)])


def test_renamed_column_is_refused(tmp_path):
    d = _run(tmp_path)
    text = (d / "episodes.csv").read_text()
    (d / "episodes.csv").write_text(text.replace("success", "succes", 1))
    with pytest.raises(RecordsError, match="columns"):
        RunSet.load([str(d)])


def test_summary_disagreeing_with_episodes_is_refused(tmp_path):
    d = _run(tmp_path)
    from vlabench.core.schema import SUMMARY_COLUMNS
    from vlabench.records.files import format_rows

    row = {"level": "suite", "suite": "libero_spatial", "episodes": 10, "successes": 10}
    (d / "summary.csv").write_text(format_rows(SUMMARY_COLUMNS, [row], header=True))
    with pytest.raises(RecordsError, match="hand"):
        RunSet.load([str(d)])


def test_duplicate_episode_rows_are_refused(tmp_path):
    d = _run(tmp_path)
    lines = (d / "episodes.csv").read_text().splitlines()
    (d / "episodes.csv").write_text("\n".join(lines + [lines[1]]) + "\n")
    with pytest.raises(RecordsError, match="duplicate"):
        RunSet.load([str(d)])


def test_other_records_version_is_refused(tmp_path):
    d = _run(tmp_path)
    man = json.loads((d / "manifest.json").read_text())
    (d / "manifest.json").write_text(json.dumps({**man, "records_version": 99}))
    with pytest.raises(RecordsError, match="records version 99"):
        RunSet.load([str(d)])


def test_missing_baseline_gives_na_and_a_footnote_never_a_guess(tmp_path):
    _run(tmp_path, "base-spatial", pruner="none", lat=100.0)
    _run(tmp_path, "sparse-spatial", pruner="sparsevlm")
    _run(tmp_path, "sparse-goal", pruner="sparsevlm", suite="libero_goal")
    text = report([str(tmp_path)], "md", plots=False)
    table1 = text.split("### SpecPrune-VLA Table 1")[1].split("###")[0]
    row = next(line for line in table1.splitlines() if line.startswith("| SparseVLM"))
    assert "80.0 / 80.0 (1.25×)" in row            # spatial has its baseline
    assert "80.0 / 80.0 (n/a)" in row              # goal has none
    mark = re.search(r"\[(\d+)\] n/a: no pruner=none run of openvla-oft on libero_goal", text).group(1)
    assert row.startswith(f"| SparseVLM (50%) [{mark}] |")


def test_two_baselines_for_one_suite_are_not_guessed_between(tmp_path):
    _run(tmp_path, "base-a", pruner="none")
    _run(tmp_path, "base-b", pruner="none")
    _run(tmp_path, "fastv")
    rs = RunSet.load([str(tmp_path)])
    base, why = rs.baseline("openvla-oft", "libero_spatial")
    assert base is None and "several pruner=none runs" in why and "base-a" in why


def test_glob_and_default_directory_find_runs(tmp_path, monkeypatch):
    _run(tmp_path / "results", "a", pruner="none")
    _run(tmp_path / "results", "b")
    assert len(RunSet.load([str(tmp_path / "results" / "*")]).runs) == 2
    monkeypatch.chdir(tmp_path)
    assert len(RunSet.load(None).runs) == 2
    with pytest.raises(ConfigError):
        RunSet.load([str(tmp_path / "missing")])


def test_incomplete_run_and_deviations_are_footnoted(tmp_path):
    _run(tmp_path, "base", pruner="none", status="interrupted",
         deviations=["suite.tasks=[0] selects 1 of 10 tasks"])
    text = report([str(tmp_path)], "md", plots=False)
    assert "base: run interrupted, 10 episodes so far" in text
    assert "deviation: suite.tasks=[0] selects 1 of 10 tasks" in text


def test_a_method_config_per_retention_is_one_method(tmp_path):
    plugin = {"plugin": "vlabench.pruners.vla_pruner:VLAPruner"}
    _run(tmp_path, "base", pruner="none")
    _run(tmp_path, "vp25", pruner="vla-pruner-25", retention=0.25, pruner_cfg=plugin)
    _run(tmp_path, "vp50", pruner="vla-pruner", retention=0.5, pruner_cfg=plugin)
    text = report([str(tmp_path)], "md", plots=False)
    table = text.split("### VLA-Pruner Table 1")[1]
    assert "| VLA-Pruner | 80.0 (100.0%)" in table.split("*Retain 25% tokens*")[1]
    assert "vla-pruner-25" not in table
