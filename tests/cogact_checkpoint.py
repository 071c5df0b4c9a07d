"""Writes a checkpoint directory in CogACT's published layout from one of our tiny models
(tests): config.json ({"vla": {"base_vlm": ...}}), dataset_statistics.json, checkpoints/*.pt
holding {"model": {vision_backbone, projector, llm_backbone, action_model}} with Prismatic's
names, and a word-level tokenizer."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from published_checkpoint import write_tokenizer

from vlabench.models.checkpoint_names import unmap
from vlabench.models.cogact.checkpoint import export_to_prismatic

STATS = {"bridge_orig": {"action": {"q01": [-0.03, -0.04, -0.02, -0.1, -0.1, -0.2, 0.0],
                                    "q99": [0.03, 0.04, 0.03, 0.1, 0.1, 0.2, 1.0],
                                    "mask": [True] * 6 + [False]}},
         "fractal20220817_data": {"action": {"q01": [-0.2] * 6 + [0.0], "q99": [0.2] * 6 + [1.0],
                                             "mask": [True] * 6 + [False]}}}


def source_model(seed: int = 0):
    """A random tiny CogACT whose weights the published layout holds exactly (DINOv2 class-token
    position row zero) and whose DiT output is not saturated."""
    from vlabench.models.cogact.build import build_cogact

    p = build_cogact({"size": "tiny", "warmup_calls": 0, "seed": seed}, device="cpu")
    with torch.no_grad():
        p.model.vision_backbone.featurizer.embeddings.position_embeddings[:, 0].zero_()
    return p


def write_cogact(path: Path, model, stats: dict[str, Any] | None = None,
                 drop: tuple[str, ...] = ()) -> None:
    path.mkdir(parents=True, exist_ok=True)
    sd = {k: v.detach().clone() for k, v in model.state_dict().items()}
    action = {k: sd.pop(k) for k in [k for k in sd if k.startswith("action_model.")]}
    parts = export_to_prismatic({**unmap(sd), **action})
    (path / "checkpoints").mkdir()
    torch.save({"model": {k: v for k, v in parts.items() if k not in drop}},
               path / "checkpoints" / "step-000000-epoch-00-loss=0.0000.pt")
    (path / "config.json").write_text(json.dumps({"vla": {"base_vlm": "vlabench-tiny-dinosiglip",
                                                          "vla_id": "test"}}))
    (path / "dataset_statistics.json").write_text(json.dumps(stats or STATS))
    write_tokenizer(path)
