"""Random-weight builds, shared by every model family: deterministic for a seed, and free of
side effects on the caller's torch RNG."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import torch
from torch import nn

M = TypeVar("M", bound=nn.Module)


def build_seeded(make: Callable[[], M], reinit: Callable[[nn.Module], None], device: str,
                 dtype: torch.dtype, seed: int = 0) -> M:
    """`make()` with random weights from `reinit` on `device` (full size on a GPU is never
    materialised on the host), or shapes only when `device` is "meta"; the global torch RNG is
    left as it was."""
    if device == "meta":
        with torch.device("meta"):
            return make().to(dtype).eval()
    state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    try:
        with torch.device(device):
            model = make()
            reinit(model)
    finally:
        torch.random.set_rng_state(state)
    return model.to(dtype=dtype).eval()
