"""The text's own next-item signal as a term of a model's scores, trained with the model.

``score(u, i) = backbone(u, i) + w * cos(t_i, q_u)``: ``t_i`` is item ``i``'s text vector (whitened over
the items, unit length), ``q_u`` the mean of the user's last ``text_blend_last`` items' vectors. Ranking
by the cosine alone already beats SASRec on tail items (docs/results.md, "The text alone"); the
re-ranker adds it after training with a fixed weight. Here the term is in the training loss too:
``w = text_score * exp(rho)`` is learned (``rho`` starts at 0), and the rest of the model learns what
the text does not already say.

With ``text_blend_gate: tail`` (the default, as for the re-ranker) ``w`` is scaled per user by the
share of tail items among those last items: ranking by text helps users whose recent items are rare
and costs those whose recent items are popular (measured on Beauty, docs/results.md).
"""
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from recbole_llmemb.model.adapter import normalised_vectors

#: the text vectors' normalisation before the cosine (whitened: every direction of variation counts)
TEXT_NORM = "whiten"


def recent_positions(item_seq, item_seq_len, last):
    """``(B, L)`` mask of each row's last ``last`` items (RecBole's item lists are left-aligned)."""
    pos = torch.arange(item_seq.shape[1], device=item_seq.device).unsqueeze(0)
    length = item_seq_len.unsqueeze(1)
    return (pos < length) & (pos >= length - last)


def text_table(vectors):
    """Item text vectors (row 0 = padding) whitened over the items and scaled to unit length."""
    matrix = torch.as_tensor(np.asarray(vectors, dtype=np.float32))
    text = F.normalize(normalised_vectors(matrix[1:].double(), TEXT_NORM).float(), dim=-1)
    return torch.cat([text.new_zeros(1, text.shape[1]), text])


def tail_share(is_tail, item_seq, item_seq_len, last):
    """``(B,)`` share of tail items (``is_tail``: float per item id) among each row's last ``last`` items."""
    keep = recent_positions(item_seq, item_seq_len, last)
    return (is_tail[item_seq] * keep).sum(1) / keep.sum(1).clamp_min(1)


def text_cosines(table, item_seq, item_seq_len, last, items=None):
    """Cosine of items' text to the mean of each row's last ``last`` items': ``(B, n_items)``, or
    ``(B,)`` / ``(B, k)`` for the given ``items`` of each row."""
    keep = recent_positions(item_seq, item_seq_len, last).unsqueeze(-1)
    query = (table[item_seq] * keep).sum(1) / keep.sum(1).clamp_min(1)
    if items is None:
        return query @ table.T
    rows = table[items]
    return (rows * (query if items.dim() == 1 else query.unsqueeze(1))).sum(-1)


class TextScore(nn.Module):
    """``w * cos(t_i, q_u)`` with a learned ``w`` (see the module doc), times the tail share of the
    user's last items when ``is_tail`` (per item id) is given. The text table and the tail mask are
    rebuilt from the dataset, not kept in checkpoints."""

    def __init__(self, vectors, weight, last, is_tail=None):
        super().__init__()
        self.register_buffer("table", text_table(vectors), persistent=False)
        tail = None if is_tail is None else torch.as_tensor(np.asarray(is_tail), dtype=torch.float32)
        self.register_buffer("is_tail", tail, persistent=False)
        self.start = float(weight)
        self.log_scale = nn.Parameter(torch.zeros(()))
        self.last = int(last)

    @property
    def weight(self):
        return self.start * self.log_scale.exp()

    def forward(self, item_seq, item_seq_len, items=None):
        cosines = text_cosines(self.table, item_seq, item_seq_len, self.last, items)
        if self.is_tail is None:
            return self.weight * cosines
        share = tail_share(self.is_tail, item_seq, item_seq_len, self.last)
        return self.weight * share.view(-1, *[1] * (cosines.dim() - 1)) * cosines
