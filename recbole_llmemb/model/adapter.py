"""RAT's item table: ``adapter(frozen language-model item vectors)``, standing in for a backbone's
``nn.Embedding`` so that RecBole's own ``forward`` / ``calculate_loss`` / ``predict`` /
``full_sort_predict`` code keeps working unchanged.

* :class:`Adapter`: the official code's two linear layers ``d -> d/2 -> hidden``.
* :func:`input_normalisation`: what the adapter reads (mean removed, optionally whitened).
* :class:`AdaptedItemEmbedding`: the table, with the text-plus-id offsets, BERT4Rec's mask row,
  a per-block cache and the warm-start fit.
"""
import contextlib

import torch
import torch.nn.functional as F
from torch import nn

from recbole_llmemb import settings
from recbole_llmemb.errors import UserError

INPUT_NORMS = settings.choices("llm_emb_norm")
ADAPTER_INITS = settings.choices("adapter_init")
PRECISIONS = settings.choices("adapter_precision")


class Adapter(nn.Module):
    """``Linear(d, h) -> dropout -> Linear(h, out)``, optionally LayerNorm on the output: the official
    code's purely linear two-layer adapter. ``hidden=None`` means ``d // 2``. Weights xavier-normal
    (item differences start at the inputs' weight); biases zero (``xavier``) or PyTorch's default
    (``official``)."""

    def __init__(self, in_dim, out_dim, hidden=None, dropout=0.0, layernorm=False, init="xavier"):
        super().__init__()
        hidden = max(1, int(in_dim) // 2) if hidden is None else int(hidden)
        self.in_dim, self.hidden, self.out_dim = int(in_dim), hidden, int(out_dim)
        # slot 1 held an activation in earlier versions: kept empty so that checkpoints keep their keys
        self.net = nn.Sequential(nn.Linear(self.in_dim, hidden), nn.Identity(), nn.Dropout(float(dropout)),
                                 nn.Linear(hidden, self.out_dim))
        self.norm = nn.LayerNorm(self.out_dim) if layernorm else nn.Identity()
        if init not in ADAPTER_INITS:
            raise UserError(f"adapter_init={init}: use one of {', '.join(ADAPTER_INITS)}.")
        for layer in (self.net[0], self.net[3]):
            nn.init.xavier_normal_(layer.weight)
            if init == "xavier":
                nn.init.zeros_(layer.bias)

    def forward(self, x):
        return self.norm(self.net(x))


def adapter_precision(setting, device):
    """``auto``: bf16 matmuls on a CPU that computes them natively (AMX: about 9x its fp32 matmul peak;
    AVX512-BF16: the adapter's matmul 3.5x faster on one AMD EPYC thread), fp32 elsewhere."""
    if setting != "auto":
        return setting
    if torch.device(device).type != "cpu":
        return "float32"
    return "bfloat16" if native_bf16_cpu() else "float32"


def native_bf16_cpu():
    """Whether this CPU multiplies bf16 natively (AMX tiles or AVX512-BF16); ``False`` on an older torch."""
    probes = (getattr(torch.cpu, name, None) for name in ("_is_amx_tile_supported", "_is_avx512_bf16_supported"))
    return any(probe is not None and probe() for probe in probes)


def normalised_vectors(items, how):
    """``items`` after :func:`input_normalisation` (mean removed, transform applied; unscaled)."""
    mean, transform, _ = input_normalisation(items, how)
    x = items - mean.to(items.dtype) if how != "none" else items
    return x @ transform.to(items.dtype) if transform is not None else x


def input_normalisation(items, how):
    """``(mean, transform, scale)`` that map the LM item vectors to the adapter's input.

    General-purpose sentence vectors of item texts share one large common direction (the same
    prompt, the same domain): rows sit close together and a small adapter learns slowly from
    their differences. ``center`` removes the mean row (as the PCA of the paper's pipeline does)
    and scales to unit mean norm; ``whiten`` also decorrelates and equalises the directions (ZCA),
    so that every direction of variation counts; ``none`` leaves the vectors as they are.
    """
    if items.numel() > LARGE_TABLE:
        return _input_normalisation_in_blocks(items, how)
    d = items.shape[1]
    mean = items.mean(0) if len(items) else items.new_zeros(d)
    transform = None
    x = items.double()
    if how != "none":
        x = x - mean.double()
    if how == "whiten" and len(items) > 1:
        cov = x.T @ x / (len(items) - 1)
        transform = _zca(cov)
        x = x @ transform.double()
    scale = 1.0
    if how != "none" and len(items):
        mean_norm = float(x.norm(dim=-1).mean())
        scale = 1.0 / mean_norm if mean_norm > 0 else 1.0
    return mean.float(), transform, scale


#: tables larger than this (elements) are normalised block by block: the float64 copies of the whole
#: table that the direct computation makes would be 4x its size (66 GB at 1,000,000 x 4096)
LARGE_TABLE = 2 ** 24
#: elements of one block (32 MB in float64)
BLOCK_ELEMENTS = 2 ** 22


def _zca(cov):
    vals, vecs = torch.linalg.eigh(cov)
    vals = vals.clamp_min(vals.max() * 1e-6)
    return (vecs @ torch.diag(vals.rsqrt()) @ vecs.T).float()


def _input_normalisation_in_blocks(items, how):
    """:func:`input_normalisation` in float64 sums over row blocks: memory of one block, not the table."""
    n, d = items.shape
    rows = max(1, BLOCK_ELEMENTS // max(d, 1))
    blocks = lambda: (items[i:i + rows].double() for i in range(0, n, rows))  # noqa: E731
    mean = sum(b.sum(0) for b in blocks()) / n
    transform, scale = None, 1.0
    if how == "none":
        return mean.float(), transform, scale
    if how == "whiten" and n > 1:
        transform = _zca(sum((b - mean).T @ (b - mean) for b in blocks()) / (n - 1))
    t = transform.double() if transform is not None else None
    total = sum(float(((b - mean) @ t if t is not None else b - mean).norm(dim=-1).sum()) for b in blocks())
    mean_norm = total / n
    return mean.float(), transform, 1.0 / mean_norm if mean_norm > 0 else 1.0


class AdaptedItemEmbedding(nn.Module):
    """An item table ``adapter(frozen LM item vectors)`` that stands in for ``nn.Embedding``.

    * ``llm_weight``: the LM matrix, ``(n_items, d)``, row 0 = padding. A parameter with
      ``requires_grad = not freeze`` so that frozen and unfrozen models share one state-dict
      layout; frozen, it gets no gradient and the optimizer never changes it.
    * ``weight`` (property): the adapted table ``(n_items + n_special, out_dim)``; the padding row is
      zero (as ``nn.Embedding(padding_idx=0)`` keeps it out of the scores' gradients), and
      ``n_special`` trainable rows follow the items (BERT4Rec's mask token at index ``n_items``).
    * ``forward(ids)``: rows of ``weight``.
    * ``id_dropout``: in training, each item's id offset is left out with this probability (one draw
      per item and table), so the model also learns to rank items by their text alone: what a new
      item has (DropoutNet's idea, Volkovs et al., NeurIPS 2017). No rescaling: in evaluation a
      trained item keeps its whole offset, as when it was not dropped.

    Inside ``with emb.cached():`` the adapted table is computed once and reused by every lookup and
    every ``.weight`` access (one forward + loss, or one prediction batch); outside, every access
    recomputes it.
    """

    def __init__(self, llm_matrix, out_dim, n_special=0, freeze=True, hidden=None, dropout=0.0, layernorm=False,
                 special_init_std=0.02, input_norm="center", precision="float32", init="xavier", id_table=False,
                 id_dropout=0.0):
        super().__init__()
        llm_matrix = torch.as_tensor(llm_matrix, dtype=torch.float32)
        if llm_matrix.dim() != 2:
            raise ValueError(f"the LM item matrix must be 2-d, got shape {tuple(llm_matrix.shape)}")
        self.n_items, self.llm_dim = llm_matrix.shape
        self.embedding_dim = int(out_dim)
        self.num_embeddings = self.n_items + int(n_special)
        self.freeze = bool(freeze)
        # frozen, the parameter shares the caller's rows (no second copy of an N x d table)
        self.llm_weight = nn.Parameter(llm_matrix if self.freeze else llm_matrix.clone(), requires_grad=not self.freeze)
        if input_norm not in INPUT_NORMS:
            raise ValueError(f"llm_emb_norm={input_norm!r}: use one of {', '.join(INPUT_NORMS)}")
        self.input_norm = input_norm
        if precision not in PRECISIONS[1:]:  # "auto" is resolved by adapter_precision() first
            raise ValueError(f"adapter precision {precision!r}: use float32 or bfloat16")
        self.precision = precision
        mean, transform, scale = input_normalisation(llm_matrix[1:], input_norm)
        self.register_buffer("input_mean", mean)
        self.register_buffer("input_transform", transform)
        self.register_buffer("input_scale", torch.tensor(scale, dtype=torch.float32))
        self.adapter = Adapter(self.llm_dim, self.embedding_dim, hidden, dropout, layernorm, init)
        # text-plus-id (LLM-ESR's dual view): a per-item trainable offset, zero at the start
        self.id_weight = nn.Parameter(torch.zeros(self.n_items - 1, self.embedding_dim)) if id_table else None
        self.id_dropout = float(id_dropout)
        if n_special:
            self.special = nn.Parameter(torch.empty(int(n_special), self.embedding_dim).normal_(0.0, special_init_std))
        else:
            self.register_parameter("special", None)
        self.register_buffer("id_mask", None, persistent=False)  # rows that keep their id offset (``hold_out_ids``)
        self.register_buffer("new_rows", None, persistent=False)  # held-out rows that borrow their neighbours' offsets
        self.register_buffer("id_neighbours", None, persistent=False)
        self._cached_table = None
        self._caching = False
        self._lookup_scale = 1.0

    def adapter_input(self):
        """The LM item vectors (rows 1..) as the adapter reads them, after ``input_norm``.

        Frozen, it is a constant: computed once and reused until the matrix changes (a checkpoint
        load bumps its version), instead of re-whitening 12k x 384 rows at every batch.
        """
        if self.llm_weight.requires_grad or torch.is_inference_mode_enabled():
            return self._normalised()
        key = (self.llm_weight._version, self.llm_weight.data_ptr(), self.llm_weight.device)
        if getattr(self, "_input_key", None) != key:
            with torch.no_grad():
                self._input = self._normalised()
            self._input_key = key
        return self._input

    def _normalised(self, rows=slice(1, None)):
        x = self.llm_weight[rows]
        if self.input_norm != "none":
            x = x - self.input_mean
        if self.input_transform is not None:
            x = x @ self.input_transform
        fresh = self.input_norm != "none" or self.input_transform is not None  # x is no view of the table
        if fresh and not x.requires_grad:
            return x.mul_(self.input_scale)  # scaled in place: no third N x d copy of a frozen table
        return x * self.input_scale

    def adapted(self):
        """``adapter(LM vectors)`` of the items (rows 1..), in the table's own precision. A large table
        with no gradient to keep (evaluation) goes through in row blocks: no full-size normalised
        input or hidden layer is ever held."""
        if not torch.is_grad_enabled() and (self.n_items - 1) * self.llm_dim > LARGE_TABLE and not self.llm_weight.requires_grad:
            rows = max(1, BLOCK_ELEMENTS // self.llm_dim)
            return torch.cat([self._adapt(self._normalised(slice(1 + i, 1 + i + rows)))
                              for i in range(0, self.n_items - 1, rows)])
        return self._adapt(self.adapter_input())

    def _adapt(self, x):
        """The adapter on normalised rows ``x``."""
        if self.precision == "bfloat16":  # the matmuls in bf16 (AMX / tensor cores), the table back in fp32
            with torch.autocast(device_type=x.device.type, dtype=torch.bfloat16):
                return self.adapter(x).float()
        return self.adapter(x)

    def table(self):
        """The adapted table, computed now."""
        adapted = self.adapted()
        if self.id_weight is not None:
            ids = self.id_weight if self.id_mask is None else self.id_weight * self.id_mask
            if self.id_neighbours is not None:
                ids = ids.index_copy(0, self.new_rows, self.id_weight[self.id_neighbours].mean(1))
            if self.training and self.id_dropout > 0:  # these items scored by their text alone, as new ones are
                ids = ids * (torch.rand(len(ids), 1, device=ids.device) >= self.id_dropout)
            adapted = adapted + ids
        parts = [adapted.new_zeros(1, self.embedding_dim), adapted]
        if self.special is not None:
            parts.append(self.special)
        return torch.cat(parts, dim=0)

    @property
    def weight(self):
        if self._caching:
            if self._cached_table is None:
                self._cached_table = self.table()
            return self._cached_table
        return self.table()

    def forward(self, ids):
        rows = F.embedding(ids, self.weight)
        return rows if self._lookup_scale == 1.0 else rows * self._lookup_scale

    @contextlib.contextmanager
    def lookups_scaled(self, factor):
        """Inside the block, looked-up rows are multiplied by ``factor`` (``weight`` is not): the
        official SASRec scales the vectors entering its encoder, not the ones it scores with."""
        previous, self._lookup_scale = self._lookup_scale, float(factor)
        try:
            yield self
        finally:
            self._lookup_scale = previous

    def hold_out_ids(self, is_new, neighbours=0):
        """Items held out of training (``is_new``, per item id) have no id offset of their own: theirs
        stay zero, with no gradient (training would only ever push them down as negatives). With
        ``neighbours=k`` a new item borrows the mean offset of its k nearest other items by text
        (cosine of the adapter's inputs)."""
        keep = ~torch.as_tensor(is_new, dtype=torch.bool)[1:self.n_items]
        self.register_buffer("id_mask", keep.float().unsqueeze(1), persistent=False)
        if self.id_weight is None:
            return
        with torch.no_grad():
            self.id_weight[~keep] = 0.0
        if neighbours:
            x = F.normalize(self.adapter_input().detach().float(), dim=-1)
            new, old = torch.nonzero(~keep).squeeze(1), torch.nonzero(keep).squeeze(1)
            nearest = (x[new] @ x[old].T).topk(min(int(neighbours), len(old)), dim=1).indices
            self.register_buffer("new_rows", new, persistent=False)
            self.register_buffer("id_neighbours", old[nearest], persistent=False)

    def fix_principal(self, scale=1.0):
        """Set the adapter to the inputs' top ``out`` principal components, each whitened (unit
        variance over the items) times ``scale``, and freeze it (``adapter_mode: principal``): the
        table's text part then keeps the text's own neighbours, which a trained adapter bends
        towards the collaborative table. Sign of each component: the SVD's."""
        k, first, last = self.embedding_dim, self.adapter.net[0], self.adapter.net[3]
        if self.adapter.hidden < k or self.llm_dim < k or self.n_items - 1 <= k:
            raise UserError(f"adapter_mode=principal keeps {k} principal components (the item table's size), which needs "
                            f"adapter_hidden, the LM vectors' size and the items to exceed it (they are "
                            f"{self.adapter.hidden}, {self.llm_dim}, {self.n_items - 1}).")
        if not isinstance(self.adapter.norm, nn.Identity) or self.adapter.net[2].p > 0:
            raise UserError("adapter_mode=principal is a fixed projection: leave adapter_layernorm and adapter_dropout out.")
        with torch.no_grad():
            x = self.adapter_input().detach().float()
            mean = x.mean(0)
            _, singular, vt = torch.linalg.svd(x - mean, full_matrices=False)
            std = (singular[:k] / (len(x) - 1) ** 0.5).clamp_min(1e-12)
            components = vt[:k] / std[:, None]
            first.weight.zero_()
            first.bias.zero_()
            first.weight[:k] = components
            first.bias[:k] = -(components @ mean)
            last.weight.zero_()
            last.bias.zero_()
            last.weight[:, :k] = torch.eye(k) * float(scale)
        self.adapter.requires_grad_(False)

    def fit_adapter(self, target, steps=300, lr=3e-3, rows=None):
        """Train the adapter alone so that its rows match ``target`` (``(n_items - 1, out)``, mean
        squared error, full batch; only the ``rows`` given, a bool mask, when set): RAT's warm start
        from the alignment SASRec's item table. Returns the share of the target's variance explained (R^2)."""
        target = torch.as_tensor(target, dtype=torch.float32, device=self.llm_weight.device)
        x = self.adapter_input().detach()
        if rows is not None:
            rows = torch.as_tensor(rows, dtype=torch.bool, device=target.device)
            x, target = x[rows], target[rows]
        optimizer = torch.optim.Adam(self.adapter.parameters(), lr=lr)
        for _ in range(int(steps)):
            optimizer.zero_grad()
            loss = F.mse_loss(self.adapter(x), target)
            loss.backward()
            optimizer.step()
        with torch.no_grad():
            residual = ((self.adapter(x) - target) ** 2).sum()
            total = ((target - target.mean(0)) ** 2).sum()
        return float(1.0 - residual / total) if total > 0 else 0.0

    @contextlib.contextmanager
    def cached(self):
        """Compute the adapted table at most once inside the block (re-entrant)."""
        if self._caching:
            yield self
            return
        self._caching = True
        try:
            yield self
        finally:
            self._caching = False
            self._cached_table = None

    def extra_repr(self):
        return (
            f"n_items={self.n_items}, llm_dim={self.llm_dim}, out={self.embedding_dim}, "
            f"freeze={self.freeze}, input_norm={self.input_norm}, precision={self.precision}, "
            f"input_scale={float(self.input_scale):.4g}"
        )
