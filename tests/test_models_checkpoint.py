"""Published checkpoints load: names and shapes (fixture transcribed from public code:
tests/fixtures/transcribe_checkpoint_names.py), the remap and its inverse, and checkpoint
directories in the published layout (written by tests/published_checkpoint.py) loading through
the same loader as the real ones, at whatever depth and width their config.json gives."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from published_checkpoint import STATS, source_model, write_published  # noqa: E402

from vlabench.core.errors import ConfigError  # noqa: E402
from vlabench.models.checkpoint_names import OURS_ONLY, remap, unmap  # noqa: E402
from vlabench.models.dims import FULL, TINY, dims_from_published, published_config  # noqa: E402
from vlabench.models.prismatic import build_random  # noqa: E402

FIXTURE = json.loads((Path(__file__).parent / "fixtures" / "prismatic_checkpoint_names.json").read_text())
SUITE = {"name": "libero_spatial", "unnorm_key": "libero_spatial_no_noops"}
# 2 LLM layers, a width (128) and MLP (344) that no built-in size has, 2 kv heads of 4
SMALL = replace(TINY, llm_layers=2, llm_hidden=128, llm_heads=4, llm_kv_heads=2, llm_mlp=344)


def _meta(shapes: dict[str, list[int]]) -> dict[str, torch.Tensor]:
    return {k: torch.empty(v, device="meta") for k, v in shapes.items()}


def strip_module_prefix(sd: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    """OFT head files: drop DDP's `module.` and put the component's prefix in front."""
    return {prefix + k.removeprefix("module."): v for k, v in sd.items()}


def _published(oft: bool) -> dict[str, torch.Tensor]:
    sd = _meta(FIXTURE["openvla_safetensors"])
    if oft:
        sd.update(strip_module_prefix(_meta(FIXTURE["oft_action_head_pt"]), "action_head."))
        sd.update(strip_module_prefix(_meta(FIXTURE["oft_proprio_projector_pt"]), "proprio_projector."))
    return sd


# ---------------------------------------------------------------------------- names
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


def test_published_dinov2_layer_scale_is_named_scale_factor():
    names = FIXTURE["openvla_safetensors"]
    assert "vision_backbone.featurizer.blocks.0.ls1.scale_factor" in names
    assert "vision_backbone.featurizer.blocks.23.ls2.scale_factor" in names
    assert not any(k.endswith(".gamma") for k in names)


def test_remap_puts_layer_scale_scale_factor_on_lambda1_and_rejects_timm_gamma():
    s1, s2 = torch.arange(4.0), torch.arange(4.0) + 10
    out = remap({"vision_backbone.featurizer.blocks.3.ls1.scale_factor": s1,
                 "vision_backbone.featurizer.blocks.3.ls2.scale_factor": s2})
    base = "vision_backbone.featurizer.encoder.layer.3."
    assert torch.equal(out[base + "layer_scale1.lambda1"], s1)
    assert torch.equal(out[base + "layer_scale2.lambda1"], s2)
    with pytest.raises(KeyError, match="ls1.gamma"):
        remap({"vision_backbone.featurizer.blocks.0.ls1.gamma": s1})


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


@pytest.mark.parametrize("oft", [True, False], ids=["openvla-oft", "openvla"])
def test_unmap_is_the_inverse_of_remap_and_writes_the_published_names(oft):
    model = source_model(TINY, oft, seed=1)
    ours = model.state_dict()
    pub = unmap(ours)
    shapes = {k: list(v.shape) for k, v in pub.items()}
    # the same names as the transcribed full-size fixture, at tiny shapes
    want = set(FIXTURE["openvla_safetensors"]) - {k for k in FIXTURE["openvla_safetensors"]
                                                   if ".blocks." in k or "language_model.model.layers." in k}
    assert want <= set(shapes)
    assert shapes["vision_backbone.featurizer.pos_embed"] == [1, 256, TINY.dino_hidden]
    assert "vision_backbone.featurizer.blocks.1.ls2.scale_factor" in shapes
    back = remap(pub)
    assert set(back) == set(ours) - set(OURS_ONLY)
    assert all(torch.equal(back[k], ours[k]) for k in back)


def test_unmap_refuses_a_class_token_position_the_published_layout_cannot_hold():
    model = build_random(TINY, False, "cpu", torch.float32)
    model.vision_backbone.featurizer.embeddings.position_embeddings.data[0, 0, 0] = 1.0
    with pytest.raises(ValueError, match="class-token position"):
        unmap(model.state_dict())


# ---------------------------------------------------------------------------- config.json
def test_published_config_json_describes_the_full_size_architecture():
    d = dims_from_published(FIXTURE["openvla_config_json"], base=TINY)
    arch = {f: getattr(FULL, f) for f in FULL.__dataclass_fields__
            if f not in ("action_dim", "chunk", "proprio_dim", "head_blocks")}
    assert {f: getattr(d, f) for f in arch} == arch
    assert d.rms_eps == 1e-6 and d.vocab_size == 32064 and d.llm_kv_heads == 32


# ---------------------------------------------------------------------------- loading
def _build(oft: bool, path: Path, **cfg):
    from vlabench.models import build as B

    fn = B.build_openvla_oft if oft else B.build_openvla
    return fn({"checkpoint": str(path), "size": "full", "warmup_calls": 0, **cfg},
              suite_cfg=SUITE, device="cpu")


def _source_policy(oft: bool, model, d, path: Path):
    from vlabench.models.build import pick_stats
    from vlabench.models.openvla import OpenVLAPolicy
    from vlabench.models.openvla_oft import OpenVLAOFTPolicy
    from vlabench.models.suite_io import SuiteIO
    from vlabench.models.tokenizer import HFTokenizer

    cls = OpenVLAOFTPolicy if oft else OpenVLAPolicy
    return cls(model, d, None, HFTokenizer(path), pick_stats(STATS, SUITE["unnorm_key"], SUITE["name"]),
               "cpu", torch.float32, cfg={"warmup_calls": 0}, io=SuiteIO.from_suite(SUITE))


@pytest.mark.parametrize("oft", [True, False], ids=["openvla-oft", "openvla"])
def test_published_layout_checkpoint_loads_unaided_at_its_config_depth_and_acts_like_its_source(
        tmp_path, oft):
    from vlabench.models.synthetic import synthetic_observation

    model = source_model(SMALL, oft, seed=2)
    pub = write_published(tmp_path, model, SMALL, oft)
    assert "vision_backbone.featurizer.blocks.0.ls1.scale_factor" in pub
    assert len(list(tmp_path.glob("model-0000?-of-00002.safetensors"))) == 2
    loaded = _build(oft, tmp_path)                  # no model.dims override
    d = loaded.dims
    assert (d.llm_layers, d.llm_hidden, d.llm_heads, d.llm_kv_heads, d.llm_mlp) == (2, 128, 4, 2, 344)
    assert len(loaded.model.language_model.model.layers) == 2
    assert d == SMALL
    src = _source_policy(oft, model, SMALL, tmp_path)
    for seed in (0, 1):
        obs = synthetic_observation(seed)
        a, b = loaded.act(obs).actions, src.act(obs).actions
        assert a.shape == ((SMALL.chunk, 7) if oft else (1, 7))
        np.testing.assert_array_equal(a, b)
    sd, want = loaded.model.state_dict(), model.state_dict()
    assert set(sd) == set(want)
    assert [k for k in sd if k not in OURS_ONLY and not torch.equal(sd[k], want[k])] == []
    assert torch.equal(sd["vision_backbone.featurizer.encoder.layer.1.layer_scale1.lambda1"],
                       pub["vision_backbone.featurizer.blocks.1.ls1.scale_factor"])


def test_oft_head_widths_come_from_the_head_files(tmp_path):
    d = replace(SMALL, proprio_dim=6, head_blocks=1)
    write_published(tmp_path, source_model(d, True), d, True)
    loaded = _build(True, tmp_path)
    assert (loaded.dims.proprio_dim, loaded.dims.head_blocks, loaded.dims.action_dim) == (6, 1, 7)


def test_model_dims_overrides_apply_over_the_checkpoint_config(tmp_path):
    write_published(tmp_path, source_model(SMALL, False), SMALL, False)
    with pytest.raises(ConfigError, match="differ in shape|missing"):
        _build(False, tmp_path, dims={"llm_layers": 3})
    with pytest.raises(ConfigError, match="unknown model.dims field"):
        _build(False, tmp_path, dims={"llm_depth": 3})


def _one_line(excinfo) -> str:
    msg = str(excinfo.value)
    assert "\n" not in msg and msg
    return msg


@pytest.fixture
def written(tmp_path):
    path = tmp_path / "ckpt"
    write_published(path, source_model(SMALL, True), SMALL, True)
    return path


@pytest.mark.parametrize("damage,message", [
    ("rmdir", "directory not found"),
    ("no_config", "has no config.json"),
    ("bad_config", "is not valid JSON"),
    ("missing_shard", "missing (incomplete download?)"),
    ("corrupt_shard", "cannot read"),
    ("no_action_head", "exactly one action_head--*_checkpoint.pt file (found none)"),
    ("two_action_heads", "exactly one action_head--*_checkpoint.pt file (found 2"),
    ("deeper_config", "does not match the architecture of its config.json"),
    ("wider_config", "differ in shape"),
    ("not_llama", "only Llama"),
    ("unknown_tower", "not a known DINOv2-reg4 + SigLIP pair"),
])
def test_a_bad_checkpoint_directory_is_one_clear_line(written, damage, message):
    import shutil

    cfg = json.loads((written / "config.json").read_text())
    if damage == "rmdir":
        shutil.rmtree(written)
    elif damage == "no_config":
        (written / "config.json").unlink()
    elif damage == "bad_config":
        (written / "config.json").write_text("{not json")
    elif damage == "missing_shard":
        (written / "model-00002-of-00002.safetensors").unlink()
    elif damage == "corrupt_shard":
        (written / "model-00001-of-00002.safetensors").write_bytes(b"\x00" * 64)
    elif damage == "no_action_head":
        next(written.glob("action_head--*")).unlink()
    elif damage == "two_action_heads":
        shutil.copy(next(written.glob("action_head--*")), written / "action_head--5_checkpoint.pt")
    elif damage in ("deeper_config", "wider_config", "not_llama", "unknown_tower"):
        if damage == "deeper_config":
            cfg["text_config"]["num_hidden_layers"] = 3
        elif damage == "wider_config":
            cfg["text_config"]["intermediate_size"] = 400
        elif damage == "not_llama":
            cfg["text_config"]["model_type"] = "mistral"
        else:
            cfg["timm_model_ids"][0] = "vit_giant_patch14_dinov2"
        (written / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ConfigError) as e:
        _build(True, written)
    assert message in _one_line(e)


def test_a_missing_checkpoint_path_is_one_line_before_any_download():
    from vlabench.models.checkpoint import resolve_checkpoint

    with pytest.raises(ConfigError) as e:
        resolve_checkpoint("/nonexistent/openvla-7b-finetuned-libero-10", "libero_10", "openvla")
    assert "directory not found" in _one_line(e) and "model=openvla-tiny" in str(e.value)


def test_published_config_round_trips_through_dims_from_published():
    for d in (FULL, TINY, SMALL, replace(SMALL, rms_eps=1e-5, max_positions=4096)):
        cfg = published_config(d)
        assert dims_from_published(json.loads(json.dumps(cfg))) == replace(FULL, **{
            f: getattr(d, f) for f in FULL.__dataclass_fields__
            if f not in ("action_dim", "chunk", "proprio_dim", "head_blocks")})
    assert published_config(FULL)["text_config"] == FIXTURE["openvla_config_json"]["text_config"]


def test_cli_run_with_a_missing_checkpoint_directory_exits_2_with_one_line(cli, tmp_path):
    res = cli("run", "model=openvla", f"model.checkpoint={tmp_path / 'nowhere'}", "suite=libero_spatial",
              "suite.tasks=[0]", "run.episodes_per_task=1", f"run.output_dir={tmp_path / 'out'}")
    lines = [ln for ln in res.stderr.splitlines() if ln.startswith("vlabench: error:")]
    assert res.returncode == 2 and len(lines) == 1 and "Traceback" not in res.stderr
    assert "directory not found" in lines[0] and not (tmp_path / "out").exists()


@pytest.mark.parametrize("spec", ["./ckpts/missing", "ckpts/missing", "/nonexistent/x", "~/no-such-ckpt-dir",
                                  "ckpts/a/b"])
def test_a_mistyped_local_path_says_directory_not_found_without_downloading(spec, tmp_path, monkeypatch):
    import huggingface_hub

    from vlabench.models.checkpoint import resolve_checkpoint

    monkeypatch.chdir(tmp_path)
    (tmp_path / "ckpts").mkdir()   # "ckpts/missing" is a path here, not the repo id ckpts/missing
    monkeypatch.setattr(huggingface_hub, "snapshot_download", lambda *a, **k: pytest.fail("downloaded"))
    with pytest.raises(ConfigError) as e:
        resolve_checkpoint(spec, "libero_10", "openvla-oft")
    assert _one_line(e).startswith(f"checkpoint directory not found: {spec}")


def test_an_uncached_repo_id_names_the_download_command_and_commands_that_work(monkeypatch, tmp_path):
    import huggingface_hub

    from vlabench.models import checkpoint_spec
    from vlabench.models.checkpoint import resolve_checkpoint

    class LocalEntryNotFoundError(Exception):
        pass

    def offline(*a, **k):
        raise LocalEntryNotFoundError("offline")

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(checkpoint_spec, "hf_cache_dir", lambda: str(tmp_path / "empty-cache"))
    monkeypatch.setattr(huggingface_hub, "snapshot_download", offline)
    with pytest.raises(ConfigError) as e:
        resolve_checkpoint({"libero_spatial": "moojink/openvla-7b-oft-finetuned-libero-spatial"},
                           "libero_spatial", "openvla-oft")
    line = _one_line(e)
    assert "could not be downloaded (no network?)" in line
    assert "`hf download moojink/openvla-7b-oft-finetuned-libero-spatial`" in line
    assert "model=openvla-oft-tiny" in line
    assert "`vlabench bench model=openvla-oft model.checkpoint=null`" in line
    assert "model.checkpoint=null (" not in line      # no bare hint that `run` then refuses on a CPU


def test_a_cached_repo_id_resolves_offline(monkeypatch, tmp_path):
    import huggingface_hub

    from vlabench.models import checkpoint_spec
    from vlabench.models.checkpoint import resolve_checkpoint

    snap = tmp_path / "hub" / "models--org--ckpt" / "snapshots" / "abc"
    snap.mkdir(parents=True)
    (snap / "config.json").write_text("{}")
    (tmp_path / "hub" / "models--org--ckpt" / "refs").mkdir()
    (tmp_path / "hub" / "models--org--ckpt" / "refs" / "main").write_text("abc")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(checkpoint_spec, "hf_cache_dir", lambda: str(tmp_path / "hub"))
    monkeypatch.setattr(huggingface_hub, "snapshot_download", lambda *a, **k: pytest.fail("downloaded"))
    assert resolve_checkpoint("org/ckpt", "libero_10", "openvla") == snap


@pytest.mark.slow
def test_the_no_weights_hint_commands_run(cli, tmp_path):
    # every command the hint names must work on this (CPU) machine
    from vlabench.models.checkpoint import no_weights_hint

    hint = no_weights_hint("openvla-oft")
    assert "model=openvla-oft-tiny" in hint
    res = cli("bench", "model=openvla-oft", "model.checkpoint=null", "bench.calls=1")
    assert res.returncode == 0, res.stderr[-2000:]
    res = cli("run", "model=openvla-oft-tiny", "suite=libero_spatial", "suite.tasks=[0]",
              "run.episodes_per_task=1", "run.max_steps=1", f"run.output_dir={tmp_path}")
    assert res.returncode in (0, 1), res.stderr[-2000:]   # 1: the episode failed (random weights)
