"""scripts/gpu_check.sh --dry-run: the prepared GPU check runs its every section on the CPU with
the tiny models, so the script a lent GPU runs cannot rot (issue 22)."""

from __future__ import annotations

import subprocess

import pytest
from conftest import ROOT

pytestmark = [pytest.mark.slow, pytest.mark.libero]


def test_the_gpu_check_dry_run_prints_every_section():
    res = subprocess.run(["bash", str(ROOT / "scripts" / "gpu_check.sh"), "--dry-run"], cwd=ROOT,
                         capture_output=True, text=True, timeout=1800)
    assert res.returncode == 0, res.stderr[-3000:]
    out = res.stdout
    for heading in ("openvla-oft-tiny: latency per call", "openvla-oft-tiny pruner=none: calls/s by batch",
                    "pruner=fastv pruner.retention=0.25: calls/s", "pi0-tiny: latency per call",
                    "pi0-tiny pruner=none: calls/s", "LIBERO steps/s", "gpu check: done"):
        assert heading in out, out
    assert "pruner=specprune" in out and "batch   2:" in out and " 2 worker(s):" in out
