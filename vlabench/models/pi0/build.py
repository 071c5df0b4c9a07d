"""Model config -> pi0 policy, the three builds of `vlabench/models/build.py`:
tiny random weights; full size with `checkpoint: null` (on the GPU, else the meta device:
shapes and FLOPs only); a lerobot-layout checkpoint (HF id or local directory)."""

from __future__ import annotations

from typing import Any

from vlabench.core.config import cfg_get
from vlabench.core.errors import ConfigError
from vlabench.core.pruning import Pruner
from vlabench.models.build import build_settings, model_dtype
from vlabench.models.suite_io import SuiteIO

LIBERO_PREFIX = "libero_"


def check_suite(suite_cfg: Any) -> SuiteIO:
    """pi0's input mapping is LIBERO's (two cameras, 8-d state, raw gripper convention)."""
    from vlabench.models.pi0.policy import LIBERO_SUITES

    name = str(cfg_get(suite_cfg, "name", "") or "")
    try:
        io = SuiteIO.from_suite(suite_cfg)
    except ValueError as e:
        raise ConfigError(str(e)) from None
    libero_like = io.prompt_style == "template" and not io.raw_gripper and io.proprio
    if name and not name.startswith(LIBERO_PREFIX) and not libero_like:
        raise ConfigError(f"pi0 has an input mapping for the LIBERO suites only "
                          f"({', '.join(LIBERO_SUITES)}); suite={name} is not one")
    return io


def build_pi0(cfg: Any = None, pruner: Pruner | None = None, suite_cfg: Any = None,
              device: str | None = "auto"):
    from vlabench.models.pi0.dims import pi0_dims
    from vlabench.models.pi0.inputs import Pi0WordTokenizer, identity_stats
    from vlabench.models.pi0.policy import Pi0Policy, check_pruner

    check_pruner(pruner)
    io = check_suite(suite_cfg)
    dev, size, overrides = build_settings(cfg, device)
    ckpt = cfg_get(cfg, "checkpoint")
    name = str(cfg_get(cfg, "name", "pi0"))
    deviations: list[str] = []
    if ckpt is None:
        d = pi0_dims(size, overrides)
        if dev == "cpu" and size == "full":
            dev = "meta"
            deviations.append("full-size random weights on the meta device: FLOPs and shapes only")
        dtype = model_dtype(cfg, dev)
        from vlabench.models.pi0.model import build_random_pi0

        model = build_random_pi0(d, dev, dtype, seed=int(cfg_get(cfg, "seed", 0)))
        tokenizer = Pi0WordTokenizer()
        stats = {"state": identity_stats(d.state_dim), "actions": identity_stats(d.action_dim)}
        deviations.append(f"random weights ({size}); no checkpoint")
        deviations.append("stand-in word tokenizer (the PaliGemma tokenizer needs the checkpoint)")
    else:
        from vlabench.models.checkpoint import resolve_checkpoint
        from vlabench.models.pi0.checkpoint import load_pi0

        suite_name = str(cfg_get(suite_cfg, "name", "") or "")
        path = resolve_checkpoint(ckpt, suite_name, name)
        dtype = model_dtype(cfg, dev)
        tok = cfg_get(cfg, "tokenizer")
        model, d, tokenizer, stats = load_pi0(path, dev, dtype, overrides, tok)
        if not tokenizer.exact:
            deviations.append("stand-in word tokenizer (model.tokenizer=stand-in)")
    return Pi0Policy(model, d, pruner, tokenizer, stats, dev, dtype, cfg=cfg or {},
                     deviations=deviations, io=io)
