"""The plugin's models, by name, looked up before RecBole's. Each method's stage 2 is one module
(``llmemb.py``, ``said.py``, ``tslrec.py``) of three classes that put :class:`~recbole_llmemb.model.rat.RATMixin`
before a RecBole backbone; RAT's parts are ``rat.py``, ``adapter.py`` and ``alignment.py``."""
from recbole_llmemb.model.llmemb import LLMEmbBERT4Rec, LLMEmbGRU4Rec, LLMEmbSASRec
from recbole_llmemb.model.rat import RATMixin
from recbole_llmemb.model.said import SAIDBERT4Rec, SAIDGRU4Rec, SAIDSASRec
from recbole_llmemb.model.tslrec import TSLRecBERT4Rec, TSLRecGRU4Rec, TSLRecSASRec

MODELS = {cls.__name__: cls for cls in (
    LLMEmbSASRec, LLMEmbBERT4Rec, LLMEmbGRU4Rec, SAIDSASRec, SAIDBERT4Rec, SAIDGRU4Rec,
    TSLRecSASRec, TSLRecBERT4Rec, TSLRecGRU4Rec)}

__all__ = ["MODELS", "RATMixin", *MODELS]
