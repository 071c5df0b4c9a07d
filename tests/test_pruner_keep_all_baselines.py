"""FastV, VLA-Pruner, SparseVLM, DivPrune, EfficientVLA and VLA-Cache set to keep everything are
the unpruned model, bit for bit, under both readings and on both models (attention probes,
calibration probes and the position renumbering hook included)."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from vlabench.models.build import build_openvla, build_openvla_oft  # noqa: E402
from vlabench.models.synthetic import synthetic_observation  # noqa: E402
from vlabench.pruners.base import Pruner  # noqa: E402
from vlabench.pruners.divprune import DivPrune  # noqa: E402
from vlabench.pruners.efficientvla import EfficientVLA  # noqa: E402
from vlabench.pruners.fastv import FastV  # noqa: E402
from vlabench.pruners.sparsevlm import SparseVLM  # noqa: E402
from vlabench.pruners.vla_cache import VLACache  # noqa: E402
from vlabench.pruners.vla_pruner import VLAPruner  # noqa: E402

pytestmark = pytest.mark.slow
CFG = {"size": "tiny", "threads": 2, "warmup_calls": 0}
BUILDERS = {"openvla-oft": build_openvla_oft, "openvla": build_openvla}


def keep_all(reading: str) -> list[Pruner]:
    return [FastV({"k": 2, "retention": 1.0, "reading": reading}),
            VLAPruner({"prune_layer": 2, "window": 2, "retention": 1.0, "reading": reading}),
            SparseVLM({"retention": 1.0, "reading": reading}),
            DivPrune({"retention": 1.0, "reading": reading}),
            EfficientVLA({"tokens_kept": 10_000, "layers_kept": 28, "similarity_threshold": 2.0,
                          "reading": reading}),   # calibrates, but no layer is similar enough to skip
            VLACache({"static_top_k": 0, "reading": reading})]


@pytest.mark.parametrize("model", ["openvla-oft", "openvla"])
@pytest.mark.parametrize("reading", ["code", "paper"])
def test_keep_all_baselines_equal_the_unpruned_model(model, reading):
    obs = [synthetic_observation(s) for s in (10, 11, 12)]
    base = BUILDERS[model](CFG, pruner=Pruner(), device="cpu")
    expected = [base.act(o).actions for o in obs]
    for pruner in keep_all(reading):
        policy = BUILDERS[model](CFG, pruner=pruner, device="cpu")
        pruner.reset()
        for o, want in zip(obs, expected):      # EfficientVLA calibrates on call 0 or 1, VLA-Pruner selects from call 2
            assert np.array_equal(policy.act(o).actions, want), (type(pruner).__name__, model)
