"""FastV and VLA-Pruner on the tiny real-valued OpenVLA-OFT: the code reading keeps round(256 r)
per camera, the paper reading one pool of round(M r). (At full retention they equal the
unpruned model: tests/test_pruner_keep_all_baselines.py.)"""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from vlabench.models.build import build_openvla_oft  # noqa: E402
from vlabench.models.synthetic import synthetic_observation  # noqa: E402
from vlabench.pruners.fastv import FastV  # noqa: E402
from vlabench.pruners.vla_pruner import VLAPruner  # noqa: E402

pytestmark = pytest.mark.slow
CFG = {"size": "tiny", "threads": 2, "warmup_calls": 0}


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
