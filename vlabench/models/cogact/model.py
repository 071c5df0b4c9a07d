"""CogACT's module tree: the Prismatic VLA of OpenVLA (towers, projector, Llama) + `action_model`."""

from __future__ import annotations

import torch

from vlabench.models.cogact.dims import CogACTDims
from vlabench.models.cogact.dit import ActionModel
from vlabench.models.prismatic import PrismaticVLA, _reinit
from vlabench.models.random_weights import build_seeded


class CogACTVLA(PrismaticVLA):
    def __init__(self, d: CogACTDims):
        super().__init__(d, oft=False)
        self.action_model = ActionModel(d)


def build_random_cogact(d: CogACTDims, device: str, dtype: torch.dtype, seed: int = 0) -> CogACTVLA:
    """Random weights on `device` (tiny sizes), or shapes only when device is "meta"."""
    return build_seeded(lambda: CogACTVLA(d), _reinit, device, dtype, seed)
