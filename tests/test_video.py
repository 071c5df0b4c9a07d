"""run.video: one MP4 per kept episode (steps + 1 frames of agentview with the overlay band),
written after the commit, in-process and by environment workers; none for successes under
`failures`; agentview rendered for a policy that needs no image; an encoding error loses no
episode; the HTML report links the videos."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import numpy as np
import pytest

from vlabench.core.contracts import Observation
from vlabench.core.errors import ConfigError
from vlabench.launch.compose import compose
from vlabench.run import video
from vlabench.run.runner import run_from_config

FAILURES = {"task0_ep1_failure.mp4", "task1_ep1_failure.mp4"}   # test-fast: odd episodes fail


def frames_in(path: Path) -> list[np.ndarray]:
    import cv2

    cap = cv2.VideoCapture(str(path))
    out = []
    while True:
        ok, f = cap.read()
        if not ok:
            break
        out.append(f)
    cap.release()
    return out


def run(out: Path, *extra: str) -> Path:
    run_from_config(compose(["model=test-zero", "suite=test-video", f"run.output_dir={out}",
                             "run.name=r", "run.quiet=true", *extra]))
    return out / "r"


def obs(step: int, size: tuple[int, int] = (48, 64)) -> Observation:
    img = np.zeros((*size, 3), np.uint8)
    img[..., 1] = step
    return Observation("x", step, images={"agentview": img})


def test_frames_are_kept_for_the_episodes_the_mode_keeps():
    for mode, success, kept in (("failures", False, True), ("failures", True, False),
                                ("all", True, True), ("all", False, True)):
        rec = video.EpisodeFrames(mode)
        rec.begin(10)
        rec.add(obs(0), 0, None, None)
        rec.add(obs(1), 1, np.zeros(7), 64)
        got = rec.take(3, 4, success)
        assert (got is not None) == kept and rec.frames == []
        if kept:
            assert got.name == f"task3_ep4_{'success' if success else 'failure'}.mp4"
            assert [f.step for f in got.frames] == [0, 1] and got.frames[1].tokens_kept == 64


def test_the_overlay_names_step_tokens_kept_and_action():
    f = video.Frame(np.zeros((48, 64, 3), np.uint8), 12, np.array([0.5, -0.25, 1.0]), 128)
    assert video.overlay_lines(f, 220) == ("step 12/220  tokens kept 128", "action +0.50 -0.25 +1.00")
    img = video.compose(f, 220)
    assert img.shape == (48 * 6 + video.BAND, 64 * 6, 3)   # upscaled x6 to >= 384 wide, band below
    assert img[48 * 6:].any() and not img[:48 * 6].any()     # text only in the band


@pytest.mark.parametrize("encoder", ["ffmpeg", "opencv"])
def test_a_written_video_has_every_frame(tmp_path, monkeypatch, encoder):
    monkeypatch.setattr(video, "encoder", lambda: encoder)
    frames = [video.Frame(np.full((47, 63, 3), 10 * i, np.uint8), i, None, None) for i in range(9)]
    path = video.write(tmp_path, video.Pending("task0_ep0_failure.mp4", frames, 8))
    assert path == tmp_path / "videos" / "task0_ep0_failure.mp4"
    got = frames_in(path)
    assert len(got) == 9
    h, w = got[0].shape[:2]
    assert h % 2 == 0 and w % 2 == 0 and w >= video.MIN_WIDTH
    assert os.listdir(tmp_path / "videos") == ["task0_ep0_failure.mp4"]   # no temporary left


def test_failures_mode_writes_only_failed_episodes_with_steps_plus_one_frames(tmp_path):
    d = run(tmp_path, "run.video=failures")
    assert set(os.listdir(d / "videos")) == FAILURES
    for name in FAILURES:
        assert len(frames_in(d / "videos" / name)) == 4 + 1   # reset + the 4-step limit
    # test-zero needs no image: agentview was rendered for the video, and the manifest says so
    assert "agentview" in json.loads((d / "manifest.json").read_text())["rendered_cameras"]


def test_all_mode_writes_every_episode(tmp_path):
    d = run(tmp_path, "run.video=all", "suite.tasks=[0]")
    assert set(os.listdir(d / "videos")) == {"task0_ep0_success.mp4", "task0_ep1_failure.mp4",
                                             "task0_ep2_success.mp4"}
    assert len(frames_in(d / "videos" / "task0_ep0_success.mp4")) == 2 + 1   # success at step 2


def test_environment_workers_write_their_episodes_videos(tmp_path):
    d = run(tmp_path, "run.video=failures", "run.env_workers=2")
    assert set(os.listdir(d / "videos")) == FAILURES
    assert all(len(frames_in(d / "videos" / n)) == 5 for n in FAILURES)


def test_no_video_without_run_video_and_no_agentview_rendered(tmp_path):
    d = run(tmp_path)
    assert not (d / "videos").exists()
    assert json.loads((d / "manifest.json").read_text())["rendered_cameras"] == []


def test_an_encoding_error_loses_no_episode(tmp_path, monkeypatch, capsys):
    def broken(path, frames):
        Path(path).write_bytes(b"half")
        raise OSError("disk full")

    monkeypatch.setattr(video, "encoder", lambda: "ffmpeg")
    monkeypatch.setattr(video, "_encode_ffmpeg", broken)
    d = run(tmp_path, "run.video=failures")
    with open(d / "episodes.csv", newline="") as f:
        assert len(list(csv.DictReader(f))) == 6
    assert "could not write the video" in capsys.readouterr().err
    assert os.listdir(d / "videos") == []


def test_an_unknown_video_mode_is_refused():
    with pytest.raises(ConfigError, match="run.video='sometimes' is invalid; valid: none, failures, all"):
        compose(["model=test-zero", "suite=test-video", "run.video=sometimes"])


def test_the_html_report_links_each_runs_videos(tmp_path):
    from vlabench.report.build import report

    d = run(tmp_path / "runs", "run.video=failures")
    out = tmp_path / "rep"
    report([str(d)], fmt="html", out=out, plots=False)
    page = (out / "report.html").read_text()
    assert '<a href="#videos">Videos</a>' in page
    for name in sorted(FAILURES):   # inside the report folder: it plays as an uploaded artefact
        href = f"videos/r/{name}"
        assert f'<a href="{href}">{name}</a>' in page
        assert (out / href).read_bytes() == (d / "videos" / name).read_bytes()
    assert '<video controls preload="metadata" src="videos/r/task0_ep1_failure.mp4">' in page
    report([str(d)], fmt="html", out=out, plots=False)   # again: the same files, no error
    text = report([str(d)], fmt="html", plots=False)   # to stdout: file:// links
    assert (d / "videos" / "task0_ep1_failure.mp4").resolve().as_uri() in text


def test_a_suite_without_agentview_says_so_once_and_writes_nothing(tmp_path, capsys):
    run_from_config(compose(["model=test-zero", "suite=test-fast", f"run.output_dir={tmp_path}",
                             "run.name=r", "run.quiet=true", "run.video=all"]))
    err = capsys.readouterr().err
    assert err.count("run.video: the suite rendered no agentview image") == 1
    assert not (tmp_path / "r" / "videos").exists()
