"""What a `model.checkpoint` value names, and whether its files are here, without torch and
without the network (`vlabench list` and the loader's error messages share it).

A value is a local directory, a Hugging Face repo id ("owner/name"), or a mapping suite -> one
of those. A value is taken as a path when it starts with / . or ~, has other than exactly one
"/", exists on disk, or its first component is an existing directory ("ckpts/missing" when
./ckpts exists); otherwise it is a repo id, found offline in the Hugging Face cache.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


def looks_local(spec: str) -> bool:
    """True when `spec` is meant as a filesystem path rather than an "owner/name" repo id."""
    if spec.startswith(("/", ".", "~")) or spec.count("/") != 1:
        return True
    p = Path(spec).expanduser()
    return p.exists() or Path(spec.split("/", 1)[0]).is_dir()


def per_suite(spec: Any) -> dict[str | None, str]:
    """{suite: value} of a mapping; {None: value} of a single value for every suite."""
    if hasattr(spec, "items"):
        return {str(k): str(v) for k, v in spec.items()}
    return {None: str(spec)}


def hf_cache_dir() -> str | None:
    """The Hugging Face cache to look in, read from the environment at each call (HF_HUB_CACHE,
    else HF_HOME/hub; None: huggingface_hub's own default)."""
    import os

    if os.environ.get("HF_HUB_CACHE"):
        return os.path.expanduser(os.environ["HF_HUB_CACHE"])
    if os.environ.get("HF_HOME"):
        return os.path.join(os.path.expanduser(os.environ["HF_HOME"]), "hub")
    return None


def cached_snapshot(repo_id: str) -> Path | None:
    """The cached snapshot directory of `repo_id` holding config.json, or None (offline check)."""
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return None
    try:
        found = try_to_load_from_cache(repo_id, "config.json", cache_dir=hf_cache_dir())
    except Exception:  # a malformed id: not cached
        return None
    return Path(found).parent if isinstance(found, str) else None


def cached_file(repo_id: str, filename: str) -> Path | None:
    """`filename` of `repo_id`'s cached snapshot, or None (offline check)."""
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return None
    try:
        found = try_to_load_from_cache(repo_id, filename, cache_dir=hf_cache_dir())
    except Exception:  # a malformed id: not cached
        return None
    return Path(found) if isinstance(found, str) else None


def locate(spec: str) -> Path | None:
    """The directory `spec` names when its files are here (a local directory, or the HF cache)."""
    if looks_local(spec):
        p = Path(spec).expanduser()
        return p if p.is_dir() else None
    return cached_snapshot(spec)


def download_command(repo_id: str) -> str:
    return f"hf download {repo_id}"
