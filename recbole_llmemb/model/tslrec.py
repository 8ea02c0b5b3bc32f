"""TSLRec (Liu et al., "A Practice-Friendly Two-Stage LLM-Enhanced Paradigm in Sequential
Recommendation", arXiv 2406.00333 v1):
user-level fine-tuning that reconstructs a user's spread over latent item categories, then each item
alone through the tuned model (stage 1, ``recbole_llmemb/generator/tslrec.py``); the vectors feed
RecBole's backbones through RAT's adapter (stage 2, :mod:`recbole_llmemb.model.rat`), with no alignment
term unless asked for (``props/tslrec.yaml``)."""
from recbole.model.sequential_recommender import BERT4Rec, GRU4Rec, SASRec

from recbole_llmemb.model.rat import RATMixin


class TSLRecMixin(RATMixin):
    embedding_method = "tslrec"
    method_props = "tslrec.yaml"


class TSLRecSASRec(TSLRecMixin, SASRec):
    """RecBole's SASRec on TSLRec's frozen item vectors through the adapter."""


class TSLRecGRU4Rec(TSLRecMixin, GRU4Rec):
    """RecBole's GRU4Rec on TSLRec's frozen item vectors (adapter output ``embedding_size``)."""


class TSLRecBERT4Rec(TSLRecMixin, BERT4Rec):
    """RecBole's BERT4Rec on TSLRec's frozen item vectors."""
