"""Batched policy calls equal batch-1 calls (issue 22, run.batch).

Three lanes run an episode each on views of one policy (`fork`), with different instructions
(so prompt lengths, hence attention groups, differ), different frames and seeds; every call
of the three is one `act_lanes` forward. Each lane's actions, kept tokens, per-layer token
counts, FLOPs, controller mode and source must equal those of its episode run alone at batch 1
(actions to 1e-5; on the CPU they agree bit for bit). Covers the three model families and the
pruners whose state, RNG use or hooks differ: none, FastV, random dropping (global torch RNG
per lane), VLA-Pruner, SpecPrune (frame history through observe), SparseVLM (input view),
DivPrune (renumbered positions), VLA-Cache (previous call's KV), SP-VLA (skipped layers and
served calls).
"""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from vlabench.core import registry  # noqa: E402
from vlabench.core.contracts import TaskInfo  # noqa: E402
from vlabench.models.synthetic import synthetic_episode  # noqa: E402
from vlabench.run.lane_rng import LaneRng  # noqa: E402
from vlabench.run.loop import seed_everything  # noqa: E402

pytestmark = pytest.mark.slow

# lanes 0 and 1 share a prompt (equal lengths: their attention runs stacked in one group),
# lane 2 has its own (a group of its own)
INSTRUCTIONS = ["pick up the black bowl between the plate and the ramekin and place it on the plate",
                "pick up the black bowl between the plate and the ramekin and place it on the plate",
                "open the top drawer"]
CALLS = 2          # model calls per lane
OPEN_LOOP = 2      # observed steps between calls (pruners that compare frames read them)
CASES = [(m, p) for m in ("openvla-oft-tiny", "openvla-tiny") for p in
         ("none", "fastv", "random", "vla-pruner", "specprune", "sparsevlm", "divprune",
          "vla-cache", "sp-vla")]
CASES += [("pi0-tiny", p) for p in ("none", "fastv", "random", "vla-pruner", "divprune", "vla-cache")]


def build(model: str, pruner: str):
    from vlabench.launch.compose import compose

    cfg = compose([f"model={model}", f"pruner={pruner}", "suite=libero_spatial"])
    p = registry.build("pruner", pruner, cfg.pruner)
    policy = registry.build("model", model, cfg.model, pruner=p, suite_cfg=cfg.suite, device="cpu")
    if model == "openvla-tiny":
        action_tokens_only(policy)
    return policy, lambda: registry.build("pruner", pruner, cfg.pruner)


def action_tokens_only(policy) -> None:
    """Random tiny OpenVLA weights pick tokens outside the 256 action bins, which all decode
    to the top bin: zero the other rows of lm_head so the greedy decode picks action tokens
    that depend on each lane's hidden state (a lane mix-up then changes the actions)."""
    d = policy.dims
    vocab = d.vocab_size - d.pad_to_multiple_of
    with torch.no_grad():
        w = policy.model.language_model.lm_head.weight
        w[: vocab - d.n_action_bins] = 0
        w[vocab:] = 0


def lane_inputs(b: int) -> tuple[int, list]:
    frames = synthetic_episode(CALLS * (1 + OPEN_LOOP), seed=20 + b, instruction=INSTRUCTIONS[b])
    return 100 + b, frames


def record(out) -> tuple:
    st = out.stats
    return (st.source, st.tokens_in, st.tokens_kept, tuple(st.tokens_by_layer or ()), st.flops, st.mode)


def fingerprint(policy) -> np.ndarray:
    """Per layer, sums of the call's keys and values (prefill and, for OpenVLA, the decoded
    tokens): continuous, so a wrong mask or position shows even where the actions, greedy
    decoded bins, would not."""
    out = [[float(c.k.double().sum()), float(c.v.double().sum())]
           for c in policy.decoder.caches if c is not None and c.k.ndim == 4]
    return np.asarray(out).ravel()


def alone(policy, seed: int, frames: list) -> tuple[list, list]:
    task = TaskInfo(0, "t", frames[0].instruction)
    seed_everything(seed)
    policy.pruner.reset()
    policy.reset(task)
    actions, recs = [], []
    for k in range(CALLS):
        out = policy.act(frames[k * (1 + OPEN_LOOP)])
        actions.append(np.concatenate([np.ravel(out.actions), fingerprint(policy)]))
        recs.append(record(out))
        for j in range(1, 1 + OPEN_LOOP):
            policy.observe(frames[k * (1 + OPEN_LOOP) + j])
    return actions, recs


def seeded_lanes(views, inputs: list[tuple[int, list]]) -> list[LaneRng]:
    """One LaneRng per view; each lane seeded, its pruner and episode reset inside its own stream."""
    lanes = [LaneRng() for _ in inputs]
    for v, lane, (seed, frames) in zip(views, lanes, inputs):
        with lane:
            seed_everything(seed)
            v.pruner.reset()
            v.reset(TaskInfo(0, "t", frames[0].instruction))
    return lanes


def assert_lanes_equal(expected: list[tuple[list, list]], got: list[tuple[list, list]]) -> None:
    """Each lane's batched calls equal its batch-1 calls: records exactly, actions within 1e-5;
    and the lanes really differ (a batch of identical samples could hide a lane mix-up)."""
    for b, ((acts_1, recs_1), (acts_b, recs_b)) in enumerate(zip(expected, got)):
        assert recs_b == recs_1, f"lane {b}: token selections / stats differ"
        for k, (a1, ab) in enumerate(zip(acts_1, acts_b)):
            np.testing.assert_allclose(ab, a1, rtol=1e-6, atol=1e-5, err_msg=f"lane {b} call {k}")
    assert not np.array_equal(expected[0][0][0], expected[1][0][0])
    assert not np.array_equal(expected[1][0][0], expected[2][0][0])


def batched(policy, new_pruner, inputs: list[tuple[int, list]]) -> list[tuple[list, list]]:
    views = [policy] + [policy.fork(new_pruner()) for _ in inputs[1:]]
    lanes = seeded_lanes(views, inputs)
    results = [([], []) for _ in inputs]
    for k in range(CALLS):
        outs = policy.act_lanes(views, [f[k * (1 + OPEN_LOOP)] for _, f in inputs], contexts=lanes)
        assert all(o.stats.batch == len(views) for o in outs if o.stats.source == "model") or \
            any(o.stats.source != "model" for o in outs)
        for (acts, recs), out, v in zip(results, outs, views):
            acts.append(np.concatenate([np.ravel(out.actions), fingerprint(v)]))
            recs.append(record(out))
        for v, lane, (_, frames) in zip(views, lanes, inputs):
            for j in range(1, 1 + OPEN_LOOP):
                with lane:
                    v.observe(frames[k * (1 + OPEN_LOOP) + j])
    return results


@pytest.mark.parametrize(("model", "pruner"), CASES)
def test_batched_calls_equal_batch_one_calls(model, pruner):
    inputs = [lane_inputs(b) for b in range(len(INSTRUCTIONS))]
    policy, new_pruner = build(model, pruner)
    expected = [alone(policy, seed, frames) for seed, frames in inputs]
    got = batched(policy, new_pruner, inputs)     # every lane is reset first
    assert_lanes_equal(expected, got)
