"""SAID's stage 2: RecBole's backbones on SAID's learned item vectors (``generator/said.py``).

The vectors enter through the same frozen-table adapter, warm start and id table as LLMEmb's RAT
(:class:`~recbole_llmemb.model.llmemb.LLMEmbMixin`); only the generator differs, and there is no
collaborative alignment term unless asked for (``props/said.yaml``: ``alpha: 0``).
"""
from recbole.model.sequential_recommender import BERT4Rec, GRU4Rec, SASRec

from recbole_llmemb.model.llmemb import LLMEmbMixin


class SAIDMixin(LLMEmbMixin):
    """LLMEmb's item-table machinery on SAID's vectors; put it before the RecBole class in the bases."""

    item_embedding_method = "said"
    #: the method's props file, layered over props/rat.yaml
    method_props = "said.yaml"


class SAIDSASRec(SAIDMixin, SASRec):
    """RecBole's SASRec on SAID's frozen item vectors through the adapter."""


class SAIDGRU4Rec(SAIDMixin, GRU4Rec):
    """RecBole's GRU4Rec on SAID's frozen item vectors (adapter output ``embedding_size``)."""


class SAIDBERT4Rec(SAIDMixin, BERT4Rec):
    """RecBole's BERT4Rec on SAID's frozen item vectors; the mask token keeps its own trainable vector."""
