"""DDIM sampling of CogACT's action model, with classifier-free guidance.

As microsoft/CogACT@b174a1b runs it (eta 0, no clipping of x_0): the squaredcos_cap_v2 betas of
100 steps (action_model/gaussian_diffusion.py:116-141), respaced to "ddimN" = every 100/N-th
step (respace.py:31-38, 75-89: betas recomputed from the kept alpha-bars, the model called with
the original step index, L126-131), then per step x_0 = sqrt(1/a) x - sqrt(1/a - 1) eps, eps
re-derived from x_0, x <- x_0 sqrt(a_prev) + sqrt(1 - a_prev) eps (gaussian_diffusion.py:
522-569, 642-689); the schedule in float64, each coefficient taken as float32
(`_extract_into_tensor`, L870-882). Like the reference, each step draws one (unused, eta 0)
normal sample from the global RNG, so seeded runs see the same random stream (a batched call
draws each lane's own sample inside the lane's RNG: `step_noise`).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch


def squaredcos_betas(steps: int, max_beta: float = 0.999) -> np.ndarray:
    def bar(t: float) -> float:
        return math.cos((t + 0.008) / 1.008 * math.pi / 2) ** 2

    return np.array([min(1 - bar((i + 1) / steps) / bar(i / steps), max_beta) for i in range(steps)])


def ddim_timesteps(train_steps: int, ddim_steps: int) -> list[int]:
    """The kept steps of "ddim<ddim_steps>" (respace.py:31-41), ascending."""
    if ddim_steps == 1:
        return [50]
    for stride in range(1, train_steps):
        if len(range(0, train_steps, stride)) == ddim_steps:
            return list(range(0, train_steps, stride))
    raise ValueError(f"cannot create exactly {ddim_steps} DDIM steps from {train_steps} with an integer stride")


class DDIMSchedule:
    """The respaced schedule (alpha-bars of the kept steps, recomputed as the reference does)."""

    def __init__(self, train_steps: int, ddim_steps: int):
        base = np.cumprod(1.0 - squaredcos_betas(train_steps))
        self.timestep_map = ddim_timesteps(train_steps, ddim_steps)
        last, betas = 1.0, []
        for i in self.timestep_map:
            betas.append(1 - base[i] / last)
            last = base[i]
        ac = np.cumprod(1.0 - np.array(betas, dtype=np.float64))
        self.alphas_cumprod = ac
        self.alphas_cumprod_prev = np.append(1.0, ac[:-1])
        self.sqrt_recip = np.sqrt(1.0 / ac)
        self.sqrt_recipm1 = np.sqrt(1.0 / ac - 1)

    def __len__(self) -> int:
        return len(self.timestep_map)


def _at(arr: np.ndarray, i: int, like: torch.Tensor) -> torch.Tensor:
    """`_extract_into_tensor`: the float64 entry as float32, broadcast to `like`."""
    return torch.full(like.shape, float(np.float32(arr[i])), dtype=torch.float32, device=like.device)


@torch.no_grad()
def ddim_sample(eps_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], noise: torch.Tensor,
                sched: DDIMSchedule,
                step_noise: Callable[[torch.Tensor], object] | None = None) -> torch.Tensor:
    """x_0 from `noise` (N, T, C); `eps_fn(x, t)` gets the original step index t (N,);
    `step_noise(x)` makes each step's unused draw (default `torch.randn_like(x)`)."""
    x = noise
    for i in reversed(range(len(sched))):
        t = torch.full((x.shape[0],), sched.timestep_map[i], dtype=torch.long, device=x.device)
        eps = eps_fn(x, t)
        x0 = _at(sched.sqrt_recip, i, x) * x - _at(sched.sqrt_recipm1, i, x) * eps
        eps = (_at(sched.sqrt_recip, i, x) * x - x0) / _at(sched.sqrt_recipm1, i, x)
        a_prev = _at(sched.alphas_cumprod_prev, i, x)
        (step_noise or torch.randn_like)(x)   # the reference's eta-0 step noise: keeps the RNG aligned
        x = x0 * torch.sqrt(a_prev) + torch.sqrt(1 - a_prev) * eps
    return x
