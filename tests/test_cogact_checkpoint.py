"""CogACT's published checkpoint layout loads onto our tree (same actions as the source model),
and bad checkpoints / settings fail with one line and exit 2."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from cogact_checkpoint import source_model, write_cogact  # noqa: E402
from conftest import run_cli  # noqa: E402
from omegaconf import OmegaConf  # noqa: E402

from vlabench.core.errors import ConfigError  # noqa: E402
from vlabench.models.cogact.build import build_cogact  # noqa: E402
from vlabench.models.synthetic import synthetic_observation  # noqa: E402

SUITE = OmegaConf.load("configs/suite/simpler_bridge.yaml")


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    src = source_model()
    path = tmp_path_factory.mktemp("ck") / "cogact-tiny"
    write_cogact(path, src.model)
    return path, src


def _load(path, suite=SUITE, **over):
    cfg = {"name": "cogact", "size": "full", "checkpoint": str(path), "warmup_calls": 0,
           "dtype": "float32", "cfg_scale": 1.5, "ddim_steps": 10,
           "ensemble": {"alpha": 0.1, "horizon": {"simpler_bridge": 7}}, **over}
    return build_cogact(cfg, None, suite, "cpu")


def test_published_layout_loads_exactly(ckpt):
    path, src = ckpt
    p = _load(path)
    assert p.tokenizer.exact and p.dims.dit_layers == 2
    want = src.model.state_dict()
    got = p.model.state_dict()
    assert set(got) == set(want)
    assert all(torch.equal(got[k], want[k]) for k in want if "mask_token" not in k)
    assert p.norm_stats["action"]["q99"][0] == 0.03   # bridge_orig, the suite's unnorm key
    torch.manual_seed(0)
    a = p.act(synthetic_observation(0)).actions
    assert a.shape == (1, 7) and np.isfinite(a).all()


def _one_line_error(fn, *needles):
    with pytest.raises(ConfigError) as e:
        fn()
    msg = str(e.value)
    assert "\n" not in msg and all(n in msg for n in needles), msg


def test_bad_checkpoints_and_keys_fail_with_one_line(ckpt, tmp_path):
    path, src = ckpt
    _one_line_error(lambda: _load(path, unnorm_key="nope"), "'nope'", "bridge_orig", "fractal20220817_data")
    _one_line_error(lambda: _load(path, action_model_type="DiT-B"), "DiT-B", "DiT-tiny", "2 blocks x width 64")
    _one_line_error(lambda: _load(path, action_model_type="DiT-Q"), "DiT-Q", "valid", "DiT-L")
    libero = OmegaConf.create({"name": "libero_spatial"})
    _one_line_error(lambda: _load(path, suite=libero), "libero_spatial", "bridge_orig", "not trained on LIBERO")
    bad = tmp_path / "no-action-model"
    write_cogact(bad, src.model, drop=("action_model",))
    _one_line_error(lambda: _load(bad), "lacks action_model", "llm_backbone")


def test_cli_exits_2_with_one_line(ckpt):
    path, _ = ckpt
    res = run_cli("bench", "model=cogact", f"model.checkpoint={path}", "model.unnorm_key=nope",
                  "suite=simpler_bridge", "bench.calls=1", timeout=300)
    assert res.returncode == 2, res.stderr[-1500:]
    lines = [ln for ln in res.stderr.strip().splitlines() if ln.startswith("vlabench: error")]
    assert len(lines) == 1 and "nope" in lines[0] and "bridge_orig" in lines[0], res.stderr
