"""pi0 equals a reference no one here wrote: lerobot 0.4.4's PI0 (openpi's PyTorch port).

The same tiny random weights, saved in lerobot's layout, the same images, prompt tokens, state
and initial noise: `model=pi0`'s prefix + flow-matching loop gives lerobot's `sample_actions`
chunk to < 1e-4 in float32 (measured ~1e-7). lerobot runs in its own environment,
.venv-lerobot, which `make test` builds (scripts/lerobot_env.sh; its pins and the four-point
shim for openpi's transformers patch are in tests/reference/)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch

from vlabench.launch.compose import compose
from vlabench.models.pi0.build import build_pi0
from vlabench.models.pi0.checkpoint import save_lerobot_layout

ROOT = Path(__file__).resolve().parents[1]
REF_PY = Path(os.environ.get("LEROBOT_VENV", ROOT / ".venv-lerobot")) / "bin" / "python"
SCRIPT = ROOT / "tests" / "reference" / "lerobot_pi0.py"


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


@pytest.mark.skipif(not REF_PY.exists(), reason="no .venv-lerobot: `make test` (scripts/lerobot_env.sh) builds it")
def test_pi0_matches_lerobot_pi0_on_the_same_weights_inputs_and_noise(tmp_path):
    cfg = compose(["model=pi0-tiny", "suite=libero_spatial"])
    policy = build_pi0(cfg.model, None, cfg.suite, "cpu")
    d = policy.dims
    ckpt = save_lerobot_layout(policy.model, d, policy.norm_stats, tmp_path / "ckpt")
    x = reference_inputs(d)
    np.savez(tmp_path / "in.npz", **x)
    r = subprocess.run([str(REF_PY), str(SCRIPT), str(ckpt), str(tmp_path / "in.npz"),
                        str(tmp_path / "out.npz")], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    theirs = np.load(tmp_path / "out.npz")["actions"]
    mine = ours(policy, x)
    assert mine.shape == theirs.shape == (1, d.chunk, d.max_action_dim)
    diff = float(np.abs(mine - theirs).max())
    print(f"pi0 vs lerobot PI0: max |diff| = {diff:.3g} over {mine.size} values "
          f"(|actions| up to {float(np.abs(theirs).max()):.3g})")
    assert diff < 1e-4
    # the loop did something: the chunk is far from the initial noise
    assert float(np.abs(theirs - x["noise"]).max()) > 1e-2
