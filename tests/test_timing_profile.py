"""Latency profiles: least-squares fit, YAML round trip, `timing.latency=profile:...`, bad files."""

from __future__ import annotations

import numpy as np
import pytest
import yaml
from omegaconf import OmegaConf

from vlabench.core.contracts import CallStats
from vlabench.core.errors import ConfigError
from vlabench.launch.compose import compose
from vlabench.metrics.latency_model import TERA, fit, load_profile, shipped_profiles, write_profile
from vlabench.run.timing import Timing


def test_the_fit_recovers_the_coefficients_and_zeroes_a_stage_that_never_varies(tmp_path):
    rng = np.random.default_rng(0)
    llm = rng.uniform(1, 8, 30) * TERA
    vis = rng.uniform(0.5, 1, 30) * TERA
    y = 12.5 + 15.0 * llm / TERA + 40.0 * vis / TERA
    p = fit(llm, vis, y, "x")
    assert (p.a_ms, p.b_ms_per_tflop, p.c_ms_per_tflop) == pytest.approx((12.5, 15.0, 40.0))
    flat = fit(llm, np.full(30, 0.8 * TERA), 12.5 + 15.0 * llm / TERA, "y")
    assert flat.c_ms_per_tflop == 0.0 and flat.b_ms_per_tflop == pytest.approx(15.0)
    assert flat.meta["fitted"] == ["a_ms", "b_ms_per_tflop"]
    write_profile(tmp_path / "p.yaml", p)
    back = load_profile(str(tmp_path / "p.yaml"))
    assert back.latency_ms(2 * TERA, 1 * TERA) == pytest.approx(12.5 + 30 + 40)


class FlopsPolicy:
    def __init__(self, llm, vision):
        self.last_flops_by_stage = {"llm": llm, "vision": vision}
        self.chunk = 8


def test_a_profile_named_by_path_prices_each_call_by_its_flops_and_the_method_overhead(tmp_path):
    path = tmp_path / "dev.yaml"
    path.write_text(yaml.safe_dump({"a_ms": 20.0, "b_ms_per_tflop": 10.0, "c_ms_per_tflop": 0.0,
                                    "overhead_ms": {"fastv": 2.0}}))
    cfg = compose(["model=test-zero", "pruner=fastv", "suite.timing=sync", f"timing.latency=profile:{path}"])
    t = Timing(cfg)
    stats = CallStats(latency_ms={"total": 999.0})
    full = t.latency_ms(FlopsPolicy(8 * TERA, TERA), stats)
    pruned = t.latency_ms(FlopsPolicy(3 * TERA, TERA), stats)
    assert (full, pruned) == (pytest.approx(102.0), pytest.approx(52.0))   # + fastv's 2 ms
    assert t.delay_steps(pruned) < t.delay_steps(full)
    extrapolated = CallStats(latency_ms={"total": 0.5}, source="extrapolator")
    assert t.latency_ms(FlopsPolicy(8 * TERA, TERA), extrapolated) == 0.5   # no model call
    assert "profile" in cfg.run.name


@pytest.mark.parametrize("content,message", [
    ("a_ms: 1\nb_ms_per_tflop: 2\n", "c_ms_per_tflop must be a finite number"),
    ("a_ms: fast\nb_ms_per_tflop: 2\nc_ms_per_tflop: 0\n", "a_ms must be a finite number"),
    ("- 1\n- 2\n", "is not a mapping"),
    ("a_ms: [1\n", "is unreadable"),
    ("a_ms: 1\nb_ms_per_tflop: 2\nc_ms_per_tflop: 0\noverhead_ms: 3\n", "overhead_ms must map"),
])
def test_a_malformed_profile_is_one_config_error(tmp_path, content, message):
    path = tmp_path / "bad.yaml"
    path.write_text(content)
    with pytest.raises(ConfigError, match=message):
        compose(["model=test-zero", "suite.timing=sync", f"timing.latency=profile:{path}"])


def test_a_missing_profile_names_the_shipped_ones(tmp_path):
    with pytest.raises(ConfigError, match="unknown; valid: .*openvla-oft-rtx4090"):
        compose(["model=test-zero", "suite.timing=async", "timing.latency=profile:no-such-device"])
    with pytest.raises(ConfigError, match="no such file"):
        compose(["model=test-zero", "suite.timing=sync", f"timing.latency=profile:{tmp_path}/x.yaml"])


def test_shipped_profiles_load_and_cite_their_source():
    names = shipped_profiles()
    assert "openvla-oft-rtx4090" in names
    for name in names:
        p = load_profile(name)
        assert "arXiv" in str(p.meta.get("source")) and p.meta.get("points")
        # the published points the profile was fitted on are reproduced within its stated error
        for pt in p.meta["points"]:
            got = p.latency_ms(pt["llm_tflops"] * TERA, 0.0, pt.get("method", "none"))
            assert abs(got - pt["latency_ms"]) <= p.meta["max_error_ms"] + 1e-6


def test_frozen_drops_the_timing_keys_so_the_config_and_name_are_those_of_before():
    cfg = compose(["model=test-zero"])
    assert "timing" not in cfg and "timing" not in cfg.suite
    assert cfg.run.name == "test-zero-none-libero_spatial"
    text = OmegaConf.to_yaml(cfg)
    assert "timing" not in text and "deadband" not in text
