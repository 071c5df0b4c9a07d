"""Vectorised token-selection primitives shared by the pruning methods.

Each method composes these with its own scores and rules (cited in its own docstring); the
primitives hold no method-specific choices. Only the greedy loop of `greedy_maxmin` iterates
in Python, once per selected token (k iterations of O(n) tensor work, never over pairs).
Every choice among equal values is deterministic and device-independent: ties go to the lowest
position (id or row), never to whatever order a GPU kernel happens to return.
"""

from __future__ import annotations

import numpy as np
import torch


def top_k_ids(scores: torch.Tensor, ids: torch.Tensor, k: int) -> torch.Tensor:
    """The ids of the k highest scores, sorted ascending.

    Deterministic on every device: exactly equal scores are ranked by id, lowest first (the id
    is the token's position in the visual sequence), and NaN ranks below every number. A plain
    `torch.topk(sorted=False)` returns an arbitrary, device-dependent subset among ties (issue
    11 item 14: on LIBERO 209 of VLA-Cache's 224 candidate patches tie within 1e-6 of
    similarity 1.0, and the kept set differed from the reference run's by Jaccard 0.935)."""
    if scores.shape != ids.shape:
        raise ValueError(f"scores {tuple(scores.shape)} and ids {tuple(ids.shape)} differ")
    k = max(0, min(int(k), ids.numel()))
    by_id = torch.argsort(ids, stable=True)
    best = by_id[top_k_indices(scores[by_id], k)]
    return torch.sort(ids[best]).values


def top_k_indices(scores: torch.Tensor, k: int, largest: bool = True) -> torch.Tensor:
    """Positions of the k largest (or smallest) entries of a 1-D `scores`, best first; exact
    ties go to the lowest position and NaN ranks last, on every device (unlike `torch.topk`)."""
    k = max(0, min(int(k), scores.numel()))
    fill = float("-inf") if largest else float("inf")
    s = scores.float().nan_to_num(nan=fill)
    return torch.sort(s, descending=largest, stable=True).indices[:k]


def cosine_distance_matrix(features: torch.Tensor) -> torch.Tensor:
    """(n, n) matrix of 1 - cosine similarity between the rows of `features`."""
    x = torch.nn.functional.normalize(features.float(), dim=-1)
    return (1.0 - x @ x.T).clamp_min(0.0)


def first_by_nearest_other(distances: torch.Tensor) -> int:
    """The row whose nearest other row is farthest: per column the second smallest distance (the
    smallest being the row itself), argmax, lowest row on ties. DivPrune's `DivPrune()` (vbdi/
    divprune @ 799e2d9 llava_arch.py L152-171) and VLA-Pruner's code (`_redundancy_minization`,
    MINT-SJTU/VLA-Pruner @ fa5bfed modeling_llama.py:950-971) start their max-min greedy here."""
    if distances.shape[0] < 2:
        return 0
    second = torch.topk(distances, 2, dim=0, largest=False).values[1]
    return int(torch.argmax(second))


def greedy_maxmin(distances: torch.Tensor, k: int, first: int) -> torch.Tensor:
    """Greedy max-min diversity: start at row `first`, then repeatedly add the candidate whose
    distance to its nearest selected row is largest; ties go to the lowest row (`torch.argmax`
    returns the first maximum on every device). Returns k row indices in pick order."""
    n = distances.shape[0]
    k = max(0, min(int(k), n))
    if k == 0:
        return torch.empty(0, dtype=torch.long, device=distances.device)
    picked = torch.empty(k, dtype=torch.long, device=distances.device)
    picked[0] = first
    nearest = distances[first].clone()
    taken = torch.zeros(n, dtype=torch.bool, device=distances.device)
    taken[first] = True
    for i in range(1, k):
        cand = nearest.masked_fill(taken, float("-inf"))
        j = torch.argmax(cand)
        picked[i] = j
        taken[j] = True
        nearest = torch.minimum(nearest, distances[j])
    return picked


def keep_count(total: int, retention: float) -> int:
    """Tokens kept at `retention` in (0, 1] of `total`: round half up, at least one."""
    if not 0.0 < retention <= 1.0:
        raise ValueError(f"retention must lie in (0, 1], got {retention}")
    return max(1, min(total, int(total * retention + 0.5)))


def patch_cosine(prev: np.ndarray, cur: np.ndarray, patch: int) -> np.ndarray:
    """Cosine similarity of co-located patch x patch pixel blocks of two HxWx3 uint8 images,
    row-major over the patch grid, bit for bit as the official `calculate_patch_similarity`
    (vla_cache_utils.py:61-73; SpecPrune-VLA's is the same function): contiguous float32 rows in
    (row, column, channel) order, numpy's pairwise sums, dot / (norm * norm + 1e-8). Why it
    matters: docs/methods/vla-cache.md, "Similarity arithmetic"."""
    def rows(img: np.ndarray) -> np.ndarray:
        x = np.asarray(img)
        x = x if x.ndim == 3 else x[..., None]
        h, w, c = x.shape
        blocks = x.reshape(h // patch, patch, w // patch, patch, c).swapaxes(1, 2)
        return np.ascontiguousarray(blocks.reshape((h // patch) * (w // patch), patch * patch * c),
                                    dtype=np.float32)

    a, b = rows(prev), rows(cur)
    norms = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    return np.sum(a * b, axis=1) / (norms + 1e-8)
