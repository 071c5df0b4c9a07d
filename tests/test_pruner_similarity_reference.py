"""SpecPrune-VLA's and VLA-Cache's frame-similarity static sets against the reference code's own
outputs on real LIBERO frames (tests/fixtures/similarity_reference.npz, written by
tests/fixtures/make_similarity_fixture.py with the reference's numpy 1.26): the same float32
bits for every patch similarity, the same static sets (Jaccard 1.0), and numpy 1.x's
argpartition order among equal similarities."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from baseline_views import info

from vlabench.pruners import specprune
from vlabench.pruners.base import VisualTokens
from vlabench.pruners.specprune import _numpy1_argpartition, static_ids
from vlabench.pruners.selection import patch_cosine
from vlabench.pruners.vla_cache import VLACache, static_patches

FIXTURE = Path(__file__).parent / "fixtures" / "similarity_reference.npz"
CAMS = ("agentview", "wrist")


@pytest.fixture(scope="module")
def ref() -> dict[str, np.ndarray]:
    with np.load(FIXTURE) as f:
        return {k: f[k] for k in f.files}


def _bits(x: np.ndarray) -> np.ndarray:
    return np.asarray(x, dtype=np.float32).view(np.uint32)


def test_the_fixture_is_small_and_was_made_with_the_references_numpy(ref):
    assert FIXTURE.stat().st_size < 1_000_000
    assert str(ref["versions"][0]).startswith("numpy 1.")
    assert ref["agentview"].shape == ref["wrist"].shape == (5, 224, 224, 3)


@pytest.mark.parametrize("cam", CAMS)
def test_patch_similarities_are_the_references_float32_bits(ref, cam):
    frames = ref[cam]
    for p, (i, j) in enumerate(ref["pairs"]):
        sim = patch_cosine(frames[j], frames[i], 14)
        assert sim.dtype == np.float32
        assert np.array_equal(_bits(sim), _bits(ref[f"sim_{cam}"][p])), (cam, i, j)


def test_dark_patches_show_the_references_epsilon(ref):
    """Norms of a few units: `+ 1e-8` (not 1e-6) decides the last bits."""
    sim = patch_cosine(ref["dark"][0], ref["dark"][1], 14)
    assert np.array_equal(_bits(sim), _bits(ref["sim_dark"]))


def test_bright_patches_show_the_references_summation_order(ref):
    """Sums above 2**24 round in float32: (row, column, channel) rows summed pairwise by numpy,
    not in another layout, not in float64, not by einsum or torch."""
    sim = patch_cosine(ref["bright"][0], ref["bright"][1], 14)
    assert np.array_equal(_bits(sim), _bits(ref["sim_bright"]))


def test_one_lit_pixel_has_similarity_one_in_float32():
    a = np.zeros((14, 14, 3), np.uint8)
    a[3, 5, 1] = 1                     # dot 1, norms 1: 1 / float32(1 + 1e-8) = 1 exactly
    assert patch_cosine(a, a, 14).tolist() == [1.0]
    assert patch_cosine(a, np.zeros_like(a), 14).tolist() == [0.0]


@pytest.mark.parametrize("top", [200, 220])
def test_specprune_static_sets_are_the_references(ref, top):
    cur = lambda i: {c: ref[c][i] for c in CAMS}
    for p, (i, j) in enumerate(ref["pairs"]):
        want = np.concatenate([np.flatnonzero(ref[f"specprune_{c}_{top}"][p]) + 256 * n
                               for n, c in enumerate(CAMS)])
        got = static_ids(cur(i), cur(j), CAMS, 16, 0.986, top)
        assert got.tolist() == want.tolist(), (top, i, j)


def test_specprune_keeps_numpy1_argpartition_order_among_equal_values(ref):
    for x, k, want in zip(ref["ties"], ref["ties_k"], ref["ties_argpartition"]):
        assert _numpy1_argpartition(x, -int(k)) == want.tolist()


@pytest.mark.parametrize("top", [130, 150])
def test_vla_cache_static_sets_are_the_references(ref, top):
    for cam in CAMS:
        for p, (i, j) in enumerate(ref["pairs"]):
            got = static_patches(patch_cosine(ref[cam][j], ref[cam][i], 14), 0.996, top)
            assert got.tolist() == np.flatnonzero(ref[f"vla_cache_{cam}_{top}"][p]).tolist(), (cam, i, j)


def test_vla_cache_reuses_the_references_static_sets_when_nothing_is_task_relevant(ref):
    p = VLACache({"attention_top_k": 0, "static_top_k": 150})
    p.bind(info(num_visual=512, num_layers=4, cameras=CAMS, grid=16))
    frames = lambda i: {c: ref[c][i] for c in CAMS}
    tokens = lambda i: VisualTokens(torch.zeros(512, 2), torch.zeros(512, 2), frames(i), None, "t", i)
    pairs = [tuple(x) for x in ref["pairs"].tolist()]
    for prev, cur in ((0, 1), (1, 2), (2, 3), (3, 4)):
        p.prev_images, p.prev_scores = frames(prev), torch.zeros(512)
        want = np.concatenate([np.flatnonzero(ref[f"vla_cache_{c}_150"][pairs.index((cur, prev))]) + 256 * n
                               for n, c in enumerate(CAMS)])
        assert p.reusable(tokens(cur)).tolist() == want.tolist()


def test_thresholds_compare_as_the_references_numpy_does(monkeypatch):
    """VLA-Cache tests one float32 scalar at a time against a Python float: numpy < 2 compares in
    float64, and float32(0.996) = 0.99599999 fails. SpecPrune tests the whole array against it:
    float32 (numpy 1.x value-based casting and numpy 2), where it passes."""
    edge = np.float32(0.996)
    sim = np.array([1.0, edge, np.nextafter(edge, np.float32(2)), 0.5], dtype=np.float32)
    assert static_patches(sim, 0.996, 10).tolist() == [0, 2]
    monkeypatch.setattr(specprune, "patch_cosine", lambda a, b, patch: sim)
    img = np.zeros((28, 28, 3), np.uint8)
    assert static_ids({"agentview": img}, {"agentview": img}, ("agentview",), 2, 0.996, 10).tolist() == [0, 1, 2]
