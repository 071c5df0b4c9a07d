"""Runs lerobot 0.4.4's PI0 (openpi's PyTorch port) on inputs saved by
tests/test_pi0_lerobot_equivalence.py; executed with .venv-lerobot's Python (never imported by
vlabench). Usage: python lerobot_pi0.py CHECKPOINT_DIR INPUTS.npz OUT.npz

It builds `PI0Pytorch` at the sizes in the checkpoint's config.json (`vlabench_dims`: the tiny
test sizes; lerobot itself knows only gemma_2b / gemma_300m), loads model.safetensors by name
with strict=True through lerobot's own key fixing, and calls `sample_actions` with the given
images, masks, tokens, state and noise in float32.

lerobot's pi0 runs on openpi's patched transformers 4.53.2 (openpi
src/openpi/models_pytorch/transformers_replace), which is not on PyPI. On the stock 4.53.2 from
PyPI, `patch_stock_transformers` restores, for pi0's inference path (no adaRMS), what that patch
changes there: (1) the `transformers.models.siglip.check` module lerobot asserts on;
(2) GemmaModel does not scale inputs_embeds by sqrt(hidden_size); (3) a forward given a cache
with use_cache=False attends to the cached keys without appending to the cache;
(4) PaliGemma's image features are not divided by sqrt(hidden_size). Nothing else is touched:
the pi0 model (embeddings, masks, positions, Euler loop) and every Gemma / SigLIP layer are
lerobot's and transformers' code.
"""

from __future__ import annotations

import copy
import json
import sys
import types
from pathlib import Path

import numpy as np
import torch

# torchvision from PyPI beside the CPU torch build lacks these operators (imported by lerobot)
_tv = torch.library.Library("torchvision", "DEF")
_tv.define("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
_tv.define("qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")


def patch_stock_transformers() -> None:
    check = types.ModuleType("transformers.models.siglip.check")
    check.check_whether_transformers_replace_is_installed_correctly = lambda: True
    sys.modules["transformers.models.siglip.check"] = check

    from transformers.models.gemma import modeling_gemma as mg
    from transformers.models.paligemma import modeling_paligemma as mp

    forward = mg.GemmaModel.forward

    def gemma_forward(self, *args, inputs_embeds=None, past_key_values=None, use_cache=None,
                      adarms_cond=None, **kwargs):
        if adarms_cond is not None:
            raise NotImplementedError("adaRMS (pi0.5) is not part of this shim")
        if inputs_embeds is not None:   # cancel the stock normalizer exactly where it applies
            norm = torch.tensor(self.config.hidden_size ** 0.5, dtype=inputs_embeds.dtype)
            inputs_embeds = inputs_embeds / norm
        if past_key_values is not None and not use_cache:
            past_key_values = copy.deepcopy(past_key_values)
        return forward(self, *args, inputs_embeds=inputs_embeds, past_key_values=past_key_values,
                       use_cache=use_cache, **kwargs)

    mg.GemmaModel.forward = gemma_forward

    def image_features(self, pixel_values):
        return self.multi_modal_projector(self.vision_tower(pixel_values).last_hidden_state)

    mp.PaliGemmaModel.get_image_features = image_features


def build(ckpt: Path):
    from lerobot.policies.pi0 import modeling_pi0 as m
    from lerobot.policies.pi0.configuration_pi0 import PI0Config

    cfg = json.loads((ckpt / "config.json").read_text())
    d = cfg["vlabench_dims"]
    m.get_gemma_config = lambda variant: m.GemmaConfig(
        width=d["llm_hidden"] if variant == "gemma_2b" else d["expert_hidden"],
        depth=d["llm_layers"],
        mlp_dim=d["llm_mlp"] if variant == "gemma_2b" else d["expert_mlp"],
        num_heads=d["llm_heads"], num_kv_heads=d["llm_kv_heads"], head_dim=d["head_dim"])

    # lerobot sets the SigLIP MLP (4304) and projection (2048) widths by hand: the test sizes are
    # put back into the config just before the PaliGemma is constructed
    vision = {"hidden_size": d["siglip_hidden"], "intermediate_size": d["siglip_mlp"],
              "num_hidden_layers": d["siglip_layers"], "num_attention_heads": d["siglip_heads"],
              "projection_dim": d["llm_hidden"], "patch_size": d["patch_size"],
              "image_size": d["image_size"]}
    paligemma = m.PaliGemmaForConditionalGeneration

    def sized_paligemma(config):
        for key, value in vision.items():
            setattr(config.vision_config, key, value)
        config.projection_dim = d["llm_hidden"]
        return paligemma(config=config)

    m.PaliGemmaForConditionalGeneration = sized_paligemma

    config = PI0Config(dtype="float32", device="cpu", chunk_size=d["chunk"],
                       n_action_steps=d["chunk"], num_inference_steps=d["flow_steps"])
    model = m.PI0Pytorch(config)
    from safetensors.torch import load_file

    state = load_file(str(ckpt / "model.safetensors"))
    state = {k.removeprefix("model."): v for k, v in state.items()}
    model.load_state_dict(state, strict=True)
    return model.eval()


def main(ckpt: str, inputs: str, out: str) -> None:
    patch_stock_transformers()
    torch.manual_seed(0)
    model = build(Path(ckpt))
    x = np.load(inputs)
    t = lambda k, dt=torch.float32: torch.from_numpy(x[k]).to(dt)   # noqa: E731
    n_img = int(x["n_images"])
    images = [t(f"image{i}") for i in range(n_img)]
    masks = [t(f"image_mask{i}", torch.bool) for i in range(n_img)]
    with torch.no_grad():
        actions = model.sample_actions(images, masks, t("tokens", torch.long),
                                       t("token_mask", torch.bool), t("state"),
                                       noise=t("noise"), num_steps=int(x["flow_steps"]))
    np.savez(out, actions=actions.numpy(), keys=np.array(sorted(model.state_dict())))


if __name__ == "__main__":
    main(*sys.argv[1:4])
