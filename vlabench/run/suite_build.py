"""The run's suite, built with the settings the run's model config declares for it.

A model whose official simulator adapter departs from a suite's default (CogACT's SimplerEnv
Google-robot gripper: 10 repeats, previous value updated on latch only) declares the departure
in its YAML under `suite_settings.<suite name>`; those keys reach the suite's constructor as
keyword arguments, and the suite validates them (a bad one: one line, exit 2). A model that
declares nothing for the suite gets the suite's YAML defaults. Details: docs/models.md#cogact
"""

from __future__ import annotations

from typing import Any

from vlabench.core.config import as_dict, cfg_get
from vlabench.core.errors import ConfigError
from vlabench.core.registry import build_plugin


def model_suite_settings(cfg: Any) -> dict[str, Any]:
    """`model.suite_settings.<suite name>` of the composed config ({} when the model sets none)."""
    table = cfg_get(cfg.model, "suite_settings", {})
    try:
        settings = as_dict(as_dict(table).get(str(cfg.suite.name)))
    except (TypeError, ValueError):
        raise ConfigError(f"model.suite_settings must map suite names to mappings of settings, got "
                          f"{table!r}; valid: e.g. {{simpler_google_vm: {{sticky_gripper: ...}}}}") from None
    return {str(k): v for k, v in settings.items()}


def build_suite(cfg: Any) -> Any:
    """The suite plugin of `cfg`, given the model's settings for it."""
    return build_plugin(cfg, "suite", **model_suite_settings(cfg))
