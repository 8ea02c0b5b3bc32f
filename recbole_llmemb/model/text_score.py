"""The text's own next-item signal as a term of a model's scores, trained with the model.

``score(u, i) = backbone(u, i) + w * cos(t_i, q_u)``: ``t_i`` is item ``i``'s text vector (whitened over
the items, unit length), ``q_u`` the mean of the user's last ``text_blend_last`` items' vectors. Ranking
by the cosine alone already beats SASRec on tail items (docs/results.md, "The text alone"); the
re-ranker adds it after training with a fixed weight. Here the term is in the training loss too:
``w = text_score * exp(rho)`` is learned (``rho`` starts at 0; ``text_score_trainable: False`` keeps
it at the start), and the rest of the model learns what the text does not already say.

``text_blend_gate`` (shared with the re-ranker) says where the term applies: ``tail`` (the default)
scales ``w`` per user by the share of tail items among those last items (ranking by text helps users
whose recent items are rare and costs those whose recent items are popular: measured on Beauty,
docs/results.md); ``tail_items`` adds it to tail items only (head items keep the model's score);
``none`` everywhere alike.
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


def gate_factor(is_tail, gate, item_seq, item_seq_len, last, items=None):
    """The text term's multiplier under ``gate`` (see the module doc), broadcastable to the cosines of
    :func:`text_cosines` with the same ``items``; ``None`` for ``none``."""
    if gate == "tail":
        share = tail_share(is_tail, item_seq, item_seq_len, last)
        return share if items is not None and items.dim() == 1 else share.unsqueeze(1)
    if gate == "tail_items":
        return is_tail.unsqueeze(0) if items is None else is_tail[items]
    return None


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
    """``w * cos(t_i, q_u)`` with a learned ``w``, gated by ``gate`` with ``is_tail`` (per item id; see
    the module doc). The text table and the tail mask are rebuilt from the dataset, not kept in checkpoints."""

    def __init__(self, vectors, weight, last, is_tail=None, gate="none", trainable=True):
        super().__init__()
        if gate != "none" and is_tail is None:
            raise ValueError(f"gate {gate!r} needs the tail items")
        self.gate = gate
        self.register_buffer("table", text_table(vectors), persistent=False)
        tail = None if is_tail is None else torch.as_tensor(np.asarray(is_tail), dtype=torch.float32)
        self.register_buffer("is_tail", tail, persistent=False)
        self.start = float(weight)
        self.log_scale = nn.Parameter(torch.zeros(()), requires_grad=bool(trainable))
        self.last = int(last)

    @property
    def weight(self):
        return self.start * self.log_scale.exp()

    def forward(self, item_seq, item_seq_len, items=None):
        cosines = text_cosines(self.table, item_seq, item_seq_len, self.last, items)
        factor = gate_factor(self.is_tail, self.gate, item_seq, item_seq_len, self.last, items)
        return self.weight * (cosines if factor is None else factor * cosines)


def input_items(item_seq, n_items):
    """``(B, n_items)`` mask of each row's input items, padding (id 0) included."""
    seen = torch.zeros((len(item_seq), n_items), dtype=torch.bool, device=item_seq.device)
    seen.scatter_(1, item_seq.clamp(max=n_items - 1), True)
    seen[:, 0] = True
    return seen


class TextMixture(nn.Module):
    """The text as a second next-item distribution beside the model's, mixed rather than added:
    ``p(i) = (1 - share) softmax(scores)_i + share softmax(cos(t_i, q_u) / tau)_i``, the user's input items
    left out of the text's part (each is the query's own neighbour). A sum of scores multiplies the two
    distributions, so an item needs both to rank it; in a mixture the text's confident picks rank by
    themselves, and the model has nothing to gain from undoing the text on the targets it misses.
    ``share`` and ``tau`` are fixed settings (a weight the training loss sets falls below what
    validation wants: docs/results.md).

    ``over`` says which items the model's softmax covers: ``all`` (every item), or ``new`` (those outside
    the input, as the text's part): the two parts are then distributions over the same items, and a
    model that puts much of its mass on the user's own items (a BPR model does) keeps its say on the
    rest. Under ``new`` the input items rank last (-1e9, finite for the gradient); in training a target
    that repeats an input item stays in the model's part (its loss would be infinite).

    ``new_share`` with ``is_new`` (a bool per item id) gives the items that training never saw
    (``new_items``) a share of their own: the model's part knows them least, so the text's share that
    suits them is larger than the one that suits the rest. (Per item, the mixture ranks; it no longer
    sums to one.)

    ``tail_share`` with ``is_tail`` (a bool per item id) gives each user a share of their own: ``share`` for
    a user none of whose last ``last`` items is a tail item, ``tail_share`` for one whose last items all
    are, and in between by the tail items' share of them (the text is worth most to users whose recent
    items the ids know least: docs/results.md, "A share per user")."""

    def __init__(self, vectors, share, tau, last, over="all", new_share=None, is_new=None, tail_share=None, is_tail=None):
        super().__init__()
        shares = [s for s in (share, new_share, tail_share) if s is not None]
        if not all(0 < s < 1 for s in shares) or tau <= 0 or over not in ("all", "new"):
            raise ValueError(f"every share must be in (0, 1), tau > 0 and over all or new, got {shares}, {tau}, {over!r}")
        if (new_share is None) != (is_new is None) or (tail_share is None) != (is_tail is None):
            raise ValueError("new_share and is_new come together, and so do tail_share and is_tail")
        self.register_buffer("table", text_table(vectors), persistent=False)
        is_new = None if new_share is None else torch.as_tensor(np.asarray(is_new, dtype=bool))
        self.register_buffer("is_new", is_new, persistent=False)
        is_tail = None if tail_share is None else torch.as_tensor(np.asarray(is_tail, dtype=bool), dtype=torch.float32)
        self.register_buffer("is_tail", is_tail, persistent=False)
        self.share, self.tau, self.last, self.over = float(share), float(tau), int(last), over
        self.new_share = None if new_share is None else float(new_share)
        self.tail_share = None if tail_share is None else float(tail_share)

    def shares(self, item_seq, item_seq_len, n):
        """The text's share: a number, ``(B, 1)`` per user with ``tail_share``, ``(B or 1, n)`` per item with
        ``new_share`` (new items keep theirs whatever the user)."""
        s = self.share
        if self.tail_share is not None:
            frac = tail_share(self.is_tail, item_seq, item_seq_len, self.last).double().unsqueeze(1)
            s = self.share + (self.tail_share - self.share) * frac
        if self.new_share is not None:
            s = torch.where(self.is_new[:n].unsqueeze(0), self.new_share, torch.as_tensor(s, dtype=torch.float64))
        return s

    def log_shares(self, item_seq, item_seq_len, n):
        """``(log(1 - s), log(s))`` of :meth:`shares`: scalars, or tensors broadcastable to ``(B, n)``."""
        s = self.shares(item_seq, item_seq_len, n)
        if not torch.is_tensor(s):
            return np.log1p(-s), np.log(s)
        return torch.log1p(-s).float(), torch.log(s).float()

    def text_log_probs(self, item_seq, item_seq_len, seen=None):
        """``(B, n_items)``: log of the text's next-item distribution (input items and padding excluded)."""
        logits = text_cosines(self.table, item_seq, item_seq_len, self.last) / self.tau
        seen = input_items(item_seq, logits.shape[1]) if seen is None else seen
        return torch.log_softmax(logits.masked_fill(seen, -torch.inf), dim=1)

    def forward(self, scores, item_seq, item_seq_len, target=None):
        """``(B, n_items)`` log-probabilities of the mixture; ``scores`` are the model's over every item,
        ``target`` (training) each row's next item."""
        n = min(scores.shape[1], self.table.shape[0])
        scores = scores[:, :n].float()
        seen = input_items(item_seq, self.table.shape[0])
        if self.over == "new":
            hide = seen[:, :n] if target is None else seen[:, :n].scatter(1, target.unsqueeze(1), False)
            # far below any score, but finite: where both parts are -inf, logaddexp's gradient is nan
            scores = scores.masked_fill(hide, -1e9)
        own_share, text_share = self.log_shares(item_seq, item_seq_len, n)
        own = torch.log_softmax(scores, dim=1) + own_share
        text = self.text_log_probs(item_seq, item_seq_len, seen)[:, :n] + text_share
        return torch.logaddexp(own, text)
