"""The full-size model matches the published checkpoints' parameter names and shapes after
the remap (fixture transcribed from public code: tests/fixtures/transcribe_checkpoint_names.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from vlabench.models.checkpoint import OURS_ONLY, remap, strip_module_prefix  # noqa: E402
from vlabench.models.dims import FULL  # noqa: E402
from vlabench.models.prismatic import build_random  # noqa: E402

FIXTURE = json.loads((Path(__file__).parent / "fixtures" / "prismatic_checkpoint_names.json").read_text())


def _meta(shapes: dict[str, list[int]]) -> dict[str, torch.Tensor]:
    return {k: torch.empty(v, device="meta") for k, v in shapes.items()}


def _published(oft: bool) -> dict[str, torch.Tensor]:
    sd = _meta(FIXTURE["openvla_safetensors"])
    if oft:
        sd.update(strip_module_prefix(_meta(FIXTURE["oft_action_head_pt"]), "action_head."))
        sd.update(strip_module_prefix(_meta(FIXTURE["oft_proprio_projector_pt"]), "proprio_projector."))
    return sd


@pytest.mark.parametrize("oft", [True, False], ids=["openvla-oft", "openvla"])
def test_full_size_meta_model_matches_published_names_and_shapes(oft):
    model = build_random(FULL, oft, "meta", torch.bfloat16)
    ours = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    mapped = {k: tuple(v.shape) for k, v in remap(_published(oft)).items()}
    assert set(ours) - set(mapped) == set(OURS_ONLY)
    assert set(mapped) - set(ours) == set()
    bad = {k: (mapped[k], ours[k]) for k in mapped if mapped[k] != ours[k]}
    assert bad == {}
    n_params = sum(v.numel() for k, v in model.state_dict().items() if k not in OURS_ONLY)
    n_published = sum(torch.Size(s).numel() for s in FIXTURE["openvla_safetensors"].values())
    assert n_published == pytest.approx(7.54e9, rel=0.01)   # OpenVLA-7B: 7.5B parameters
    if not oft:   # plus the class token's (zero) row of the DINOv2 position table
        assert n_params == n_published + FULL.dino_hidden


def test_remap_splits_fused_qkv_in_query_key_value_order():
    q, k, v = torch.full((4, 4), 1.0), torch.full((4, 4), 2.0), torch.full((4, 4), 3.0)
    out = remap({"vision_backbone.featurizer.blocks.0.attn.qkv.weight": torch.cat([q, k, v]),
                 "vision_backbone.fused_featurizer.blocks.0.attn.qkv.weight": torch.cat([q, k, v])})
    d = "vision_backbone.featurizer.encoder.layer.0.attention."
    s = "vision_backbone.fused_featurizer.encoder.layers.0.self_attn."
    assert torch.equal(out[d + "q_proj.weight"], q) and torch.equal(out[d + "v_proj.weight"], v)
    assert torch.equal(out[s + "k_proj.weight"], k)


def test_remap_gives_the_dinov2_class_token_no_position_embedding():
    pos = torch.randn(1, 256, 8)
    out = remap({"vision_backbone.featurizer.pos_embed": pos})
    table = out["vision_backbone.featurizer.embeddings.position_embeddings"]
    assert table.shape == (1, 257, 8)
    assert torch.equal(table[:, 0], torch.zeros(1, 8)) and torch.equal(table[:, 1:], pos)


def test_remap_rejects_unknown_names():
    with pytest.raises(KeyError):
        remap({"vision_backbone.mystery.weight": torch.zeros(1)})


def _tiny_published(d, seed=0):
    """A random checkpoint in the published layout at tiny sizes, from the fixture's generator."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "transcribe", Path(__file__).parent / "fixtures" / "transcribe_checkpoint_names.py")
    tr = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tr)
    shapes = {}
    shapes.update(tr.vit("vision_backbone.featurizer.", d.dino_hidden, d.dino_layers, d.dino_mlp,
                         cls=True, regs=4, pos_tokens=256, pool=False))
    shapes.update(tr.vit("vision_backbone.fused_featurizer.", d.siglip_hidden, d.siglip_layers,
                         d.siglip_mlp, cls=False, regs=0, pos_tokens=256, pool=True))
    v, L = d.vision_dim, d.llm_hidden
    shapes.update({"projector.fc1.weight": [4 * v, v], "projector.fc1.bias": [4 * v],
                   "projector.fc2.weight": [L, 4 * v], "projector.fc2.bias": [L],
                   "projector.fc3.weight": [L, L], "projector.fc3.bias": [L]})
    shapes.update(tr.llama("language_model.", L, d.llm_layers, d.llm_mlp, d.vocab_size))
    g = torch.Generator().manual_seed(seed)
    return {k: torch.randn(s, generator=g) * 0.02 for k, s in shapes.items()}


def test_loading_a_published_layout_checkpoint_runs_and_places_weights(tmp_path, monkeypatch):
    from safetensors.torch import save_file
    from tokenizers import Tokenizer, models, pre_tokenizers, processors

    from vlabench.models import build as B
    from vlabench.models.dims import TINY
    from vlabench.models.synthetic import synthetic_observation

    pub = _tiny_published(TINY)
    save_file(pub, str(tmp_path / "model.safetensors"))
    words = "In : What action should the robot take to pick up the black bowl ? Out".split()
    vocab = {"<unk>": 0, "<s>": 1, "</s>": 2, **{w: 100 + i for i, w in enumerate(words)}}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", 1)])
    tok.save(str(tmp_path / "tokenizer.json"))
    (tmp_path / "tokenizer_config.json").write_text(json.dumps(
        {"tokenizer_class": "PreTrainedTokenizerFast", "bos_token": "<s>", "eos_token": "</s>",
         "unk_token": "<unk>"}))
    stats = {"libero_spatial_no_noops": {"action": {"q01": [-0.5] * 7, "q99": [0.5] * 7,
                                                    "mask": [True] * 6 + [False]}}}
    (tmp_path / "dataset_statistics.json").write_text(json.dumps(stats))
    monkeypatch.setattr(B, "dims_for", lambda size, over=None: TINY)
    p = B.build_openvla({"checkpoint": str(tmp_path), "size": "full", "warmup_calls": 0},
                        suite_cfg={"name": "libero_spatial", "unnorm_key": "libero_spatial_no_noops"},
                        device="cpu")
    sd = p.model.state_dict()
    d = TINY.dino_hidden
    qkv = pub["vision_backbone.featurizer.blocks.1.attn.qkv.weight"]
    assert torch.equal(sd["vision_backbone.featurizer.encoder.layer.1.attention.k_proj.weight"], qkv[d:2 * d])
    assert torch.equal(sd["language_model.lm_head.weight"], pub["language_model.lm_head.weight"])
    assert p.tokenizer.exact and p.norm_stats["action"]["q99"][0] == 0.5
    out = p.act(synthetic_observation(0))
    assert out.actions.shape == (1, 7) and abs(out.actions[0, :6]).max() <= 0.5
