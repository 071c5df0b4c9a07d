"""VLA-Pruner Table 3 / App. B.3 baselines (VTW, FitPrune, HoloV, EfficientVLA w/o layer) set to
keep everything are the unpruned model, bit for bit, under both readings and on both models
(EfficientVLA's calibration probes included: with layers_kept = 32 it no longer calibrates)."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from vlabench.models.build import build_openvla, build_openvla_oft  # noqa: E402
from vlabench.models.synthetic import synthetic_observation  # noqa: E402
from vlabench.pruners.base import Pruner  # noqa: E402
from vlabench.pruners.efficientvla import EfficientVLA  # noqa: E402
from vlabench.pruners.fitprune import FitPrune  # noqa: E402
from vlabench.pruners.holov import HoloV  # noqa: E402
from vlabench.pruners.vtw import VTW  # noqa: E402

pytestmark = pytest.mark.slow
CFG = {"size": "tiny", "threads": 2, "warmup_calls": 0}
BUILDERS = {"openvla-oft": build_openvla_oft, "openvla": build_openvla}


def keep_all(reading: str) -> list[Pruner]:
    return [VTW({"k": 32, "reading": reading}),                 # withdrawal after the last layer
            FitPrune({"scheme": [0] * 32, "reading": reading}),  # a recipe that removes nothing
            HoloV({"retention": 1.0, "reading": reading}),
            EfficientVLA({"retention": 1.0, "layers_kept": 32, "reading": reading}),
            # calibrates (all-layer probes on call 0 or 1) but no layer passes the threshold
            EfficientVLA({"retention": 1.0, "layers_kept": 28, "similarity_threshold": 2.0,
                          "reading": reading})]


@pytest.mark.parametrize("model", ["openvla-oft", "openvla"])
@pytest.mark.parametrize("reading", ["code", "paper"])
def test_keep_all_table3_baselines_equal_the_unpruned_model(model, reading):
    obs = [synthetic_observation(s) for s in (10, 11)]
    base = BUILDERS[model](CFG, pruner=Pruner(), device="cpu")
    expected = [base.act(o).actions for o in obs]
    for pruner in keep_all(reading):
        policy = BUILDERS[model](CFG, pruner=pruner, device="cpu")
        pruner.reset()
        for o, want in zip(obs, expected):
            assert np.array_equal(policy.act(o).actions, want), (type(pruner).__name__, model)
