"""Long-tail groups and per-row ranking metrics.

Items are grouped by their number of training interactions (head = the top ``head_ratio``),
users by the length of their training history (short = at most ``user_short_threshold``), and
both into equal-size buckets for plots. Metrics per group are plain means over evaluation rows:

* user groups average the row metrics (RecBole's own Hit and NDCG for that row);
* item groups average over (row, target item) pairs; with one target per row (leave-one-out,
  the sequential protocol) a pair is a row, and group means partition RecBole's overall mean.
"""
import base64
import math
import zlib
from dataclasses import dataclass

import numpy as np
import torch

from recbole_llmemb.evaluation.diagnostics import list_diagnostics


@dataclass
class LongTailGroups:
    """Which items are head, which users are short, and the buckets, all from training counts."""

    item_count: np.ndarray  # training interactions per internal item id (index 0 = padding)
    user_len: np.ndarray  # training interactions per internal user id
    head_ratio: float
    user_short_threshold: int
    is_head: np.ndarray  # bool per item id
    item_bucket: np.ndarray  # bucket index per item id (-1 = padding)
    item_bucket_labels: list
    user_bucket: np.ndarray
    user_bucket_labels: list
    is_new: np.ndarray = None  # bool per item id: held out of training (``new_items``); neither head nor tail

    @property
    def is_tail(self):
        tail = ~self.is_head
        tail[0] = False
        return tail if self.is_new is None else tail & ~self.is_new

    @property
    def head_min_count(self):
        counts = self.item_count[self.is_head]
        return int(counts.min()) if len(counts) else 0

    def definition(self):
        out = {
            "head_ratio": self.head_ratio,
            "head_min_count": self.head_min_count,
            "n_head_items": int(self.is_head.sum()),
            "n_tail_items": int(self.is_tail.sum()),
            "user_short_threshold": self.user_short_threshold,
        }
        if self.is_new is not None:
            out["n_new_items"] = int(self.is_new.sum())
        return out


def _buckets(values, ids, n_buckets):
    """Split ``ids`` sorted by ``values`` (ascending) into ``n_buckets`` near-equal chunks."""
    bucket = np.full(len(values), -1, dtype=np.int64)
    labels = []
    order = ids[np.argsort(values[ids], kind="stable")]
    for b, chunk in enumerate(np.array_split(order, max(1, min(n_buckets, len(order))))):
        bucket[chunk] = b
        lo, hi = int(values[chunk].min()), int(values[chunk].max())
        labels.append(f"{lo}" if lo == hi else f"{lo}-{hi}")
    return bucket, labels


def build_groups(item_count, user_len, head_ratio=0.2, user_short_threshold=None, popularity_buckets=5, history_buckets=5,
                 is_new=None):
    """Groups from training counts per internal id (index 0 is RecBole's padding id); ``is_new``: the
    items held out of training, a group of their own (head and tail are the other items)."""
    item_count = np.asarray(item_count, dtype=np.int64)
    user_len = np.asarray(user_len, dtype=np.int64)
    items = np.arange(1, len(item_count))
    if is_new is not None and np.any(is_new):
        is_new = np.asarray(is_new, dtype=bool)
        items = items[~is_new[items]]
    else:
        is_new = None
    users = np.arange(1, len(user_len))
    n_head = int(math.ceil(head_ratio * len(items)))
    # most popular first; ties broken by id so the split is deterministic
    ranked = items[np.lexsort((items, -item_count[items]))]
    is_head = np.zeros(len(item_count), dtype=bool)
    is_head[ranked[:n_head]] = True
    if user_short_threshold is None:
        user_short_threshold = int(np.median(user_len[users])) if len(users) else 0
    item_bucket, item_labels = _buckets(item_count, items, popularity_buckets)
    user_bucket, user_labels = _buckets(user_len, users, history_buckets)
    return LongTailGroups(
        item_count, user_len, head_ratio, int(user_short_threshold), is_head,
        item_bucket, item_labels, user_bucket, user_labels, is_new,
    )


def training_counts(full_dataset, eval_datasets, is_new=None):
    """Training interactions per item and per user: all interactions less the evaluation targets (and
    less the interactions with ``is_new`` items, which training never sees).

    Works for any RecBole split: the evaluation splits' rows are exactly the held-out interactions.
    A sequential dataset holds one row per prediction target (its data augmentation runs when the
    dataset is built), so each user's first interaction lives only in the item list of the row whose
    list has length 1: it is counted from there.
    """
    iid, uid = full_dataset.iid_field, full_dataset.uid_field
    feat = full_dataset.inter_feat
    item_count = np.bincount(feat[iid].numpy(), minlength=full_dataset.item_num)
    user_len = np.bincount(feat[uid].numpy(), minlength=full_dataset.user_num)
    list_field = getattr(full_dataset, f"{iid}_list_field", None)
    length_field = getattr(full_dataset, "item_list_length_field", None)
    if list_field in feat and length_field in feat:
        first = feat[length_field].numpy() == 1
        item_count += np.bincount(feat[list_field].numpy()[first, 0], minlength=full_dataset.item_num)
        user_len += np.bincount(feat[uid].numpy()[first], minlength=full_dataset.user_num)
    for ds in eval_datasets:
        item_count -= np.bincount(ds.inter_feat[iid].numpy(), minlength=full_dataset.item_num)
        user_len -= np.bincount(ds.inter_feat[uid].numpy(), minlength=full_dataset.user_num)
    if is_new is not None and np.any(is_new):
        new_count = _counts_of(full_dataset, np.asarray(is_new, dtype=bool))
        for ds in eval_datasets:
            new_count -= _counts_of(ds, np.asarray(is_new, dtype=bool), first_items=False)
        user_len -= new_count
        item_count = np.where(is_new, 0, item_count)
    return item_count, user_len


def _counts_of(dataset, items, first_items=True):
    """Interactions per user with the ``items`` (a bool mask) among the dataset's targets (and, for a
    sequential dataset, each user's first item)."""
    feat, iid, uid = dataset.inter_feat, dataset.iid_field, dataset.uid_field
    users, targets = feat[uid].numpy(), feat[iid].numpy()
    count = np.bincount(users, weights=items[targets], minlength=dataset.user_num)
    list_field, length_field = getattr(dataset, f"{iid}_list_field", None), getattr(dataset, "item_list_length_field", None)
    if first_items and list_field in feat and length_field in feat:
        first = feat[length_field].numpy() == 1
        count += np.bincount(users[first], weights=items[feat[list_field].numpy()[first, 0]], minlength=dataset.user_num)
    return count.astype(np.int64)


class RankAccumulator:
    """Collects, batch by batch, each row's user, each target's rank in the top-k list (and its
    position in the whole ranking: how many items score above it) and each row's top-``list_k`` items."""

    #: score entries compared at once when counting the items above each target (bounds the memory)
    POSITION_BLOCK = 1 << 24

    def __init__(self, max_k, list_k=10):
        self.max_k = max_k
        self.list_k = min(list_k, max_k)  # the list length of the collapse diagnostics
        self.reset()

    def reset(self):
        self._users, self._pos_len, self._pair_row, self._pair_item, self._pair_rank, self._top = [], [], [], [], [], []
        self._pair_position = []
        self._n_rows, self._n_items = 0, 0

    def add(self, scores, row_users, positive_u, positive_i):
        """``scores``: (rows, items) as RecBole's collector sees them; one entry per target pair."""
        k = min(self.max_k, scores.shape[1])
        # top-k on the scores' device (GPU); RecBole hands the positives over on the CPU
        topk = torch.topk(scores, k, dim=-1).indices.cpu()
        self._n_items = scores.shape[1]
        positive_u, positive_i = positive_u.cpu(), positive_i.cpu()
        match = topk[positive_u] == positive_i.unsqueeze(1)
        rank = torch.where(match.any(1), match.float().argmax(1), torch.full_like(positive_u, self.max_k))
        rows = scores.shape[0]
        self._users.append(row_users.cpu())
        self._pos_len.append(torch.bincount(positive_u.cpu(), minlength=rows))
        self._pair_row.append(positive_u.cpu() + self._n_rows)
        self._pair_item.append(positive_i.cpu())
        self._pair_rank.append(rank.cpu())
        self._top.append(topk[:, : self.list_k])
        self._pair_position.append(self._positions(scores, positive_u, positive_i))
        self._n_rows += rows

    def _positions(self, scores, positive_u, positive_i):
        """How many items score strictly above each target (0: first), in blocks of rows."""
        u, i = positive_u.to(scores.device), positive_i.to(scores.device)
        target = scores[u, i]
        step = max(1, self.POSITION_BLOCK // max(scores.shape[1], 1))
        return torch.cat([(scores[u[j:j + step]] > target[j:j + step, None]).sum(1).cpu()
                          for j in range(0, len(u), step)]) if len(u) else torch.zeros(0, dtype=torch.long)

    def positions(self):
        """Each target pair's position in its row's whole ranking (aligned with ``arrays()``'s pairs)."""
        return torch.cat(self._pair_position).numpy() if self._pair_position else np.zeros(0, dtype=np.int64)

    @property
    def listed(self):
        """How often each item appeared in a top-``list_k`` list (``None`` before any row)."""
        if not self._top:
            return None
        return torch.bincount(torch.cat(self._top).reshape(-1), minlength=self._n_items).numpy()

    def arrays(self):
        cat = lambda xs: torch.cat(xs).numpy() if xs else np.zeros(0, dtype=np.int64)  # noqa: E731
        return cat(self._users), cat(self._pos_len), cat(self._pair_row), cat(self._pair_item), cat(self._pair_rank)

    def gather(self, n_rows):
        """Every rank's rows on every rank, in the order one process would have seen them, each row
        once. A distributed sampler deals the ``n_rows`` evaluation rows round-robin (rank r holds rows
        r, r + world, ...) and pads the last ranks with repeats of the first rows: those are dropped."""
        from recbole_llmemb import distributed

        if not distributed.is_distributed():
            return
        top = torch.cat(self._top).numpy() if self._top else np.zeros((0, self.list_k), dtype=np.int64)
        parts = distributed.all_gather_objects((self.arrays(), top, self._n_items, self.positions()))
        world = len(parts)
        position, pieces = [], []
        for r, ((users, pos_len, pair_row, pair_item, pair_rank), top, n_items, pair_position) in enumerate(parts):
            position.append(r + world * np.arange(len(users)))
            pieces.append((users, pos_len, pair_row, pair_item, pair_rank, top, pair_position))
        offsets = np.cumsum([0] + [len(p[0]) for p in pieces])
        position = np.concatenate(position)
        order = np.argsort(position, kind="stable")
        order = order[position[order] < n_rows]  # the sampler's padding out
        new_row = np.full(len(position), -1, dtype=np.int64)
        new_row[order] = np.arange(len(order))
        cat = lambda i: np.concatenate([p[i] for p in pieces])  # noqa: E731
        pair_row = np.concatenate([p[2] + offsets[r] for r, p in enumerate(pieces)])
        pair_row = new_row[pair_row]
        pair_order = np.lexsort((np.arange(len(pair_row)), pair_row))
        pair_order = pair_order[pair_row[pair_order] >= 0]
        self.reset()
        self._n_items = max(p[2] for p in parts)
        t = torch.as_tensor
        self._users, self._pos_len, self._top = [t(cat(0)[order])], [t(cat(1)[order])], [t(cat(5)[order])]
        self._pair_row, self._pair_item, self._pair_rank = ([t(pair_row[pair_order])], [t(cat(3)[pair_order])],
                                                           [t(cat(4)[pair_order])])
        self._pair_position = [t(cat(6)[pair_order])]
        self._n_rows = len(order)


def _row_and_pair_metrics(pos_len, pair_row, pair_rank, ks):
    """Hit and NDCG per row (RecBole's definitions) and per target pair, for every k."""
    rows, pairs = {}, {}
    for k in ks:
        hit = pair_rank < k
        gain = np.where(hit, 1.0 / np.log2(pair_rank + 2.0), 0.0)
        ideal = np.cumsum(1.0 / np.log2(np.arange(k) + 2.0))
        idcg = ideal[np.clip(np.minimum(pos_len, k), 1, k) - 1]
        row_hits = np.bincount(pair_row, weights=hit, minlength=len(pos_len))
        row_dcg = np.bincount(pair_row, weights=gain, minlength=len(pos_len))
        rows[f"hit@{k}"] = (row_hits > 0).astype(float)
        rows[f"ndcg@{k}"] = row_dcg / idcg
        pairs[f"hit@{k}"] = hit.astype(float)
        pairs[f"ndcg@{k}"] = gain
    return rows, pairs


def _mean(values, mask):
    return {key: round(float(v[mask].mean()), 6) if mask.any() else None for key, v in values.items()}


def _item_group(pairs, mask, position):
    """An item group's size, metrics and its targets' median rank in the whole ranking (1: first):
    where they sit when they miss the top k."""
    return {"size": int(mask.sum()), "metrics": _mean(pairs, mask),
            "median_rank": float(np.median(position[mask]) + 1) if mask.any() and len(position) else None}


def per_user_record(users, short, pos_len, pair_item, pair_rank, pair_tail, rank_cap):
    """Compact per-row ranks (zlib-compressed int32, base64): enough to recompute every metric at
    every k <= ``rank_cap`` for any subset of users or targets (a rank of ``rank_cap`` = not listed)."""
    return {"encoding": "int32 zlib base64", "rank_cap": int(rank_cap),
            **{name: encode_ints(v) for name, v in
               (("user", users), ("short", short), ("n_targets", pos_len), ("item", pair_item), ("rank", pair_rank),
                ("tail", pair_tail))}}


def encode_ints(values):
    return base64.b64encode(zlib.compress(np.asarray(values, dtype="<i4").tobytes(), 9)).decode("ascii")


def decode_ints(text):
    return np.frombuffer(zlib.decompress(base64.b64decode(text)), dtype="<i4").astype(np.int64)


def group_metrics(accumulator, groups, ks):
    """Metrics overall, per long-tail group and per bucket, with group sizes (rows or pairs)."""
    users, pos_len, pair_row, pair_item, pair_rank = accumulator.arrays()
    position = accumulator.positions()
    rows, pairs = _row_and_pair_metrics(pos_len, pair_row, pair_rank, ks)
    has_target = pos_len > 0
    head, tail = groups.is_head[pair_item], groups.is_tail[pair_item]
    short = groups.user_len[users] <= groups.user_short_threshold
    result = {
        "overall": _mean(rows, has_target),
        "n_rows": int(has_target.sum()),
        "groups": {
            "item_head": _item_group(pairs, head, position),
            "item_tail": _item_group(pairs, tail, position),
            "user_short": {"size": int((short & has_target).sum()), "metrics": _mean(rows, short & has_target)},
            "user_long": {"size": int((~short & has_target).sum()), "metrics": _mean(rows, ~short & has_target)},
        },
        "buckets": {"item_popularity": [], "user_history": []},
        "definition": groups.definition(),
        "diagnostics": {},
        # each row's user and each target's rank: two runs on one split compare user by user
        "per_user": per_user_record(users, short, pos_len, pair_item, pair_rank, tail, accumulator.max_k),
    }
    if groups.is_new is not None:
        new = groups.is_new[pair_item]
        result["groups"]["item_new"] = _item_group(pairs, new, position)
        result["per_user"]["new"] = encode_ints(new)
    listed = accumulator.listed
    if listed is not None:
        result["diagnostics"] = list_diagnostics(listed, groups.item_count, groups.is_head, accumulator.list_k)
    item_b = groups.item_bucket[pair_item]
    for b, label in enumerate(groups.item_bucket_labels):
        mask = item_b == b
        result["buckets"]["item_popularity"].append({"label": label, "size": int(mask.sum()), "metrics": _mean(pairs, mask)})
    user_b = groups.user_bucket[users]
    for b, label in enumerate(groups.user_bucket_labels):
        mask = (user_b == b) & has_target
        result["buckets"]["user_history"].append({"label": label, "size": int(mask.sum()), "metrics": _mean(rows, mask)})
    return result


def format_table(result, ks):
    """A readable table: one line per group, Hit and NDCG at each k, with sizes."""
    keys = [f"{m}@{k}" for k in ks for m in ("hit", "ndcg")]
    header = f"{'group':<22}{'size':>8}" + "".join(f"{key:>11}" for key in keys)
    lines = [header, "-" * len(header)]

    def line(name, size, metrics):
        cells = "".join(f"{metrics[key]:>11.4f}" if metrics.get(key) is not None else f"{'-':>11}" for key in keys)
        lines.append(f"{name:<22}{size:>8}{cells}")

    line("overall", result["n_rows"], result["overall"])
    for name, g in result["groups"].items():
        line(name, g["size"], g["metrics"])
    for kind, buckets in result["buckets"].items():
        for b in buckets:
            line(f"{kind[:4]} {b['label']}", b["size"], b["metrics"])
    diag = result.get("diagnostics") or {}
    if diag:
        lines.append("collapse diagnostics: " + ", ".join(f"{k} {v}" for k, v in diag.items()))
    d = result["definition"]
    lines.append(
        f"head = top {d['head_ratio']:.0%} of items ({d['n_head_items']} items, >= {d['head_min_count']} training "
        f"interactions); short users = <= {d['user_short_threshold']} training interactions"
    )
    return "\n".join(lines)
