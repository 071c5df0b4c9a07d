"""The pruner contract at the path pruner plugins import: `vlabench.pruners.base.Pruner` (the
`pruner=none` base class), the hook views and the token kinds. Defined in vlabench.core.pruning,
so that models depend on the contract and never on the pruner plugins.

Details: docs/pruner-contract.md
"""

from vlabench.core.pruning import (  # noqa: F401  (the public names of the contract)
    ACTION,
    BOS,
    GENERATED,
    PROPRIO,
    STOP,
    TEXT,
    VISUAL,
    LayerView,
    ModelInfo,
    Pruner,
    VisualTokens,
)

__all__ = ["ACTION", "BOS", "GENERATED", "PROPRIO", "STOP", "TEXT", "VISUAL", "LayerView",
           "ModelInfo", "Pruner", "VisualTokens"]
