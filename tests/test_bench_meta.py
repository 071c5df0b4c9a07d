"""`vlabench bench` on the meta device (full size without a GPU) answers in about a minute: it
makes bench.meta_calls calls (FLOPs and token counts are deterministic there) instead of
bench.calls, reports every call as it goes, marks each figure measured / counted / analytic,
and an interrupted bench does not claim there is anything to resume."""

from __future__ import annotations

import json
import signal
import subprocess

import pytest
from conftest import ROOT, cli_env, default_sigint, run_cli, vlabench_cmd

pytest.importorskip("torch")


@pytest.mark.slow
def test_meta_bench_makes_meta_calls_with_progress_and_marked_figures(tmp_path):
    out = tmp_path / "b.json"
    res = run_cli("bench", "model=openvla-oft", "model.checkpoint=null", "pruner=fastv",
                  "pruner.retention=0.25", f"bench.out={out}")
    assert res.returncode == 0, res.stderr[-2000:]
    r = json.loads(out.read_text())
    assert r["device"] == "meta" and r["calls"] == 2 and r["model_calls"] == 2
    assert r["flops_source"].startswith("analytic")
    for line in ("fastv: call 1/2", "fastv: call 2/2", "none: call 2/2", "twin (token counts): call 2/2",
                 "2 call(s) instead of bench.calls=20"):
        assert line in res.stderr, (line, res.stderr)
    rows = [ln for ln in res.stdout.splitlines()
            if ln.startswith("│") and ("TFLOPs / call" in ln or "visual tokens kept" in ln)]
    assert len(rows) == 2 and "analytic" in rows[0] and "counted" in rows[1], res.stdout
    assert "published" in res.stdout and "latency" not in res.stdout.lower().split("meta device")[0]


def test_an_explicit_meta_calls_value_is_checked():
    res = run_cli("bench", "model=openvla-oft-tiny", "bench.meta_calls=0")
    assert res.returncode == 2 and "bench.meta_calls" in res.stderr


def test_an_interrupted_bench_says_nothing_about_resuming(tmp_path):
    proc = subprocess.Popen(vlabench_cmd("bench", "model=openvla-oft-tiny", "pruner=none", "bench.calls=200",
                                         "bench.baseline=false"),
                            stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=cli_env(), cwd=ROOT,
                            preexec_fn=default_sigint)
    try:
        seen = []
        for line in proc.stderr:   # per-call progress: the bench is in its calls
            seen.append(line)
            if ": call 3/200" in line:
                proc.send_signal(signal.SIGINT)
                break
        rest = proc.stderr.read()
        rc = proc.wait(timeout=120)
    finally:
        proc.kill()
    assert rc == 130, "".join(seen) + rest
    assert "interrupted" in rest and "resume" not in rest and "saved" not in rest, rest
