"""PrismaticPolicy.fork (run.env_workers): a per-slot view shares the weights and owns its
pruner, decoder and episode counters, so interleaved episodes do not mix state."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from vlabench.core import registry  # noqa: E402
from vlabench.core.contracts import TaskInfo  # noqa: E402
from vlabench.models.synthetic import synthetic_observation  # noqa: E402
from vlabench.run.workers import step_hooks  # noqa: E402

TASK = TaskInfo(0, "task", "pick up the black bowl")
SUITE = {"name": "libero_spatial", "unnorm_key": "libero_spatial_no_noops"}


def _build(pruner_name: str):
    import yaml
    from omegaconf import OmegaConf

    cfg = OmegaConf.create(yaml.safe_load(registry.entry("model", "openvla-oft-tiny").path.read_text()))
    pcfg = OmegaConf.create(yaml.safe_load(registry.entry("pruner", pruner_name).path.read_text()))
    pruner = registry.build("pruner", pruner_name, pcfg)
    return registry.build("model", "openvla-oft-tiny", cfg, pruner=pruner, suite_cfg=SUITE,
                          device="cpu"), pcfg


def test_a_fork_shares_the_weights_and_owns_pruner_decoder_and_counters():
    policy, pcfg = _build("fastv")
    twin = policy.fork(registry.build("pruner", "fastv", pcfg))
    assert twin.model is policy.model and twin.tokenizer is policy.tokenizer
    assert twin.pruner is not policy.pruner and twin.decoder.pruner is twin.pruner
    assert twin.decoder is not policy.decoder and twin.pruner.info == policy.pruner.info
    obs = synthetic_observation(0)
    policy.reset(TASK)
    twin.reset(TASK)
    a = policy.act(obs)
    b = twin.act(obs)
    np.testing.assert_array_equal(a.actions, b.actions)   # same weights, same pruning
    assert a.stats.tokens_kept == b.stats.tokens_kept < a.stats.tokens_in
    assert policy.calls_in_episode == 1 and twin.calls_in_episode == 1
    twin.reset(TASK)
    assert twin.calls_in_episode == 0 and policy.calls_in_episode == 1


def test_only_pruners_that_read_open_loop_steps_make_the_workers_report_them():
    plain, _ = _build("none")
    assert step_hooks(plain, plain.pruner) == (False, False)
    spec, _ = _build("specprune")
    assert step_hooks(spec, spec.pruner) == (True, True)
