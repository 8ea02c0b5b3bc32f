"""The plugin's models, by name, looked up before RecBole's."""
from recbole_llmemb.model.llmemb import LLMEmbBERT4Rec, LLMEmbGRU4Rec, LLMEmbMixin, LLMEmbSASRec

MODELS = {
    "LLMEmbSASRec": LLMEmbSASRec,
    "LLMEmbBERT4Rec": LLMEmbBERT4Rec,
    "LLMEmbGRU4Rec": LLMEmbGRU4Rec,
}

__all__ = ["MODELS", "LLMEmbMixin", "LLMEmbSASRec", "LLMEmbBERT4Rec", "LLMEmbGRU4Rec"]
