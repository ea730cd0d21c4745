"""Ranking metrics against values worked out by hand."""

import math

import pytest

from reranker.analysis.ranking_metrics import kendall_tau, label_metrics, mean, top_k_overlap


def test_ndcg_is_trec_evals_linear_gain_and_log2_discount():
    # DCG of [2, 0, 1]: 2/log2(2) + 0 + 1/log2(4) = 2.5; the ideal [2, 1, 0]: 2 + 1/log2(3)
    assert label_metrics([2, 0, 1], 3)["NDCG@3"] == pytest.approx(2.5 / (2 + 1 / math.log2(3)))
    assert label_metrics([2, 1, 0, 0], 4)["NDCG@4"] == pytest.approx(1.0)
    assert label_metrics([0, 0, 2], 2)["NDCG@2"] == 0.0


def test_ndcg_cut_at_k_compares_with_the_best_k_of_all_labels():
    # the ideal top 1 is the 2, wherever it sits in the ranking
    assert label_metrics([1, 0, 2], 1)["NDCG@1"] == pytest.approx(1 / 2)


def test_nothing_relevant_gives_zeros():
    assert label_metrics([0, 0, 0], 3) == {"NDCG@3": 0.0, "MRR": 0.0, "Hit@1": 0.0}
    assert label_metrics([], 5) == {"NDCG@5": 0.0, "MRR": 0.0, "Hit@1": 0.0}


def test_reciprocal_rank_and_hit_at_1():
    assert label_metrics([0, 0, 1, 2], 4)["MRR"] == pytest.approx(1 / 3)
    assert label_metrics([1, 0], 2)["Hit@1"] == 1.0 and label_metrics([0, 2], 2)["Hit@1"] == 0.0
    assert label_metrics([0.4, 0.6], 2)["MRR"] == 0.5  # whole grades, as trec_eval reads them


def test_label_metrics_names_its_keys_for_display():
    ideal = 2 + 1 / math.log2(3)  # the top 2 of the labels, [2, 1]
    assert label_metrics([0, 2, 1], 2) == {"NDCG@2": pytest.approx(2 / math.log2(3) / ideal), "MRR": 0.5,
                                           "Hit@1": 0.0}


def test_kendall_tau_same_reversed_and_partial():
    assert kendall_tau([1, 2, 3, 4], [1, 2, 3, 4]) == 1.0
    assert kendall_tau([1, 2, 3, 4], [4, 3, 2, 1]) == -1.0
    # one swapped neighbour pair out of 6: (5 - 1) / 6
    assert kendall_tau([1, 2, 3, 4], [2, 1, 3, 4]) == pytest.approx(4 / 6)


def test_kendall_tau_b_leaves_ties_out():
    # a ties items 0 and 1; of the 5 other pairs 4 agree and 1 disagrees: (4 - 1) / sqrt(5 * 6)
    assert kendall_tau([1, 1, 2, 3], [1, 2, 4, 3]) == pytest.approx(3 / math.sqrt(30))


def test_kendall_tau_edge_cases():
    assert kendall_tau([], []) == 1.0
    assert kendall_tau([3], [1]) == 1.0
    assert kendall_tau([1, 1, 1], [1, 2, 3]) == 0.0
    with pytest.raises(ValueError, match="same items"):
        kendall_tau([1, 2], [1, 2, 3])


def test_top_k_overlap():
    assert top_k_overlap([0, 1, 2, 3], [1, 0, 3, 2], 2) == 1.0
    assert top_k_overlap([0, 1, 2, 3], [2, 3, 0, 1], 2) == 0.0
    assert top_k_overlap([0, 1, 2, 3], [0, 2, 1, 3], 2) == 0.5
    assert top_k_overlap([0, 1], [1, 0], 10) == 1.0


def test_mean_of_nothing_is_zero():
    assert mean([]) == 0.0
    assert mean([1.0, 0.0]) == 0.5
