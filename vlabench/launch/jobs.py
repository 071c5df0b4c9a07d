"""A job: one run of a sweep (or the only run of a plain `vlabench run`), ready to launch."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Job:
    """The overrides that compose one run, and the composed, validated config."""

    overrides: tuple[str, ...]   # Hydra overrides: the command line's plus this sweep point's
    cfg: Any                     # DictConfig from vlabench.launch.compose.compose(list(overrides))

    @property
    def run_dir(self) -> Path:
        return Path(str(self.cfg.run.output_dir)) / str(self.cfg.run.name)

    @property
    def name(self) -> str:
        return str(self.cfg.run.name)
