"""Popularity drift: training targets weighted so that their popularity mix is that of recent ones.

Later interactions go to rarer items (on Beauty tail items are 39% of the training targets, 46% of
each user's last training target, 50% of the validation and 57% of the test targets;
``benchmarks/probes/probe_tail_drift.py``). Cross-entropy fits the training targets' mix, so a model
learns a popularity older than the one it is tested on. With ``target_weights: recent`` each
training target counts in the loss by its popularity bucket's share among the users' last training
targets over its share among all training targets (the label-shift correction, estimated from the
training split alone): a class weight of RecBole's cross-entropy ``loss_fct``.
"""
import numpy as np
import torch


def recent_mix_weights(train, item_bucket):
    """``(item_num,)`` float weights: per popularity bucket (``item_bucket``: bucket per item id, -1 for
    none), its share among each user's last training target over its share among all training targets.
    Items outside every bucket (padding) get 1. ``train``: RecBole's training split, one row per target
    in each user's time order (its sequential augmentation)."""
    feat = train.inter_feat
    users, targets = feat[train.uid_field].numpy(), feat[train.iid_field].numpy()
    last = np.r_[users[1:] != users[:-1], True]  # a user's rows are contiguous, oldest first
    if len(np.unique(users[last])) != last.sum():
        raise ValueError("the training rows are not grouped by user: cannot tell each user's last target")
    n_buckets = int(item_bucket.max()) + 1
    valid = item_bucket[targets] >= 0
    every = np.bincount(item_bucket[targets][valid], minlength=n_buckets) / max(valid.sum(), 1)
    recent_valid = valid & last
    recent = np.bincount(item_bucket[targets][recent_valid], minlength=n_buckets) / max(recent_valid.sum(), 1)
    ratio = np.where(every > 0, recent / np.where(every > 0, every, 1), 1.0)
    weights = np.ones(len(item_bucket))
    weights[item_bucket >= 0] = ratio[item_bucket[item_bucket >= 0]]
    return weights


def weight_loss(model, weights):
    """Make ``model``'s cross-entropy ``loss_fct`` weigh each target by ``weights[target]`` (a weighted
    mean, as ``nn.CrossEntropyLoss(weight=...)`` computes it). Returns whether it applied (``False`` for
    other losses: BPR; BERT4Rec makes its own)."""
    if not isinstance(getattr(model, "loss_fct", None), torch.nn.CrossEntropyLoss):
        return False
    device = next(model.parameters()).device
    model.loss_fct = torch.nn.CrossEntropyLoss(weight=torch.as_tensor(weights, dtype=torch.float32, device=device))
    return True
