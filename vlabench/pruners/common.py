"""Small helpers the baseline plugins share (retention, depth scaling, meta tensors).

Not selection primitives (those live in `selection.py`): these only adapt a method's published
settings to the model it is bound to and keep budgets exact on shape-only (meta) builds.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from vlabench.core.config import cfg_get
from vlabench.core.errors import ConfigError

REF_LAYERS = 32   # Llama-2-7B / Vicuna-7B depth the methods' layer indices were published for


def retention_of(cfg: Any, default: float) -> float:
    """`pruner.retention` checked to lie in (0, 1]."""
    r = float(cfg_get(cfg, "retention", default))
    if not 0.0 < r <= 1.0:
        raise ConfigError(f"pruner.retention must lie in (0, 1], got {r}")
    return r


def scale_layer(layer: int, num_layers: int, ref: int = REF_LAYERS) -> int:
    """The layer at the same relative depth in a `num_layers` model as `layer` in a `ref`-layer
    one (round half up), clamped to [0, num_layers - 1]; identity when num_layers == ref."""
    return max(0, min(num_layers - 1, int(layer * num_layers / ref + 0.5)))


def check_layer(name: str, layer: int, num_layers: int, last_ok: bool = False) -> None:
    """Refuse a pruning layer the model does not have (pruning after the last layer is void)."""
    hi = num_layers - (0 if last_ok else 1)
    if not 0 <= layer < hi:
        raise ConfigError(f"{name}={layer} is out of range for a {num_layers}-layer model "
                          f"(valid: 0..{hi - 1})")


def check_k(k: int, layer_of: Callable[[int], int], num_layers: int) -> None:
    """Refuse a `pruner.k` whose pruning layer `layer_of(k)` the model does not have, naming the
    value typed and the valid range of `pruner.k` itself (`layer_of` is non-decreasing in k)."""
    hi = num_layers - 1
    if 0 <= layer_of(k) < hi:
        return
    valid = [v for v in range(num_layers + 2) if 0 <= layer_of(v) < hi]
    span = f"{valid[0]}..{valid[-1]}" if valid else "none (the model is too shallow to prune)"
    raise ConfigError(f"pruner.k={k} is out of range for a {num_layers}-layer model (valid: {span})")


def is_meta(x: torch.Tensor | None) -> bool:
    return x is not None and x.device.type == "meta"


def meta_keep(k: int) -> torch.Tensor:
    """A shape-only keep decision of k ids: the decoder keeps k tokens (same FLOPs)."""
    return torch.empty(int(k), dtype=torch.long, device="meta")


def camera_pools(ids: torch.Tensor, per_camera: int, pools: int) -> list[torch.Tensor]:
    """Boolean masks over visual `ids`, one per pool: with `pools` > 1 pool c holds camera c's
    tokens (ids c*per_camera .. (c+1)*per_camera - 1, `ModelInfo.cameras` order); with one pool,
    every id. Methods that budget each camera separately (VLA-Pruner's OpenVLA-OFT code) use it."""
    if pools <= 1:
        return [torch.ones_like(ids, dtype=torch.bool)]
    cam = torch.div(ids, per_camera, rounding_mode="floor")
    return [cam == c for c in range(pools)]


def oft_score_layer(k: int, num_layers: int) -> int:
    """Layer K, as VLA-Pruner's OFT fork scores and prunes after it; on a decoder too shallow to
    leave a layer after K (tiny test models) the last layer that still does, never below K-1.
    (The fork clamps K to the last layer, where pruning removes nothing.) FastV's and
    VLA-Pruner's OpenVLA-OFT code (MINT-SJTU/VLA-Pruner @ 3d156ee `fastv_forward`)."""
    return max(k - 1, min(k, num_layers - 2))
