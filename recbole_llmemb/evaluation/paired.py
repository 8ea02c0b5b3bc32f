"""Two runs on the same split compared user by user: a metric's ratio with its 95% paired bootstrap
interval over the evaluated users.

Every evaluation block of a results file keeps ``per_user`` (see ``longtail.per_user_record``):
each row's user, whether the user is short, its targets, their ranks and whether each is a tail
item. From it any Hit/NDCG@k is recomputed per user for every long-tail group, and two runs are
matched on the users (and targets) they share. The interval resamples users, the same users for
both runs, so the noise the two runs share cancels.
"""
import numpy as np

from recbole_llmemb.evaluation.longtail import decode_ints

#: bootstrap resamples; 2,000 keep the interval's ends steady to about 0.005 on a ratio near 1
N_RESAMPLES = 2000
GROUPS = ("overall", "item_head", "item_tail", "item_new", "user_short", "user_long")


def per_user_values(block, metric):
    """``{group: {key: value}}`` of ``metric`` (``ndcg@10``, ``hit@20``, ...): per row (key: the user) for
    ``overall`` and the user groups, RecBole's row metric (NDCG over the ideal DCG); per target (key:
    ``(user, item)``) for the item groups, as the long-tail tables count them."""
    record = block["per_user"]
    users, n_targets = decode_ints(record["user"]), decode_ints(record["n_targets"])
    # (records of 2026-12-01's first runs lack the short-user flags: their user groups stay empty)
    short = decode_ints(record["short"]) if "short" in record else None
    items, ranks, tail = (decode_ints(record[k]) for k in ("item", "rank", "tail"))
    new = decode_ints(record["new"]) if "new" in record else np.zeros_like(tail)
    name, k = metric.lower().split("@")
    k = int(k)
    if k > record["rank_cap"]:
        raise ValueError(f"{metric}: ranks were kept to {record['rank_cap']} only")
    hit = ranks < k
    pair_value = hit.astype(float) if name == "hit" else np.where(hit, 1.0 / np.log2(ranks + 2.0), 0.0)
    pair_row = np.repeat(np.arange(len(users)), n_targets)
    row_sum = np.bincount(pair_row, weights=pair_value, minlength=len(users))
    if name == "hit":
        row_value = (row_sum > 0).astype(float)
    else:
        ideal = np.cumsum(1.0 / np.log2(np.arange(k) + 2.0))
        row_value = row_sum / ideal[np.clip(np.minimum(n_targets, k), 1, k) - 1]
    out = {g: {} for g in GROUPS}
    for j, (u, v, n) in enumerate(zip(users.tolist(), row_value.tolist(), n_targets.tolist())):
        if n > 0:
            out["overall"][u] = v
            if short is not None:
                out["user_short" if short[j] else "user_long"][u] = v
    for u, i, v, t, n in zip(users[pair_row].tolist(), items.tolist(), pair_value.tolist(), tail.tolist(), new.tolist()):
        out["item_new" if n else "item_tail" if t else "item_head"][(u, i)] = v
    return out


def paired_ratio(a, b, seed=0):
    """``mean(a) / mean(b)`` with its 95% paired bootstrap interval (percentile); ``a[j]``, ``b[j]`` are
    the same user's values. Returns ``(ratio, low, high)``, all ``None`` when ``b`` sums to 0."""
    from scipy.stats import bootstrap

    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if not len(a) or b.sum() == 0:
        return (None, None, None)
    ratio = a.mean() / b.mean()
    if np.array_equal(a, b):  # a run against itself: every resample gives exactly 1
        return (1.0, 1.0, 1.0)
    if len(a) < 2:  # one user: no spread to resample
        return (float(ratio), None, None)

    def statistic(x, y, axis=-1):
        return x.mean(axis=axis) / np.maximum(y.mean(axis=axis), 1e-300)

    with np.errstate(over="ignore", invalid="ignore"):  # a small group can resample a zero baseline: an unbounded end
        result = bootstrap((a, b), statistic, paired=True, vectorized=True, n_resamples=N_RESAMPLES,
                           confidence_level=0.95, method="percentile", batch=200,
                           random_state=np.random.default_rng(seed))
    return (float(ratio), float(result.confidence_interval.low), float(result.confidence_interval.high))


def compare_blocks(block, base, metric="ndcg@10", groups=GROUPS):
    """``{group: entry}`` of ``block`` against ``base`` (evaluation blocks of two results files on one
    split), each entry the two means, the ratio, its interval and the number of users (targets) both
    runs evaluated; ``None`` when either block has no per-user record. ``groups``: the ones to compare
    (each interval is a bootstrap: ask only for those you show)."""
    if "per_user" not in block or "per_user" not in base:
        return None
    mine, theirs = per_user_values(block, metric), per_user_values(base, metric)
    out = {}
    for group in groups:
        keys = sorted(set(mine[group]) & set(theirs[group]))
        a, b = [mine[group][k] for k in keys], [theirs[group][k] for k in keys]
        ratio, low, high = paired_ratio(a, b)
        out[group] = {"value": float(np.mean(a)) if a else None, "base": float(np.mean(b)) if b else None,
                      "ratio": ratio, "low": low, "high": high, "n": len(a)}
    return out


def format_ratio(entry):
    """``1.06x [1.01, 1.11]``, or ``-`` when there is no ratio."""
    if entry is None or entry.get("ratio") is None:
        return "-"
    if entry.get("low") is None:
        return f"{entry['ratio']:.2f}x"
    return f"{entry['ratio']:.2f}x [{entry['low']:.2f}, {entry['high']:.2f}]"
