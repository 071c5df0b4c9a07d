"""Batched CogACT calls equal batch-1 calls (issue 22, run.batch), as tests/test_batch_equality.py
checks the other families.

Three lanes (views of one tiny CogACT, `fork`) run an episode each on SIMPLER Bridge settings
(adaptive ensemble of horizon 7, guidance batch 2), with different instructions (prompt lengths),
frames, seeds and, in the mixed cases, pruners with different kept lengths; every call of the
three is one `act_lanes` forward (towers, one prefill, one DiT batch of 3 x 2 rows). Each lane's
actions (ensembled), sampled chunk, cognition feature, KV sums, kept visual ids per layer,
token counts, FLOPs, mode and source must equal its episode run alone at batch 1. A run-level
check compares run.batch=2 with run.batch=1 on two SIMPLER workers (records and seen frames).
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import NO_SIMPLER_ASSETS, SIMPLER_ASSETS, run_cli
from test_batch_equality import assert_lanes_equal, seeded_lanes
from test_env_workers import comparable, rows

torch = pytest.importorskip("torch")

from vlabench.core import registry  # noqa: E402
from vlabench.core.contracts import TaskInfo  # noqa: E402
from vlabench.models.synthetic import synthetic_episode  # noqa: E402
from vlabench.run.loop import seed_everything  # noqa: E402

# lanes 0 and 1 share a prompt (one attention group), lane 2 has a shorter one
INSTRUCTIONS = ["put the spoon on the towel next to the green cube on the table",
                "put the spoon on the towel next to the green cube on the table",
                "put eggplant into basket"]
CALLS = 4          # model calls per lane: more than one chunk enters each lane's ensemble
OPEN_LOOP = 1      # observed steps between calls (SpecPrune compares frames)
SAME = ["none", "fastv", "random", "vla-pruner", "sparsevlm", "divprune", "vla-cache", "sp-vla",
        "specprune"]
MIXED = {   # per lane (pruner, overrides): different kept lengths within one batch
    "fastv-retentions": [("fastv", ["pruner.retention=0.25"]), ("fastv", ["pruner.retention=0.5"]),
                         ("none", [])],
    "three-methods": [("vla-pruner", []), ("divprune", []), ("vla-cache", [])],
}
CASES = {p: [(p, [])] * 3 for p in SAME} | MIXED


def pruner_factory(name: str, overrides: list[str]):
    from vlabench.launch.compose import compose

    cfg = compose(["model=cogact-tiny", f"pruner={name}", "suite=simpler_bridge", *overrides])
    return lambda: registry.build("pruner", name, cfg.pruner)


def build(lanes: list[tuple[str, list[str]]]):
    from vlabench.launch.compose import compose

    cfg = compose(["model=cogact-tiny", "suite=simpler_bridge", "model.warmup_calls=0"])
    makers = [pruner_factory(n, o) for n, o in lanes]
    policy = registry.build("model", "cogact-tiny", cfg.model, pruner=makers[0](),
                            suite_cfg=cfg.suite, device="cpu")
    assert policy.ensembler is not None and policy.sampling.cfg_batch == 2
    return policy, makers


def lane_inputs(b: int) -> tuple[int, list]:
    frames = synthetic_episode(CALLS * (1 + OPEN_LOOP), seed=40 + b, instruction=INSTRUCTIONS[b])
    return 300 + b, frames


def record(out, view) -> tuple:
    """Stats and the token selection: the visual ids each layer's KV holds."""
    st = out.stats
    kept = tuple(tuple(c.vid[c.vid >= 0].tolist()) if c is not None else None for c in view.decoder.caches)
    return (st.source, st.tokens_in, st.tokens_kept, tuple(st.tokens_by_layer or ()), st.flops, st.mode,
            kept if st.source == "model" else None)


def values(out, view) -> np.ndarray:
    """The executed action, the sampled chunk, the cognition feature and per-layer KV sums."""
    kv = [[float(c.k.double().sum()), float(c.v.double().sum())]
          for c in view.decoder.caches if c is not None and c.k.ndim == 4]
    return np.concatenate([np.ravel(out.actions), np.ravel(view.last_normalized),
                           view.last_cognition.double().numpy(), np.ravel(kv)])


def alone(view, seed: int, frames: list) -> tuple[list, list]:
    seed_everything(seed)
    view.pruner.reset()
    view.reset(TaskInfo(0, "t", frames[0].instruction))
    acts, recs = [], []
    for k in range(CALLS):
        out = view.act(frames[k * (1 + OPEN_LOOP)])
        acts.append(values(out, view))
        recs.append(record(out, view))
        for j in range(1, 1 + OPEN_LOOP):
            view.observe(frames[k * (1 + OPEN_LOOP) + j])
    return acts, recs


def batched(policy, makers, inputs) -> list[tuple[list, list]]:
    views = [policy] + [policy.fork(m()) for m in makers[1:]]
    lanes = seeded_lanes(views, inputs)
    results = [([], []) for _ in inputs]
    batches = set()
    for k in range(CALLS):
        outs = policy.act_lanes(views, [f[k * (1 + OPEN_LOOP)] for _, f in inputs], contexts=lanes)
        batches |= {o.stats.batch for o in outs if o.stats.source == "model"}
        for (acts, recs), out, v in zip(results, outs, views):
            acts.append(values(out, v))
            recs.append(record(out, v))
        for v, lane, (_, frames) in zip(views, lanes, inputs):
            for j in range(1, 1 + OPEN_LOOP):
                with lane:
                    v.observe(frames[k * (1 + OPEN_LOOP) + j])
    assert len(views) in batches   # at least one call batched all three lanes
    return results


@pytest.mark.slow
@pytest.mark.parametrize("case", list(CASES))
def test_batched_cogact_calls_equal_batch_one_calls(case):
    inputs = [lane_inputs(b) for b in range(len(INSTRUCTIONS))]
    policy, makers = build(CASES[case])
    solo = [policy] + [policy.fork(m()) for m in makers[1:]]
    expected = [alone(v, seed, frames) for v, (seed, frames) in zip(solo, inputs)]
    got = batched(policy, makers, inputs)     # every lane is reset first
    assert_lanes_equal(expected, got)
    if case == "fastv-retentions":
        kept = [recs[0][2] for _, recs in expected]
        assert len(set(kept)) == 3, kept


@pytest.mark.simpler
@pytest.mark.slow
def test_two_simpler_workers_batched_give_the_batch_one_episodes(tmp_path):
    """Two tasks, one episode each, on two workers: batched, the calls and episodes (timing
    apart) and the frames each episode's policy saw (`run.record_obs`: they follow the
    executed actions, which the CSVs do not hold) equal those of run.batch=1."""
    if not SIMPLER_ASSETS.is_dir():
        pytest.skip(NO_SIMPLER_ASSETS)
    common = ("run", "model=cogact-tiny", "pruner=fastv", "suite=simpler_bridge", "suite.tasks=[0,1]",
              "run.episodes_per_task=1", "run.max_steps=6", "run.record_obs=6",
              f"suite.asset_dir={SIMPLER_ASSETS}", f"run.output_dir={tmp_path}", "run.quiet=true",
              "run.env_workers=2")
    one = run_cli(*common, "run.name=one", "run.batch=1")
    two = run_cli(*common, "run.name=two", "run.batch=2", "run.batch_wait_ms=60000")
    assert one.returncode == 0 and two.returncode == 0, (one.stderr + two.stderr)[-2000:]
    a, b = comparable(tmp_path / "one"), comparable(tmp_path / "two")
    assert len(a[0]) == 2 and len(a[1]) == 12 and a == b   # episodes and calls, timing apart
    sizes = {r["batch"] for r in rows(tmp_path / "two" / "calls.csv") if r["source"] == "model"}
    assert "2" in sizes   # the two workers' calls met in one forward pass
    for task in (0, 1):
        with np.load(tmp_path / "one" / "obs" / f"task{task}_ep0.npz") as x, \
                np.load(tmp_path / "two" / "obs" / f"task{task}_ep0.npz") as y:
            assert sorted(x.files) == sorted(y.files) and len(x.files) > 1
            for k in x.files:
                assert np.array_equal(x[k], y[k]), (task, k)
