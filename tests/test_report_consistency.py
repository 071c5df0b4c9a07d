"""Issue 23 item 13: the command line says the same thing everywhere. `--format markdown`; `run
--help` names every run.* setting the README uses; one success-rate unit (a fraction) in
summary.csv, runs.csv and report csv/json; compare's refusal of two methods points to report;
"did you mean" for plugin names; run.smoke; the oracle refuses tasks beyond it up front."""

from __future__ import annotations

import json
import re

import pandas as pd
import pytest
from conftest import ROOT
from omegaconf import OmegaConf
from report_helpers import make_run, suite_tasks
from typer.testing import CliRunner

from vlabench.commands.cli import app, run_keys
from vlabench.core.errors import ConfigError
from vlabench.launch.compose import compose
from vlabench.metrics.summary import load_run_frames, summarize
from vlabench.report.build import report
from vlabench.report.compare import compare


def _run(root, name="fastv-spatial", pruner="fastv", k=7, retention=0.5):
    d = make_run(root, name, model="openvla-oft", pruner=pruner, suite="libero_spatial",
                 retention=retention, tasks=suite_tasks(k, 10, 2, latency_ms=80.0))
    eps, calls = load_run_frames(d)
    (d / "summary.csv").write_text(summarize(eps, calls).to_csv(index=False))
    return d


def test_markdown_is_md(tmp_path):
    _run(tmp_path)
    assert report([str(tmp_path)], "markdown", plots=False) == report([str(tmp_path)], "md", plots=False)
    with pytest.raises(ConfigError, match="unknown format 'mdx'; choose one of md, latex"):
        report([str(tmp_path)], "mdx", plots=False)


def test_run_help_names_every_run_setting_of_the_readme():
    readme = {f"run.{k}" for k in re.findall(r"\brun\.([a-z_]+)\b", (ROOT / "README.md").read_text())}
    readme -= {"run.py", "run.episodes"}   # a file name; the README's example of a mistyped key
    assert {"run.video", "run.logger", "run.shards", "run.smoke"} <= readme
    assert readme <= set(run_keys())
    text = " ".join(CliRunner().invoke(app, ["run", "--help"], terminal_width=200).output.split())
    missing = [k for k in sorted(readme) if f"{k} " not in text and f"{k};" not in text]
    assert not missing


def test_success_rate_is_one_fraction_in_summary_runs_csv_and_the_tidy_report(tmp_path):
    d = _run(tmp_path / "runs", k=7)
    _run(tmp_path / "runs", "none-spatial", "none", k=9, retention=None)
    out = tmp_path / "rep"
    report([str(tmp_path / "runs")], "csv", out=out, plots=False)
    summary = pd.read_csv(d / "summary.csv").set_index("level").loc["suite"]
    runs = pd.read_csv(out / "runs.csv").set_index("run").loc["fastv-spatial"]
    tidy = pd.read_csv(out / "report.csv")
    row = tidy[(tidy.table == "runs") & (tidy.metric == "success_rate") & (tidy.pruner == "fastv")].iloc[0]
    assert summary.success_rate == runs.success_rate == row.value == 0.7
    assert summary.sr_ci_low == pytest.approx(runs.sr_ci_low) == pytest.approx(row.ci_low)
    assert 0 < runs.sr_ci_low < runs.sr_ci_high < 1
    doc = json.loads(report([str(tmp_path / "runs")], "json", plots=False))
    values = pd.DataFrame(doc["values"], columns=doc["columns"])
    assert values[values.metric == "success_rate"].value.max() <= 1.0
    assert "| 70.0 [" in report([str(tmp_path / "runs")], "md", plots=False)   # tables print percent


def test_compare_of_two_methods_points_to_report(tmp_path):
    _run(tmp_path / "a")
    _run(tmp_path / "b", pruner="sparsevlm")
    with pytest.raises(ConfigError, match=r"differ in pruner .*run `vlabench report .*/a .*/b`"):
        compare(str(tmp_path / "a"), str(tmp_path / "b"))


@pytest.mark.parametrize("override, hint", [("pruner=fastvv", "did you mean fastv?"),
                                            ("model=openvla-ofts", "did you mean openvla-oft?"),
                                            ("suite=libero_spatail", "did you mean libero_spatial?")])
def test_a_mistyped_plugin_name_gets_the_closest_one(override, hint):
    with pytest.raises(ConfigError) as e:
        compose([override])
    assert hint in str(e.value) and "valid:" in str(e.value)


def test_smoke_is_the_first_selected_task_one_episode_and_few_steps():
    cfg = compose(["run.smoke=true", "suite=libero_goal", "suite.tasks=[3,4]"])
    assert list(cfg.suite.tasks) == [3] and cfg.run.episodes_per_task == 1
    assert cfg.run.max_steps == cfg.run.smoke_steps == 16
    cfg = compose(["run.smoke=true", "run.max_steps=8"])
    assert list(cfg.suite.tasks) == [0] and cfg.run.max_steps == 8
    plain = compose([])
    assert plain.suite.get("tasks") is None and plain.run.max_steps is None
    with pytest.raises(ConfigError, match="run.smoke_steps=0 is invalid"):
        compose(["run.smoke=true", "run.smoke_steps=0"])


def test_the_oracle_refuses_the_tasks_whose_goal_it_has_no_plan_for():
    pytest.importorskip("libero")
    from vlabench.models.oracle.policy import check_tasks
    from vlabench.suites.libero_setup import ensure_libero_ready

    ensure_libero_ready()
    import libero.libero.benchmark  # noqa: F401  (loaded by the suite before the policy is built)

    goal = OmegaConf.load(ROOT / "configs" / "suite" / "libero_goal.yaml")
    with pytest.raises(ConfigError) as e:
        check_tasks(goal)   # every task: 0 opens a drawer, 7 turns on the stove
    line = str(e.value)
    assert "cannot solve libero_goal tasks 0, 7" in line and "'open'" in line and "'turnon'" in line
    assert "suite.tasks=[1,2,3,4,5,6,8,9]" in line and "\n" not in line
    goal.tasks = [1, 3, 5]   # pick-and-place goals (3 and 5 it may fail, but it tries)
    check_tasks(goal)
    check_tasks(OmegaConf.load(ROOT / "configs" / "suite" / "libero_object.yaml"))   # all pick-and-place
