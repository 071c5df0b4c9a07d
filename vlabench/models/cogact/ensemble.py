"""The adaptive action ensemble of CogACT's SimplerEnv evaluation.

microsoft/CogACT@b174a1b sim_cogact/adaptive_ensemble.py:10-44: the last `horizon` predicted
chunks are kept; for the current step, the k-th newest chunk contributes its action k steps
ahead; each is weighted by exp(alpha * cos(prediction, newest prediction)) (cosine with a 1e-7
guard), normalised, and averaged. The model is called every step and only this one averaged
action is executed (cogact_policy.py:139-153). Horizon and alpha come from the model config
(the reference's: 7 on Bridge, 2 on the Google robot, alpha 0.1, cogact_policy.py:40-57).
"""

from __future__ import annotations

from collections import deque

import numpy as np


class AdaptiveEnsembler:
    def __init__(self, horizon: int, alpha: float):
        self.horizon = int(horizon)
        self.alpha = float(alpha)
        self.history: deque[np.ndarray] = deque(maxlen=self.horizon)

    def reset(self) -> None:
        self.history.clear()

    def __call__(self, chunk: np.ndarray) -> np.ndarray:
        """(T, D) chunk predicted now -> the (D,) action to execute now."""
        self.history.append(chunk)
        n = len(self.history)
        preds = np.stack([c[i] for i, c in zip(range(n - 1, -1, -1), self.history)])
        ref = preds[n - 1]
        cos = np.sum(preds * ref, axis=1) / (np.linalg.norm(preds, axis=1) * np.linalg.norm(ref) + 1e-7)
        w = np.exp(self.alpha * cos)
        w = w / w.sum()
        return np.sum(w[:, None] * preds, axis=0)
