"""Long-tail groups and group metrics against hand-computed answers."""
import math

import numpy as np
import torch

from recbole_llmemb.evaluation.longtail import RankAccumulator, build_groups, format_table, group_metrics


def test_groups_split_by_training_counts():
    # items 1..10 with counts 10..1: head = top 20% = items 1 and 2
    item_count = np.array([0, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1])
    user_len = np.array([0, 2, 3, 10, 20])
    g = build_groups(item_count, user_len, head_ratio=0.2, popularity_buckets=2, history_buckets=2)
    assert g.is_head.tolist() == [False, True, True] + [False] * 8
    assert g.head_min_count == 9
    assert g.user_short_threshold == 6  # median of 2, 3, 10, 20 (rounded down)
    assert g.item_bucket_labels == ["1-5", "6-10"]
    assert g.user_bucket_labels == ["2-3", "10-20"]


def test_group_metrics_hand_computed():
    """Three users, one target each, 6 items; ranks 0, 2 and missed."""
    item_count = np.array([0, 50, 40, 3, 2, 1, 1])  # head (top 20% of 6 -> 2 items) = items 1, 2
    user_len = np.array([0, 2, 9, 4])
    groups = build_groups(item_count, user_len, head_ratio=0.2, user_short_threshold=4, popularity_buckets=2, history_buckets=3)
    scores = torch.tensor(
        [
            [-np.inf, 9.0, 1.0, 2.0, 3.0, 4.0, 5.0],  # user 1, target item 1: rank 0
            [-np.inf, 1.0, 2.0, 9.0, 8.0, 7.0, 0.0],  # user 2, target item 5: rank 2
            [-np.inf, 6.0, 5.0, 4.0, 3.0, 2.0, 1.0],  # user 3, target item 6: rank 5
        ]
    )
    acc = RankAccumulator(max_k=2)
    acc.add(scores, torch.tensor([1, 2, 3]), torch.tensor([0, 1, 2]), torch.tensor([1, 5, 6]))
    acc_k3 = RankAccumulator(max_k=3)
    acc_k3.add(scores, torch.tensor([1, 2, 3]), torch.tensor([0, 1, 2]), torch.tensor([1, 5, 6]))
    r = group_metrics(acc_k3, groups, ks=[1, 3])
    assert r["n_rows"] == 3
    assert r["overall"]["hit@1"] == round(1 / 3, 6)
    assert r["overall"]["hit@3"] == round(2 / 3, 6)
    assert r["overall"]["ndcg@3"] == round((1 + 1 / math.log2(4)) / 3, 6)
    assert r["groups"]["item_head"] == {"size": 1, "metrics": {"hit@1": 1.0, "ndcg@1": 1.0, "hit@3": 1.0, "ndcg@3": 1.0},
                                        "median_rank": 1.0}
    assert r["groups"]["item_tail"]["size"] == 2
    assert r["groups"]["item_tail"]["median_rank"] == (3 + 6) / 2  # ranks 3 and 6 in the whole ranking, beyond k
    assert r["groups"]["item_tail"]["metrics"]["ndcg@3"] == round(0.5 / 2, 6)
    # users 1 (2 interactions) and 3 (4) are short; user 2 (9) is long
    assert r["groups"]["user_short"]["size"] == 2 and r["groups"]["user_short"]["metrics"]["hit@3"] == 0.5
    assert r["groups"]["user_long"]["metrics"]["ndcg@3"] == 0.5
    sizes = [b["size"] for b in r["buckets"]["item_popularity"]]
    assert sum(sizes) == 3
    assert "overall" in format_table(r, [1, 3])
    # a rank beyond max_k counts as a miss
    r2 = group_metrics(acc, groups, ks=[2])
    assert r2["overall"]["hit@2"] == round(1 / 3, 6)
    assert r2["groups"]["item_tail"]["median_rank"] == 4.5  # the whole ranking's, whatever max_k
    small = RankAccumulator(max_k=3)
    small.POSITION_BLOCK = 7  # one row of 7 items per block: the same positions
    small.add(scores, torch.tensor([1, 2, 3]), torch.tensor([0, 1, 2]), torch.tensor([1, 5, 6]))
    np.testing.assert_array_equal(small.positions(), [0, 2, 5])


def test_group_means_match_recbole_overall_on_tiny_run(tiny):
    """Group sizes partition the rows; the size-weighted group means give RecBole's own overall."""
    from recbole_llmemb.pipeline.quick_start import run_recbole_llmemb
    from tests.conftest import tiny_config

    res = run_recbole_llmemb("SASRec", "tiny", config_dict=tiny_config(tiny, epochs=1))
    test = res["test"]
    g = test["groups"]
    assert g["item_head"]["size"] + g["item_tail"]["size"] == test["n_rows"] == 30
    assert g["user_short"]["size"] + g["user_long"]["size"] == 30
    for key, value in test["overall"].items():
        weighted = sum(g[n]["size"] * (g[n]["metrics"][key] or 0) for n in ("item_head", "item_tail")) / 30
        assert abs(weighted - value) < 1e-5
        assert abs(test["recbole"][key] - value) < 1e-4
