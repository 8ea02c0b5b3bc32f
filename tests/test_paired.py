"""Per-user records in the results file and the paired bootstrap ratio built on them."""
import math

import numpy as np
import pytest
import torch

from recbole_llmemb.evaluation.longtail import RankAccumulator, build_groups, group_metrics
from recbole_llmemb.evaluation.paired import compare_blocks, paired_ratio, per_user_values


def _block(target_scores):
    """Three users, one target each (items 1, 5, 6), item 1 head; ``target_scores`` set each target's score."""
    groups = build_groups(np.array([0, 50, 40, 3, 2, 1, 1]), np.array([0, 2, 9, 4]), head_ratio=0.2,
                          user_short_threshold=4)
    scores = torch.tensor([[-np.inf, 9.0, 1.0, 2.0, 3.0, 4.0, 5.0],
                           [-np.inf, 1.0, 2.0, 9.0, 8.0, 7.0, 0.0],
                           [-np.inf, 6.0, 5.0, 4.0, 3.5, 2.0, 1.0]])
    targets = torch.tensor([1, 5, 6])
    scores[torch.arange(3), targets] = torch.tensor(target_scores)
    acc = RankAccumulator(max_k=3)
    acc.add(scores, torch.tensor([1, 2, 3]), torch.tensor([0, 1, 2]), targets)
    return group_metrics(acc, groups, ks=[1, 3])


def test_per_user_values_reproduce_the_overall_and_tail_figures():
    block = _block([9.0, 7.0, 1.0])  # ranks 0, 2, missed
    values = per_user_values(block, "ndcg@3")
    assert values["overall"] == pytest.approx({1: 1.0, 2: 1 / math.log2(4), 3: 0.0})
    assert values["item_tail"] == pytest.approx({(2, 5): 0.5, (3, 6): 0.0})
    assert values["user_short"] == pytest.approx({1: 1.0, 3: 0.0})  # 2 and 4 training interactions; user 2 has 9
    for group in ("overall", "item_head", "item_tail", "user_short", "user_long"):
        table = block["overall"] if group == "overall" else block["groups"][group]["metrics"]
        assert np.mean(list(values[group].values())) == pytest.approx(table["ndcg@3"], abs=1e-6), group
    assert per_user_values(block, "hit@1")["overall"] == {1: 1.0, 2: 0.0, 3: 0.0}
    with pytest.raises(ValueError, match="kept to 3"):
        per_user_values(block, "ndcg@10")


def test_a_run_against_itself_is_one_with_interval_one_to_one():
    block = _block([9.0, 7.0, 1.0])
    cmp = compare_blocks(block, block, "ndcg@3")
    assert (cmp["overall"]["ratio"], cmp["overall"]["low"], cmp["overall"]["high"]) == (1.0, 1.0, 1.0)
    assert cmp["item_tail"]["n"] == 2


def test_paired_interval_holds_the_ratio_and_narrows_with_pairing():
    rng = np.random.default_rng(0)
    base = rng.random(2000)
    better = base * 1.1 + rng.normal(0, 0.01, 2000)  # the same users, 10% better, little own noise
    ratio, low, high = paired_ratio(better, base)
    assert low < ratio < high and low > 1.05 and high < 1.15
    # shuffled partners (an unpaired comparison) give a far wider interval around the same ratio
    _, low_u, high_u = paired_ratio(better, rng.permutation(base))
    assert high_u - low_u > 3 * (high - low)


def test_different_runs_give_a_ratio_of_their_means():
    a, b = _block([9.0, 7.0, 1.0]), _block([9.0, 9.5, 1.0])  # user 2's target moves from rank 2 to rank 0
    cmp = compare_blocks(a, b, "ndcg@3")
    assert cmp["overall"]["ratio"] == pytest.approx((1 + 0.5) / (1 + 1))
    assert cmp["item_tail"]["ratio"] == pytest.approx(0.5 / 1.0)


def test_only_the_groups_asked_for_are_compared_and_they_match_the_full_comparison():
    a, b = _block([9.0, 7.0, 1.0]), _block([9.0, 9.5, 1.0])
    some = compare_blocks(a, b, "ndcg@3", groups=("overall", "item_tail"))
    assert set(some) == {"overall", "item_tail"}
    every = compare_blocks(a, b, "ndcg@3")
    assert some == {g: every[g] for g in some}
