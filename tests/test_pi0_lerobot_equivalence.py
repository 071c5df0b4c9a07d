"""pi0 equals a reference no one here wrote: lerobot 0.4.4's PI0 (openpi's PyTorch port).

Two comparisons, each against lerobot running in its own environment, .venv-lerobot, which
`make test` builds (scripts/lerobot_env.sh; its pins and the four-point shim for openpi's
transformers patch are in tests/reference/):

1. the model: the same tiny weights, saved in lerobot's layout, the same images, prompt tokens,
   state and initial noise: `model=pi0`'s prefix + flow-matching loop gives lerobot's
   `sample_actions` chunk to TOL (absolute, on x_0) and REL_TOL (relative to how far the flow
   moved the noise, x_0 - x_1). The weights are scaled so that every path matters (`scale_weights`):
   with the 0.02-std init of `build_random_pi0` the whole 10-step flow moves the noise by ~0.2
   and a state token that attends to the action tokens changes x_0 by only 3.6e-5. Here the flow
   moves it by O(1), and a wrong expert mask, time embedding, step count or suffix position each
   change x_0 by >= 1e-3 (measured by editing vlabench/models/pi0 and rerunning this file).
2. the LIBERO input / output mapping: one raw LIBERO observation (the simulator's dict,
   tests/fixtures/pi0_libero_raw_obs.npz) through vlabench's LIBERO observation mapping and
   `Pi0Policy.act`, and through lerobot's own evaluation path (`LiberoEnv._format_raw_obs`,
   `preprocess_observation`, the LIBERO env processor, pi0's pre/post-processors with the
   checkpoint's normaliser statistics, `PI0Policy.select_action`): the images the model sees
   (flip, resize-with-pad, [-1, 1] scaling), the prompt tokens and mask, the normalised padded
   state, the chunk and the executed, un-normalised actions. Where lerobot itself departs from
   openpi (whose LIBERO example vlabench follows), the test says so and checks the departure's
   exact size instead of letting it hide other errors:
   - normalisation epsilon: openpi (transforms.py Normalize / Unnormalize) uses
     (x - mean) / (std + 1e-6) and x * (std + 1e-6) + mean; lerobot's MEAN_STD normaliser uses
     eps 1e-8 and its un-normaliser none (x * std + mean). The state is compared with lerobot's
     NormalizerProcessorStep run with openpi's eps (and, as shipped, through the exact eps
     relation); the actions with lerobot's output plus openpi's x * 1e-6 term. The statistics
     have LIBERO-like stds (0.01 on the gripper), so another epsilon moves the state by ~1e-4;
   - resizing: openpi's LIBERO client (examples/libero/main.py) renders at 256 and resizes to
     224 with PIL bilinear (antialiased) before the model; lerobot resizes whatever its LiberoEnv
     renders (256 by the gym class's default, 360 by its env config's) inside the policy with
     F.interpolate(bilinear, no antialias). The full path is compared on a 224 render (where
     both resizes are the identity); on the 256 render the images are compared with a bound on
     the kernels' difference, and the orientation is checked.
   The PaliGemma tokenizer is gated: both sides use the same stand-in, a word-level tokenizer
   saved in the checkpoint directory that reproduces `Pi0WordTokenizer` (the stand-in of
   vlabench's random builds): BOS 2, one hashed id per word, "\\n" = 108. vlabench loads it as it
   would load the real one (`Pi0HFTokenizer`: openpi's cleaning, BOS + tokens + tokens of "\\n");
   lerobot's TokenizerProcessorStep gets it in place of the gated name (tests/reference)."""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import zlib
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from vlabench.core.contracts import TaskInfo
from vlabench.launch.compose import compose
from vlabench.models.pi0.build import build_pi0
from vlabench.models.pi0.checkpoint import save_lerobot_layout
from vlabench.models.pi0.inputs import Pi0WordTokenizer, clean_prompt, unnormalize

ROOT = Path(__file__).resolve().parents[1]
REF_PY = Path(os.environ.get("LEROBOT_VENV", ROOT / ".venv-lerobot")) / "bin" / "python"
SCRIPT = ROOT / "tests" / "reference" / "lerobot_pi0.py"
RAW_OBS = ROOT / "tests" / "fixtures" / "pi0_libero_raw_obs.npz"   # make_pi0_libero_obs.py
NO_REF = pytest.mark.skipif(not REF_PY.exists(),
                            reason="no .venv-lerobot: `make test` (scripts/lerobot_env.sh) builds it")

TOL = 1e-5        # max |x_0 ours - x_0 lerobot| (float32 throughout)
REL_TOL = 3e-6    # max |x_0 ours - x_0 lerobot| / max |x_0 - x_1| (lerobot's flow displacement)
MIN_MOVE = 1.0    # the flow must move the noise at least this far (max |x_0 - x_1|)
OPENPI_EPS = 1e-6  # openpi transforms.py Normalize / Unnormalize: std + 1e-6

# Made-up statistics of LIBERO's scale (not copied from a checkpoint): positions in metres,
# axis-angle in radians, the gripper fingers' opening (~0.04 m) with a small spread (0.01), deltas
# for translation / rotation, the gripper action in [-1, 1]. The small gripper std makes the
# normalisation epsilon visible in the state (~1e-4 between openpi's 1e-6 and lerobot's 1e-8).
STATS = {"state": {"mean": [-0.05, 0.03, 1.0, 3.0, -0.1, -0.1, 0.03, -0.03],
                   "std": [0.1, 0.15, 0.1, 0.4, 0.9, 0.3, 0.01, 0.01]},
         "actions": {"mean": [0.06, 0.09, -0.1, 0.005, 0.002, -0.006, -0.04],
                     "std": [0.3, 0.35, 0.4, 0.04, 0.06, 0.08, 0.99]}}


# ------------------------------------------------------------------------------------ helpers
@torch.no_grad()
def scale_weights(model: torch.nn.Module, seed: int = 1) -> None:
    """Weights at which every path of pi0 moves the output: matrices N(0, 1 / fan_in)
    (attention logits of O(1-5), so masks and rotary positions decide where attention goes;
    velocities of O(1), so the 10 Euler steps move x by O(1)); biases N(0, 0.2^2) (not zero, so
    every bias is exercised); SigLIP LayerNorm scales 1 + N(0, 0.1^2) and Gemma RMSNorm offsets
    N(0.1, 0.1^2) (RMSNorm multiplies by 1 + w). Embedding rows N(0, 1 / width): the prompt is
    scaled by sqrt(width) on both sides."""
    g = torch.Generator().manual_seed(seed)

    def normal(shape, std, mean=0.0):
        return mean + std * torch.randn(shape, generator=g)

    for name, p in model.named_parameters():
        if name.endswith("bias"):
            p.copy_(normal(p.shape, 0.2))
        elif p.ndim == 1:
            p.copy_(normal(p.shape, 0.1, 1.0) if "vision_tower" in name else normal(p.shape, 0.1, 0.1))
        elif "embed_tokens" in name or "lm_head" in name or "position_embedding" in name:
            p.copy_(normal(p.shape, 1.0 / math.sqrt(p.shape[-1])))
        else:
            fan_in = math.prod(p.shape[1:])
            p.copy_(normal(p.shape, 1.0 / math.sqrt(fan_in)))


def scaled_policy(cfg_overrides=()):
    cfg = compose(["model=pi0-tiny", "suite=libero_spatial", *cfg_overrides])
    policy = build_pi0(cfg.model, None, cfg.suite, "cpu")
    scale_weights(policy.model)
    return policy


def reference_inputs(d, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    imgs = [rng.integers(0, 256, (d.image_size, d.image_size, 3)).astype(np.float32) / 255 * 2 - 1
            for _ in range(2)]
    ids = [2] + [int(x) for x in rng.integers(1000, 250000, 9)] + [108]
    tokens = np.zeros((1, d.max_prompt_tokens), dtype=np.int64)
    tokens[0, :len(ids)] = ids
    state = np.zeros((1, d.max_state_dim), dtype=np.float32)
    state[0, :8] = rng.normal(size=8)
    x = {"n_images": np.array(3), "flow_steps": np.array(d.flow_steps),
         "tokens": tokens, "token_mask": tokens != 0, "state": state,
         "noise": rng.normal(size=(1, d.chunk, d.max_action_dim)).astype(np.float32)}
    for i, img in enumerate(imgs + [np.full_like(imgs[0], -1.0)]):   # the masked third slot
        x[f"image{i}"] = img.transpose(2, 0, 1)[None].copy()
        x[f"image_mask{i}"] = np.array([i < 2])
    return x


def ours(policy, x: dict[str, np.ndarray]) -> np.ndarray:
    px = torch.from_numpy(np.concatenate([x["image0"], x["image1"]]))
    ids = [int(t) for t in x["tokens"][0][x["token_mask"][0]]]
    with torch.inference_mode():
        _, emb = policy.encode_images(px)
        vis = emb.reshape(1, -1, emb.shape[-1])
        x0 = policy.flow(vis, ids, torch.from_numpy(x["state"]), torch.from_numpy(x["noise"]))
    return x0.numpy()


def run_reference(*args: object) -> None:
    r = subprocess.run([str(REF_PY), str(SCRIPT), *map(str, args)], capture_output=True, text=True,
                       timeout=900, check=False)
    assert r.returncode == 0, r.stderr[-3000:]


def write_stand_in_tokenizer(path: Path, texts: list[str]) -> None:
    """A tokenizer.json that encodes like `Pi0WordTokenizer`: BOS 2 + one id per word / sign
    (1000 + crc32 mod 250000) + "\\n" as 108 (PaliGemma's id); pad 0, right padding."""
    from tokenizers import Regex, Tokenizer, models, pre_tokenizers, processors

    words = {w for t in texts for w in re.findall(r"\w+|[^\w\s]", clean_prompt(t))}
    vocab = {"<pad>": 0, "<eos>": 1, "<bos>": 2, "<unk>": 3, "\n": 108,
             **{w: 1000 + zlib.crc32(w.encode()) % 250000 for w in sorted(words)}}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Split(Regex(r"\w+|[^\w\s]|\n"), behavior="removed", invert=True)
    tok.post_processor = processors.TemplateProcessing(single="<bos> $A", special_tokens=[("<bos>", 2)])
    tok.save(str(path / "tokenizer.json"))
    (path / "tokenizer_config.json").write_text(json.dumps(
        {"tokenizer_class": "PreTrainedTokenizerFast", "bos_token": "<bos>", "eos_token": "<eos>",
         "pad_token": "<pad>", "unk_token": "<unk>"}))


def vlabench_observation(raw: dict[str, np.ndarray], suite_cfg, instruction: str):
    """vlabench's LIBERO mapping of a raw simulator dict (`LiberoEnv._observation`: the flip,
    the camera names, the proprio keys), without a simulator."""
    from vlabench.suites.libero import LiberoEnv

    env = LiberoEnv.__new__(LiberoEnv)
    env.suite = SimpleNamespace(cfg=suite_cfg)
    env.cameras = dict(suite_cfg.cameras)
    env.needs = frozenset({"agentview", "wrist", "proprio"})
    env.task = TaskInfo(0, "task", instruction)
    return env._observation(raw, step=0)


# ------------------------------------------------------------------------------------ 1. model
@NO_REF
def test_pi0_matches_lerobot_pi0_on_the_same_weights_inputs_and_noise(tmp_path):
    policy = scaled_policy()
    d = policy.dims
    ckpt = save_lerobot_layout(policy.model, d, policy.norm_stats, tmp_path / "ckpt")
    x = reference_inputs(d)
    np.savez(tmp_path / "in.npz", **x)
    run_reference("model", ckpt, tmp_path / "in.npz", tmp_path / "out.npz")
    theirs = np.load(tmp_path / "out.npz")["actions"]
    mine = ours(policy, x)
    assert mine.shape == theirs.shape == (1, d.chunk, d.max_action_dim)
    diff = float(np.abs(mine - theirs).max())
    moved = float(np.abs(theirs - x["noise"]).max())
    rel = diff / moved
    print(f"pi0 vs lerobot PI0: max |diff| = {diff:.3g}, relative to max |x0 - noise| = "
          f"{moved:.3g}: {rel:.3g} ({mine.size} values, |x0| up to {float(np.abs(theirs).max()):.3g})")
    # the loop did something large: x_0 is far from the initial noise, in every action dim
    assert moved > MIN_MOVE
    assert float(np.abs(theirs - x["noise"]).max(axis=(0, 1)).min()) > 0.1
    assert diff < TOL and rel < REL_TOL


# -------------------------------------------------------------------------- 2. LIBERO mapping
@NO_REF
def test_pi0_libero_mapping_matches_lerobot_processors_on_a_raw_libero_observation(tmp_path):
    raw_all = np.load(RAW_OBS)
    instruction = str(raw_all["instruction"])
    policy = scaled_policy()
    d = policy.dims
    ckpt = save_lerobot_layout(policy.model, d, STATS, tmp_path / "ckpt")
    write_stand_in_tokenizer(ckpt, [instruction])

    cfg = compose(["model=pi0", f"model.checkpoint={ckpt}", "suite=libero_spatial"])
    mine = build_pi0(cfg.model, None, cfg.suite, "cpu")     # the checkpoint path, as a real run
    assert mine.tokenizer.exact   # the statistics, float32 in the file, as lerobot reads them:
    np.testing.assert_array_equal(mine.norm_stats["state"]["std"], np.float32(STATS["state"]["std"]))
    # the stand-in is the random builds' tokenizer, loaded as the real one would be (checked last)
    stand_in = (mine.tokenizer.prompt(instruction, d.max_prompt_tokens),
                Pi0WordTokenizer().prompt(instruction, d.max_prompt_tokens))

    rng = np.random.default_rng(3)
    noise = rng.normal(size=(1, d.chunk, d.max_action_dim)).astype(np.float32)
    sizes = (224, 256)
    np.savez(tmp_path / "in.npz", noise=noise, execute=np.array(mine.execute),
             sizes=np.array(sizes), suite=np.array("libero_spatial"), openpi_eps=np.array(OPENPI_EPS))
    run_reference("pipeline", ckpt, RAW_OBS, tmp_path / "in.npz", tmp_path / "out.npz")
    ref = np.load(tmp_path / "out.npz")
    # lerobot asked for the gated tokenizer by name, and normalises with its own eps
    assert list(ref["tokenizer_asked"]) == ["google/paligemma-3b-pt-224"]
    lerobot_eps = float(ref["lerobot_eps"][0])

    seen: dict[str, np.ndarray] = {}
    encode, flow, extra, prompt = mine.encode_images, mine.flow, mine._extra_tokens, mine.tokenizer.prompt

    def rec_encode(px):
        seen["px"] = px.numpy().copy()
        return encode(px)

    def rec_flow(vis, ids, state, noise_, **kw):
        seen["ids"] = np.array(ids)
        x0 = flow(vis, ids, state, noise_, **kw)
        seen["chunk"] = x0.numpy().copy()
        return x0

    def rec_extra(obs):
        s = extra(obs)
        seen["state"] = s.numpy().copy()
        return s

    def rec_prompt(text, n):
        seen["prompt"] = np.array(text)
        return prompt(text, n)

    mine.encode_images, mine.flow, mine._extra_tokens = rec_encode, rec_flow, rec_extra
    mine.tokenizer.prompt = rec_prompt
    mine.noise = lambda: torch.from_numpy(noise)

    report = {}
    for size in sizes:
        raw = {k: raw_all[f"{size}/{k}"] for k in ("agentview_image", "robot0_eye_in_hand_image",
                                                   "robot0_eef_pos", "robot0_eef_quat",
                                                   "robot0_gripper_qpos", "robot0_gripper_qvel")}
        seen.clear()
        executed = mine.act(vlabench_observation(raw, cfg.suite, instruction)).actions
        r = {k.split("/", 1)[1]: ref[k] for k in ref.files if k.startswith(f"{size}/")}

        # what each side computed; printed before any assertion, so a failing run shows them all
        px, st, st_lerobot = seen["px"], seen["state"][0], r["state"][0]
        mask = r["token_mask"][0]
        n = int(mask.sum())
        theirs_ids = r["tokens"][0][:n]
        std = np.asarray(mine.norm_stats["state"]["std"])
        openpi_term = r["chunk"][0, :mine.execute, :d.action_dim].astype(np.float64) * OPENPI_EPS
        x = r["chunk"][0, :, :d.action_dim].astype(np.float64)
        img_diff = [np.abs(px[i] - r[f"image{i}"][0]) for i in range(2)]
        report[size] = m = {
            "image": max(float(a.max()) for a in img_diff),
            "image_mean": max(float(a.mean()) for a in img_diff),
            "image_turned": float(np.abs(px[0] - r["image0"][0][:, ::-1, ::-1]).mean()),
            # (our length, lerobot's, ids that differ; -1: the lengths differ)
            "tokens": (len(seen["ids"]), n, int(np.sum(seen["ids"] != theirs_ids))
                       if len(seen["ids"]) == n else -1),
            # vs lerobot's normaliser with openpi's eps
            "state": float(np.abs(st[:8] - r["state_openpi_eps"][0]).max()),
            # vs lerobot as shipped (eps 1e-8), and the exact relation between the two:
            # ours * (std + 1e-6) == lerobot's * (std + 1e-8) == x - mean
            "state_shipped": float(np.abs(st[:8] - st_lerobot[:8]).max()),
            "state_eps_relation": float(np.abs(st[:8] * (std + OPENPI_EPS)
                                               - st_lerobot[:8] * (std + lerobot_eps)).max()),
            "chunk": float(np.abs(seen["chunk"] - r["chunk"]).max()),
            # executed: the first `execute` of the chunk, 7 dims, un-normalised; lerobot's output
            # plus openpi's x * 1e-6 term
            "actions": float(np.abs(executed - (r["executed"] + openpi_term)).max())
            if executed.shape == r["executed"].shape else float("inf"),
            # the un-normaliser alone, float64 on both sides
            "unnormalize": float(np.abs(unnormalize(x, mine.norm_stats["actions"])
                                        - (r["unnormalized64"][0] + x * OPENPI_EPS)).max())}
        print(f"pi0 LIBERO mapping vs lerobot processors, {size}px render: " +
              ", ".join(f"{k} {v:.3g}" if isinstance(v, float) else f"{k} {v}" for k, v in m.items()))

        # images: base <- agentview, left wrist <- wrist, right wrist masked (-1, not computed)
        assert px.shape == (2, 3, 224, 224) and r["image0"].shape == (1, 3, 224, 224)
        assert list(r["image_mask0"]) == [True] and list(r["image_mask1"]) == [True]
        assert list(r["image_mask2"]) == [False] and np.all(r["image2"] == -1.0)
        # prompt: the raw LIBERO language, openpi-cleaned + "\n" (ours), "\n"-appended (lerobot),
        # right-padded with 0 to tokenizer_max_length under a prefix mask
        assert str(seen["prompt"]) == instruction
        assert list(mask) == [True] * n + [False] * (d.max_prompt_tokens - n)
        assert np.all(r["tokens"][0][n:] == 0)
        np.testing.assert_array_equal(seen["ids"], theirs_ids)
        assert seen["ids"][0] == 2 and seen["ids"][-1] == 108
        # state: the 8-d LIBERO state normalised, zero-padded to 32
        assert st.shape == st_lerobot.shape == (d.max_state_dim,)
        assert np.all(st[8:] == 0) and np.all(st_lerobot[8:] == 0)
        assert m["state"] < TOL and m["state_eps_relation"] < TOL
        # actions: lerobot executes the same `execute` actions of the chunk, then replans
        assert executed.shape == r["executed"].shape == (mine.execute, d.action_dim)
        assert int(r["queue_left"]) == 0
        assert m["unnormalize"] < 1e-12
        if size == 224:   # both resizes are the identity: everything must agree
            assert m["image"] <= 1e-6
            assert m["chunk"] < TOL and m["actions"] < TOL
        else:             # PIL bilinear (openpi client) vs F.interpolate bilinear (lerobot)
            assert m["image_mean"] < 0.02 and m["image"] < 0.5
            assert m["image_turned"] > 10 * m["image_mean"]   # the orientation is lerobot's
    # the normalisation epsilon matters at these statistics (the gripper's std is 0.01)
    assert report[224]["state_shipped"] > 5 * TOL
    assert stand_in[0] == stand_in[1]
