"""Records that are wrong never look right: disk full, torn and edited records, resume repairs
exactly the uncommitted tail, and report/compare refuse what they cannot verify."""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
import sys

import pytest
from conftest import ROOT, cli_env, run_cli

from vlabench.core.errors import ConfigError
from vlabench.core.schema import CALL_COLUMNS, EPISODE_COLUMNS
from vlabench.launch.compose import compose
from vlabench.records.files import (
    DiskFullError,
    RecordsError,
    RunFiles,
    atomic_write_text,
    format_rows,
    read_rows,
)
from vlabench.report.runs import RunSet
from vlabench.run.runner import run_from_config

FAST = ["model=test-zero", "suite=test-fast", "run.quiet=true"]


def fast_run(out, *extra):
    cfg = compose([*FAST, f"run.output_dir={out}", "run.name=r", *extra])
    return run_from_config(cfg)


def keys(d) -> list[tuple[str, str]]:
    return [(r["task_id"], r["episode"]) for r in read_rows(d / "episodes.csv", EPISODE_COLUMNS)]


def fail_writes_to(name: str, after: int, monkeypatch) -> None:
    """os.write to records file `name` raises ENOSPC from its `after`-th call on."""
    real, count = os.write, {"n": 0}

    def fake(fd, data):
        if os.readlink(f"/proc/self/fd/{fd}").endswith(name):
            count["n"] += 1
            if count["n"] > after:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(fd, data)

    monkeypatch.setattr(os, "write", fake)


# ---- 3. disk full -----------------------------------------------------------------------------

def test_disk_full_stops_with_one_line_keeps_finished_episodes_and_resumes(tmp_path, monkeypatch):
    fail_writes_to("calls.csv", 2, monkeypatch)
    with pytest.raises(DiskFullError) as e:
        fast_run(tmp_path)
    line = str(e.value)
    assert "\n" not in line and line.startswith(f"disk full: writing {tmp_path / 'r' / 'calls.csv'} needs ")
    assert "bytes free" in line and "re-run the same command to resume" in line
    d = tmp_path / "r"
    assert keys(d) == [("0", "0"), ("0", "1")]                      # the two finished episodes
    assert json.loads((d / "manifest.json").read_text())["status"] == "interrupted"
    assert (d / "calls.csv").read_bytes().endswith(b"\n") and not list(d.glob(".*.tmp"))
    monkeypatch.undo()
    fast_run(tmp_path)
    assert sorted(keys(d)) == [(str(t), str(e)) for t in range(2) for e in range(3)]
    RunSet.load([str(d)])                                          # the records verify


def test_disk_full_from_the_cli_is_one_line_and_exit_2(tmp_path):
    code = ("import errno, os, sys\n"
            "real = os.write\n"
            "def fake(fd, data):\n"
            "    if os.readlink(f'/proc/self/fd/{fd}').endswith('episodes.csv'):\n"
            "        raise OSError(errno.ENOSPC, 'No space left on device')\n"
            "    return real(fd, data)\n"
            "os.write = fake\n"
            "from vlabench.commands.cli import main\n"
            f"sys.argv = ['vlabench', 'run', *{FAST!r}, 'run.output_dir={tmp_path}']\n"
            "main()\n")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=cli_env(), cwd=ROOT)
    assert res.returncode == 2
    errs = [ln for ln in res.stderr.splitlines() if not ln.startswith("[vlabench]")]
    assert len(errs) == 1 and errs[0].startswith("vlabench: error: disk full: writing ") and "episodes.csv" in errs[0]


def test_a_whole_file_write_that_runs_out_of_space_keeps_the_old_file_and_no_temporary(tmp_path, monkeypatch):
    f = tmp_path / "manifest.json"
    f.write_text("old")

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(DiskFullError, match="manifest.json needs 3 more bytes"):
        atomic_write_text(f, "new")
    assert f.read_text() == "old" and sorted(p.name for p in tmp_path.iterdir()) == ["manifest.json"]


# ---- 3d. torn rows, emptied files, temporaries ---------------------------------------------

def _two_episodes(tmp_path):
    files = RunFiles(tmp_path)
    files.open()
    for ep in range(2):
        files.append_episode(_ep(ep), _calls(ep))
    return files.digest()


def _ep(ep: int) -> dict:
    return {"run_id": "r", "model": "m", "pruner": "none", "suite": "s", "task_id": 0,
            "task_name": "t", "episode": ep, "success": 1, "steps": 2, "policy_calls": 2}


def _calls(ep: int) -> list[dict]:
    return [{"task_id": 0, "episode": ep, "call": i, "step": i, "source": "model", "lat_total_ms": 1.0}
            for i in range(2)]


def test_a_committed_row_missing_its_final_newline_is_repaired_not_glued(tmp_path):
    digest = _two_episodes(tmp_path)
    e = tmp_path / "episodes.csv"
    e.write_bytes(e.read_bytes()[:-1])                  # an editor dropped the final newline
    files = RunFiles(tmp_path)
    assert files.open(digest) == {(0, 0), (0, 1)}
    assert any("missing final newline" in r for r in files.repairs)
    files.append_episode(_ep(2), _calls(2))
    assert [r["episode"] for r in read_rows(e, EPISODE_COLUMNS)] == ["0", "1", "2"]


def test_an_uncommitted_torn_tail_is_dropped_exactly(tmp_path):
    digest = _two_episodes(tmp_path)
    c, e = tmp_path / "calls.csv", tmp_path / "episodes.csv"
    committed_calls, committed_eps = c.read_bytes(), e.read_bytes()
    layout = c.read_text().splitlines()[0].split(",")   # the run's own calls.csv columns
    with open(c, "ab") as f:                            # episode 2's calls, the last one torn
        f.write(format_rows(layout, _calls(2), header=False).encode()[:-9])
    with open(e, "ab") as f:                            # and half its episode row
        f.write(format_rows(EPISODE_COLUMNS, [_ep(2)], header=False).encode()[:20])
    files = RunFiles(tmp_path)
    assert files.open(digest) == {(0, 0), (0, 1)}
    assert c.read_bytes() == committed_calls and e.read_bytes() == committed_eps
    assert files.digest() == digest


def test_without_a_digest_a_last_line_without_newline_counts_as_uncommitted(tmp_path):
    _two_episodes(tmp_path)
    e = tmp_path / "episodes.csv"
    e.write_bytes(e.read_bytes()[:-1])
    assert RunFiles(tmp_path).open() == {(0, 0)}        # episode 1 is re-run, never glued
    assert [r["episode"] for r in read_rows(tmp_path / "calls.csv", CALL_COLUMNS)] == ["0", "0"]


@pytest.mark.parametrize("damage,message", [
    (lambda d: (d / "episodes.csv").write_text(""), "episodes.csv was emptied"),
    (lambda d: (d / "calls.csv").write_text(""), "calls.csv was emptied"),
    (lambda d: (d / "episodes.csv").write_text((d / "episodes.csv").read_text().replace(",1,2,2,", ",0,2,2,", 1)),
     "episodes.csv was edited"),
    (lambda d: (d / "episodes.csv").write_bytes(b"\x89PNG\x00\xff" * 50), "episodes.csv was"),
])
def test_damaged_committed_records_refuse_to_resume(tmp_path, damage, message):
    digest = _two_episodes(tmp_path)
    damage(tmp_path)
    with pytest.raises(RecordsError, match=message):
        RunFiles(tmp_path).open(digest)


def test_a_duplicated_episode_row_refuses_to_resume(tmp_path):
    _two_episodes(tmp_path)
    e = tmp_path / "episodes.csv"
    lines = e.read_text().splitlines(keepends=True)
    e.write_text("".join(lines + [lines[1]]))
    with pytest.raises(RecordsError, match=r"episodes.csv:4: task 0 episode 0 is recorded twice \(first on line 2\)"):
        RunFiles(tmp_path).open()


def test_calls_rows_removed_for_a_committed_episode_refuse_to_resume(tmp_path):
    _two_episodes(tmp_path)
    c = tmp_path / "calls.csv"
    lines = c.read_text().splitlines(keepends=True)
    c.write_text("".join(lines[:1] + lines[3:]))
    with pytest.raises(RecordsError, match="0 rows for task 0 episode 0 but episodes.csv records policy_calls=2"):
        RunFiles(tmp_path).open()


def test_resume_cleans_temporaries_and_repairs_a_missing_newline_end_to_end(tmp_path):
    fast_run(tmp_path)
    d = tmp_path / "r"
    (d / ".calls.csv.999999.tmp").write_text("half")
    (d / ".manifest.json.999998.tmp").write_text("half")
    e = d / "episodes.csv"
    e.write_bytes(e.read_bytes()[:-1])
    fast_run(tmp_path)
    assert not list(d.glob(".*.tmp"))
    assert e.read_bytes().endswith(b"\n") and len(keys(d)) == 6
    RunSet.load([str(d)])


# ---- 4. resume and report verify what they read ----------------------------------------------

def test_a_hand_edited_finished_run_is_refused_on_resume_and_in_the_report(tmp_path):
    fast_run(tmp_path)
    d = tmp_path / "r"
    e = d / "episodes.csv"
    text = e.read_text().splitlines(keepends=True)
    row = text[2].split(",")
    row[9] = "1" if row[9] == "0" else "0"              # flip a success
    e.write_text("".join(text[:2] + [",".join(row)] + text[3:]))
    with pytest.raises(RecordsError, match="episodes.csv was edited"):
        fast_run(tmp_path)
    with pytest.raises(RecordsError, match="episodes.csv was edited"):
        RunSet.load([str(d)])


def test_a_moved_run_directory_resumes(tmp_path):
    fast_run(tmp_path / "a", "run.episodes_per_task=1")
    (tmp_path / "b").mkdir()
    shutil.move(tmp_path / "a" / "r", tmp_path / "b" / "r")
    res = run_cli("run", *FAST, f"run.output_dir={tmp_path / 'b'}", "run.name=r", "run.episodes_per_task=1")
    assert res.returncode == 0, res.stderr
    assert "2/2 episodes already done" in res.stderr
    RunSet.load([str(tmp_path / "b" / "r")])


def test_an_edited_manifest_or_config_is_refused_on_resume(tmp_path):
    fast_run(tmp_path, "run.episodes_per_task=1")
    d = tmp_path / "r"
    m = d / "manifest.json"
    good = m.read_text()
    m.write_text(good.replace('"status": "complete"', '"status": "interrupted"'))
    with pytest.raises(RecordsError, match="manifest.json was edited by hand"):
        fast_run(tmp_path, "run.episodes_per_task=1")
    m.write_text(good)
    cfg = d / "config.yaml"
    cfg.write_text(cfg.read_text().replace("max_steps: 4", "max_steps: 60", 1))
    with pytest.raises(RecordsError, match="config.yaml was edited"):
        fast_run(tmp_path, "run.episodes_per_task=1")


def _damage(d, how):
    if how == "calls.csv deleted":
        (d / "calls.csv").unlink()
    elif how == "one episode's calls removed":
        lines = (d / "calls.csv").read_text().splitlines(keepends=True)
        (d / "calls.csv").write_text("".join(ln for ln in lines if not ln.startswith("0,1,")))
    elif how == "config.yaml edited":
        (d / "config.yaml").write_text((d / "config.yaml").read_text().replace("seed: 7", "seed: 8"))
    elif how == "config.yaml deleted":
        (d / "config.yaml").unlink()
    elif how == "manifest status edited":
        man = json.loads((d / "manifest.json").read_text())
        (d / "manifest.json").write_text(json.dumps({**man, "status": "running"}))
    elif how == "missing final newline":
        (d / "calls.csv").write_bytes((d / "calls.csv").read_bytes()[:-1])
    elif how == "row appended":
        lines = (d / "episodes.csv").read_text().splitlines(keepends=True)
        (d / "episodes.csv").write_text("".join(lines) + lines[-1].replace(",2,", ",7,", 1))
    elif how.startswith("binary "):
        (d / how.split()[1]).write_bytes(bytes(range(256)) * 4)


DAMAGE = {
    "calls.csv deleted": "calls.csv is missing",
    "one episode's calls removed": "calls.csv",
    "config.yaml edited": "config.yaml was edited",
    "config.yaml deleted": "config.yaml is missing",
    "manifest status edited": "manifest.json was edited by hand",
    "missing final newline": "calls.csv",
    "row appended": "episodes.csv",
    "binary episodes.csv": "episodes.csv",
    "binary calls.csv": "calls.csv",
    "binary manifest.json": "manifest.json: not UTF-8",
    "binary config.yaml": "config.yaml",
}


@pytest.mark.parametrize("how", sorted(DAMAGE))
def test_report_refuses_damaged_records_in_one_line(tmp_path, how):
    fast_run(tmp_path)
    d = tmp_path / "r"
    _damage(d, how)
    with pytest.raises((RecordsError, ConfigError), match=DAMAGE[how]):
        RunSet.load([str(d)])


@pytest.mark.parametrize("how", ["calls.csv deleted", "one episode's calls removed", "binary calls.csv",
                                 "manifest status edited"])
def test_compare_never_passes_a_run_it_cannot_verify(tmp_path, how):
    fast_run(tmp_path / "base")
    fast_run(tmp_path / "new")
    _damage(tmp_path / "new" / "r", how)
    res = run_cli("compare", str(tmp_path / "base" / "r"), str(tmp_path / "new" / "r"))
    assert res.returncode == 2 and "OK" not in res.stdout
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("vlabench: error: ") and "Traceback" not in res.stderr


def test_a_deleted_manifest_refuses_to_resume_finished_episodes(tmp_path):
    fast_run(tmp_path, "run.episodes_per_task=1")
    (tmp_path / "r" / "manifest.json").unlink()
    with pytest.raises(RecordsError, match="manifest.json is missing but episodes.csv holds finished episodes"):
        fast_run(tmp_path, "run.episodes_per_task=1")
