"""Observation -> model inputs, as the OpenVLA / OpenVLA-OFT LIBERO evaluation prepares them.

Images (docs/protocols.md): the suite already flipped both axes; TF's JPEG round trip (quality 95,
fast-IDCT decode), TF lanczos3 + antialias resize to 224, optional centre crop of 90% area (side
sqrt(0.9)) resized back to 224 with TF's bilinear crop_and_resize: all TF-exact (`tf_image`);
then per-tower normalisation (DINOv2: ImageNet mean/std; SigLIP: 0.5/0.5) stacked into 6
channels.
Proprio (OFT): eef position (3), axis-angle of the eef quaternion (3, robosuite 1.4's
`quat2axisangle` as is: no antipodal flip, angle in [0, 2 pi]), gripper qpos (2); normalised to
[-1, 1] with q01/q99.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from vlabench.models.frames import policy_image  # noqa: F401  (its public home until issue 22)
from vlabench.models.vision import DINO_MEAN, DINO_STD, SIGLIP_MEAN, SIGLIP_STD


def pixel_tensor(img: np.ndarray, device: torch.device | str, dtype: torch.dtype) -> torch.Tensor:
    """224x224x3 uint8 -> (1, 6, 224, 224): DINOv2- then SigLIP-normalised channels."""
    x = torch.from_numpy(np.array(img, dtype=np.uint8)).permute(2, 0, 1).float().div_(255.0)
    dino = (x - torch.tensor(DINO_MEAN)[:, None, None]) / torch.tensor(DINO_STD)[:, None, None]
    sig = (x - torch.tensor(SIGLIP_MEAN)[:, None, None]) / torch.tensor(SIGLIP_STD)[:, None, None]
    return torch.cat([dino, sig], 0)[None].to(device=device, dtype=dtype)


def quat_to_axis_angle(quat_xyzw: np.ndarray) -> np.ndarray:
    """robosuite-order quaternion (x, y, z, w) -> axis * angle, exactly as the reference does it.

    Evidence: openvla-oft @ 213c5ff experiments/robot/libero/libero_utils.py:63-87
    `quat2axisangle` (copied from robosuite 1.4 transform_utils.quat2axisangle), called on the raw
    `obs["robot0_eef_quat"]` at run_libero_eval.py:257-258; the training-data generator does the
    same. So: w clipped to [-1, 1]; zero vector only when sqrt(1 - w^2) is exactly 0
    (`math.isclose(den, 0.0)` has abs_tol 0); NO antipodal flip, so for w < 0 the angle
    2 acos(w) runs past pi (a rotation of 3.14 about +x may come out as +3.14 or, for -q, as
    ~3.14 about -x): the model was trained on that representation. Unlike the reference, the
    caller's array is not modified in place."""
    q = np.array(quat_xyzw, dtype=np.float64, copy=True).reshape(4)
    q[3] = min(max(q[3], -1.0), 1.0)
    den = np.sqrt(1.0 - q[3] * q[3])
    if math.isclose(den, 0.0):
        return np.zeros(3)
    return (q[:3] * 2.0 * math.acos(q[3])) / den


def oft_proprio(proprio: dict[str, np.ndarray]) -> np.ndarray:
    """The 8-d LIBERO state OFT was trained on."""
    return np.concatenate([
        np.asarray(proprio["eef_pos"], dtype=np.float64).reshape(3),
        quat_to_axis_angle(proprio["eef_quat"]),
        np.asarray(proprio["gripper_qpos"], dtype=np.float64).reshape(2),
    ])


def normalize_q99(x: np.ndarray, stats: dict) -> np.ndarray:
    """OFT `normalize_proprio` (BOUNDS_Q99): 2 (x - q01) / (q99 - q01) - 1, clipped to [-1, 1]."""
    lo, hi = np.asarray(stats["q01"]), np.asarray(stats["q99"])
    mask = np.asarray(stats.get("mask", np.ones_like(lo, dtype=bool)), dtype=bool)
    y = np.where(mask, 2.0 * (x - lo) / (hi - lo + 1e-8) - 1.0, x)
    return np.clip(y, -1.0, 1.0)


def unnormalize_q99(a: np.ndarray, stats: dict, eps: float = 0.0) -> np.ndarray:
    """Actions in [-1, 1] -> dataset units: 0.5 (a + 1) (q99 - q01 + eps) + q01 where mask is set.

    eps: 0 for OpenVLA (openvla `modeling_prismatic.py` predict_action L530-534), 1e-8 for OFT
    (openvla-oft @ 213c5ff `modeling_prismatic.py` `_unnormalize_actions` L785-789)."""
    lo, hi = np.asarray(stats["q01"]), np.asarray(stats["q99"])
    mask = np.asarray(stats.get("mask", np.ones_like(lo, dtype=bool)), dtype=bool)
    return np.where(mask, 0.5 * (a + 1.0) * (hi - lo + eps) + lo, a)


def postprocess_gripper(actions: np.ndarray) -> np.ndarray:
    """Gripper in [0, 1] -> [-1, 1] -> sign -> times -1 (LIBERO: -1 open, +1 close)."""
    out = np.array(actions, dtype=np.float64, copy=True)
    g = 2.0 * out[..., -1] - 1.0
    out[..., -1] = -np.sign(g)
    return out
