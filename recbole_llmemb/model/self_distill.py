"""Retrieval-augmented self-distillation (LLM-ESR, Liu et al., NeurIPS 2024), beside RAT.

A user with a short history tells a sequential model little. LLM-ESR retrieves, for every user, the
users whose histories read most alike in the language model's space, and pulls the user's
representation (the encoder's output that scores the next item) towards the mean representation of
those users, as the same model computes it with no gradient: ``loss += self_distill * MSE(h_u,
mean_{v in N(u)} h_v)`` (the official code's ``kd`` form, weight 0.1, 10 users).

Here a user's text vector is the mean of their training items' text vectors (``text_blend_vectors``,
whitened, unit length, as the text term reads them) and ``N(u)`` their ``self_distill_users`` nearest
users by cosine, themselves excluded; the official code embeds a prompt of the user's history with
the LLM instead. Every user's history is their training part only (the training split's longest
prefix plus its target), so no validation or test interaction enters. The teachers' representations
are computed once an epoch (``refresh``, called by the trainer as an epoch starts) rather than per
batch: one encoder pass over the users instead of ``self_distill_users`` extra passes per batch row.
"""
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from recbole_llmemb.model.text_score import text_table

#: users encoded at a time when the teachers are refreshed, and scored at a time when neighbours are found
BLOCK = 4096


def training_histories(dataset, user_field, seq_field, len_field, item_field, max_len):
    """``(n_users, max_len)`` item ids of each user's training history (RecBole's left-aligned item lists,
    the most recent ``max_len`` kept) and ``(n_users,)`` lengths, from the training split's augmented rows:
    each user's longest prefix with its target appended. Users without a training row get length 0."""
    inter = dataset.inter_feat
    users = inter[user_field].numpy()
    lengths = inter[len_field].numpy()
    order = np.lexsort((lengths, users))  # by user, then by prefix length: each user's last row is the longest
    last = order[np.r_[users[order][1:] != users[order][:-1], True]]
    seqs, targets = inter[seq_field].numpy()[last], inter[item_field].numpy()[last]
    n_users = int(dataset.user_num)
    histories = np.zeros((n_users, max_len), dtype=np.int64)
    out_len = np.zeros(n_users, dtype=np.int64)
    for row, user in enumerate(users[last]):
        full = np.append(seqs[row, :lengths[last[row]]], targets[row])[-max_len:]
        histories[user, :len(full)] = full
        out_len[user] = len(full)
    return torch.as_tensor(histories), torch.as_tensor(out_len)


def text_neighbours(histories, lengths, text_vectors, k):
    """``(n_users, k)`` each user's ``k`` nearest users by the cosine of their mean item text vectors
    (see the module doc), themselves and users without history excluded; rows of users without
    history point at themselves (never read)."""
    table = text_table(text_vectors)
    mask = (torch.arange(histories.shape[1]).unsqueeze(0) < lengths.unsqueeze(1)).unsqueeze(-1)
    users = torch.cat([F.normalize((table[histories[s:s + BLOCK]] * mask[s:s + BLOCK]).sum(1), dim=-1)
                       for s in range(0, len(histories), BLOCK)])
    has = lengths > 0
    k = min(int(k), int(has.sum()) - 1)
    if k < 1:
        raise ValueError("self-distillation needs at least two users with a training history")
    out = torch.arange(len(users)).unsqueeze(1).repeat(1, k)
    for start in range(0, len(users), BLOCK):
        sims = users[start:start + BLOCK] @ users.T
        sims[:, ~has] = -np.inf
        rows = torch.arange(start, min(start + BLOCK, len(users)))
        sims[rows - start, rows] = -np.inf
        top = sims.topk(k, dim=1).indices
        keep = has[rows]
        out[rows[keep]] = top[keep]
    return out


class UserSelfDistillation(nn.Module):
    """``loss(users, seq_output)``: the MSE between each row's representation and the mean of its user's
    neighbours' teacher representations (from the last :meth:`refresh`). Histories, neighbours and
    teachers are rebuilt from the dataset and the model, not kept in checkpoints."""

    def __init__(self, histories, lengths, neighbours):
        super().__init__()
        self.register_buffer("histories", histories, persistent=False)
        self.register_buffer("lengths", lengths, persistent=False)
        self.register_buffer("neighbours", neighbours, persistent=False)
        self.teachers = None

    @torch.no_grad()
    def refresh(self, encode):
        """Every user with a history through ``encode(item_seq, item_seq_len) -> (B, d)`` (the model in
        evaluation mode: no dropout in the teachers)."""
        has = torch.nonzero(self.lengths > 0).squeeze(1)
        first = encode(self.histories[has[:1]], self.lengths[has[:1]])
        teachers = first.new_zeros(len(self.lengths), first.shape[1])
        for start in range(0, len(has), BLOCK):
            rows = has[start:start + BLOCK]
            teachers[rows] = encode(self.histories[rows], self.lengths[rows])
        self.teachers = teachers

    def forward(self, users, seq_output):
        target = self.teachers[self.neighbours[users]].mean(1)
        return F.mse_loss(seq_output, target)
