"""TSLRec's stage 2: RecBole's backbones on TSLRec's item vectors (``generator/tslrec.py``), through
the same frozen-table adapter, warm start and id table as LLMEmb's RAT; no alignment term unless
asked for (``props/tslrec.yaml``)."""
from recbole.model.sequential_recommender import BERT4Rec, GRU4Rec, SASRec

from recbole_llmemb.model.llmemb import LLMEmbMixin


class TSLRecMixin(LLMEmbMixin):
    """LLMEmb's item-table machinery on TSLRec's vectors; put it before the RecBole class in the bases."""

    item_embedding_method = "tslrec"
    method_props = "tslrec.yaml"


class TSLRecSASRec(TSLRecMixin, SASRec):
    """RecBole's SASRec on TSLRec's frozen item vectors through the adapter."""


class TSLRecGRU4Rec(TSLRecMixin, GRU4Rec):
    """RecBole's GRU4Rec on TSLRec's frozen item vectors (adapter output ``embedding_size``)."""


class TSLRecBERT4Rec(TSLRecMixin, BERT4Rec):
    """RecBole's BERT4Rec on TSLRec's frozen item vectors."""
