"""pi0's LIBERO input mapping and normalisation (openpi `examples/libero/main.py`,
`policies/libero_policy.py`, `transforms.py`, `models/tokenizer.py`; lerobot 0.4.4 `PI0Policy`):

- images: agentview -> base_0_rgb, wrist -> left_wrist_0_rgb, both already flipped on both axes
  by the suite as the evaluation does; resized with padding to 224 x 224 by PIL bilinear
  (openpi_client `image_tools.resize_with_pad`; a no-op at 224), then x / 255 * 2 - 1. The third
  slot (right_wrist_0_rgb) is a zero image whose mask is False for pi0: its tokens are keys no
  query may see, so leaving them out changes no output (vlabench does, and says so).
- state: eef_pos (3), axis-angle of eef_quat (3), gripper_qpos (2) (the OFT proprio conversion),
  z-scored with the checkpoint's statistics, (x - mean) / (std + 1e-6), zero-padded to 32.
- actions: the first 7 of 32 output dims, x * (std + 1e-6) + mean; the gripper value is sent as
  is (no OpenVLA-style post-processing); 5 of the 50 are executed before the next call.
- prompt: strip, "_" and newlines -> spaces, BOS + tokens + the tokens of "\\n", at most 48.
"""

from __future__ import annotations

import re
import zlib
from typing import Any

import numpy as np
import torch

from vlabench.models.frames import resize_with_pad  # noqa: F401  (its home: torch-free, for the workers)

NORM_EPS = 1e-6
PI0_BOS = 2


def image_tensor(img: np.ndarray, device, dtype) -> torch.Tensor:
    """224x224x3 uint8 -> (1, 3, 224, 224) in [-1, 1]."""
    x = torch.from_numpy(np.array(img, dtype=np.uint8)).permute(2, 0, 1).float() / 255.0
    return (x * 2.0 - 1.0)[None].to(device=device, dtype=dtype)


def normalize(x: np.ndarray, stats: dict[str, Any]) -> np.ndarray:
    mean, std = np.asarray(stats["mean"], dtype=np.float64), np.asarray(stats["std"], dtype=np.float64)
    n = x.shape[-1]
    return (x - mean[:n]) / (std[:n] + NORM_EPS)


def unnormalize(x: np.ndarray, stats: dict[str, Any]) -> np.ndarray:
    mean, std = np.asarray(stats["mean"], dtype=np.float64), np.asarray(stats["std"], dtype=np.float64)
    n = min(x.shape[-1], mean.shape[-1])
    return x[..., :n] * (std[:n] + NORM_EPS) + mean[:n]


def pad_to(x: np.ndarray, dim: int) -> np.ndarray:
    out = np.zeros(x.shape[:-1] + (dim,), dtype=np.float64)
    out[..., :x.shape[-1]] = x
    return out


def identity_stats(dim: int) -> dict[str, list[float]]:
    return {"mean": [0.0] * dim, "std": [1.0] * dim}


def clean_prompt(text: str) -> str:
    return text.strip().replace("_", " ").replace("\n", " ")


class Pi0WordTokenizer:
    """Stand-in for random builds: BOS 2 + one id per word (a stable hash into PaliGemma's text
    range) + one id for "\\n". Its length is close to, not equal to, the real tokenisation."""

    exact = False

    def prompt(self, instruction: str, max_len: int) -> list[int]:
        words = re.findall(r"\w+|[^\w\s]", clean_prompt(instruction))
        ids = [PI0_BOS] + [1000 + zlib.crc32(w.encode()) % 250000 for w in words] + [108]
        return ids[:max_len]


class Pi0HFTokenizer:
    """The PaliGemma tokenizer (sentencepiece) from the checkpoint directory or an HF id."""

    exact = True

    def __init__(self, path: str):
        from transformers import AutoTokenizer

        self.tok = AutoTokenizer.from_pretrained(path, trust_remote_code=False)   # never a prompt

    def prompt(self, instruction: str, max_len: int) -> list[int]:
        ids = list(self.tok(clean_prompt(instruction), add_special_tokens=True)["input_ids"])
        if not ids or ids[0] != self.tok.bos_token_id:
            ids = [self.tok.bos_token_id] + ids
        ids += list(self.tok("\n", add_special_tokens=False)["input_ids"])
        return ids[:max_len]
