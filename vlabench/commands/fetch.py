"""`vlabench fetch`: download the checkpoints a `run` command (or preset) needs, before running it.

Takes the same arguments as `vlabench run`; every job's checkpoint that is not complete here
(vlabench.models.checkpoint_check) is downloaded through huggingface_hub into its cache
(HF_HOME / HF_HUB_CACHE; HF_TOKEN for gated repositories), with its progress bars;
an interrupted download resumes where it stopped. pi0's `model.tokenizer` repository (when set)
contributes its tokenizer files only. Local directories are never downloaded: a missing one is
named. Offline (HF_HUB_OFFLINE=1, or the Hub unreachable) it refuses with one line.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from vlabench.core.errors import ConfigError

TOKENIZER_FILES = ["tokenizer*", "special_tokens_map.json", "added_tokens.json"]
OFFLINE_VALUES = ("1", "true", "yes", "on")


def downloads(cfgs: list[Any]) -> tuple[list[tuple[str, list[str] | None]], list[str]]:
    """((repo id, file patterns or None for every file) to download, local directories missing)."""
    from vlabench.models.checkpoint_check import needed
    from vlabench.models.checkpoint_spec import looks_local

    repos: list[tuple[str, list[str] | None]] = []
    local: list[str] = []
    for n in needed(cfgs):
        if n.problem is None:
            continue
        if looks_local(n.spec):
            local.append(f"{n.spec} ({n.problem})")
        else:
            repos.append((n.spec, TOKENIZER_FILES if n.kind == "tokenizer" else None))
    for cfg in cfgs:   # pi0: the tokenizer repository, when the checkpoint has no tokenizer files
        tok = cfg.model.get("tokenizer")
        if cfg.model.get("checkpoint") is None or not tok or str(tok) == "stand-in" or looks_local(str(tok)):
            continue
        if has_tokenizer(str(tok)) or (str(tok), TOKENIZER_FILES) in repos:
            continue
        repos.append((str(tok), TOKENIZER_FILES))
    return repos, local


def has_tokenizer(repo: str) -> bool:
    """True when the HF cache holds `repo`'s tokenizer files (tokenizer.model or tokenizer.json)."""
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return False
    from vlabench.models.checkpoint_spec import hf_cache_dir

    return any(isinstance(try_to_load_from_cache(repo, f, cache_dir=hf_cache_dir()), str)
               for f in ("tokenizer.model", "tokenizer.json"))


def offline_reason() -> str | None:
    """Why nothing can be downloaded here, or None."""
    if os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in OFFLINE_VALUES:
        return "HF_HUB_OFFLINE is set"
    try:
        import huggingface_hub  # noqa: F401
    except ImportError:
        return "huggingface_hub is not installed (pip install \"vlabench[models]\")"
    return None


def _failure(repo: str, e: Exception) -> ConfigError:
    names = {c.__name__ for c in type(e).__mro__}
    if names & {"GatedRepoError", "RepositoryNotFoundError"}:
        why = "no such repository, or it is gated: accept its terms on huggingface.co and set HF_TOKEN"
    elif names & {"LocalEntryNotFoundError", "ConnectionError", "OfflineModeIsEnabled", "Timeout",
                  "ConnectError", "TimeoutException"}:
        why = "the Hugging Face Hub cannot be reached (offline?); fetch on a machine with network access " \
              "and the same HF_HOME"
    else:
        why = f"{type(e).__name__}: {(str(e).strip().splitlines() or [''])[0]}"
    return ConfigError(f"cannot download {repo}: {why}")


def fetch(cfgs: list[Any]) -> int:
    """Download what `cfgs` need; the exit code (0: everything is here now)."""
    repos, local = downloads(cfgs)
    if local:
        raise ConfigError(f"{len(local)} local checkpoint director{'y is' if len(local) == 1 else 'ies are'} "
                          f"missing or incomplete (nothing to download): {', '.join(local)}")
    if not repos:
        print("vlabench fetch: every checkpoint these runs need is here already", file=sys.stderr)
        return 0
    reason = offline_reason()
    if reason:
        raise ConfigError(f"cannot download {len(repos)} repositor{'y' if len(repos) == 1 else 'ies'} "
                          f"({', '.join(r for r, _ in repos)}): {reason}")
    from huggingface_hub import snapshot_download

    from vlabench.models.checkpoint_spec import hf_cache_dir

    for i, (repo, patterns) in enumerate(repos, 1):
        what = "tokenizer files" if patterns else "checkpoint"
        print(f"vlabench fetch: [{i}/{len(repos)}] {repo} ({what})", file=sys.stderr, flush=True)
        try:
            path = snapshot_download(repo, allow_patterns=patterns, cache_dir=hf_cache_dir(), etag_timeout=10)
        except Exception as e:
            raise _failure(repo, e) from None
        print(f"vlabench fetch: {repo} -> {path}", file=sys.stderr, flush=True)
    from vlabench.models.checkpoint_check import check_checkpoints

    check_checkpoints(cfgs)   # the downloaded directories hold every file of their layout
    print(f"vlabench fetch: {len(repos)} download(s) done; the runs can start", file=sys.stderr)
    return 0
