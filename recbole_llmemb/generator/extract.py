"""Tokenising item texts and extracting one pooled vector per text."""
import logging

import numpy as np
import torch

from recbole_llmemb import distributed
from recbole_llmemb.errors import UserError
from recbole_llmemb.generator.pooling import pool
from recbole_llmemb.settings import read


def encode(tokenizer, texts, max_length, add_eos=False):
    """Token ids per text (no padding), truncated to ``max_length``; ``add_eos`` appends the EOS id."""
    budget = max_length - 1 if add_eos else max_length
    ids = tokenizer(list(texts), truncation=True, max_length=budget, add_special_tokens=True)["input_ids"]
    if add_eos and tokenizer.eos_token_id is not None:
        eos = tokenizer.eos_token_id
        ids = [x if (x and x[-1] == eos) else x + [eos] for x in ids]
    return ids


def pad_batch(seqs, pad_id, device):
    """Right-pad lists of ids into ``input_ids`` and ``attention_mask`` tensors."""
    width = max(len(s) for s in seqs)
    input_ids = torch.full((len(seqs), width), int(pad_id), dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for i, s in enumerate(seqs):
        input_ids[i, : len(s)] = torch.tensor(s, dtype=torch.long)
        mask[i, : len(s)] = 1
    return input_ids.to(device), mask.to(device)


def forward_pooled(model, input_ids, mask, pooling):
    out = model(input_ids=input_ids, attention_mask=mask)
    hidden = out.last_hidden_state if hasattr(out, "last_hidden_state") else out[0]
    return pool(hidden, mask, pooling)


def wants_eos(info, pooling):
    """Decoder LMs with last-token pooling read the vector off an appended EOS (as LLMEmb does)."""
    return info.get("family") == "decoder" and pooling == "last"


def length_batches(lengths, batch_size):
    """Indices sorted by length (longest first) cut into batches of ``batch_size``."""
    order = np.argsort(-np.asarray(lengths), kind="stable")
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


def extract(model, tokenizer, texts, info, pooling="mean", max_length=128, batch_size=64,
            progress=False, ids=None, sharded=False, saver=None):
    """One float32 vector per text, in the order of ``texts`` (length-sorted batches, inference mode).

    ``sharded`` (several processes, each with the same model): each rank takes every world-th of the
    length-sorted batches (an even share of the long texts), rank 0 gets the whole table, the other
    ranks ``None``. ``saver`` (a :class:`~recbole_llmemb.generator.progress.Progress`; one process
    only) keeps the vectors so far, and a stopped extraction resumes after its last saved batch."""
    device = next(model.parameters()).device
    if ids is None:
        ids = encode(tokenizer, texts, max_length, add_eos=wants_eos(info, pooling))
    batches = length_batches([len(x) for x in ids], batch_size)
    if sharded and distributed.is_distributed():
        mine = batches[distributed.rank()::distributed.world_size()]
        rows = np.concatenate(mine) if mine else np.zeros(0, dtype=np.int64)
        local = _extract_batches(model, tokenizer, ids, mine, pooling, device, progress)
        parts = distributed.gather_objects((rows, local[rows] if local is not None else None))
        if parts is None:
            return None
        width = next(v.shape[1] for _, v in parts if v is not None)
        out = np.zeros((len(ids), width), dtype=np.float32)
        for r, v in parts:
            if v is not None:
                out[r] = v
        return out
    return _extract_batches(model, tokenizer, ids, batches, pooling, device, progress, saver)


def _extract_batches(model, tokenizer, ids, batches, pooling, device, progress, saver=None):
    """The pooled vectors of the texts in ``batches`` (rows of a table as long as ``ids``; others zero)."""
    out, done = None, 0
    saved = saver.load() if saver else None
    if saved and saved["n_texts"] == len(ids) and saved["batches"] == len(batches):
        out, done = saved["vectors"].numpy(), int(saved["done"])
        logging.getLogger().info(f"extract: resuming at batch {done} of {len(batches)} ({saver.path})")
    was_training = model.training
    model.eval()
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(batches), initial=done, desc="extract", unit="batch")
    with torch.inference_mode():
        for n in range(done, len(batches)):
            b = batches[n]
            input_ids, mask = pad_batch([ids[i] for i in b], tokenizer.pad_token_id, device)
            vec = forward_pooled(model, input_ids, mask, pooling).cpu().numpy()
            if out is None:
                out = np.zeros((len(ids), vec.shape[1]), dtype=np.float32)
            out[b] = vec
            if bar is not None:
                bar.update(1)
            if saver and saver.due() and n + 1 < len(batches):
                saver.save({"vectors": torch.from_numpy(out), "done": n + 1, "n_texts": len(ids), "batches": len(batches)})
    if bar is not None:
        bar.close()
    if was_training:
        model.train()
    return out


def pca(vectors, dim):
    """Project onto the top ``dim`` principal components (deterministic signs); returns (projected, info)."""
    x = np.asarray(vectors, dtype=np.float64)
    mean = x.mean(0, keepdims=True)
    xc = x - mean
    _, s, vt = np.linalg.svd(xc, full_matrices=False)
    comps = vt[:dim]
    signs = np.sign(comps[np.arange(dim), np.abs(comps).argmax(1)])
    signs[signs == 0] = 1
    comps = comps * signs[:, None]
    var = s**2
    explained = float(var[:dim].sum() / max(var.sum(), 1e-12))
    return (xc @ comps.T).astype(np.float32), {"pca_dim": int(dim), "pca_explained_variance": explained}


def check_pca(config, hidden, n_items):
    pca_dim = read(config, "pca_dim")
    if pca_dim is None or str(pca_dim).lower() == "none":
        return None
    pca_dim = int(pca_dim)
    if pca_dim <= 0:
        raise UserError(f"pca_dim={pca_dim}: must be a positive number of dimensions (or ~ for no PCA).")
    if pca_dim > hidden:
        raise UserError(f"pca_dim={pca_dim} is larger than the model's hidden size {hidden}; "
                        f"use pca_dim <= {hidden}, or ~ for no PCA.")
    if pca_dim > n_items:
        raise UserError(f"pca_dim={pca_dim} is larger than the number of items {n_items}; PCA cannot "
                        "produce more components than rows.")
    return pca_dim
