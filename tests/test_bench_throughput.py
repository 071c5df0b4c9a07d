"""`vlabench bench bench.throughput=true`: calls/s per batch size through the batched forward,
and its bad inputs (issue 22 item 5)."""

from __future__ import annotations

import json

import pytest
from conftest import run_cli

pytestmark = pytest.mark.slow


def test_throughput_prints_calls_per_second_for_every_batch_size(tmp_path):
    out = tmp_path / "t.json"
    res = run_cli("bench", "model=openvla-oft-tiny", "pruner=fastv", "bench.throughput=true",
                  "bench.calls=1", "bench.batches=[1,2,3]", f"bench.out={out}", f"run.output_dir={tmp_path}")
    assert res.returncode == 0, res.stderr[-2000:]
    r = json.loads(out.read_text())
    assert [row["batch"] for row in r["throughput"]] == [1, 2, 3]
    assert all(row["calls_per_s"] > 0 for row in r["throughput"])
    assert r["throughput"][0]["vs_batch_1"] == 1.0
    assert all(row["tokens_kept_mean"] < 512 for row in r["throughput"])   # FastV pruned in every lane
    assert "calls/s" in res.stdout and "not the per-call latency" in res.stdout
    saved = tmp_path / "throughput" / "openvla-oft-tiny+fastv+cpu.json"   # the record `vlabench plan` reads
    assert json.loads(saved.read_text()) == r and f"saved {saved}" in res.stderr


@pytest.mark.parametrize(("args", "message"), [
    (["model=openvla-oft-tiny", "bench.batches=[0,2]"], "bench.batches=[0, 2] is invalid"),
    (["model=openvla-oft", "model.checkpoint=null"], "bench.throughput=true times real calls"),
    (["model=oracle"], "oracle reads the live simulator"),
])
def test_bad_throughput_inputs_are_one_line_exit_2(args, message):
    res = run_cli("bench", "bench.throughput=true", "bench.calls=1", *args)
    assert res.returncode == 2, res.stderr[-2000:]
    last = res.stderr.strip().splitlines()[-1]
    assert last.startswith("vlabench: error: ") and message in last, res.stderr
