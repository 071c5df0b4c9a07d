"""SP-VLA's Table 1 baselines on the tiny real-valued models: keeping everything is the unpruned
model bit for bit (with and without +R), and merged embeddings written by `before_llm` reach
the LLM (the contract PruMerge, VisionZip and the FastVLM row rely on)."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from vlabench.models.build import build_openvla, build_openvla_oft  # noqa: E402
from vlabench.models.synthetic import synthetic_observation  # noqa: E402
from vlabench.pruners.base import Pruner  # noqa: E402
from vlabench.pruners.fastvlm import FastVLM  # noqa: E402
from vlabench.pruners.fopru import FoPru  # noqa: E402
from vlabench.pruners.prumerge import PruMerge  # noqa: E402
from vlabench.pruners.visionzip import VisionZip  # noqa: E402

pytestmark = pytest.mark.slow
CFG = {"size": "tiny", "threads": 2, "warmup_calls": 0}
BUILDERS = {"openvla-oft": build_openvla_oft, "openvla": build_openvla}


def keep_all(keep_positions: bool) -> list[Pruner]:
    o = {"keep_positions": keep_positions, "edge_tokens": False}
    return [FoPru({**o, "retention": 1.0}), FoPru({**o, "retention": 1.0, "strategy": "row"}),
            PruMerge({**o, "retention": 1.0}), VisionZip({**o, "dominant": 256, "contextual": 0}),
            FastVLM({**o, "pool": 1})]


@pytest.mark.parametrize("model", ["openvla-oft", "openvla"])
@pytest.mark.parametrize("keep_positions", [True, False])
def test_keep_all_sp_baselines_equal_the_unpruned_model(model, keep_positions):
    obs = [synthetic_observation(s) for s in (10, 11)]
    base = BUILDERS[model](CFG, pruner=Pruner(), device="cpu")
    expected = [base.act(o).actions for o in obs]
    for pruner in keep_all(keep_positions):
        policy = BUILDERS[model](CFG, pruner=pruner, device="cpu")
        for o, want in zip(obs, expected):
            assert np.array_equal(policy.act(o).actions, want), (type(pruner).__name__, model)


class SameIdsNoMerge(Pruner):
    """Keeps the FastVLM anchors (block top-left patches) without writing pooled embeddings."""

    def before_llm(self, tokens):
        per = self.info.grid * self.info.grid
        ids = FastVLM({"pool": 2, "edge_tokens": False})
        ids.bind(self.info)
        anchors = ids.plan(None, None, tokens.embeddings[:per]).anchors
        return torch.cat([anchors + c * per for c in range(len(self.info.cameras))])


def test_merged_embeddings_written_by_before_llm_reach_the_llm():
    o = synthetic_observation(10)
    merged = build_openvla_oft(CFG, pruner=FastVLM({"pool": 2, "edge_tokens": False}), device="cpu").act(o)
    plain = build_openvla_oft(CFG, pruner=SameIdsNoMerge(), device="cpu").act(o)
    assert merged.stats.tokens_kept == plain.stats.tokens_kept == 2 * 64
    assert not np.array_equal(merged.actions, plain.actions)
