"""The text re-ranker: a model's scores blended, at evaluation only, with the text's own.

Any model the runner trains or evaluates can take it, RecBole's own included: each user's
ranking becomes ``z(model scores) + w * z(cos(t_i, q_u))``, each standardised over the catalogue
per user, where ``t_i`` is item ``i``'s text vector (whitened, unit length) and ``q_u`` the mean of
the user's last ``text_blend_last`` items' (a sequential model's input history; for a general
model such as BPR, the user's training items in time order). ``w`` is ``text_blend``, times, with
``text_blend_gate: tail``, the share of tail items among those last items (so users whose recent
items are popular keep the model's ranking); with ``tail_items`` the text term is added to tail
items only (head items keep the model's standardised score). Nothing is trained differently: the training loss
is the model's alone; the re-ranked validation scores pick the best epoch.

With ``text_blend_mode: mixture`` the ranking is instead by the mixture of the two next-item
distributions, ``(1 - w) softmax(scores) + w softmax(cos / text_mixture_tau)``
(:class:`~recbole_llmemb.model.text_score.TextMixture`, which a plugin model can also train with;
``text_mixture_over: new`` takes the model's softmax over the items outside the user's input only;
``text_mixture_new_share`` gives the items held out of training, ``new_items``, a share of their own;
``text_mixture_tail_share`` gives each user a share by the tail items among their last items).

Off by default (``text_blend: 0``); ``props/rerank.yaml`` turns it on.
"""
import numpy as np
import torch

from recbole_llmemb.errors import UserError
from recbole_llmemb import settings
from recbole_llmemb.model.text_score import TextMixture, gate_factor, text_cosines, text_table

#: ``text_blend_gate``: none (every user the same weight) | tail (the weight times the tail share of the
#: last items) | tail_items (the text term on tail items only)
GATES = settings.choices("text_blend_gate")


def zscore_rows(scores):
    """Each row standardised over its items (ranks unchanged): puts two scorers on one scale."""
    return (scores - scores.mean(1, keepdim=True)) / scores.std(1, keepdim=True).clamp_min(1e-12)


def last_items(dataset, last):
    """``(user_num, last)`` table of each user's last ``last`` items in ``dataset`` (in its row order:
    time order under RecBole's ``order: TO``), left-aligned, and their counts."""
    uid, iid = dataset.uid_field, dataset.iid_field
    users, items = dataset.inter_feat[uid].numpy(), dataset.inter_feat[iid].numpy()
    table = np.zeros((dataset.user_num, last), dtype=np.int64)
    count = np.zeros(dataset.user_num, dtype=np.int64)
    for u, i in zip(users, items):  # a shift register per user: the newest ``last`` survive
        n = count[u]
        if n < last:
            table[u, n] = i
        else:
            table[u, :-1] = table[u, 1:]
            table[u, -1] = i
        count[u] = n + 1
    return torch.as_tensor(table), torch.as_tensor(np.minimum(count, last))


class TextReranker:
    """Blends a batch's ``(users, items)`` score matrix with the text score (see the module doc)."""

    def __init__(self, vectors, weight, tail_items=None, last=3, seq_fields=None, user_history=None,
                 user_field=None, gate=None, mixture_tau=None, mixture_over="all", mixture_new_share=None, is_new=None,
                 mixture_tail_share=None):
        if weight <= 0:
            raise UserError(f"text_blend={weight}: the re-ranker needs a weight > 0 (0 turns it off).")
        #: the mixture's text part (``text_blend_mode: mixture``), else ``None``
        self.mixture = None
        if mixture_tau is not None:
            if weight >= 1 or (gate or "none") != "none":
                raise UserError(f"text_blend_mode=mixture: text_blend={weight} is the text's share of the mixture, in "
                                f"(0, 1), and text_blend_gate does not apply to it (text_blend_gate=none, not {gate}; "
                                f"text_mixture_tail_share gives each user a share).")
            self.mixture = TextMixture(vectors, weight, mixture_tau, last, mixture_over, mixture_new_share,
                                       None if mixture_new_share is None else is_new, mixture_tail_share,
                                       None if mixture_tail_share is None else tail_items)
        self.table = text_table(vectors)
        self.weight = float(weight)
        self.tail = None if tail_items is None else torch.as_tensor(tail_items, dtype=torch.float32)
        self.gate = gate or ("none" if tail_items is None else "tail")  # given tail items and no gate: the user gate
        if self.gate != "none" and self.tail is None:
            raise ValueError(f"gate {self.gate!r} needs the tail items")
        self.last = int(last)
        self.seq_fields = seq_fields  # (item list field, its length field) of a sequential model
        self.user_history = user_history  # (table, counts) of a general model's users
        self.user_field = user_field

    @classmethod
    def from_config(cls, config, vectors, train_dataset, is_head, sequential, is_new=None):
        """The re-ranker a run's settings ask for (``None`` when ``text_blend`` is 0); ``is_new``: the items
        held out of training (``new_items``), for the mixture's ``text_mixture_new_share``."""
        weight = float(config["text_blend"] or 0)
        if weight <= 0:
            return None
        last = int(config["text_blend_last"])
        tail, gate = None, config["text_blend_gate"]
        mixed = settings.read(config, "text_blend_mode") == "mixture"
        tail_share = settings.read(config, "text_mixture_tail_share") if mixed else None
        if gate != "none" or tail_share is not None:  # tail by the evaluation's own definition (training counts)
            tail = ~np.asarray(is_head, dtype=bool)
            tail[0] = False
        mixture = {}
        if mixed:
            mixture = {"mixture_tau": float(settings.read(config, "text_mixture_tau")),
                       "mixture_over": settings.read(config, "text_mixture_over"),
                       "mixture_tail_share": None if tail_share is None else float(tail_share)}
            new_share = settings.read(config, "text_mixture_new_share")
            if new_share is not None and is_new is not None and np.any(is_new):
                mixture.update(mixture_new_share=float(new_share), is_new=is_new)
        if sequential:
            fields = (config["ITEM_ID_FIELD"] + config["LIST_SUFFIX"], config["ITEM_LIST_LENGTH_FIELD"])
            return cls(vectors, weight, tail, last, seq_fields=fields, gate=gate, **mixture)
        return cls(vectors, weight, tail, last, user_history=last_items(train_dataset, last),
                   user_field=config["USER_ID_FIELD"], gate=gate, **mixture)

    def to(self, device):
        self.table = self.table.to(device)
        self.mixture = None if self.mixture is None else self.mixture.to(device)
        self.tail = None if self.tail is None else self.tail.to(device)
        if self.user_history is not None:
            self.user_history = tuple(t.to(device) for t in self.user_history)
        return self

    def history(self, interaction):
        """``(item lists, lengths)`` of the batch's users."""
        if self.seq_fields is not None:
            seq, length = (interaction[f] for f in self.seq_fields)
            return seq.to(self.table.device), length.to(self.table.device)
        users = interaction[self.user_field].to(self.table.device)
        return self.user_history[0][users], self.user_history[1][users]

    def text_scores(self, seq, length):
        """``(B, n_items)`` cosine of every item's text to the mean of each row's last items'."""
        return text_cosines(self.table, seq, length, self.last)

    def weights(self, seq, length):
        """``(B, 1)`` blend weight per row, or ``(B, n_items)`` per row and item: ``text_blend`` times the
        gate (:func:`~recbole_llmemb.model.text_score.gate_factor`)."""
        factor = gate_factor(self.tail, self.gate, seq, length, self.last)
        if factor is None:
            return torch.full((len(seq), 1), self.weight, device=seq.device)
        return self.weight * factor

    def __call__(self, scores, interaction):
        """The re-ranked ``scores`` (one row per interaction row, one column per item id)."""
        seq, length = self.history(interaction)
        if self.mixture is not None:
            return self.mixture(scores[:, : self.table.shape[0]], seq, length)
        text = self.text_scores(seq, length)
        n = text.shape[1]
        return zscore_rows(scores[:, :n].float()) + self.weights(seq, length).to(scores.device) * zscore_rows(text).to(scores.device)
