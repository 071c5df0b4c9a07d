"""Tiny OpenVLA-OFT and OpenVLA complete a short real LIBERO episode through `vlabench run`."""

from __future__ import annotations

import pytest
from conftest import run_cli

from vlabench.core.schema import CALL_COLUMNS, EPISODE_COLUMNS
from vlabench.records.files import read_rows

pytestmark = pytest.mark.libero


@pytest.mark.parametrize("model,calls", [("openvla-oft-tiny", 1), ("openvla-tiny", 8)])
def test_tiny_model_completes_a_real_libero_episode(tmp_path, model, calls):
    res = run_cli("run", f"model={model}", "suite=libero_spatial", "suite.tasks=[0]",
                  "run.episodes_per_task=1", "run.max_steps=8", f"run.output_dir={tmp_path}",
                  "run.quiet=true")
    assert res.returncode == 0, res.stderr[-2000:]
    run_dir = next(tmp_path.glob(f"{model}-none-libero_spatial__*"))
    eps = read_rows(run_dir / "episodes.csv", EPISODE_COLUMNS)
    rows = read_rows(run_dir / "calls.csv", CALL_COLUMNS)
    assert len(eps) == 1 and eps[0]["error_type"] == "", eps[0]["error"]
    assert eps[0]["steps"] == "8" and len(rows) == calls
    n_vis = "512" if model.startswith("openvla-oft") else "256"
    assert all(r["tokens_in"] == n_vis and float(r["flops"]) > 0 for r in rows)
    assert all(float(r["lat_total_ms"]) > 0 and r["lat_llm_ms"] for r in rows)
    assert all(r["warmup"] == "0" for r in rows)   # warm-up calls ran before, unrecorded
