"""The embedding methods by name: each method's stage 1 registers a builder here, the pipeline
(``recbole_llmemb.pipeline.generate``) looks it up, caches what it builds and hands it to the models."""
from dataclasses import dataclass
from typing import Callable

from recbole_llmemb.errors import UserError


@dataclass
class BuildContext:
    """What a builder gets: the config, the dataset, the aligned item tokens/texts/attributes,
    the store folder it may write extras into (e.g. ``adapter/``, saved progress), its own settings
    and the entry's cache key."""

    config: object
    dataset: object
    tokens: list
    texts: list
    attributes: list
    instruction: str
    folder: str
    settings: dict
    progress: bool = True
    key: str = ""
    #: ``() -> (item_num, hidden)``: the alignment SASRec's item table in the dataset's id order, trained
    #: or reused by the pipeline (for a builder registered with ``needs_collaborative``)
    collaborative: Callable = None
    #: several processes: every rank runs the builder and extracts its share (rank 0 gets the vectors,
    #: the others ``None``); only for a builder registered ``shardable``
    sharded: bool = False


@dataclass
class Builder:
    """``settings(config, n_items) -> dict`` (everything that changes the vectors; enters the cache key;
    may raise UserError early); ``build(ctx) -> (vectors (n, d), extra meta dict)``. The extra dict may
    hold ``"also": [(settings changes, vectors), ...]``: what the same work gives under other settings
    (SAID's other export), stored as their own entries, so choosing between them costs no second build."""

    name: str
    settings: Callable
    build: Callable
    description: str = ""
    #: the pipeline adds the alignment SASRec's cache key to the settings and hands its table in
    needs_collaborative: bool = False
    #: it trains nothing (extraction only), so every rank can run it and extract a share
    shardable: bool = False


BUILDERS = {}


def register_builder(name, settings, build, description="", needs_collaborative=False, shardable=False):
    """Register an embedding method under ``name`` (one of ``recbole_llmemb.settings.METHODS``)."""
    BUILDERS[name] = Builder(name, settings, build, description, needs_collaborative, shardable)
    return BUILDERS[name]


def get_builder(name):
    if name not in BUILDERS:
        raise UserError(f"Unknown embedding method '{name}'. Available: {', '.join(sorted(BUILDERS))}.")
    return BUILDERS[name]
