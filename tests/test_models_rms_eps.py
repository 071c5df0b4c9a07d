"""RMSNorm epsilon: the published text_config sets none, so transformers' LlamaConfig default
1e-6 applies (not Llama-2's 1e-5); a config.json that sets `rms_norm_eps` is followed."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from published_checkpoint import source_model, write_published  # noqa: E402

from vlabench.models.dims import (  # noqa: E402
    FULL,
    LLAMA_DEFAULTS,
    TINY,
    dims_from_published,
    published_config,
)
from vlabench.models.prismatic import build_random  # noqa: E402

FIXTURE = json.loads((Path(__file__).parent / "fixtures" / "prismatic_checkpoint_names.json").read_text())
SMALL = replace(TINY, llm_layers=2, llm_hidden=128, llm_heads=4, llm_kv_heads=4, llm_mlp=344)


def _norm_eps(model) -> set[float]:
    return {m.variance_epsilon for m in model.language_model.modules() if hasattr(m, "variance_epsilon")}


def test_default_rms_norm_epsilon_is_llama_configs_1e6():
    assert FULL.rms_eps == TINY.rms_eps == LLAMA_DEFAULTS["rms_norm_eps"] == 1e-6


def test_every_rmsnorm_of_a_random_build_uses_the_dims_epsilon():
    assert _norm_eps(build_random(TINY, True, "cpu", torch.float32)) == {1e-6}
    assert _norm_eps(build_random(replace(TINY, rms_eps=1e-5), False, "cpu", torch.float32)) == {1e-5}


def test_published_text_config_without_rms_norm_eps_means_1e6_and_a_given_one_is_read():
    cfg = FIXTURE["openvla_config_json"]
    assert "rms_norm_eps" not in cfg["text_config"]
    assert dims_from_published(cfg).rms_eps == 1e-6
    given = {**cfg, "text_config": {**cfg["text_config"], "rms_norm_eps": 1e-5}}
    assert dims_from_published(given).rms_eps == 1e-5


def test_a_loaded_checkpoint_runs_with_its_config_epsilon(tmp_path):
    from vlabench.models.build import build_openvla_oft
    from vlabench.models.synthetic import synthetic_observation

    model = source_model(SMALL, True, seed=4)
    actions = {}
    for eps in (None, 1e-5):
        cfg = published_config(SMALL)
        if eps is not None:
            cfg["text_config"]["rms_norm_eps"] = eps
        else:
            assert "rms_norm_eps" not in cfg["text_config"]
        path = tmp_path / str(eps)
        write_published(path, model, SMALL, True, config=cfg)
        p = build_openvla_oft({"checkpoint": str(path), "warmup_calls": 0},
                              suite_cfg={"name": "libero_spatial", "unnorm_key": "libero_spatial_no_noops"},
                              device="cpu")
        want = 1e-6 if eps is None else eps
        assert p.dims.rms_eps == want and _norm_eps(p.model) == {want}
        actions[eps] = p.act(synthetic_observation(0)).actions
    assert not np.allclose(actions[None], actions[1e-5], atol=1e-4)   # the epsilon reaches the output
