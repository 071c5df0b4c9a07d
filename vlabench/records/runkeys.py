"""Which settings change what a recorded episode means, and which do not.

Three kinds of keys, used by resume (resume.prepare_run_dir), growing a run, the default run
name (one per distinct config) and `vlabench merge`:
- NEUTRAL: how the work is executed, displayed or logged (workers, launcher, output location,
  bench settings, where simulator assets live, episode videos, experiment trackers): they may differ between a run, its resumption and
  its shards.
- GROWABLE: how much is run (episodes per task, which tasks): a run directory may grow along
  them; what an existing episode means is unchanged.
- everything else (model, pruner, suite protocol constants, seed, step limit, device) defines
  the episodes: a run directory refuses a change and the default run name includes it.
"""

from __future__ import annotations

# (group, key); a key of None stands for the whole group.
NEUTRAL: frozenset[tuple[str, str | None]] = frozenset({
    ("run", "quiet"), ("run", "overwrite"), ("run", "output_dir"), ("run", "env_workers"),
    ("run", "batch"), ("run", "batch_wait_ms"),
    ("run", "smoke"), ("run", "smoke_steps"),   # applied at compose: suite.tasks, episodes, max_steps
    ("run", "launcher"), ("run", "shards"), ("run", "video"), ("run", "logger"), ("run", "record_obs"), ("ray", None),
    ("bench", None),
    ("suite", "asset_dir"),   # where SIMPLER's assets were unpacked, not what they are
})
GROWABLE: frozenset[tuple[str, str | None]] = frozenset({
    ("run", "episodes_per_task"), ("suite", "tasks"),
})
# Set per shard: a shard's directory records it; merge compares shards without it.
SHARD_KEY = ("run", "shard")
NAME_KEY = ("run", "name")


def _matches(path: str, keys: frozenset[tuple[str, str | None]]) -> bool:
    group, _, key = path.partition(".")
    return (group, None) in keys or (group, key.split(".")[0] or None) in keys


def is_neutral(path: str) -> bool:
    """`path` (dotted, e.g. "run.env_workers") does not affect any episode's result."""
    return _matches(path, NEUTRAL)


def is_growable(path: str) -> bool:
    """A run directory may grow along `path` (more episodes, more tasks)."""
    return _matches(path, GROWABLE)
