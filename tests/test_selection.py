"""Shared selection primitives on inputs whose answers are worked out by hand."""

from __future__ import annotations

import pytest
import torch

from vlabench.pruners.selection import (cosine_distance_matrix, greedy_maxmin, keep_count,
                                        top_k_ids, top_k_indices)


def test_greedy_maxmin_picks_the_farthest_point_from_the_selected_set():
    pts = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 3.0], [5.0, 5.0], [5.0, 5.1]])
    d = torch.cdist(pts, pts)
    # from 0: farthest is 4 (|(5,5.1)|); then 2 (min dist 3) beats 1 (1) and 3 (0.1)
    assert greedy_maxmin(d, 3, first=0).tolist() == [0, 4, 2]
    assert greedy_maxmin(d, 10, first=3).tolist()[:2] == [3, 0]
    assert greedy_maxmin(d, 0, first=0).numel() == 0


def test_top_k_ids_returns_sorted_ids_of_the_best_scores():
    ids = torch.tensor([40, 10, 30, 20])
    assert top_k_ids(torch.tensor([0.1, 0.9, 0.5, 0.7]), ids, 2).tolist() == [10, 20]
    assert top_k_ids(torch.tensor([0.1, 0.9, 0.5, 0.7]), ids, 9).tolist() == [10, 20, 30, 40]


def test_top_k_ids_breaks_exact_ties_by_lowest_id_whatever_the_input_order():
    scores = torch.tensor([1.0, 0.5, 1.0, 1.0, 1.0, 0.2])
    ids = torch.arange(6)
    # four ties at 1.0 (ids 0, 2, 3, 4): the two lowest ids win
    assert top_k_ids(scores, ids, 2).tolist() == [0, 2]
    assert top_k_ids(scores, ids, 5).tolist() == [0, 1, 2, 3, 4]
    perm = torch.tensor([4, 5, 3, 0, 2, 1])                 # same (id, score) pairs, shuffled
    assert top_k_ids(scores[perm], ids[perm], 2).tolist() == [0, 2]
    assert top_k_ids(scores[perm], ids[perm], 3).tolist() == [0, 2, 3]


def test_top_k_ids_is_the_same_on_a_large_all_tied_input_and_ranks_nan_last():
    ids = torch.arange(300, 0, -1)                           # descending ids
    assert top_k_ids(torch.ones(300), ids, 7).tolist() == list(range(1, 8))
    scores = torch.tensor([float("nan"), 0.0, -1.0])
    assert top_k_ids(scores, torch.tensor([0, 1, 2]), 2).tolist() == [1, 2]
    assert top_k_ids(torch.zeros(4, dtype=torch.bfloat16), torch.arange(4), 2).tolist() == [0, 1]


def test_top_k_indices_ranks_best_first_and_breaks_ties_by_lowest_position():
    scores = torch.tensor([0.5, 2.0, 0.5, float("nan"), 2.0, 0.1])
    assert top_k_indices(scores, 4).tolist() == [1, 4, 0, 2]
    assert top_k_indices(scores, 3, largest=False).tolist() == [5, 0, 2]
    assert top_k_indices(torch.ones(300), 3).tolist() == [0, 1, 2]
    assert top_k_indices(scores, 99).numel() == 6


def test_greedy_maxmin_breaks_distance_ties_by_lowest_row():
    d = torch.tensor([[0.0, 1.0, 1.0, 1.0], [1.0, 0.0, 0.5, 0.5],
                      [1.0, 0.5, 0.0, 0.5], [1.0, 0.5, 0.5, 0.0]])
    # from 0 rows 1, 2, 3 all lie at 1.0: row 1; then 2 and 3 tie at 0.5: row 2
    assert greedy_maxmin(d, 3, first=0).tolist() == [0, 1, 2]


def test_cosine_distance_is_zero_for_parallel_and_one_for_orthogonal_rows():
    d = cosine_distance_matrix(torch.tensor([[1.0, 0.0], [2.0, 0.0], [0.0, 3.0]]))
    assert d[0, 1] == pytest.approx(0.0, abs=1e-6) and d[0, 2] == pytest.approx(1.0)


@pytest.mark.parametrize("total,ret,expected", [(512, 0.5, 256), (512, 0.25, 128), (512, 0.125, 64),
                                                (256, 1.0, 256), (3, 0.01, 1), (7, 0.5, 4)])
def test_keep_count_rounds_half_up_and_keeps_at_least_one(total, ret, expected):
    assert keep_count(total, ret) == expected


def test_keep_count_rejects_retention_outside_unit_interval():
    with pytest.raises(ValueError, match=r"\(0, 1\]"):
        keep_count(10, 0.0)


def test_patch_cosine_is_one_for_unchanged_blocks_and_zero_for_orthogonal_ones():
    import numpy as np

    from vlabench.pruners.selection import patch_cosine

    a = np.ones((4, 4, 3), np.uint8)
    b = a.copy()
    b[0:2, 2:4] = 0                        # block (0, 1): black in b
    b[2:4, 0:2, 0] = 0                     # block (1, 0): red channel off -> cos = 2/sqrt(6)
    sim = patch_cosine(a, b, 2)
    assert sim.shape == (4,)
    assert sim[0] == pytest.approx(1.0) and sim[1] == pytest.approx(0.0, abs=1e-6)
    assert sim[2] == pytest.approx(2 / 6 ** 0.5) and sim[3] == pytest.approx(1.0)
