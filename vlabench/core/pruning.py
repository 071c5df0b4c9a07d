"""The pruner contract: a strategy that sees a model only through named hook points.

It lives in the core because models call the hooks and pruners implement them; pruner plugins
import it by its public path `vlabench.pruners.base`. The base class is the `none` pruner (every hook a no-op, so the model runs unmodified); a method
overrides the hooks it needs (`skip_call`, `before_llm`, `reuse_kv`, `skip_layer`,
`after_layer`, `end_of_step`, `observe_frame`, `replan`, `reset`), which the decoder loop
(vlabench/models/decoder.py) and the runner call. Keep decisions are tensors of visual ids
(0..M-1, before any pruning); kept tokens keep their original rotary positions unless the
pruner sets `contiguous_positions`.

Details, readings and reference citations: docs/pruner-contract.md
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from vlabench.core.readings import Reading, reading_of

if TYPE_CHECKING:
    import torch

    from vlabench.core.contracts import CallStats, Observation

# Kinds of sequence positions (LayerView.query_kinds / key_kinds).
BOS, VISUAL, PROPRIO, TEXT, ACTION, STOP, GENERATED = range(7)


@dataclass(frozen=True)
class ModelInfo:
    """What a pruner may know about the model it is attached to (given to `bind`)."""

    name: str
    num_layers: int
    hidden_size: int
    num_heads: int
    cameras: tuple[str, ...]
    grid: int                      # patches per image side (16)
    num_visual: int                # M = len(cameras) * grid * grid
    action_dim: int
    chunk: int                     # actions per call
    autoregressive: bool           # True: OpenVLA decodes its action tokens one by one
    flow_steps: int = 0            # pi0: flow-matching integration steps per call (0: none)


@dataclass
class VisualTokens:
    """The visual tokens of one call, before the LLM."""

    embeddings: torch.Tensor       # (M, llm_hidden) projected tokens, LLM input space
    features: torch.Tensor         # (M, 2176) fused vision features before the projector
    images: dict[str, np.ndarray]  # camera -> 224x224x3 uint8 image the towers saw
    vision_attention: dict[str, torch.Tensor] | None  # camera -> (heads, P, P) SigLIP probs
    instruction: str
    call: int                      # model call index in the episode (0-based)


@dataclass
class LayerView:
    """One decoder layer's result (after_layer hook). Rows are the tokens computed at this
    layer (queries); columns of `attn` are all keys at this layer (queries plus cached or
    reused tokens)."""

    layer: int
    phase: str                     # "prefill", "decode" or "flow" (pi0's action expert)
    hidden: torch.Tensor           # (n_q, hidden) output of the layer
    attn: torch.Tensor | None      # (heads, n_q, n_k) softmax probabilities, float32
    query_kinds: torch.Tensor      # (n_q,) kinds (BOS, VISUAL, ...)
    query_positions: torch.Tensor  # (n_q,) original rotary positions
    query_visual_ids: torch.Tensor  # (n_q,) visual id or -1
    key_kinds: torch.Tensor
    key_positions: torch.Tensor
    key_visual_ids: torch.Tensor
    visual_key_index: torch.Tensor  # columns of `attn` that are visual keys (ascending)
    visual_key_ids: torch.Tensor    # their visual ids
    flow_step: int = -1             # phase "flow": the integration step (0-based)

    def visual_ids(self) -> torch.Tensor:
        """Visual ids alive among the keys of this layer."""
        return self.visual_key_ids

    def visual_attention(self) -> torch.Tensor:
        """`attn` restricted to the visual keys: (heads, n_q, n_visual)."""
        assert self.attn is not None, "declare the layer in Pruner.attention_layers"
        return self.attn.index_select(-1, self.visual_key_index)


class Pruner:
    """No pruning. Subclasses override hooks; `reset()` runs at every episode start.

    `readings` lists where the method's paper and public code disagree; `self.reading` is the
    side this run follows (`pruner.reading=code|paper`).
    Class attributes declare what the decoder must provide: `attention_layers` (decoder layers
    whose attention probabilities `after_layer` receives), `vision_attention` (SigLIP feature-
    layer attention in `VisualTokens`), `reuses_kv` (keep the previous call's visual KV),
    `input_view` (before layer 0, `after_layer` gets a view of layer -1: `hidden` holds the LLM
    input embeddings of the rows entering layer 0, `attn` is None; it may not prune)."""

    name: str = "none"
    attention_layers: frozenset[int] = frozenset()
    flow_attention_layers: frozenset[int] = frozenset()   # pi0 expert layers after_layer sees
    first_flow_step: int = 0              # ... from this flow-matching step on (earlier: not probed)
    vision_attention: bool = False
    reuses_kv: bool = False
    observes_frames: bool = False
    contiguous_positions: bool = False    # renumber positions after a before_llm keep (see above)
    input_view: bool = False              # after_layer also sees the LLM input (layer -1, prefill)
    served_source: str = "extrapolator"   # CallStats.source of chunks served by skip_call
    readings: tuple[Reading, ...] = ()     # paper-vs-code points (`pruner.reading` picks a side)

    def __init__(self, cfg: Any = None) -> None:
        self.cfg = cfg
        self.info: ModelInfo | None = None
        self.reading = reading_of(cfg)   # "code" or "paper" (vlabench/pruners/readings.py)

    def bind(self, info: ModelInfo) -> None:
        """Called once when a model is built with this pruner; raise ConfigError to refuse."""
        self.info = info

    def reset(self) -> None:
        """Forget per-episode state (history of attention, previous frames, actions)."""

    def observe_frame(self, step: int, images: Mapping[str, np.ndarray]) -> None:
        """The preprocessed images of a step served without a model call (`observes_frames`):
        a read-only mapping whose frames are prepared when first read, so keep the mapping
        rather than its items if you may never read them."""

    def replan(self) -> bool:
        """True discards the rest of the current chunk: the model is called at this step."""
        return False

    def skip_call(self, obs: Observation) -> np.ndarray | None:
        """An action chunk (T, 7) to serve without calling the model, or None."""
        return None

    def before_llm(self, tokens: VisualTokens) -> torch.Tensor | None:
        """Visual ids to keep before the first decoder layer, or None for all."""
        return None

    def reuse_kv(self, tokens: VisualTokens) -> torch.Tensor | dict[int, torch.Tensor] | None:
        """Visual ids whose previous-call keys/values are reused (every layer, or a
        {layer: ids} plan from each layer on), or None."""
        return None

    def skip_layer(self, layer: int) -> bool:
        """True skips decoder layer `layer` in this call."""
        return False

    def after_layer(self, view: LayerView) -> torch.Tensor | None:
        """Visual ids to keep from the next layer on (prefill), or None for no change."""
        return None

    def end_of_step(self, actions: np.ndarray, stats: CallStats) -> None:
        """The chunk this call produced (after post-processing) and its stats."""

    def mode(self) -> str | None:
        """A label for this call's controller mode (CallStats.mode), if the method has one."""
        return None
