"""Simulator chatter (the vlabench.sim logger, Python warnings) goes to <run dir>/sim.log, never
to the terminal, from the main process and from environment workers; a resume keeps the file,
run.overwrite deletes it; sim.log, videos/ and tensorboard/ do not make a run directory foreign."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from vlabench.core.errors import ConfigError
from vlabench.launch.compose import compose
from vlabench.run.runner import run_from_config


def run(out: Path, *extra: str) -> Path:
    run_from_config(compose(["model=test-zero", "suite=test-video", f"run.output_dir={out}",
                             "run.name=r", "run.quiet=true", *extra]))
    return out / "r"


def test_chatter_and_warnings_go_to_sim_log_not_the_terminal(tmp_path, capfd):
    d = run(tmp_path)
    out, err = capfd.readouterr()
    text = (d / "sim.log").read_text()
    for task in (0, 1):
        assert f"test-video: [info] test chatter building task {task}" in text
        assert f"UserWarning: test simulator warning for task {task}" in text
    assert "test chatter" not in out + err and "test simulator warning" not in out + err
    assert f"4 simulator/library messages in {d / 'sim.log'}" in err


def test_environment_workers_append_their_chatter_to_the_same_sim_log(tmp_path):
    d = run(tmp_path, "run.env_workers=2")
    lines = (d / "sim.log").read_text().splitlines()
    chatter = [ln for ln in lines if "test chatter building task" in ln]
    assert {ln[-1] for ln in chatter} == {"0", "1"}   # (a worker may take over part of a task)
    pids = {ln.split(" pid ")[1].split()[0] for ln in chatter}
    assert str(os.getpid()) not in pids   # written by the workers, which built the environments


def test_a_resume_keeps_sim_log_and_overwrite_deletes_it(tmp_path):
    d = run(tmp_path, "run.episodes_per_task=1")
    with open(d / "sim.log", "a") as f:
        f.write("MARKER\n")
    run(tmp_path, "run.episodes_per_task=2")   # grows the run: appends
    text = (d / "sim.log").read_text()
    assert "MARKER" in text and text.index("MARKER") < text.rindex("test chatter")
    run(tmp_path, "run.episodes_per_task=2", "run.overwrite=true")
    assert "MARKER" not in (d / "sim.log").read_text()


def test_overwrite_deletes_only_what_vlabench_wrote_in_its_folders(tmp_path):
    d = run(tmp_path, "run.video=all")
    assert len(list((d / "videos").glob("*.mp4"))) == 6
    run(tmp_path, "run.overwrite=true")   # videos off now: the old ones go
    assert not (d / "videos").exists()
    run(tmp_path, "run.video=all", "run.overwrite=true")
    (d / "videos" / "notes.txt").write_text("mine")
    (d / "tensorboard").mkdir()
    (d / "tensorboard" / "events.out.tfevents.1.host.1.0").write_bytes(b"x")
    run(tmp_path, "run.overwrite=true")
    assert sorted(os.listdir(d / "videos")) == ["notes.txt"]
    assert not (d / "tensorboard").exists()


def test_a_directory_with_only_a_user_file_is_still_refused(tmp_path):
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "sim.log").write_text("x")
    (tmp_path / "r" / "mine.txt").write_text("x")
    with pytest.raises(ConfigError, match="not a vlabench run directory"):
        run(tmp_path)
