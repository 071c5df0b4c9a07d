"""vlabench's OpenVLA-OFT and OpenVLA equal the official models (tests/fixtures/make_official_reference.py).

The fixture holds the official model's outputs on tiny deterministic weights; this test writes
the same weights into a checkpoint directory in the published layout (sharded safetensors +
index, config.json as `save_pretrained` wrote it, dataset_statistics.json, DDP-prefixed
action-head and proprio-projector files), loads it through vlabench's checkpoint loader (no
dims overrides: the depth comes from config.json) and compares every stage: the fused vision
features, the 56 hidden rows fed to the action head (full bidirectional attention, rows one
before the placeholders, RMSNorm eps 1e-6 by default), and the final action chunk after
unnormalisation and the gripper post-processing (proprio through the reference axis-angle).
OpenVLA likewise: vision features, the first greedy step's full logits, then every one of the
7 greedy steps (prefill + 6 cached decode steps): its token and its logits over the 256 action
ids, and the decoded actions. Its weights (`det_param(..., case="openvla")`) make the decode
informative: 7 action tokens with 7 distinct bins, so a decode position shifted by 5, decoding
skipped (step 0's token repeated) or a bin off by one all fail here.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from published_checkpoint import write_tokenizer  # noqa: E402

from vlabench.core.contracts import Observation  # noqa: E402

FIXTURES = Path(__file__).parent / "fixtures"
REF = np.load(FIXTURES / "oft_reference.npz")
REF_OV = np.load(FIXTURES / "openvla_reference.npz")


def _recipe():
    spec = importlib.util.spec_from_file_location("make_official_reference", FIXTURES / "make_official_reference.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _write_checkpoint(path: Path, ref=REF, case: str = "oft") -> None:
    """The reference's weights (`det_param`'s rule for `case`) in the published layout."""
    from safetensors.torch import save_file

    recipe = _recipe()
    names, shapes = list(ref["names"]), json.loads(str(ref["shapes"]))
    vla, heads = {}, {"action_head": {}, "proprio_projector": {}}
    for name, shape in zip(names, shapes):
        t = recipe.det_param(name, tuple(shape), case)
        stem = name.split(".", 1)[0]
        if stem in heads:
            heads[stem]["module." + name.split(".", 1)[1]] = t
        else:
            vla[name] = t
    path.mkdir()
    keys = sorted(vla)
    weight_map = {}
    for i in range(2):
        fname = f"model-{i + 1:05d}-of-00002.safetensors"
        save_file({k: vla[k].contiguous() for k in keys[i::2]}, str(path / fname), metadata={"format": "pt"})
        weight_map.update({k: fname for k in keys[i::2]})
    (path / "model.safetensors.index.json").write_text(json.dumps({"metadata": {}, "weight_map": weight_map}))
    cfg = json.loads(str(ref["config_json"]))
    # The reference built timm's towers at tiny widths under their full-size ids; config.json
    # cannot say so, so the tiny towers' own ids name them here.
    cfg["timm_model_ids"] = ["vlabench-tiny-dinov2-reg4", "vlabench-tiny-siglip"]
    (path / "config.json").write_text(json.dumps(cfg))
    (path / "dataset_statistics.json").write_text(str(ref["norm_stats"]))
    for stem, sd in heads.items():
        if sd:
            torch.save(sd, path / f"{stem}--150000_checkpoint.pt")
    write_tokenizer(path)   # a word-level stand-in: the test feeds the fixture's prompt ids


@pytest.fixture(scope="module")
def policy(tmp_path_factory):
    from vlabench.models.build import build_openvla_oft

    ckpt = tmp_path_factory.mktemp("oft") / "openvla-7b-oft-tiny-reference"
    _write_checkpoint(ckpt)
    suite = {"name": "libero_spatial", "unnorm_key": "libero_spatial_no_noops"}
    return build_openvla_oft({"checkpoint": str(ckpt), "warmup_calls": 0, "dtype": "float32"},
                             suite_cfg=suite, device="cpu")


def _observation() -> Observation:
    return Observation(instruction="unused: prompt ids are the fixture's", step=0,
                       images={"agentview": REF["agentview"], "wrist": REF["wrist"]},
                       proprio={"eef_pos": REF["eef_pos"], "eef_quat": REF["eef_quat"],
                                "gripper_qpos": REF["gripper_qpos"]})


def test_checkpoint_depth_comes_from_config_json(policy):
    assert policy.dims.llm_layers == 2 and len(policy.model.language_model.model.layers) == 2
    assert policy.dims.rms_eps == 1e-6


def _fixture_inputs(monkeypatch, module, ref) -> None:
    """The fixture's prompt ids; the reference fed 224 px images straight to the processor, so
    no JPEG / resize / crop here (the image pipeline has its own TF fixture)."""
    import vlabench.models.frames as frames

    ids = [int(i) for i in ref["prompt_ids"]] + [29871]
    monkeypatch.setattr(module, "prompt_ids", lambda *a, **k: list(ids))
    monkeypatch.setattr(frames, "policy_image", lambda img, *a, **k: np.asarray(img, dtype=np.uint8))


def test_every_oft_stage_matches_the_official_model(policy, monkeypatch):
    import vlabench.models.openvla_oft as oft
    import vlabench.models.policy as pol

    _fixture_inputs(monkeypatch, oft, REF)
    seen = {}
    head = policy.model.action_head
    orig = head.forward

    def spy(h, *a, **k):
        seen["rows"] = h.detach().clone()
        return orig(h, *a, **k)

    monkeypatch.setattr(head, "forward", spy)
    out = policy.act(_observation())

    px = torch.cat([pol.pixel_tensor(REF[c], "cpu", torch.float32) for c in ("agentview", "wrist")], 0)
    with torch.inference_mode():
        feats, _ = policy.model.vision_backbone(px)
    feats = feats.reshape(1, -1, feats.shape[-1]).numpy()
    vis_err = np.abs(feats - REF["vision_features"]).max()
    rows_err = np.abs(seen["rows"].reshape(1, 56, -1).numpy() - REF["action_hidden"]).max()
    act_err = np.abs(out.actions - REF["actions"]).max()
    assert vis_err < 1e-5, vis_err
    assert rows_err < 1e-5, rows_err
    assert act_err < 1e-5, act_err   # measured 8.5e-7; causal 0.44, placeholder rows 0.10, eps 1e-5 1.6e-4
    assert np.array_equal(out.actions[:, -1], REF["actions"][:, -1])   # gripper signs


def test_openvla_fixture_decodes_informatively():
    """Every greedy step of the reference is an action token with a bin of its own; otherwise
    the decode steps could go wrong unseen (ids below 31745 all de-tokenise to one clipped bin)."""
    tokens = REF_OV["tokens"]
    bins = 32000 - tokens - 1
    assert tokens.shape == (7,) and ((bins >= 0) & (bins <= 254)).all(), tokens
    assert len(set(bins.tolist())) == 7, bins
    assert np.ptp(bins) > 128, bins   # spread over the bins
    logits = REF_OV["step_action_logits"]
    assert logits.shape == (7, 256)
    assert np.array_equal(logits.argmax(-1) + 31744, tokens)
    assert np.array_equal(REF_OV["first_logits"].argmax(), tokens[0])


def test_every_openvla_stage_matches_the_official_model(tmp_path, monkeypatch):
    import vlabench.models.openvla as ov
    import vlabench.models.policy as pol
    from vlabench.models.build import build_openvla

    ckpt = tmp_path / "openvla-7b-tiny-reference"
    _write_checkpoint(ckpt, REF_OV, case="openvla")
    p = build_openvla({"checkpoint": str(ckpt), "warmup_calls": 0, "dtype": "float32"},
                      suite_cfg={"name": "libero_spatial", "unnorm_key": "libero_spatial"}, device="cpu")
    assert p.dims.llm_layers == 2
    _fixture_inputs(monkeypatch, ov, REF_OV)
    lm_head = p.model.language_model.lm_head
    seen = []
    orig = lm_head.forward
    monkeypatch.setattr(lm_head, "forward", lambda h: seen.append(orig(h)) or seen[-1])
    obs = Observation(instruction="unused", step=0, images={"agentview": REF_OV["agentview"]})
    out = p.act(obs)
    px = pol.pixel_tensor(REF_OV["agentview"], "cpu", torch.float32)
    with torch.inference_mode():
        feats, _ = p.model.vision_backbone(px)
    assert np.abs(feats.numpy() - REF_OV["vision_features"]).max() < 1e-5
    logits_err = np.abs(seen[0][0, -1].numpy() - REF_OV["first_logits"]).max()
    assert logits_err < 1e-4, logits_err   # measured 1.7e-6; with RMSNorm eps 1e-5: 2.8e-3
    steps = np.stack([s[0, -1].detach().numpy() for s in seen])   # one LM-head row per step
    tokens = steps.argmax(-1)
    assert tokens.tolist() == REF_OV["tokens"].tolist(), (tokens, REF_OV["tokens"])
    steps_err = np.abs(steps[:, 31744:32000] - REF_OV["step_action_logits"]).max()
    assert steps_err < 1e-4, steps_err   # measured 1.7e-6 (step 0), 0 (decode steps)
    assert np.abs(out.actions[0] - REF_OV["actions"]).max() < 1e-9
