"""The embedding store: one folder per (dataset, method, cache key).

Layout of an entry ``<embedding_cache_dir>/<dataset>/<method>-<key[:16]>/``:

* ``vectors.npy``  float32 (or float16) matrix (n_items, d), row i = the item ``tokens[i]``
  (RecBole's ``field2id_token[ITEM_ID][1:]``, i.e. the original item tokens, [PAD] excluded);
* ``meta.json``    method, model, settings, ``key``, ``texts_sha256``, ``shape``, ``dtype``,
  ``vectors_sha256`` (of the .npy file's bytes) and the ``tokens``;
* optional extras a builder leaves there (``adapter/`` with the LoRA weights for SCFT).

Writes are atomic: every file goes to a temporary name in the same folder and is moved into
place with ``os.replace``; ``meta.json`` is written last, so an entry without it is incomplete.
``load`` checks the metadata, the shape, the dtype and the checksum and raises ``StoreError``
on any mismatch: a truncated or corrupt entry is never silently used.

Large catalogues: the vectors are written and checksummed in row blocks (no full-size copy of
the matrix besides the caller's), ``dtype="float16"`` halves the file, and ``load(mmap=True)``
maps the file read-only instead of reading it (pages are read when rows are touched).
"""
import contextlib
import hashlib
import json
import os
import tempfile
from dataclasses import dataclass, field

import numpy as np

from recbole_llmemb.settings import read

VECTORS = "vectors.npy"
META = "meta.json"
FORMAT_VERSION = 1
#: the element types an entry may hold
DTYPES = ("float32", "float16")
#: bytes per block when vectors are checked, converted and written
BLOCK_BYTES = 64 << 20


class StoreError(Exception):
    """A store entry that is missing, incomplete or corrupt."""


@dataclass
class EmbeddingSet:
    """Item vectors aligned with the dataset's original item tokens."""

    tokens: list
    vectors: np.ndarray
    meta: dict = field(default_factory=dict)
    path: str = ""

    def __len__(self):
        return len(self.tokens)

    @property
    def dim(self):
        return int(self.vectors.shape[1])

    def row_of(self):
        """``{token: row}``."""
        return {t: i for i, t in enumerate(self.tokens)}


def cache_root(config):
    """The folder that holds every dataset's entries (``embedding_cache_dir``, made absolute)."""
    return os.path.abspath(os.path.expanduser(str(read(config, "embedding_cache_dir"))))


def sha256_bytes(data):
    return hashlib.sha256(data).hexdigest()


def sha256_file(path, chunk=1 << 20):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            b = f.read(chunk)
            if not b:
                break
            h.update(b)
    return h.hexdigest()


def sha256_texts(texts):
    """Hash of a list of strings (length-prefixed, so boundaries count)."""
    h = hashlib.sha256()
    for t in texts:
        b = str(t).encode("utf-8")
        h.update(len(b).to_bytes(8, "little"))
        h.update(b)
    return h.hexdigest()


def atomic_write_bytes(path, data):
    with _atomic_file(path) as f:
        f.write(data)


@contextlib.contextmanager
def _atomic_file(path):
    """A binary file handle whose contents appear at ``path`` only when the block ends without error."""
    d = os.path.dirname(os.path.abspath(path))
    os.makedirs(d, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=d)
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _blocks(n_rows, row_bytes):
    """Row ranges of about ``BLOCK_BYTES`` each."""
    step = max(1, BLOCK_BYTES // max(1, row_bytes))
    return [(i, min(i + step, n_rows)) for i in range(0, n_rows, step)]


def _write_npy(path, vectors, dtype):
    """``vectors`` as a ``.npy`` file of ``dtype``, written atomically block by block; returns its sha256."""
    dtype = np.dtype(dtype)
    header = {"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": False, "shape": tuple(vectors.shape)}
    digest = hashlib.sha256()
    with _atomic_file(path) as f:
        class Hashing:  # the header goes through the same hash as the rows
            def write(self, b):
                digest.update(b)
                f.write(b)
        out = Hashing()
        np.lib.format.write_array_header_1_0(out, header)
        for i, j in _blocks(vectors.shape[0], vectors.shape[1] * dtype.itemsize):
            with np.errstate(over="ignore"):  # a value beyond float16's range becomes inf: refused just below
                block = np.ascontiguousarray(vectors[i:j], dtype=dtype)
            if not np.isfinite(block).all():
                raise ValueError("refusing to store non-finite item vectors (NaN/inf" + (", or beyond float16's range)" if dtype == np.float16 else ")"))
            out.write(block.data)  # (contiguous: written without another copy)
    return digest.hexdigest()


def save(path, tokens, vectors, meta=None, extras=None, dtype="float32"):
    """Write an entry at folder ``path`` atomically; returns the ``EmbeddingSet``.

    ``extras``: ``{file name: bytes}`` stored beside the vectors with their checksums in the
    metadata (read back with :func:`load_extra`). ``dtype``: float32 or float16 (half the file;
    vectors beyond float16's range are refused).
    """
    if dtype not in DTYPES:
        raise ValueError(f"store dtype {dtype!r}: use one of {', '.join(DTYPES)}")
    vectors = np.asarray(vectors)
    tokens = [str(t) for t in tokens]
    if vectors.ndim != 2 or vectors.shape[0] != len(tokens):
        raise ValueError(f"vectors of shape {vectors.shape} do not match {len(tokens)} tokens")
    os.makedirs(path, exist_ok=True)
    meta = dict(meta or {})
    meta_path = os.path.join(path, META)
    if os.path.exists(meta_path):  # the entry is being replaced: invalidate it first
        os.unlink(meta_path)
    checksum = _write_npy(os.path.join(path, VECTORS), vectors, dtype)
    meta.update(format_version=FORMAT_VERSION, shape=list(vectors.shape), dtype=dtype, vectors_file=VECTORS,
                vectors_sha256=checksum, tokens=tokens)
    for name, blob in (extras or {}).items():
        atomic_write_bytes(os.path.join(path, name), blob)
        meta.setdefault("extras", {})[name] = sha256_bytes(blob)
    atomic_write_bytes(meta_path, json.dumps(meta, indent=1, sort_keys=True).encode("utf-8"))
    # the values a later load gives (a float16 entry's vectors are float16 either way), mapped: no copy
    stored = vectors if vectors.dtype == np.dtype(dtype) else np.load(os.path.join(path, VECTORS), mmap_mode="r")
    return EmbeddingSet(tokens=tokens, vectors=stored, meta=meta, path=str(path))


def read_meta(path):
    meta_path = os.path.join(path, META)
    if not os.path.isfile(meta_path):
        raise StoreError(f"no {META} in {path} (entry missing or incomplete)")
    try:
        with open(meta_path, encoding="utf-8") as f:
            meta = json.load(f)
    except (OSError, ValueError) as e:
        raise StoreError(f"unreadable {meta_path}: {e}") from None
    if not isinstance(meta, dict) or "shape" not in meta or "vectors_sha256" not in meta:
        raise StoreError(f"{meta_path} lacks shape/checksum")
    return meta


def load(path, expect_key=None, mmap=False):
    """Read and validate the entry at folder ``path``; raises ``StoreError`` if it is not intact.

    ``expect_key``: the cache key the entry must carry (a different key is a stale entry).
    ``mmap``: map the vectors read-only instead of reading them (after the checksum, which reads
    the file in blocks without keeping it).
    """
    meta = read_meta(path)
    if expect_key is not None and meta.get("key") != expect_key:
        raise StoreError(f"entry {path} has key {meta.get('key')}, expected {expect_key}")
    vec_path = os.path.join(path, meta.get("vectors_file", VECTORS))
    try:
        checksum = sha256_file(vec_path)
    except OSError as e:
        raise StoreError(f"unreadable {vec_path}: {e}") from None
    if checksum != meta["vectors_sha256"]:
        raise StoreError(f"checksum mismatch for {vec_path} (truncated or corrupt file)")
    try:
        vectors = np.load(vec_path, mmap_mode="r" if mmap else None, allow_pickle=False)
    except (ValueError, OSError, EOFError) as e:
        raise StoreError(f"cannot parse {vec_path}: {e}") from None
    dtype = meta.get("dtype", "float32")
    if list(vectors.shape) != list(meta["shape"]) or dtype not in DTYPES or vectors.dtype != np.dtype(dtype):
        raise StoreError(f"{vec_path}: shape {vectors.shape}/{vectors.dtype}, metadata says {meta['shape']}/{dtype}")
    tokens = meta.get("tokens")
    if not isinstance(tokens, list) or len(tokens) != vectors.shape[0]:
        raise StoreError(f"{path}: {len(tokens or [])} tokens for {vectors.shape[0]} rows")
    return EmbeddingSet(tokens=tokens, vectors=vectors, meta=meta, path=str(path))


def load_extra(es, name):
    """The bytes of extra file ``name`` of a loaded entry, checked; ``StoreError`` if absent or corrupt."""
    expected = (es.meta.get("extras") or {}).get(name)
    if expected is None:
        raise StoreError(f"entry {es.path} has no {name} (built by an older version)")
    try:
        with open(os.path.join(es.path, name), "rb") as f:
            blob = f.read()
    except OSError as e:
        raise StoreError(f"unreadable {name} in {es.path}: {e}") from None
    if sha256_bytes(blob) != expected:
        raise StoreError(f"checksum mismatch for {name} in {es.path} (truncated or corrupt file)")
    return blob
