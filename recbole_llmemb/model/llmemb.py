"""LLMEmb (Liu et al., "Large Language Model Empowered Embedding Generator for Sequential
Recommendation", AAAI 2025): item vectors from a language model fine-tuned by supervised contrastive
learning on item text (stage 1, ``recbole_llmemb/generator/scft.py``), then RAT on RecBole's own
backbones (stage 2, :mod:`recbole_llmemb.model.rat`): the frozen vectors through a trainable
adapter, aligned with a trained SASRec's item table."""
from recbole.model.sequential_recommender import BERT4Rec, GRU4Rec, SASRec

from recbole_llmemb.model.rat import RATMixin


class LLMEmbSASRec(RATMixin, SASRec):
    """RecBole's SASRec with LLMEmb's adapted frozen item table and collaborative alignment."""


class LLMEmbGRU4Rec(RATMixin, GRU4Rec):
    """RecBole's GRU4Rec with LLMEmb's adapted frozen item table (its size: ``embedding_size``)."""


class LLMEmbBERT4Rec(RATMixin, BERT4Rec):
    """RecBole's BERT4Rec with LLMEmb's adapted frozen item table; the mask token keeps a trainable vector."""
