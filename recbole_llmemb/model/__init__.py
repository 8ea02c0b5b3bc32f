"""The plugin's models, by name, looked up before RecBole's. Each method's stage 2 is one module:
``llmemb.py`` (LLMEmb's RAT), ``said.py`` (SAID) and ``tslrec.py`` (TSLRec), sharing ``LLMEmbMixin`` and ``layers.py``."""
from recbole_llmemb.model.llmemb import LLMEmbBERT4Rec, LLMEmbGRU4Rec, LLMEmbMixin, LLMEmbSASRec
from recbole_llmemb.model.said import SAIDBERT4Rec, SAIDGRU4Rec, SAIDMixin, SAIDSASRec
from recbole_llmemb.model.tslrec import TSLRecBERT4Rec, TSLRecGRU4Rec, TSLRecMixin, TSLRecSASRec

MODELS = {
    "LLMEmbSASRec": LLMEmbSASRec,
    "LLMEmbBERT4Rec": LLMEmbBERT4Rec,
    "LLMEmbGRU4Rec": LLMEmbGRU4Rec,
    "SAIDSASRec": SAIDSASRec,
    "SAIDBERT4Rec": SAIDBERT4Rec,
    "SAIDGRU4Rec": SAIDGRU4Rec,
    "TSLRecSASRec": TSLRecSASRec,
    "TSLRecBERT4Rec": TSLRecBERT4Rec,
    "TSLRecGRU4Rec": TSLRecGRU4Rec,
}

__all__ = ["MODELS", "LLMEmbMixin", "LLMEmbSASRec", "LLMEmbBERT4Rec", "LLMEmbGRU4Rec",
           "SAIDMixin", "SAIDSASRec", "SAIDBERT4Rec", "SAIDGRU4Rec",
           "TSLRecMixin", "TSLRecSASRec", "TSLRecBERT4Rec", "TSLRecGRU4Rec"]
