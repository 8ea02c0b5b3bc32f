"""Pooling of a language model's last hidden states into one vector per text."""
import torch

from recbole_llmemb import settings
from recbole_llmemb.errors import UserError

POOLINGS = settings.choices("llm_pooling")


def mean_pool(hidden, mask):
    """Mean over the tokens where ``mask`` is 1 (computed in float32)."""
    m = mask.to(torch.float32).unsqueeze(-1)
    h = hidden.to(torch.float32)
    return (h * m).sum(1) / m.sum(1).clamp(min=1.0)


def last_pool(hidden, mask):
    """The hidden state of the last token where ``mask`` is 1 (works for left or right padding)."""
    positions = torch.arange(mask.shape[1], device=mask.device).unsqueeze(0)
    idx = (positions * mask.to(positions.dtype)).argmax(dim=1)
    return hidden[torch.arange(hidden.shape[0], device=hidden.device), idx].to(torch.float32)


def pool(hidden, mask, method="mean"):
    if method == "mean":
        return mean_pool(hidden, mask)
    if method == "last":
        return last_pool(hidden, mask)
    raise UserError(f"llm_pooling={method}: use one of {', '.join(POOLINGS)}.")
