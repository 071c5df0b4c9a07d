"""CogACT's action model: a DiT over [condition token, 16 noisy actions] (own implementation).

Transcribed from microsoft/CogACT@b174a1b action_model/models.py (parameter names kept, so the
checkpoint's `action_model` state dict loads as is): the condition token is the timestep
embedding (sinusoidal, 256 frequencies, 2-layer SiLU MLP, L28-65) plus a linear projection of
the cognition feature (L67-95); actions are embedded linearly (L100-107); a learned positional
table of chunk + 1 rows (L194-197); pre-norm blocks of timm attention (qkv bias) and a tanh-GELU
MLP with non-affine LayerNorms, eps 1e-6 (L123-139); a final LayerNorm + linear (L142-154).
The output drops the condition row (L251). `z_embedder.uncondition` is the learned null
cognition feature the classifier-free guidance branch uses (L76, cogactvla.py:337-340).
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from vlabench.models.cogact.dims import CogACTDims


class TimestepEmbedder(nn.Module):
    def __init__(self, hidden: int, freq: int = 256):
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(freq, hidden), nn.SiLU(), nn.Linear(hidden, hidden))
        self.freq = freq

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        half = self.freq // 2
        freqs = torch.exp(-math.log(10000) * torch.arange(0, half, dtype=torch.float32) / half)
        args = t[:, None].float() * freqs.to(t.device)[None]
        emb = torch.cat([torch.cos(args), torch.sin(args)], -1)
        return self.mlp(emb.to(self.mlp[0].weight.dtype))


class Linear1(nn.Module):
    """A module holding one `linear` (the embedders' published layout)."""

    def __init__(self, n_in: int, n_out: int):
        super().__init__()
        self.linear = nn.Linear(n_in, n_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x)


class ConditionEmbedder(Linear1):
    """The cognition feature projection, with the learned null feature for guidance."""

    def __init__(self, token_size: int, hidden: int):
        super().__init__(token_size, hidden)
        self.uncondition = nn.Parameter(torch.zeros(1, token_size))


class Attention(nn.Module):
    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, dim * 3)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        y = F.scaled_dot_product_attention(qkv[0], qkv[1], qkv[2])
        return self.proj(y.transpose(1, 2).reshape(b, n, c))


class Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.gelu(self.fc1(x), approximate="tanh"))


class DiTBlock(nn.Module):
    def __init__(self, dim: int, heads: int, mlp: int):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
        self.attn = Attention(dim, heads)
        self.norm2 = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
        self.mlp = Mlp(dim, mlp)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class FinalLayer(nn.Module):
    def __init__(self, dim: int, out: int):
        super().__init__()
        self.norm_final = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
        self.linear = nn.Linear(dim, out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(self.norm_final(x))


class DiT(nn.Module):
    """eps prediction for (N, chunk, action_dim) noisy actions given (N, 1, token_size) features."""

    def __init__(self, d: CogACTDims):
        super().__init__()
        h = d.dit_hidden
        self.history_embedder = Linear1(d.action_dim, h)   # unused at inference (models.py:109)
        self.x_embedder = Linear1(d.action_dim, h)
        self.t_embedder = TimestepEmbedder(h, d.dit_freq)
        self.z_embedder = ConditionEmbedder(d.token_size, h)
        self.positional_embedding = nn.Parameter(torch.zeros(d.chunk + 1, h))
        self.blocks = nn.ModuleList(DiTBlock(h, d.dit_heads, d.dit_mlp) for _ in range(d.dit_layers))
        self.final_layer = FinalLayer(h, d.action_dim)

    def forward(self, x: torch.Tensor, t: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        c = self.t_embedder(t).unsqueeze(1) + self.z_embedder(z)
        x = torch.cat((c, self.x_embedder(x)), 1) + self.positional_embedding
        for block in self.blocks:
            x = block(x)
        return self.final_layer(x)[:, 1:]

    def forward_with_cfg(self, x: torch.Tensor, t: torch.Tensor, z: torch.Tensor,
                         scale: float) -> torch.Tensor:
        """Both branches in one batch (x's halves are equal): guided eps for both halves
        (models.py:253-268)."""
        half = x[: len(x) // 2]
        eps = self.forward(torch.cat([half, half], 0), t, z)
        cond, uncond = torch.split(eps, len(eps) // 2, 0)
        guided = uncond + scale * (cond - uncond)
        return torch.cat([guided, guided], 0)


class ActionModel(nn.Module):
    """The checkpoint's `action_model` (its only parameters: `net`, action_model.py:46-53)."""

    def __init__(self, d: CogACTDims):
        super().__init__()
        self.net = DiT(d)
