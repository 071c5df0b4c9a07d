"""LIBERO's placement RNG stream as the reference evaluation draws it (issue 11 item 6), and the
suite's `protocol` option (item 9: SpecPrune-VLA's own evaluation loop)."""

from __future__ import annotations

import json
import os
import random

import numpy as np
import pytest
from conftest import ROOT, run_cli
from omegaconf import OmegaConf

from vlabench.core.errors import ConfigError
from vlabench.core.schema import EPISODE_COLUMNS
from vlabench.records.files import read_rows
from vlabench.suites.libero import protocol_settings
from vlabench.suites.libero_stream import ResetStream

STEPS = 3
ACTIONS = [[0.4, 0, 0, 0, 0, 0, -1], [0, 0.4, 0.2, 0, 0, 0, -1], [0, 0, 0, 0.2, 0, 0, 1]]


class DrawingEnv:
    """A stand-in for LIBERO's env: `seed` is np.random.seed, each reset draws a placement."""

    def seed(self, s: int) -> None:
        np.random.seed(s)

    def reset(self) -> float:
        return float(np.random.uniform())


def _stream_of(seed: int, n: int) -> list[float]:
    state = np.random.get_state()
    np.random.seed(seed)
    out = [float(np.random.uniform()) for _ in range(n)]
    np.random.set_state(state)
    return out


def test_each_reset_is_the_next_draw_of_one_stream_seeded_once():
    expected = _stream_of(0, 3)
    stream = ResetStream(DrawingEnv(), 0)
    got = []
    for i in range(3):
        np.random.seed(7)  # the runner's per-episode seed must not reach the placements
        got.append(stream.reset(i))
    assert got == expected
    assert len(set(got)) == 3


def test_the_stream_leaves_the_global_rng_as_it_found_it():
    np.random.seed(123)
    before = np.random.uniform()
    np.random.seed(123)
    stream = ResetStream(DrawingEnv(), 0)
    stream.reset(0)
    stream.reset(4)
    assert np.random.uniform() == before


def test_a_resumed_stream_replays_the_skipped_resets():
    expected = _stream_of(0, 5)
    assert ResetStream(DrawingEnv(), 0).reset(3) == expected[3]  # resume at episode 3
    stream = ResetStream(DrawingEnv(), 0)
    assert [stream.reset(i) for i in (0, 1)] == expected[:2]
    assert stream.reset(4) == expected[4]  # a gap (episodes 2-3 done elsewhere)
    assert stream.reset(1) == expected[1]  # back: the stream restarts
    assert stream.position == 2


# --- item 9: the suite's protocol option ------------------------------------------------------

SPECPRUNE_STEPS = {"libero_spatial": 220, "libero_object": 330, "libero_goal": 450,
                   "libero_10": 600, "libero_90": 400}
OFT_STEPS = {"libero_spatial": 220, "libero_object": 280, "libero_goal": 300,
             "libero_10": 520, "libero_90": 400}


@pytest.mark.parametrize("suite", sorted(SPECPRUNE_STEPS))
def test_specprune_protocol_has_its_step_limits_and_drops_the_first_9_actions(suite):
    cfg = OmegaConf.load(ROOT / f"configs/suite/{suite}.yaml")
    assert cfg.protocol == "openvla-oft"
    assert protocol_settings(cfg) == {"max_steps": OFT_STEPS[suite], "unexecuted_first_steps": 0}
    cfg.protocol = "specprune"
    assert protocol_settings(cfg) == {"max_steps": SPECPRUNE_STEPS[suite], "unexecuted_first_steps": 9}


def test_an_unknown_protocol_is_refused_with_the_valid_ones():
    cfg = OmegaConf.load(ROOT / "configs/suite/libero_goal.yaml")
    cfg.protocol = "openvla"
    with pytest.raises(ConfigError, match=r"valid: \['openvla-oft', 'specprune'\]"):
        protocol_settings(cfg)


def test_the_manifest_records_the_protocol():
    from vlabench.launch.compose import compose
    from vlabench.records.provenance import manifest

    cfg = compose(["model=test-zero", "suite=libero_object", "suite.protocol=specprune"])
    assert manifest(cfg, None, [], "now")["protocol"] == "specprune"


def test_a_step_cap_is_a_deviation_against_the_chosen_protocols_limit():
    from vlabench.launch.compose import compose
    from vlabench.records.provenance import protocol_deviations

    spec = compose(["model=test-zero", "suite=libero_goal", "suite.protocol=specprune", "run.max_steps=400"])
    assert protocol_deviations(spec, 10) == ["run.max_steps=400 caps the protocol's 450 policy steps"]
    oft = compose(["model=test-zero", "suite=libero_goal", "run.max_steps=400"])
    assert protocol_deviations(oft, 10) == []


# --- on the simulator ---------------------------------------------------------------------------

def _fixtures(env) -> dict[str, np.ndarray]:
    m = env.sim.model
    return {n: m.body_pos[m.body_name2id(f.root_body)].copy() for n, f in env.fixtures_dict.items()}


def _rng_digest() -> tuple:
    name, keys, pos, gauss, cached = np.random.get_state()
    return keys.tobytes(), pos, gauss, cached


def reference_loop(task_id: int, episodes: int) -> list[dict]:
    """openvla-oft's run_libero_eval.py (@ 213c5ff) written plainly with the LIBERO API: seed 7
    once, build the task's OffScreenRenderEnv and `env.seed(0)`, then per episode reset,
    set_init_state, 10 dummy steps, and the policy steps (here: ACTIONS)."""
    from vlabench.suites.libero_setup import ensure_libero_ready

    ensure_libero_ready()
    from libero.libero import benchmark, get_libero_path
    from libero.libero.envs import OffScreenRenderEnv

    random.seed(7)
    np.random.seed(7)
    suite = benchmark.get_benchmark_dict()["libero_spatial"]()
    task = suite.get_task(task_id)
    initial_states = suite.get_task_init_states(task_id)
    bddl = os.path.join(get_libero_path("bddl_files"), task.problem_folder, task.bddl_file)
    env = OffScreenRenderEnv(bddl_file_name=bddl, camera_heights=256, camera_widths=256)
    env.seed(0)
    out = []
    try:
        for episode_idx in range(episodes):
            env.reset()
            after_reset = _rng_digest()
            obs = env.set_init_state(initial_states[episode_idx])
            for _ in range(10):
                obs, _, _, _ = env.step([0, 0, 0, 0, 0, 0, -1])
            frames = []
            for t in range(STEPS):
                frames.append({"agentview": obs["agentview_image"][::-1, ::-1],
                               "wrist": obs["robot0_eye_in_hand_image"][::-1, ::-1]})
                obs, _, _, _ = env.step(ACTIONS[t])
            out.append({"frames": frames, "fixtures": _fixtures(env.env),
                        "drew_after_reset": _rng_digest() != after_reset})
    finally:
        env.close()
    return out


@pytest.mark.libero
def test_first_frames_of_episodes_0_to_2_equal_the_reference_loop_across_a_kill_and_resume(tmp_path):
    dump = tmp_path / "dump"
    args = ["run", "model=test-libero-recorder", "suite=libero_spatial", "suite.tasks=[0]",
            "run.episodes_per_task=3", f"run.max_steps={STEPS}", f"model.dump_dir={dump}",
            "model.exit_at_reset=2", f"run.output_dir={tmp_path}", "run.name=stream", "run.quiet=true"]
    killed = run_cli(*args)  # dies abruptly as episode 2 starts
    assert killed.returncode == 137, killed.stderr[-2000:]
    eps = read_rows(tmp_path / "stream/episodes.csv", EPISODE_COLUMNS)
    assert [r["episode"] for r in eps] == ["0", "1"]
    resumed = run_cli(*args)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    eps = read_rows(tmp_path / "stream/episodes.csv", EPISODE_COLUMNS)
    assert [r["episode"] for r in eps] == ["0", "1", "2"]
    assert all(r["error_type"] == "" for r in eps), [r["error"] for r in eps]
    assert json.loads((tmp_path / "stream/manifest.json").read_text())["protocol"] == "openvla-oft"

    ref = reference_loop(0, 3)
    # the facts the stream rests on: after the reset nothing draws, and each reset re-places
    # the fixtures (so one seed per episode cannot give episodes 1 and 2 the reference's frames)
    assert not any(e["drew_after_reset"] for e in ref)
    for name in ref[0]["fixtures"]:
        placements = [tuple(e["fixtures"][name]) for e in ref]
        assert len(set(placements)) == 3, name

    where = {0: dump / "session0/reset0", 1: dump / "session0/reset1", 2: dump / "session1/reset0"}
    for ep, prefix in where.items():
        for t in range(STEPS):
            got = np.load(f"{prefix}_step{t}.npz")
            for name, pos in ref[ep]["fixtures"].items():
                assert np.array_equal(got[f"fixture_{name}"], pos), (ep, t, name)
            for cam in ("agentview", "wrist"):
                assert np.array_equal(got[cam], ref[ep]["frames"][t][cam]), (ep, t, cam)
    assert not (dump / "session0/reset2_step0.npz").exists()


@pytest.mark.libero
def test_specprune_protocol_leaves_the_simulator_still_for_the_first_9_policy_steps():
    from vlabench.suites.libero import LiberoSuite

    cfg = OmegaConf.load(ROOT / "configs/suite/libero_spatial.yaml")
    cfg.protocol = "specprune"
    suite = LiberoSuite(cfg)
    task = suite.tasks()[0]
    env = suite.make_env(task, {"proprio"})  # physics only
    try:
        obs = env.reset(suite.episodes(task, 1, 7)[0])
        start = obs.proprio["eef_pos"]
        push = np.array([1.0, 0, 0, 0, 0, 0, -1])
        for step in range(1, 10):
            obs, done = env.step(push, step)
            assert np.array_equal(obs.proprio["eef_pos"], start) and not done and obs.step == step
        obs, _ = env.step(push, 10)
        assert obs.proprio["eef_pos"][0] != start[0]
    finally:
        env.close()
