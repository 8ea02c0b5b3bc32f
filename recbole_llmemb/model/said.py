"""SAID (Hu et al., "Enhancing Sequential Recommendation via LLM-based Semantic Embedding Learning",
WWW 2024 Companion): each item id is projected into soft tokens from which the language model must
reproduce the item's text (stage 1, ``recbole_llmemb/generator/said.py``); the learned vectors then
feed RecBole's backbones through RAT's adapter (stage 2, :mod:`recbole_llmemb.model.rat`), with no
alignment term unless asked for (``props/said.yaml``)."""
from recbole.model.sequential_recommender import BERT4Rec, GRU4Rec, SASRec

from recbole_llmemb.model.rat import RATMixin


class SAIDMixin(RATMixin):
    embedding_method = "said"
    method_props = "said.yaml"


class SAIDSASRec(SAIDMixin, SASRec):
    """RecBole's SASRec on SAID's frozen item vectors through the adapter."""


class SAIDGRU4Rec(SAIDMixin, GRU4Rec):
    """RecBole's GRU4Rec on SAID's frozen item vectors (adapter output ``embedding_size``)."""


class SAIDBERT4Rec(SAIDMixin, BERT4Rec):
    """RecBole's BERT4Rec on SAID's frozen item vectors; the mask token keeps its own trainable vector."""
