"""CogACT's inference settings from the model config: guidance scale, DDIM steps, the ensemble."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from vlabench.core.config import cfg_get
from vlabench.core.errors import ConfigError


@dataclass(frozen=True)
class Sampling:
    """The action model's inference settings (from the model config)."""

    cfg_scale: float
    ddim_steps: int
    ensemble_horizon: int     # 0: no ensemble, the chunk's first action is executed
    ensemble_alpha: float

    @property
    def cfg_batch(self) -> int:
        return 2 if self.cfg_scale > 1.0 else 1


def sampling_of(cfg: Any, suite: str) -> tuple[Sampling, list[str]]:
    """The Sampling settings of the model config for `suite`, and any deviation lines."""
    scale, steps = float(cfg_get(cfg, "cfg_scale", 1.5)), int(cfg_get(cfg, "ddim_steps", 10))
    if steps < 1 or scale < 0:
        raise ConfigError(f"model.ddim_steps={steps}, model.cfg_scale={scale}: need steps >= 1, scale >= 0")
    ens = cfg_get(cfg, "ensemble") or {}
    horizons = dict(ens.get("horizon") or {})
    notes = []
    if suite and suite not in horizons:
        notes.append(f"cogact: no adaptive-ensemble horizon for suite {suite} (known: "
                     f"{', '.join(sorted(horizons))}): the chunk's first action is executed")
    horizon = int(horizons.get(suite, 0)) if ens.get("enabled", True) else 0
    return Sampling(scale, steps, horizon, float(ens.get("alpha", 0.1))), notes
