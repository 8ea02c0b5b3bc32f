"""Contrastive losses shared by the generator (SCFT's view-to-view loss) and the models (RAT's
collaborative alignment): one home, importable from every layer below the pipeline."""
import torch
import torch.nn.functional as F


def soft_contrastive_loss(x, y, tau=2.0):
    """Symmetric contrastive loss between paired rows of ``x`` and ``y``, with soft targets.

    Row ``i`` of ``x`` and row ``i`` of ``y`` describe the same object (an item's two text views in
    SCFT; an item's adapted LM vector and its collaborative vector in RAT). With ``B`` rows:

    * logits ``L = x y^T / tau``  (``B x B``)
    * soft targets ``T = softmax_rows((x x^T + y y^T) / 2 * tau)``: objects that look alike in
      *both* spaces share probability mass instead of being pushed apart as hard negatives;
    * loss ``= mean_i [ CE(L_i, T_i) + CE((L^T)_i, T_i) ] / 2``.

    This is the form of the official LLMEmb code (``Contrastive_Loss2``: same ``tau`` dividing the
    logits and multiplying the target similarities, no normalisation by default, gradients flow
    through the targets). One deliberate difference: the official code scores the ``y -> x``
    direction against ``T^T``, whose rows do not sum to one; since the target similarity matrix is
    symmetric, the row-softmax ``T`` is the right target for both directions, and that is used
    here. The loss is therefore symmetric in ``x`` and ``y``.

    It works on raw vectors: with ``tau > 1`` cosine logits would lie in ``[-1/tau, 1/tau]`` and the
    loss would be nearly flat.

    Returns a scalar; 0 (keeping the graph) when there are fewer than two rows.
    """
    if x.shape != y.shape:
        raise ValueError(f"soft_contrastive_loss needs paired rows of one size, got {tuple(x.shape)} and {tuple(y.shape)}")
    if x.shape[0] < 2:
        return (x.sum() + y.sum()) * 0.0
    logits = x @ y.t() / tau
    targets = F.softmax((x @ x.t() + y @ y.t()) / 2 * tau, dim=-1)
    loss_xy = -(targets * F.log_softmax(logits, dim=-1)).sum(-1)
    loss_yx = -(targets * F.log_softmax(logits.t(), dim=-1)).sum(-1)
    return ((loss_xy + loss_yx) / 2).mean()


def infonce_loss(x, y, tau=0.1):
    """Symmetric InfoNCE between paired rows of ``x`` and ``y`` on cosine similarities.

    Row ``i`` of one side is the positive of row ``i`` of the other; the other rows are negatives.
    At ``tau`` around 0.1 its logits span [-10, 10], so it leaves ``log B`` at once and keeps a
    useful gradient (the soft form at tau 2 on RecBole-scale vectors stays at ``log B``).
    """
    if x.shape != y.shape:
        raise ValueError(f"infonce_loss needs paired rows of one size, got {tuple(x.shape)} and {tuple(y.shape)}")
    if x.shape[0] < 2:
        return (x.sum() + y.sum()) * 0.0
    x = F.normalize(x.float(), dim=-1)
    y = F.normalize(y.float(), dim=-1)
    logits = x @ y.t() / tau
    labels = torch.arange(x.shape[0], device=x.device)
    return (F.cross_entropy(logits, labels) + F.cross_entropy(logits.t(), labels)) / 2


ALIGN_LOSSES = {"infonce": infonce_loss, "soft": soft_contrastive_loss}
