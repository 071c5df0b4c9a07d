"""CogACT's module tree: the Prismatic VLA of OpenVLA (towers, projector, Llama) + `action_model`."""

from __future__ import annotations

import torch

from vlabench.models.cogact.dims import CogACTDims
from vlabench.models.cogact.dit import ActionModel
from vlabench.models.prismatic import PrismaticVLA, _reinit


class CogACTVLA(PrismaticVLA):
    def __init__(self, d: CogACTDims):
        super().__init__(d, oft=False)
        self.action_model = ActionModel(d)


def build_random_cogact(d: CogACTDims, device: str, dtype: torch.dtype, seed: int = 0) -> CogACTVLA:
    """Random weights on `device` (tiny sizes), or shapes only when device is "meta"."""
    if device == "meta":
        with torch.device("meta"):
            return CogACTVLA(d).to(dtype).eval()
    state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    try:
        with torch.device(device):
            model = CogACTVLA(d)
            _reinit(model)
    finally:
        torch.random.set_rng_state(state)
    return model.to(dtype=dtype).eval()
