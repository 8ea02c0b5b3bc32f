"""The no-text control: random item vectors of the language model's shape.

A plugin model on ``llm_embedding_method: random`` runs the same pipeline (warm start, id table,
alignment) as on the LM's vectors, with the text taken away: whatever it gains over SASRec then is
the pipeline's, and the difference to the LM row is what the text itself adds.
"""
import numpy as np

from recbole_llmemb.generator.backbone import hidden_size, read_model_config, resolve_model_path
from recbole_llmemb.generator.registry import register_builder


def settings(config, n_items):
    """The LM's width (its config only: no weights are loaded) and the run's seed."""
    return {"dim": hidden_size(read_model_config(resolve_model_path(config))), "seed": int(config["seed"])}


def build(ctx):
    """Standard normal vectors, one per item, from the seed."""
    rng = np.random.default_rng(ctx.settings["seed"])
    return rng.standard_normal((len(ctx.tokens), ctx.settings["dim"])).astype(np.float32), {}


register_builder("random", settings, build, "no text: standard normal vectors of the LM's width (a control)")
