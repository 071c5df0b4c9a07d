"""FastV and VLA-Pruner on the tiny real-valued models: at full retention they are the unpruned
model, bit for bit, under both readings and on both models; on OpenVLA-OFT the code reading
keeps round(256 r) per camera, the paper reading one pool of round(M r)."""

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


def _capturing(cls):
    class Capture(cls):
        def after_layer(self, view):
            keep = super().after_layer(view)
            if keep is not None:
                self.kept = keep.cpu()
            return keep
    return Capture


@pytest.mark.parametrize("cls,cfg", [(FastV, {"k": 2}),
                                     (VLAPruner, {"prune_layer": 2, "window": 1})])
def test_on_the_tiny_oft_model_code_keeps_round_per_camera_and_paper_one_pool(cls, cfg):
    obs = [synthetic_observation(s) for s in (10, 11)]
    for reading in ("code", "paper"):
        p = _capturing(cls)({**cfg, "retention": 0.25, "reading": reading})
        policy = build_openvla_oft(CFG, pruner=p, device="cpu")
        p.reset()
        for o in obs:
            policy.act(o)
        per = p.info.num_visual // 2
        cams = torch.bincount(torch.div(p.kept, per, rounding_mode="floor"), minlength=2)
        assert int(cams.sum()) == round(0.25 * 2 * per)
        if reading == "code":                   # round(256 r) of each camera's tokens
            assert cams.tolist() == [round(0.25 * per)] * 2
