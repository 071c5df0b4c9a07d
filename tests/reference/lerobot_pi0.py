"""Runs lerobot 0.4.4's PI0 (openpi's PyTorch port) on inputs saved by
tests/test_pi0_lerobot_equivalence.py; executed with .venv-lerobot's Python (never imported by
vlabench). Two modes:

  python lerobot_pi0.py model    CHECKPOINT_DIR INPUTS.npz OUT.npz
      `PI0Pytorch.sample_actions` on the given images, masks, tokens, state and noise (float32):
      the model alone.
  python lerobot_pi0.py pipeline CHECKPOINT_DIR RAW_OBS.npz INPUTS.npz OUT.npz
      lerobot's LIBERO evaluation path (lerobot/scripts/lerobot_eval.py `rollout`) on raw LIBERO
      observations: `envs.libero.LiberoEnv._format_raw_obs` -> `envs.utils.preprocess_observation`
      -> the task string -> the env preprocessor (`envs.factory.make_env_pre_post_processors`:
      `LiberoProcessorStep`, the 180-degree flip and the 8-d state) -> the policy preprocessor
      (`policies.pi0.processor_pi0.make_pi0_pre_post_processors`: batch, newline, tokenizer,
      `NormalizerProcessorStep`) -> `PI0Policy.select_action` (image resize-with-pad to 224 and
      [-1, 1] scaling, state padding, `sample_actions`, the first n_action_steps of the chunk,
      one per call) -> the postprocessor (`UnnormalizerProcessorStep`) -> the env postprocessor.
      What `sample_actions` receives and returns is recorded on the way.

It builds `PI0Pytorch` at the sizes in the checkpoint's config.json (`vlabench_dims`: the tiny
test sizes; lerobot itself knows only gemma_2b / gemma_300m) and loads model.safetensors by name
with strict=True.

lerobot's pi0 runs on openpi's patched transformers 4.53.2 (openpi
src/openpi/models_pytorch/transformers_replace), which is not on PyPI. On the stock 4.53.2 from
PyPI, `patch_stock_transformers` restores, for pi0's inference path (no adaRMS), what that patch
changes there: (1) the `transformers.models.siglip.check` module lerobot asserts on;
(2) GemmaModel does not scale inputs_embeds by sqrt(hidden_size); (3) a forward given a cache
with use_cache=False attends to the cached keys without appending to the cache;
(4) PaliGemma's image features are not divided by sqrt(hidden_size). Nothing else is touched:
the pi0 model (embeddings, masks, positions, Euler loop) and every Gemma / SigLIP layer are
lerobot's and transformers' code.

Stand-ins in pipeline mode, none of them on the computation's path:
- the PaliGemma tokenizer (google/paligemma-3b-pt-224) is gated: lerobot's TokenizerProcessorStep
  is given the stand-in tokenizer saved in the checkpoint directory (the one vlabench loads from
  the same directory) instead of the name; everything else of the step (padding to
  tokenizer_max_length, right padding, the attention mask) is lerobot's;
- the LIBERO simulator is not installed in .venv-lerobot: `lerobot.envs.libero` imports it at
  module level, so empty `libero` modules stand in for that import (never called); the raw
  observation comes from the fixture, and `_format_raw_obs` reads only the controller's
  `ee_ori_mat` from the environment (given from the fixture as well);
- the noise: `PI0Pytorch.sample_noise` returns the test's noise instead of a fresh draw.
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

RAW_KEYS = ("agentview_image", "robot0_eye_in_hand_image", "robot0_eef_pos", "robot0_eef_quat",
            "robot0_gripper_qpos", "robot0_gripper_qvel")


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


def dims(ckpt: Path) -> dict:
    return json.loads((ckpt / "config.json").read_text())["vlabench_dims"]


def use_checkpoint_sizes(ckpt: Path) -> None:
    """Make lerobot's PI0Pytorch constructor build the checkpoint's (tiny) sizes."""
    from lerobot.policies.pi0 import modeling_pi0 as m

    d = dims(ckpt)
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


def load_weights(model: torch.nn.Module, ckpt: Path) -> None:
    from safetensors.torch import load_file

    state = load_file(str(ckpt / "model.safetensors"))
    model.load_state_dict({k.removeprefix("model."): v for k, v in state.items()}, strict=True)


def build(ckpt: Path):
    from lerobot.policies.pi0 import modeling_pi0 as m
    from lerobot.policies.pi0.configuration_pi0 import PI0Config

    use_checkpoint_sizes(ckpt)
    d = dims(ckpt)
    config = PI0Config(dtype="float32", device="cpu", chunk_size=d["chunk"],
                       n_action_steps=d["chunk"], num_inference_steps=d["flow_steps"])
    model = m.PI0Pytorch(config)
    load_weights(model, ckpt)
    return model.eval()


def run_model(ckpt: str, inputs: str, out: str) -> None:
    torch.manual_seed(0)
    model = build(Path(ckpt))
    x = np.load(inputs)

    def t(k, dt=torch.float32):
        return torch.from_numpy(x[k]).to(dt)

    n_img = int(x["n_images"])
    images = [t(f"image{i}") for i in range(n_img)]
    masks = [t(f"image_mask{i}", torch.bool) for i in range(n_img)]
    with torch.no_grad():
        actions = model.sample_actions(images, masks, t("tokens", torch.long),
                                       t("token_mask", torch.bool), t("state"),
                                       noise=t("noise"), num_steps=int(x["flow_steps"]))
    np.savez(out, actions=actions.numpy(), keys=np.array(sorted(model.state_dict())))


# ------------------------------------------------------------------------------------ pipeline
def stub_libero_imports() -> None:
    """`lerobot.envs.libero` imports the simulator at module level; it is never called here."""
    libero = types.ModuleType("libero")
    inner = types.ModuleType("libero.libero")
    envs = types.ModuleType("libero.libero.envs")
    inner.benchmark = types.SimpleNamespace()
    inner.get_libero_path = lambda *_a, **_k: None
    envs.OffScreenRenderEnv = object
    libero.libero = inner
    inner.envs = envs
    sys.modules.update({"libero": libero, "libero.libero": inner, "libero.libero.envs": envs})


def pipeline_policy(ckpt: Path, execute: int, task: str):
    from lerobot.configs.types import FeatureType, PolicyFeature
    from lerobot.envs.configs import LiberoEnv as LiberoEnvConfig
    from lerobot.envs.factory import make_env_pre_post_processors
    from lerobot.policies.pi0 import modeling_pi0 as m
    from lerobot.policies.pi0 import processor_pi0
    from lerobot.policies.pi0.configuration_pi0 import PI0Config
    from safetensors.torch import load_file
    from transformers import AutoTokenizer

    use_checkpoint_sizes(ckpt)
    d = dims(ckpt)
    image = PolicyFeature(type=FeatureType.VISUAL, shape=(3, d["image_size"], d["image_size"]))
    config = PI0Config(
        dtype="float32", device="cpu", chunk_size=d["chunk"], n_action_steps=execute,
        num_inference_steps=d["flow_steps"], max_state_dim=d["max_state_dim"],
        max_action_dim=d["max_action_dim"], tokenizer_max_length=d["max_prompt_tokens"],
        image_resolution=(d["image_size"], d["image_size"]),
        min_period=d["min_period"], max_period=d["max_period"],
        empty_cameras=1,   # openpi's LIBERO mapping: the right-wrist slot, masked
        input_features={"observation.images.image": image, "observation.images.image2": image,
                        "observation.state": PolicyFeature(type=FeatureType.STATE, shape=(8,))},
        output_features={"action": PolicyFeature(type=FeatureType.ACTION, shape=(7,))})
    policy = m.PI0Policy(config)
    load_weights(policy.model, ckpt)
    policy.eval()

    flat = {}
    for f in sorted(ckpt.glob("*normalizer*.safetensors")):
        flat.update(load_file(str(f)))
    stats = {"observation.state": {"mean": flat["observation.state.mean"], "std": flat["observation.state.std"]},
             "action": {"mean": flat["action.mean"], "std": flat["action.std"]}}

    asked = []
    step_cls = processor_pi0.TokenizerProcessorStep

    def tokenizer_step(tokenizer_name=None, **kwargs):
        asked.append(tokenizer_name)
        return step_cls(tokenizer=AutoTokenizer.from_pretrained(str(ckpt)), **kwargs)

    processor_pi0.TokenizerProcessorStep = tokenizer_step
    try:
        pre, post = processor_pi0.make_pi0_pre_post_processors(config, dataset_stats=stats)
    finally:
        processor_pi0.TokenizerProcessorStep = step_cls
    env_pre, env_post = make_env_pre_post_processors(LiberoEnvConfig(task=task), config)
    return policy, pre, post, env_pre, env_post, asked


def run_pipeline(ckpt: str, raw_path: str, inputs: str, out: str) -> None:
    from lerobot.envs.utils import preprocess_observation
    from lerobot.processor import NormalizerProcessorStep

    stub_libero_imports()
    from lerobot.envs.libero import LiberoEnv

    torch.manual_seed(0)
    ckpt_dir = Path(ckpt)
    x = np.load(inputs)
    raw_all = np.load(raw_path)
    execute = int(x["execute"])
    noise = torch.from_numpy(x["noise"]).float()
    policy, pre, post, env_pre, env_post, asked = pipeline_policy(ckpt_dir, execute, str(x["suite"]))
    policy.model.sample_noise = lambda shape, device: noise.clone()   # the test's noise

    seen: dict[str, np.ndarray] = {}
    sample_actions = policy.model.sample_actions

    def recording_sample_actions(images, img_masks, lang_tokens, lang_masks, state, **kwargs):
        seen.update({f"image{i}": im.numpy().copy() for i, im in enumerate(images)})
        seen.update({f"image_mask{i}": mk.numpy().copy() for i, mk in enumerate(img_masks)})
        seen.update(tokens=lang_tokens.numpy().copy(), token_mask=lang_masks.numpy().copy(),
                    state=state.numpy().copy())
        chunk = sample_actions(images, img_masks, lang_tokens, lang_masks, state, **kwargs)
        seen["chunk"] = chunk.numpy().copy()
        return chunk

    policy.model.sample_actions = recording_sample_actions
    openpi_eps = copy.deepcopy(pre)
    norm = [s for s in openpi_eps.steps if isinstance(s, NormalizerProcessorStep)]
    assert len(norm) == 1, openpi_eps.steps
    norm[0].eps = float(x["openpi_eps"])

    result: dict[str, np.ndarray] = {"tokenizer_asked": np.array(asked),
                                     "lerobot_eps": np.array(
                                         [s.eps for s in pre.steps if isinstance(s, NormalizerProcessorStep)])}
    for size in [int(s) for s in x["sizes"]]:
        raw = {k: raw_all[f"{size}/{k}"] for k in RAW_KEYS}
        env = types.SimpleNamespace(
            camera_name=["agentview_image", "robot0_eye_in_hand_image"],
            camera_name_mapping={"agentview_image": "image", "robot0_eye_in_hand_image": "image2"},
            obs_type="pixels_agent_pos",
            _env=types.SimpleNamespace(robots=[types.SimpleNamespace(
                controller=types.SimpleNamespace(ee_ori_mat=raw_all[f"{size}/ee_ori_mat"]))]))
        obs = LiberoEnv._format_raw_obs(env, raw)
        # the vector env of lerobot_eval (one environment): a leading batch axis on every array
        batched = _batch(obs)
        observation = preprocess_observation(batched)
        observation["task"] = [str(raw_all["instruction"])]
        observation = env_pre(observation)
        state_openpi_eps = openpi_eps(dict(observation))["observation.state"]
        processed = pre(observation)
        policy.reset()
        seen.clear()
        executed = []
        with torch.no_grad():
            for _ in range(execute):
                action = post(policy.select_action(processed))
                executed.append(env_post({"action": action})["action"].numpy()[0])
        # the un-normaliser alone, on the whole chunk in float64 (lerobot's float32 rounding of
        # x * std + mean would hide a 1e-6 relative term)
        chunk64 = torch.from_numpy(seen["chunk"][:, :, :7].astype(np.float64))
        result[f"{size}/unnormalized64"] = post(chunk64).numpy()
        result[f"{size}/queue_left"] = np.array(len(policy._action_queue))
        result[f"{size}/executed"] = np.stack(executed)
        result[f"{size}/state_openpi_eps"] = state_openpi_eps.numpy()
        result[f"{size}/env_state"] = observation["observation.state"].numpy()
        result.update({f"{size}/{k}": v for k, v in seen.items()})
    np.savez(out, **result)


def _batch(obs):
    if isinstance(obs, dict):
        return {k: _batch(v) for k, v in obs.items()}
    if isinstance(obs, np.ndarray):
        return obs[None]
    return obs


if __name__ == "__main__":
    mode, args = sys.argv[1], sys.argv[2:]
    patch_stock_transformers()
    if mode == "model":
        run_model(*args[:3])
    elif mode == "pipeline":
        run_pipeline(*args[:4])
    else:
        raise SystemExit(f"unknown mode {mode!r} (model | pipeline)")
