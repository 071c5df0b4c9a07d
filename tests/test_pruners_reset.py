"""No pruner state leaks between episodes: two episodes in either order give the same records.

Cheap by design: the tiny OFT policy is called directly with synthetic observations (no
simulator), as the runner does it (re-seed, pruner.reset, policy.reset, then calls). Episode A
shows the same frame twice (so caching methods reuse), episode B two different frames. On one
policy the order A, B, B, A must give A's and B's records twice each. Every pruner config in
configs/pruner/ is covered.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import ROOT

torch = pytest.importorskip("torch")

from vlabench.core import registry  # noqa: E402
from vlabench.core.contracts import TaskInfo  # noqa: E402
from vlabench.models.synthetic import synthetic_observation  # noqa: E402
from vlabench.run.loop import seed_everything  # noqa: E402

pytestmark = pytest.mark.slow
PRUNERS = sorted(p.stem for p in (ROOT / "configs" / "pruner").glob("*.yaml"))
TASK = TaskInfo(0, "pick_up_the_black_bowl", "pick up the black bowl")
EPISODES = {"A": (11, [1, 1]), "B": (12, [2, 3])}        # seed, observation seeds per call


def _policy(pruner: str):
    """Composed as `vlabench run model=openvla-oft-tiny pruner=<name>` composes it."""
    from vlabench.launch.compose import compose

    cfg = compose(["model=openvla-oft-tiny", f"pruner={pruner}", "suite=libero_spatial"])
    p = registry.build("pruner", pruner, cfg.pruner)
    return registry.build("model", "openvla-oft-tiny", cfg.model, pruner=p, suite_cfg=cfg.suite,
                          device="cpu"), p


def _episode(policy, pruner, name: str) -> list[tuple]:
    seed, frames = EPISODES[name]
    seed_everything(seed)
    pruner.reset()
    policy.reset(TASK)
    rows = []
    for step, s in enumerate(frames):
        out = policy.act(synthetic_observation(s, step=8 * step))
        st = out.stats
        rows.append((np.round(out.actions, 6).tobytes(), st.source, st.tokens_in, st.tokens_kept,
                     tuple(st.tokens_by_layer or ()), st.flops, st.mode))
    return rows


@pytest.mark.parametrize("name", PRUNERS)
def test_two_episodes_in_either_order_give_the_same_records(name):
    policy, pruner = _policy(name)
    first_a = _episode(policy, pruner, "A")
    first_b = _episode(policy, pruner, "B")
    second_b = _episode(policy, pruner, "B")
    second_a = _episode(policy, pruner, "A")
    assert first_a == second_a
    assert first_b == second_b
