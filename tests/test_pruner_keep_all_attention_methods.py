"""FastV and VLA-Pruner at full retention are the unpruned model, bit for bit, under both
readings and on both models (their per-camera pools and scoring layers included)."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from vlabench.models.build import build_openvla, build_openvla_oft  # noqa: E402
from vlabench.models.synthetic import synthetic_observation  # noqa: E402
from vlabench.pruners.base import Pruner  # noqa: E402
from vlabench.pruners.fastv import FastV  # noqa: E402
from vlabench.pruners.vla_pruner import VLAPruner  # noqa: E402

pytestmark = pytest.mark.slow
CFG = {"size": "tiny", "threads": 2, "warmup_calls": 0}
BUILDERS = {"openvla-oft": build_openvla_oft, "openvla": build_openvla}


@pytest.mark.parametrize("model", ["openvla-oft", "openvla"])
@pytest.mark.parametrize("reading", ["code", "paper"])
def test_full_retention_fastv_and_vla_pruner_equal_the_unpruned_model(model, reading):
    obs = [synthetic_observation(s) for s in (10, 11, 12)]
    base = BUILDERS[model](CFG, pruner=Pruner(), device="cpu")
    expected = [base.act(o).actions for o in obs]
    for pruner in (FastV({"k": 2, "retention": 1.0, "reading": reading}),
                   VLAPruner({"prune_layer": 2, "window": 2, "retention": 1.0, "reading": reading})):
        policy = BUILDERS[model](CFG, pruner=pruner, device="cpu")
        pruner.reset()
        for o, want in zip(obs, expected):       # VLA-Pruner selects from the third call on
            assert np.array_equal(policy.act(o).actions, want), (type(pruner).__name__, model)
