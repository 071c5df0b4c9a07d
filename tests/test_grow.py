"""Growing a run: more episodes per task or more tasks extend a run directory; it never shrinks."""

from __future__ import annotations

import json

import pytest
from omegaconf import OmegaConf

from vlabench.core.errors import ConfigError
from vlabench.core.schema import EPISODE_COLUMNS
from vlabench.launch.compose import compose
from vlabench.records import resume
from vlabench.records.files import read_rows, sha256
from vlabench.run.runner import run_from_config

FAST = ["model=test-zero", "suite=test-fast", "run.quiet=true"]
TIMING = {"wall_s", "sim_s", "policy_s"}


def fast_cfg(out, *extra):
    return compose([*FAST, f"run.output_dir={out}", *extra])


def episodes(run_dir) -> list[dict]:
    rows = read_rows(run_dir / "episodes.csv", EPISODE_COLUMNS)
    return sorted(({k: v for k, v in r.items() if k not in TIMING} for r in rows),
                  key=lambda r: (int(r["task_id"]), int(r["episode"])))


def only_dir(out):
    (d,) = [p for p in out.iterdir() if p.is_dir()]
    return d


def check_manifest(run_dir):
    info = json.loads((run_dir / "manifest.json").read_text())
    assert info["config_sha256"] == sha256((run_dir / "config.yaml").read_bytes())
    assert info["status"] == "complete"
    return info


@pytest.mark.parametrize("small, big", [
    (["run.episodes_per_task=1"], ["run.episodes_per_task=2"]),
    (["suite.tasks=[0]", "run.episodes_per_task=2"], ["suite.tasks=[0,1]", "run.episodes_per_task=2"]),
])
def test_grown_run_equals_the_run_done_at_once(tmp_path, small, big):
    run_from_config(fast_cfg(tmp_path / "grown", *small))
    d = only_dir(tmp_path / "grown")
    before = episodes(d)
    run_from_config(fast_cfg(tmp_path / "grown", *big))
    assert only_dir(tmp_path / "grown") == d          # the same directory: the default name ignores growth
    run_from_config(fast_cfg(tmp_path / "once", *big))
    grown, once = episodes(d), episodes(only_dir(tmp_path / "once"))
    assert grown == once and len(grown) > len(before) and all(r in grown for r in before)
    info = check_manifest(d)
    assert sum(info["episodes_per_task"].values()) == len(once)
    saved = OmegaConf.load(d / "config.yaml")
    assert all(str(OmegaConf.select(saved, k)).replace(" ", "") == v
               for k, _, v in (o.partition("=") for o in big))


def test_shrinking_is_refused_and_changes_nothing(tmp_path):
    run_from_config(fast_cfg(tmp_path, "run.name=r", "suite.tasks=[0,1]", "run.episodes_per_task=2"))
    d = tmp_path / "r"
    files = {p.name: p.read_bytes() for p in d.iterdir() if p.is_file() and p.name != ".vlabench.lock"}
    for smaller in (["suite.tasks=[0,1]", "run.episodes_per_task=1"],
                    ["suite.tasks=[1]", "run.episodes_per_task=2"]):
        with pytest.raises(ConfigError, match=r"holds 2 episodes per task of tasks \[0, 1\]; "
                                              r"a run directory only grows"):
            run_from_config(fast_cfg(tmp_path, "run.name=r", *smaller))
    assert {p.name: p.read_bytes() for p in d.iterdir() if p.is_file() and p.name != ".vlabench.lock"} == files


def test_episode_defining_change_is_still_refused_by_name(tmp_path):
    run_from_config(fast_cfg(tmp_path, "run.name=r", "run.episodes_per_task=1"))
    with pytest.raises(ConfigError, match=r"different config \(run.seed\)"):
        run_from_config(fast_cfg(tmp_path, "run.name=r", "run.episodes_per_task=2", "run.seed=8"))


def test_null_episodes_means_the_protocol_count(tmp_path):
    """test-fast's protocol runs 3 episodes per task: null and 3 hold the same episodes."""
    run_from_config(fast_cfg(tmp_path, "run.name=r", "suite.tasks=[0]"))
    before = episodes(tmp_path / "r")
    run_from_config(fast_cfg(tmp_path, "run.name=r", "suite.tasks=[0]", "run.episodes_per_task=3"))
    assert episodes(tmp_path / "r") == before and len(before) == 3
    with pytest.raises(ConfigError, match="only grows"):
        run_from_config(fast_cfg(tmp_path, "run.name=r", "suite.tasks=[0]", "run.episodes_per_task=2"))


def test_killed_right_after_config_rewrite_still_resumes(tmp_path):
    """config.yaml rewritten, the runner's manifest not yet: the grown digest verifies."""
    run_from_config(fast_cfg(tmp_path, "run.name=r", "run.episodes_per_task=1"))
    big = fast_cfg(tmp_path, "run.name=r", "run.episodes_per_task=2")
    _, _, claim = resume.prepare_run_dir(big)
    claim.close()                                     # as if killed here
    info = json.loads((tmp_path / "r" / "manifest.json").read_text())
    assert info["config_sha256"] != sha256((tmp_path / "r" / "config.yaml").read_bytes())
    run_from_config(big)
    run_from_config(fast_cfg(tmp_path / "once", "run.name=r", "run.episodes_per_task=2"))
    assert episodes(tmp_path / "r") == episodes(tmp_path / "once" / "r")
    assert resume.GROWN_SHA not in check_manifest(tmp_path / "r")
