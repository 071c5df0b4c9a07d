"""The oracle reads simulator state, never image tokens: a pruner other than none is refused
in one line before any episode (it would otherwise run unpruned under a pruner's name)."""

from __future__ import annotations

import pytest

from vlabench.core.errors import ConfigError
from vlabench.core.registry import build_plugin
from vlabench.launch.compose import compose


@pytest.mark.parametrize("pruner", ["fastv", "fopru", "specprune"])
def test_oracle_with_a_pruner_is_refused(pruner):
    cfg = compose(["model=oracle", f"pruner={pruner}"])
    with pytest.raises(ConfigError, match=r"model=oracle .* cannot be pruned .* use pruner=none"):
        build_plugin(cfg, "model", pruner=build_plugin(cfg, "pruner"), suite_cfg=cfg.suite)


def test_oracle_without_a_pruner_builds():
    cfg = compose(["model=oracle", "pruner=none"])
    policy = build_plugin(cfg, "model", pruner=build_plugin(cfg, "pruner"), suite_cfg=cfg.suite)
    assert "privileged" in policy.needs
