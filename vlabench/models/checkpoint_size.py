"""How big a model's published checkpoint is, from the shipped priors (configs/plan_priors.yaml):
its parameter count (our full-size build) x the bytes per parameter of the published files."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from vlabench.core.resources import CONFIGS_DIR

PRIORS = CONFIGS_DIR / "plan_priors.yaml"


@lru_cache(maxsize=1)
def priors() -> dict[str, Any]:
    """configs/plan_priors.yaml (empty when absent or unreadable)."""
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        return yaml.load(PRIORS.read_text(), Loader=loader) or {}
    except (OSError, yaml.YAMLError):
        return {}


def model_prior(model: str) -> dict[str, Any]:
    """The priors of `model` (a tiny variant has none: it has no checkpoint)."""
    return dict((priors().get("models") or {}).get(model) or {})


def checkpoint_gb(model: str) -> float | None:
    """Download size in GB (1e9 bytes) of one published checkpoint of `model`, or None."""
    p = model_prior(model)
    if "parameters" not in p or "checkpoint_bytes_per_parameter" not in p:
        return None
    return float(p["parameters"]) * float(p["checkpoint_bytes_per_parameter"]) / 1e9


def size_text(models: set[str], count: int) -> str:
    """"; about 15.1 GB each" (or per model when they differ); "" when unknown."""
    sizes = {m: checkpoint_gb(m) for m in sorted(models)}
    known = {m: s for m, s in sizes.items() if s is not None}
    if not known:
        return ""
    if len(known) == 1:
        gb = next(iter(known.values()))
        return f"; about {gb:.1f} GB{' each' if count > 1 else ''}"
    return "; about " + ", ".join(f"{gb:.1f} GB per {m} checkpoint" for m, gb in known.items())
