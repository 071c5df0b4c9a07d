"""Which paper row a run's settings stand for: the one place that maps config keys to rows.

Ablation and sensitivity tables tell runs apart by their pruner settings (config.yaml), not by
run names, so two runs of one method on one suite land in different rows:
- VLA-Pruner Table 3: EfficientVLA "w/o layer" = an efficientvla run that skips no decoder
  layer (`skip_layers: []`, or `layers_kept` >= `ref_layers`, or `layer_skip: false`);
  VLA-Pruner at 25% retention and the default K.
- VLA-Pruner Table 6: K = `pruner.prune_layer` (configs/pruner/vla-pruner.yaml).
- SP-VLA Table 2 / 9: "w/o Pruning" = `pruner.prune: false`, "w/o Scheduling" =
  `pruner.schedule: false`, "w/o Canny" = `pruner.canny: false` (or `pruner.edges: false`).
- SP-VLA Table 8: V_min, V_max, tau, n = `pruner.v_min`, `v_max`, `tau`, `buffer`; the
  paper's centre (0.2, 0.5, 0.5, 6) and its ±25% / 5/8, 3/8 / 8, 4 steps.
"""

from __future__ import annotations

from typing import Any

from vlabench.report.runs import Run

EFFICIENTVLA_NO_LAYER = "w/o layer"
VP_T3_RETENTION = 0.25       # VLA-Pruner's row of Table 3 (App. B.3: "at 25% token retention")
VP_DEFAULT_K = 3             # configs/pruner/vla-pruner.yaml prune_layer

SP_ABLATIONS = {  # key whose false switches a module off -> the paper's row (Table 2)
    "prune": "w/o Pruning", "schedule": "w/o Scheduling", "canny": "w/o Canny", "edges": "w/o Canny",
}
# Table 8: column header, config key, centre, up, down (the paper's printed values)
SP_T8_PARAMS = [("V_min (0.2)", "v_min", 0.2, 0.25, 0.15), ("V_max (0.5)", "v_max", 0.5, 0.625, 0.375),
                ("τ (0.5)", "tau", 0.5, 0.625, 0.375), ("n (6)", "buffer", 6, 8, 4)]


def setting(run: Run, key: str, default: Any = None) -> Any:
    """pruner.<key> of the run's config (a per-suite mapping resolved to the run's suite)."""
    v = (run.config.get("pruner") or {}).get(key, default)
    if isinstance(v, dict):
        v = v.get(run.suite, v.get(run.suite.removeprefix("libero_"), default))
    return v


def user_variant(run: Run) -> str:
    """`pruner.variant` as set by the user (Run.variant may carry a disambiguating run name)."""
    v = setting(run, "variant")
    return "" if v in (None, "") else str(v)


def _false(v: Any) -> bool:
    return v is False or (isinstance(v, str) and v.lower() in ("false", "0", "off", "no"))


def efficientvla_row(run: Run) -> str:
    """"" (layer skipping on) or "w/o layer" (EfficientVLA's token pruning alone)."""
    skip = setting(run, "skip_layers")
    if _false(setting(run, "layer_skip", True)) or (isinstance(skip, list) and not skip):
        return EFFICIENTVLA_NO_LAYER
    kept, ref = setting(run, "layers_kept"), setting(run, "ref_layers", 32)
    if skip is None and kept is not None and ref is not None and int(kept) >= int(ref):
        return EFFICIENTVLA_NO_LAYER
    return ""


def vp_layer(run: Run) -> int | None:
    """VLA-Pruner's pruning layer K of the run."""
    k = setting(run, "prune_layer")
    return None if k is None else int(k)


def sp_ablation(run: Run) -> str:
    """The SP-VLA module switched off ("" for the full method; "+"-joined when several)."""
    off = [row for key, row in SP_ABLATIONS.items() if _false(setting(run, key, True))]
    return " + ".join(dict.fromkeys(off))


def sp_params(run: Run) -> tuple[float, ...]:
    """(v_min, v_max, tau, buffer) of an SP-VLA run (the YAML defaults where unset)."""
    return tuple(float(setting(run, key, centre)) for _, key, centre, _, _ in SP_T8_PARAMS)


SP_CENTRE = tuple(float(c) for _, _, c, _, _ in SP_T8_PARAMS)


def sp_t8_cell(run: Run) -> tuple[str, str] | None:
    """(direction "0"/"up"/"down", column key) of an SP-VLA run in Table 8, or None when it
    changes more than one parameter or another one. Direction "0": the centre run (every column)."""
    p = sp_params(run)
    diff = [i for i, (a, b) in enumerate(zip(p, SP_CENTRE, strict=True)) if abs(a - b) > 1e-9]
    if not diff:
        return ("0", "")
    if len(diff) > 1:
        return None
    _, key, _, up, down = SP_T8_PARAMS[diff[0]]
    for direction, v in (("up", up), ("down", down)):
        if abs(p[diff[0]] - v) < 1e-9:
            return (direction, key)
    return None


def sp_setting_label(run: Run) -> str:
    """The SP-VLA settings that differ from Table 8's centre ("" for the centre)."""
    p = sp_params(run)
    return ", ".join(f"{key}={v:g}" for (_, key, c, _, _), v in zip(SP_T8_PARAMS, p, strict=True)
                     if abs(v - c) > 1e-9)


def main_setting(run: Run) -> bool:
    """A run of a method's own setting, for the main comparison tables: not an SP-VLA ablation
    or Table 8 move, not a VLA-Pruner layer other than K=3, unless tagged with pruner.variant."""
    if user_variant(run):
        return True
    if run.pruner == "sp-vla":
        return not sp_ablation(run) and not sp_setting_label(run)
    if run.pruner == "vla-pruner":
        return vp_layer(run) in (None, VP_DEFAULT_K)
    return True
