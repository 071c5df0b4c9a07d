"""vlabench's CogACT action path equals the official one (tests/fixtures/make_cogact_reference.py).

The fixture holds what microsoft/CogACT@b174a1b's own `CogACT.predict_action` and
`AdaptiveEnsembler` computed on tiny deterministic weights (`det_param`) from a stub VLM's
hidden states (`det_hidden`): the input ids it was given, the DDIM loop's pre-clip samples, the
clipped/binarised normalised chunk, the unnormalised chunk and the ensembled action of 3
successive calls from one seed. Here the same weights go into vlabench's DiT, the decoder's
prefill returns the same hidden states, and every stage must agree to 1e-5; guidance scale 1
or 2, 9 DDIM steps each move the result far beyond that (mutants below).
"""

from __future__ import annotations

import importlib.util
import types
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from omegaconf import OmegaConf  # noqa: E402

from vlabench.models.cogact.build import build_cogact  # noqa: E402
from vlabench.models.cogact.ddim import DDIMSchedule  # noqa: E402
from vlabench.models.cogact.dit import ActionModel  # noqa: E402
from vlabench.models.synthetic import synthetic_observation  # noqa: E402
from vlabench.suites.simpler_actions import widowx_gripper  # noqa: E402

FIXTURES = Path(__file__).parent / "fixtures"
REF = np.load(FIXTURES / "cogact_reference.npz")


def _recipe():
    spec = importlib.util.spec_from_file_location("make_cogact_reference", FIXTURES / "make_cogact_reference.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


R = _recipe()


class _Tok:
    exact = True

    def encode(self, text: str) -> list[int]:
        return list(R.PROMPT_IDS)   # what the reference's tokenizer stub returned


def _policy(cfg_scale=R.CFG_SCALE, ddim_steps=R.DDIM_STEPS):
    cfg = OmegaConf.load("configs/model/cogact-tiny.yaml")
    cfg.warmup_calls, cfg.cfg_scale, cfg.ddim_steps = 0, cfg_scale, ddim_steps
    cfg.ensemble.alpha, cfg.ensemble.horizon = R.ALPHA, {"simpler_bridge": R.HORIZON}
    p = build_cogact(cfg, None, OmegaConf.load("configs/suite/simpler_bridge.yaml"), "cpu")
    p.tokenizer, p.norm_stats = _Tok(), R.STATS["bridge_orig"]
    assert (p.dims.dit_layers, p.dims.dit_hidden, p.dims.dit_heads) == R.DIT
    p.model.action_model = ActionModel(replace(p.dims, llm_hidden=R.TOKEN)).eval()
    with torch.no_grad():
        for name, t in p.model.action_model.named_parameters():
            t.copy_(R.det_param(name, tuple(t.shape)))

    def prefill(embeds, kinds, vids, keep=None, reuse=None):
        n = kinds.numel()
        return R.det_hidden(n), types.SimpleNamespace(pos=torch.arange(n), vid=vids)

    p.decoder.prefill = prefill
    return p


def _run(p):
    torch.manual_seed(R.SEED)
    out = []
    for i in range(R.CALLS):
        a = p.act(synthetic_observation(i)).actions
        chunk = p.unnormalize(p.last_normalized.copy())
        out.append((p.last_normalized, np.clip(p.last_normalized, -1, 1), chunk, a[0]))
    return out


def test_input_ids_and_every_stage_equal_the_official_code():
    p = _policy()
    assert p.prompt("pick up the black bowl") == REF["input_ids"].tolist()
    for i, (x0, clipped, chunk, act) in enumerate(_run(p)):
        assert np.allclose(x0, REF["samples"][i][0], rtol=1e-5, atol=1e-5), i
        ref_n = REF["normalized"][i]
        assert np.allclose(clipped[:, :6], ref_n[:, :6], atol=1e-5) and np.array_equal(
            np.where(clipped[:, 6] < 0.5, 0, 1), ref_n[:, 6])
        assert np.allclose(chunk, REF["actions"][i], atol=1e-5)
        ens = REF["ensembled"][i]
        assert np.allclose(act[:6], ens[:6], atol=1e-5), i
        assert widowx_gripper(act[6], "close_positive") == 2.0 * (ens[6] > 0.5) - 1.0


@pytest.mark.parametrize("mutant", [{"cfg_scale": 1.0}, {"cfg_scale": 2.0}, {"ddim_steps": 9}])
def test_mutants_are_caught(mutant):
    p = _policy(**mutant)
    x0 = _run(p)[0][0]
    assert np.abs(x0 - REF["samples"][0][0]).max() > 1e-2


def test_a_shifted_ddim_schedule_is_caught():
    p = _policy()
    s = DDIMSchedule(100, 10)
    s.timestep_map = [t + 1 for t in s.timestep_map]   # the model told the wrong step index
    p.schedule = s
    assert np.abs(_run(p)[0][0] - REF["samples"][0][0]).max() > 1e-2
