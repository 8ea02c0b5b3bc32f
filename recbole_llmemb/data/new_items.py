"""New items (item cold start): a seeded share of the catalogue held out of training entirely.

With ``new_items: 0.1`` a tenth of the items is never a training target and never in a training
history; in validation and test they are targets (and stay in the histories, as they would after
launch). Training does not know them: :func:`exclude_from_loss` takes them out of a cross-entropy loss's
softmax, as items not yet listed while the model trained (``new_items_negatives: True`` keeps them
in it as negatives: listed, never bought, and pushed down by every training step). Every
evaluation reports them as the group ``item_new``. A model that reads item text knows them through it; an id model has
only a row that training never drew towards any user.

The held-out items are marked on the dataset (:data:`HELD_OUT_ATTR`, copied with it), and RecBole's
``Dataset.build`` (the split that ``data_preparation`` and TSLRec's user histories both use) returns
a training part without them: rows whose target is new are dropped, new items are taken out of the
item lists (the rest keep their order), and rows left with an empty history are dropped.
"""
import numpy as np
import torch

HELD_OUT_ATTR = "held_out_items"


def choose_new_items(item_num, share, seed):
    """``(item_num,)`` bool: ``round(share * (item_num - 1))`` items drawn with ``seed`` (index 0,
    RecBole's padding id, never)."""
    n = int(round(float(share) * (item_num - 1)))
    mask = np.zeros(item_num, dtype=bool)
    if n > 0:
        mask[1 + np.random.default_rng(seed).choice(item_num - 1, size=n, replace=False)] = True
    return mask


def hold_out(dataset, is_new):
    """Mark ``is_new`` on ``dataset``: its splits' training parts will not hold them."""
    install()
    setattr(dataset, HELD_OUT_ATTR, np.asarray(is_new, dtype=bool))
    return dataset


def without_new_items(train, is_new):
    """A copy of a training split without the new items (see the module doc)."""
    from recbole.data.interaction import Interaction

    feat, iid = train.inter_feat, train.iid_field
    new = torch.as_tensor(np.asarray(is_new, dtype=bool))
    keep_row = ~new[feat[iid]]
    list_field = getattr(train, f"{iid}_list_field", None)
    if list_field is None or list_field not in feat:  # a general recommender's split: rows only
        return train.copy(feat[keep_row])
    seq, length = feat[list_field], feat[train.item_list_length_field]
    pos = torch.arange(seq.shape[1])
    keep = (pos < length.unsqueeze(1)) & ~new[seq]
    order = torch.argsort((~keep).to(torch.int8), dim=1, stable=True)  # kept items first, in their order
    new_length = keep.sum(1)
    beyond = pos >= new_length.unsqueeze(1)
    columns = {}
    for field in feat.columns:
        values = feat[field]
        if values.dim() >= 2 and values.shape[:2] == seq.shape:  # every list aligned with the item list
            index = order.reshape(order.shape + (1,) * (values.dim() - 2)).expand_as(values)
            values = torch.gather(values, 1, index)
            values[beyond] = 0
        columns[field] = values
    columns[train.item_list_length_field] = new_length.to(length.dtype)
    return train.copy(Interaction(columns)[keep_row & (new_length > 0)])


def exclude_from_loss(model, is_new):
    """Leave the items ``is_new`` out of ``model``'s training softmax (RecBole's ``loss_fct`` when it is
    cross-entropy, the plugin's models alike): their scores are set to -inf before the loss while the
    model trains, so no step pushes them down. Returns whether it applied: ``False`` for losses it
    cannot reach (BPR's sampled negatives; BERT4Rec, which makes its own cross-entropy)."""
    loss_fct = getattr(model, "loss_fct", None)
    if not isinstance(loss_fct, torch.nn.CrossEntropyLoss):
        return False
    new = torch.as_tensor(np.asarray(is_new, dtype=bool))

    def mask_new(module, args):
        logits, *rest = args
        if not model.training or logits.dim() < 2 or logits.shape[-1] < len(new):
            return None
        mask = torch.zeros(logits.shape[-1], dtype=torch.bool, device=logits.device)
        mask[:len(new)] = new.to(logits.device)
        return (logits.masked_fill(mask, float("-inf")), *rest)

    loss_fct.register_forward_pre_hook(mask_new)
    return True


_installed = False


def install():
    """Let RecBole's ``Dataset.build`` honour :data:`HELD_OUT_ATTR` (once; a no-op for unmarked datasets)."""
    global _installed
    if _installed:
        return
    from recbole.data.dataset import Dataset

    build = Dataset.build

    def build_holding_out(self):
        parts = build(self)
        is_new = getattr(self, HELD_OUT_ATTR, None)
        if is_new is None or not is_new.any():
            return parts
        return [without_new_items(parts[0], is_new), *parts[1:]]

    Dataset.build = build_holding_out
    _installed = True
