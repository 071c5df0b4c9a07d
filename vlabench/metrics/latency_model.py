"""A deterministic latency model of one model on one device: L = a + b F_llm + c F_vision (+ m).

F_llm and F_vision are a call's executed FLOPs (in TFLOPs) of the LLM and the vision stages
(the policy's `last_flops_by_stage`), m a per-method constant (selection overhead, e.g. the
distance computations of VLA-Pruner's filter). `fit` solves the least squares over measured
calls (`vlabench bench --fit-profile`); a stage whose FLOPs never vary gets coefficient 0 and
its time folds into a. Profiles are small YAML files: shipped ones in configs/profiles/
(`timing.latency=profile:NAME`), or any path (`profile:/path/to/file.yaml`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from vlabench.core.errors import ConfigError
from vlabench.core.resources import CONFIGS_DIR

PROFILES_DIR = CONFIGS_DIR / "profiles"
TERA = 1e12
REQUIRED = ("a_ms", "b_ms_per_tflop", "c_ms_per_tflop")


@dataclass
class LatencyProfile:
    """Coefficients of the latency model plus what they were fitted on."""

    name: str
    a_ms: float
    b_ms_per_tflop: float
    c_ms_per_tflop: float
    overhead_ms: dict[str, float] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)   # model, device, source, points, rms

    def latency_ms(self, llm_flops: float, vision_flops: float, method: str = "none") -> float:
        """Simulated milliseconds of one call with these FLOPs (never below 0)."""
        value = (self.a_ms + self.b_ms_per_tflop * llm_flops / TERA
                 + self.c_ms_per_tflop * vision_flops / TERA + self.overhead_ms.get(method, 0.0))
        return max(0.0, value)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, **self.meta, "a_ms": self.a_ms,
                "b_ms_per_tflop": self.b_ms_per_tflop, "c_ms_per_tflop": self.c_ms_per_tflop,
                "overhead_ms": dict(self.overhead_ms)}


def _number(d: dict, key: str, where: str) -> float:
    v = d.get(key)
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
        raise ConfigError(f"latency profile {where}: {key} must be a finite number, got {v!r}; "
                          f"a profile needs {', '.join(REQUIRED)} (and optional overhead_ms: method -> ms)")
    return float(v)


def profile_path(spec: str) -> Path:
    """The file of `profile:SPEC`: a path when it names an existing file or ends in .yaml,
    else the shipped profile SPEC; ConfigError naming the shipped ones when it is missing."""
    given = Path(spec).expanduser()
    if given.suffix in (".yaml", ".yml") or given.is_file() or "/" in spec:
        if given.is_file():
            return given
        raise ConfigError(f"timing.latency=profile:{spec}: no such file; valid: a profile YAML "
                          f"path or a shipped profile ({', '.join(shipped_profiles()) or 'none'})")
    path = PROFILES_DIR / f"{spec}.yaml"
    if not path.is_file():
        raise ConfigError(f"timing.latency=profile:{spec} is unknown; valid: "
                          f"{', '.join(shipped_profiles()) or 'none'}, or a profile YAML path")
    return path


def shipped_profiles() -> list[str]:
    return sorted(p.stem for p in PROFILES_DIR.glob("*.yaml")) if PROFILES_DIR.is_dir() else []


def load_profile(spec: str) -> LatencyProfile:
    """The profile `profile:SPEC` names; a missing or malformed file is one ConfigError line."""
    import yaml

    path = profile_path(spec)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as e:
        raise ConfigError(f"latency profile {path} is unreadable ({type(e).__name__}); valid: a "
                          f"YAML mapping with {', '.join(REQUIRED)}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"latency profile {path} is not a mapping; valid: a YAML mapping with "
                          f"{', '.join(REQUIRED)}")
    coef = [_number(data, k, str(path)) for k in REQUIRED]
    over = data.get("overhead_ms") or {}
    if not isinstance(over, dict):
        raise ConfigError(f"latency profile {path}: overhead_ms must map method names to ms")
    overhead = {str(k): _number(over, k, f"{path} overhead_ms") for k in over}
    meta = {k: v for k, v in data.items() if k not in (*REQUIRED, "overhead_ms", "name")}
    return LatencyProfile(str(data.get("name") or path.stem), *coef, overhead, meta)


def fit(llm_flops: Any, vision_flops: Any, latency_ms: Any, name: str,
        meta: dict[str, Any] | None = None) -> LatencyProfile:
    """Least-squares a, b, c over calls; a FLOPs column without variance gets coefficient 0."""
    x_llm = np.asarray(llm_flops, dtype=np.float64) / TERA
    x_vis = np.asarray(vision_flops, dtype=np.float64) / TERA
    y = np.asarray(latency_ms, dtype=np.float64)
    if not (len(y) == len(x_llm) == len(x_vis)) or len(y) < 2:
        raise ConfigError(f"fitting a latency profile needs >= 2 calls with FLOPs, got {len(y)}")
    cols = [np.ones_like(y)]
    used = []
    for key, x in (("b_ms_per_tflop", x_llm), ("c_ms_per_tflop", x_vis)):
        if np.ptp(x) > 1e-9 * max(1.0, float(np.abs(x).max())):
            cols.append(x)
            used.append(key)
    coef, *_ = np.linalg.lstsq(np.stack(cols, axis=1), y, rcond=None)
    values = {"a_ms": float(coef[0]), "b_ms_per_tflop": 0.0, "c_ms_per_tflop": 0.0}
    values.update({k: float(c) for k, c in zip(used, coef[1:])})
    pred = np.stack(cols, axis=1) @ coef
    info = {**(meta or {}), "calls": int(len(y)), "rms_ms": float(np.sqrt(np.mean((pred - y) ** 2))),
            "fitted": ["a_ms", *used]}
    return LatencyProfile(name, values["a_ms"], values["b_ms_per_tflop"], values["c_ms_per_tflop"],
                          {}, info)


def write_profile(path: Path, profile: LatencyProfile) -> None:
    import yaml

    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(profile.to_dict(), sort_keys=False), encoding="utf-8")
