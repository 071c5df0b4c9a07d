"""The tiny OpenVLA / OpenVLA-OFT policies honour the runner's policy contract."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from vlabench.core import registry  # noqa: E402
from vlabench.core.contracts import Policy, TaskInfo  # noqa: E402
from vlabench.core.schema import LATENCY_STAGES  # noqa: E402
from vlabench.models.synthetic import synthetic_observation  # noqa: E402

TASK = TaskInfo(0, "task", "pick up the black bowl")
SUITE = {"name": "libero_spatial", "unnorm_key": "libero_spatial_no_noops"}


def _build(name: str, **over):
    from omegaconf import OmegaConf

    cfg = OmegaConf.create({**__import__("yaml").safe_load(registry.entry("model", name).path.read_text()), **over})
    pruner = registry.build("pruner", "none", None)
    return registry.build("model", name, cfg, pruner=pruner, suite_cfg=SUITE, device="cpu")


@pytest.fixture(scope="module")
def oft():
    return _build("openvla-oft-tiny")


@pytest.fixture(scope="module")
def ovla():
    return _build("openvla-tiny")


def test_tiny_oft_returns_an_8x7_chunk_in_libero_convention(oft):
    assert isinstance(oft, Policy)
    assert oft.needs == frozenset({"agentview", "wrist", "proprio"})
    oft.reset(TASK)
    out = oft.act(synthetic_observation(1))
    assert out.actions.shape == (8, 7)
    assert np.isfinite(out.actions).all()
    assert set(np.unique(out.actions[:, -1])) <= {-1.0, 1.0}
    s = out.stats
    assert s.tokens_in == 512 and s.tokens_kept == 512 and s.tokens_by_layer == [512] * 4
    assert s.flops and s.flops > 0
    assert set(s.latency_ms) <= set(LATENCY_STAGES) and s.latency_ms["total"] > 0


def test_tiny_openvla_returns_one_action_from_seven_tokens(ovla):
    assert ovla.needs == frozenset({"agentview"})
    ovla.reset(TASK)
    out = ovla.act(synthetic_observation(2))
    assert out.actions.shape == (1, 7)
    assert np.abs(out.actions[0, :6]).max() <= 1.0
    assert out.stats.tokens_in == 256
    assert len(ovla.decoder.trace.decode) == 6      # prefill + 6 cached decode steps


def test_policy_is_deterministic_across_calls(oft):
    obs = synthetic_observation(3)
    a = oft.act(obs).actions
    b = oft.act(obs).actions
    assert np.array_equal(a, b)


def test_first_call_of_a_process_is_marked_warmup():
    from vlabench.models import policy as P

    saved = P._PROCESS_CALLS["n"]
    try:
        P._PROCESS_CALLS["n"] = 0
        p = _build("openvla-tiny", warmup_calls=2)
        flags = [p.act(synthetic_observation(i)).stats.warmup for i in range(3)]
        assert flags == [True, True, False]
    finally:
        P._PROCESS_CALLS["n"] = max(saved, 3)


def test_full_size_without_weights_fails_with_one_line_pointing_to_tiny(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(registry.ConfigError) as e:
        _build("openvla-oft")
    msg = str(e.value)
    assert "\n" not in msg and "openvla-oft-tiny" in msg


def test_warm_up_makes_every_later_call_warm_and_leaves_no_state():
    """The runner's unrecorded warm-up: afterwards no call is flagged, and actions equal a
    policy that never warmed up (the warm-up's pruner/decoder state is gone)."""
    from vlabench.models import policy as P

    saved = P._PROCESS_CALLS["n"]
    try:
        P._PROCESS_CALLS["n"] = 0
        p = _build("openvla-oft-tiny", warmup_calls=2)
        p.warm_up()
        assert P._PROCESS_CALLS["n"] == 2
        out = p.act(synthetic_observation(5))
        assert out.stats.warmup is False
        cold = _build("openvla-oft-tiny", warmup_calls=0)
        assert np.array_equal(out.actions, cold.act(synthetic_observation(5)).actions)
    finally:
        P._PROCESS_CALLS["n"] = max(saved, 3)


def test_stage_clock_times_a_stage_outside_the_total(monkeypatch):
    """A nested stage pauses the one around it; a stage outside the total is timed, not summed."""
    from types import SimpleNamespace

    from vlabench.metrics import latency as L

    now = [0.0]
    monkeypatch.setattr(L, "time", SimpleNamespace(perf_counter=lambda: now[0]))
    clock = L.StageClock("cpu", outside_total=("preprocess",))
    clock.start()
    now[0] += 0.001
    with clock.stage("vision"):
        now[0] += 0.002
        with clock.stage("preprocess"):
            now[0] += 0.050
        now[0] += 0.010
    now[0] += 0.004
    lat = clock.finish()
    assert lat["preprocess"] == pytest.approx(50) and lat["vision"] == pytest.approx(12)
    assert lat["total"] == pytest.approx(17)                   # 1 + 12 + 4, without the 50
    assert L.StageClock("cpu").outside_total == frozenset()


def test_preprocessing_is_its_own_stage_out_of_vision_and_total(oft, monkeypatch):
    """lat_preprocess_ms holds the frames' TF pipeline; lat_vision_ms and lat_total_ms do not
    (issue 22 item 6: the published methods time the model call without it). The clock reads a
    virtual time that advances 1 ms per reading and 100 s per preprocessed frame."""
    from types import SimpleNamespace

    from vlabench.core.schema import OUTSIDE_TOTAL_STAGES
    from vlabench.metrics import latency as L
    from vlabench.models import frames as P

    assert "preprocess" in LATENCY_STAGES and OUTSIDE_TOTAL_STAGES == ("preprocess",)
    now = [0.0]

    def reading() -> float:
        now[0] += 1e-3
        return now[0]

    real = P.policy_image

    def slow(*a, **k):
        now[0] += 100.0
        return real(*a, **k)

    monkeypatch.setattr(L, "time", SimpleNamespace(perf_counter=reading))
    monkeypatch.setattr(P, "policy_image", slow)
    oft.reset(TASK)
    lat = oft.act(synthetic_observation(4)).stats.latency_ms
    assert 200_000 <= lat["preprocess"] < 200_100          # two cameras
    assert 0 < lat["vision"] < 100 and 0 < lat["total"] < 1_000
    timed = sum(v for k, v in lat.items() if k not in ("total", "preprocess"))
    assert timed <= lat["total"] + 1e-6
