"""Aligning stored item embeddings to a RecBole dataset's internal item ids, and handing them to models.

RecBole renumbers items: internal id ``i`` is the item whose original token is
``dataset.field2id_token[ITEM_ID][i]``, with ``0`` the padding id (token ``[PAD]``). An embedding
store is keyed by original tokens; :func:`align_item_embeddings` turns it into a matrix indexed
by internal ids.

The matrices are handed to models as attributes of the dataset object. Attach them to the
dataset returned by ``create_dataset`` *before* ``data_preparation``: RecBole's split makes the
train/valid/test datasets with ``copy.copy``, which shares attributes, so
``train_data.dataset`` (what a model's ``__init__`` receives) carries them.
"""
import numpy as np

from recbole_llmemb.errors import UserError

LLM_ITEM_EMB_ATTR = "llm_item_emb"
#: the text vectors of the re-ranker and of ``text_score`` (``text_blend_vectors``)
BLEND_ITEM_EMB_ATTR = "blend_item_emb"
COLLABORATIVE_ITEM_EMB_ATTR = "collaborative_item_emb"
#: the evaluation's head items (per item id, by training interactions), on the training split: set by
#: the pipeline once the split is known, read by ``text_score``'s tail gate
ITEM_IS_HEAD_ATTR = "item_is_head"
COLLABORATIVE_STATE_ATTR = "collaborative_state"


def _example_list(tokens, k=5):
    shown = ", ".join(repr(str(t)) for t in tokens[:k])
    return shown + (", ..." if len(tokens) > k else "")


#: rows copied at a time when the store's vectors are put in the dataset's id order
ALIGN_BLOCK_ROWS = 65536


def align_item_embeddings(dataset, tokens, vectors, method="scft"):
    """Rows of ``vectors`` (keyed by original item ``tokens``) in the dataset's internal id order.

    Returns a float32 array ``(dataset.item_num, d)``: row ``i`` is the vector of the item whose
    original token is ``dataset.field2id_token[ITEM_ID][i]``; row 0 (padding) is zeros. Tokens in the
    store that the dataset does not have (filtered out) are ignored. Items of the dataset that the
    store lacks are a :class:`UserError` that says how to rebuild the store (``method`` names the
    generator in that message).
    """
    dataset_name = getattr(dataset, "dataset_name", "<dataset>")
    rebuild = (
        f"Rebuild the embeddings with `python -m recbole_llmemb.pipeline.generate --method={method} "
        f"--dataset={dataset_name}` (or delete the stale cache entry so that it is rebuilt)."
    )
    vectors = np.asarray(vectors)
    tokens = [str(t) for t in tokens]
    if vectors.ndim != 2 or vectors.shape[0] != len(tokens):
        raise UserError(
            f"The embedding store for '{dataset_name}' is inconsistent: {len(tokens)} item tokens but "
            f"vectors of shape {vectors.shape}. {rebuild}"
        )
    row_of = {}
    duplicates = []
    for row, tok in enumerate(tokens):
        if tok in row_of:
            duplicates.append(tok)
        row_of[tok] = row
    if duplicates:
        raise UserError(
            f"The embedding store for '{dataset_name}' lists {len(duplicates)} item token(s) twice "
            f"(e.g. {_example_list(duplicates)}). {rebuild}"
        )

    id_tokens = dataset.field2id_token[dataset.iid_field]
    n = dataset.item_num
    rows = np.empty(n - 1, dtype=np.int64)
    missing = []
    for i in range(1, n):
        row = row_of.get(str(id_tokens[i]))
        if row is None:
            missing.append(str(id_tokens[i]))
        else:
            rows[i - 1] = row
    if missing:
        raise UserError(
            f"The item embeddings for '{dataset_name}' miss {len(missing)} of its {n - 1} items "
            f"(e.g. {_example_list(missing)}): they were built for other data or other filtering. {rebuild}"
        )
    matrix = np.zeros((n, vectors.shape[1]), dtype=np.float32)
    finite = True
    for start in range(0, n - 1, ALIGN_BLOCK_ROWS):  # in blocks: no second full-size copy of a large table
        block = matrix[1 + start:1 + start + ALIGN_BLOCK_ROWS]
        block[:] = vectors[rows[start:start + ALIGN_BLOCK_ROWS]]
        finite = finite and bool(np.isfinite(block).all())
    if not finite:
        bad = np.unique(np.nonzero(~np.isfinite(matrix))[0])
        raise UserError(
            f"The item embeddings for '{dataset_name}' hold NaN or infinite values for {len(bad)} item(s) "
            f"(e.g. {_example_list([str(id_tokens[i]) for i in bad])}). {rebuild}"
        )
    return matrix


def _check_rows(dataset, matrix, what):
    matrix = np.asarray(matrix, dtype=np.float32)
    if matrix.ndim != 2 or matrix.shape[0] != dataset.item_num:
        raise ValueError(
            f"{what} must have one row per internal item id ({dataset.item_num} rows, padding included), "
            f"got shape {matrix.shape}"
        )
    return matrix


def attach_item_embeddings(dataset, matrix, name=LLM_ITEM_EMB_ATTR):
    """Store the aligned LM item matrix ``(item_num, d)`` on ``dataset`` as ``dataset.<name>``.

    Call it on the dataset from ``create_dataset`` before ``data_preparation`` so that the split
    datasets (shallow copies) share it.
    """
    setattr(dataset, name, _check_rows(dataset, matrix, "The item embedding matrix"))
    return dataset


def attach_collaborative_embeddings(dataset, matrix, state=None):
    """Store the collaborative item table ``(item_num, hidden)`` (the alignment SASRec's item
    embeddings, internal id order) on ``dataset`` for LLMEmb's collaborative alignment, and that
    SASRec's state dict (``state``) for RAT's warm start."""
    setattr(
        dataset, COLLABORATIVE_ITEM_EMB_ATTR, _check_rows(dataset, matrix, "The collaborative item table")
    )
    setattr(dataset, COLLABORATIVE_STATE_ATTR, state)
    return dataset


def get_item_embeddings(dataset, name=LLM_ITEM_EMB_ATTR):
    """The attached LM item matrix, or ``None``."""
    return getattr(dataset, name, None)


def get_collaborative_embeddings(dataset):
    """The attached collaborative item table, or ``None``."""
    return getattr(dataset, COLLABORATIVE_ITEM_EMB_ATTR, None)
