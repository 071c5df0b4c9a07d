"""OpenVLA-OFT's proprio projector and L1-regression action head (openvla-oft
`prismatic/models/projectors.py` and `action_heads.py`), and OpenVLA's action de-tokeniser.

ProprioProjector: fc1 (proprio_dim -> llm) GELU fc2 (llm -> llm); its output is one extra token
appended after the visual patches. L1RegressionActionHead: `model` = MLPResNet(2 blocks,
input 7 x llm, hidden llm, output 7): LayerNorm, fc1, ReLU, blocks of (LayerNorm, Linear,
ReLU) + residual, LayerNorm, fc2; it reads the final-norm hidden states of the 56 action
placeholders reshaped to (8, 7 x llm) and predicts the normalised 8 x 7 chunk.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn


class ProprioProjector(nn.Module):
    def __init__(self, llm_dim: int, proprio_dim: int):
        super().__init__()
        self.fc1 = nn.Linear(proprio_dim, llm_dim, bias=True)
        self.fc2 = nn.Linear(llm_dim, llm_dim, bias=True)
        self.act_fn1 = nn.GELU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act_fn1(self.fc1(x)))


class MLPResNetBlock(nn.Module):
    def __init__(self, dim: int):
        super().__init__()
        self.ffn = nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, dim), nn.ReLU())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.ffn(x)


class MLPResNet(nn.Module):
    def __init__(self, num_blocks: int, input_dim: int, hidden_dim: int, output_dim: int):
        super().__init__()
        self.layer_norm1 = nn.LayerNorm(input_dim)
        self.fc1 = nn.Linear(input_dim, hidden_dim)
        self.relu = nn.ReLU()
        self.mlp_resnet_blocks = nn.ModuleList([MLPResNetBlock(hidden_dim) for _ in range(num_blocks)])
        self.layer_norm2 = nn.LayerNorm(hidden_dim)
        self.fc2 = nn.Linear(hidden_dim, output_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.fc1(self.layer_norm1(x)))
        for block in self.mlp_resnet_blocks:
            x = block(x)
        return self.fc2(self.layer_norm2(x))


class L1RegressionActionHead(nn.Module):
    def __init__(self, llm_dim: int, hidden_dim: int, action_dim: int, num_blocks: int = 2):
        super().__init__()
        self.action_dim = action_dim
        self.model = MLPResNet(num_blocks, llm_dim * action_dim, hidden_dim, action_dim)

    def forward(self, action_hidden: torch.Tensor, chunk: int) -> torch.Tensor:
        """action_hidden (B, chunk*action_dim, llm) -> normalised actions (B, chunk, action_dim)."""
        b = action_hidden.shape[0]
        return self.model(action_hidden.reshape(b, chunk, -1))


def detokenize_actions(token_ids: np.ndarray, vocab_size: int, n_bins: int) -> np.ndarray:
    """OpenVLA: bin index = vocab_size - token - 1 (clipped), value = bin centre in [-1, 1].

    `vocab_size` is the tokenizer's (32000; the model's 32064 minus the padding), the bins are
    linspace(-1, 1, n_bins) and their n_bins - 1 centres (OpenVLA `predict_action`)."""
    bins = np.linspace(-1.0, 1.0, n_bins)
    centers = (bins[:-1] + bins[1:]) / 2.0
    idx = np.clip(vocab_size - np.asarray(token_ids) - 1, 0, centers.shape[0] - 1)
    return centers[idx]
