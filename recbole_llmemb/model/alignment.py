"""RAT's collaborative alignment: a contrastive loss between the adapted vectors of a batch's target
items and a trained SASRec's vectors of the same items (LLMEmb, section RAT)."""
import torch
from torch import nn

from recbole_llmemb import losses


class CollaborativeAlignment(nn.Module):
    """``loss(item_table, ids)``: the alignment loss of the items ``ids`` (padding 0s dropped; each item
    once with ``targets='unique'``, every position with ``'all'``), unweighted.

    The SASRec's table is a buffer that checkpoints do not keep: it only matters for training.
    """

    def __init__(self, table, loss="infonce", tau=0.1, targets="unique"):
        super().__init__()
        self.register_buffer("table", torch.as_tensor(table, dtype=torch.float32), persistent=False)
        self.loss_name, self.tau, self.targets = loss, float(tau), targets

    def forward(self, item_table, ids):
        ids = ids.reshape(-1)
        ids = ids[ids > 0]
        if self.targets == "unique":
            ids = torch.unique(ids)
        return losses.ALIGN_LOSSES[self.loss_name](self.table[ids], item_table(ids), tau=self.tau)
