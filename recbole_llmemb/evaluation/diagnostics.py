"""Collapse diagnostics: is the item table spread out, and do the top-10 lists reach the catalogue?

A model whose item vectors collapse onto a few directions still ranks the head well but turns
rare items into near-copies of popular ones, which then lose every tie. These figures show that
without a notebook, for any model with an item table (plugin and RecBole models alike):

* ``effective_rank``: ``exp`` of the entropy of the normalised singular values of the item table
  (Roy and Vetterli, 2007): ``k`` for ``k`` equally strong orthogonal directions, 1 for a rank-1 table;
* ``near_duplicate_share``: the share of items that have another item at cosine above 0.95, after
  the table's mean row is removed (a shared offset says nothing about how items differ);
* ``top5_energy``: the share of the squared singular values held by the five largest;
* from the evaluation's top-10 lists: ``coverage@10`` (share of the catalogue that appears in at
  least one list), ``mean_popularity@10`` (mean training count of the listed items) and
  ``tail_share@10`` (share of list slots that hold a tail item).
"""
import numpy as np
import torch

NEAR_DUPLICATE_COSINE = 0.95


def item_table(model):
    """The model's item vectors, one row per real item (padding and special rows dropped), or ``None``."""
    emb = getattr(model, "item_embedding", None)
    weight = getattr(emb, "weight", None)
    n_items = getattr(model, "n_items", None)
    if not isinstance(weight, torch.Tensor) or weight.dim() != 2 or n_items is None:
        return None
    with torch.no_grad():
        return weight.detach()[1:n_items].float().cpu()


def effective_rank(table, singular_values=None):
    """``exp(H(s / sum(s)))`` over the singular values ``s`` of ``table``."""
    s = torch.linalg.svdvals(torch.as_tensor(table).double()) if singular_values is None else singular_values
    if s.sum() <= 0:
        return 0.0
    p = s / s.sum()
    p = p[p > 0]
    return float(torch.exp(-(p * p.log()).sum()))


def top_energy(singular_values, k=5):
    s2 = singular_values ** 2
    return float(s2[:k].sum() / s2.sum()) if s2.sum() > 0 else 0.0


def near_duplicate_share(table, threshold=NEAR_DUPLICATE_COSINE, block=2048):
    """Share of rows with another row at cosine > ``threshold`` after centring (blocked: no n x n matrix)."""
    x = torch.as_tensor(table).float()
    n = x.shape[0]
    if n < 2:
        return 0.0
    x = x - x.mean(0, keepdim=True)
    x = torch.nn.functional.normalize(x, dim=-1)
    has_twin = torch.zeros(n, dtype=torch.bool)
    for start in range(0, n, block):
        sim = x[start:start + block] @ x.T
        rows = torch.arange(sim.shape[0])
        sim[rows, rows + start] = -2.0  # not its own twin
        has_twin[start:start + block] = sim.max(1).values > threshold
    return float(has_twin.float().mean())


def table_diagnostics(model):
    """The item table's figures (empty dict for a model without an item table)."""
    table = item_table(model)
    if table is None or table.shape[0] < 2:
        return {}
    s = torch.linalg.svdvals(table.double())  # once, for both figures
    return {
        "effective_rank": round(effective_rank(table, s), 3),
        "near_duplicate_share": round(near_duplicate_share(table), 4),
        "top5_energy": round(top_energy(s), 4),
    }


def list_diagnostics(recommended, item_count, is_head, k):
    """Figures of the top-``k`` lists from ``recommended[i]`` = how often item ``i`` was listed."""
    recommended = np.asarray(recommended, dtype=np.float64)
    n = min(len(recommended), len(item_count))
    recommended, item_count, is_head = recommended[1:n], np.asarray(item_count[1:n]), np.asarray(is_head[1:n])
    slots = recommended.sum()
    if slots == 0:
        return {}
    return {
        f"coverage@{k}": round(float((recommended > 0).mean()), 4),
        f"mean_popularity@{k}": round(float((recommended * item_count).sum() / slots), 2),
        f"tail_share@{k}": round(float(recommended[~is_head].sum() / slots), 4),
    }
