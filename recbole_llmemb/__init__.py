"""recbole-llmemb: language-model item embeddings for RecBole sequential recommenders."""
from recbole_llmemb import compat as _compat

_compat.apply()

__version__ = "0.1.0"
