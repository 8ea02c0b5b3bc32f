"""LLMEmb's recommendation adaptation training (RAT) on RecBole's own backbones.

Each class is RecBole's ``SASRec`` / ``BERT4Rec`` / ``GRU4Rec`` with one change, made once in
:class:`LLMEmbMixin`: the trainable item-id table is replaced by
``adapter(frozen LM item embeddings)`` (:class:`~recbole_llmemb.model.layers.AdaptedItemEmbedding`),
used both for the input sequence and for the output scores; plus ``alpha *`` a contrastive loss
that aligns the adapted vectors of the batch's target items with a trained SASRec's item table.

RAT starts where that SASRec ended (``rat_init: collaborative``, the default): the adapter is first
fitted to the SASRec's item table and a SASRec backbone loads its encoder. From PyTorch's default
start the adapted rows are one shared offset (the adapter's biases) plus small item differences,
and joint training collapses them onto a few directions, rare items first (issue 8).

What the models read from the dataset passed to ``__init__`` (see ``recbole_llmemb.data.dataset``):
``dataset.llm_item_emb`` (``(item_num, d)``, required), ``dataset.collaborative_item_emb``
(``(item_num, hidden)``) and ``dataset.collaborative_state`` (the SASRec's weights), needed for
``alpha > 0`` or ``rat_init: collaborative``. Settings: :data:`RAT_DEFAULTS`, documented in
``props/rat.yaml``.
"""
import numpy as np
import torch
from recbole.model.sequential_recommender import BERT4Rec, GRU4Rec, SASRec
from recbole.utils import set_color

from recbole_llmemb.config_checks import check_word
from recbole_llmemb.errors import UserError
from recbole_llmemb.data.dataset import COLLABORATIVE_ITEM_EMB_ATTR, COLLABORATIVE_STATE_ATTR, LLM_ITEM_EMB_ATTR
from recbole_llmemb import losses
from recbole_llmemb.model import layers
from recbole_llmemb.model.layers import AdaptedItemEmbedding


#: RAT's settings and their defaults (the same as props/rat.yaml, which documents them); a key
#: that is absent or ``~`` takes its default here. They do not change the alignment SASRec.
RAT_DEFAULTS = {
    "llm_embedding_method": "scft", "freeze_emb": True, "adapter_hidden": None, "adapter_act": "linear",
    "adapter_dropout": 0.0, "adapter_layernorm": False, "adapter_precision": "auto", "adapter_init": "xavier",
    "llm_emb_norm": "center", "item_id_emb": True, "rat_init": "collaborative", "alpha": 0.1,
    "align_loss": "infonce", "align_tau": 0.1, "align_normalize": False, "align_targets": "unique", "output_bias": False,
    "seq_input_scale": "none",
}
RAT_KEYS = tuple(RAT_DEFAULTS)


def _cfg(config, key):
    """``config[key]``, or RAT's default when the key is absent or ``None``-valued."""
    try:
        value = config[key]
    except KeyError:
        value = None
    return RAT_DEFAULTS.get(key) if value is None else value


RAT_INITS = ("scratch", "collaborative")
#: ``align_targets``: unique (each of the batch's target items once) | all (every target position,
#: repeats included: the official code aligns every non-padding position of the batch)
ALIGN_TARGETS = ("unique", "all")
#: ``seq_input_scale``: none (RecBole's backbones) | sqrt_hidden (the item vectors entering the sequence
#: encoder multiplied by sqrt of the item-table width, as the official SASRec does; the scores are not scaled)
SEQ_INPUT_SCALES = ("none", "sqrt_hidden")


class LLMEmbMixin:
    """The LLMEmb part shared by every backbone; put it before the RecBole class in the bases."""

    #: the embedding generator whose output these models consume (read by the pipeline)
    item_embedding_method = "scft"
    #: the pipeline trains / loads a SASRec and attaches its item table when ``alpha > 0``
    needs_collaborative = True
    #: the dataset attribute holding the frozen LM matrix
    llm_embedding_attr = LLM_ITEM_EMB_ATTR
    #: the method's own props file, layered over props/rat.yaml (``None``: RAT's defaults as they are)
    method_props = None

    @classmethod
    def item_table_size_key(cls):
        """The config key that sizes the backbone's item table (= the adapter's output size)."""
        return "embedding_size" if issubclass(cls, GRU4Rec) else "hidden_size"

    @classmethod
    def warm_start_encoder(cls):
        """``rat_init=collaborative`` also loads the alignment SASRec's encoder (SASRec backbones only)."""
        return issubclass(cls, SASRec)

    @classmethod
    def check_config(cls, config):
        """Refuse bad RAT settings before the pipeline spends minutes on SCFT and the alignment SASRec."""
        for key in getattr(config, "_explicit_keys", ()):  # a value the user gave is honoured or refused
            if key in RAT_DEFAULTS and RAT_DEFAULTS[key] is not None and config[key] is None:
                raise UserError(f"{key}=None: give a value (the default is {RAT_DEFAULTS[key]!r}), or leave it out.")
        for key in ("llm_emb_norm", "adapter_precision", "align_loss", "adapter_init", "rat_init",
                    "align_targets", "seq_input_scale"):  # the words a config built in code may still get wrong
            check_word(key, str(_cfg(config, key)))
        if float(_cfg(config, "alpha")) < 0:
            raise UserError(f"alpha must be >= 0, got {config['alpha']}.")
        if float(_cfg(config, "align_tau")) <= 0:
            raise UserError(f"align_tau must be > 0, got {config['align_tau']}.")

    @classmethod
    def own_embedding_method(cls, config):
        """The embedding method whose store this model reads: ``llm_embedding_method`` when set,
        else the model's own (``scft`` for LLMEmb, ``said`` for SAID, ...)."""
        try:
            chosen = config["llm_embedding_method"]
        except KeyError:
            chosen = None
        return str(chosen or cls.item_embedding_method)

    @classmethod
    def uses_collaborative(cls, config):
        """Whether the pipeline must train / load the alignment SASRec for this configuration (not to
        evaluate a trained checkpoint: its weights are all there)."""
        if _cfg(config, "eval_checkpoint"):
            return False
        return float(_cfg(config, "alpha")) > 0 or str(_cfg(config, "rat_init")) == "collaborative"

    @classmethod
    def collaborative_hidden_size(cls, config):
        """The ``hidden_size`` the alignment SASRec must have: this model's item-table size."""
        return int(config[cls.item_table_size_key()])

    def __init__(self, config, dataset):
        super().__init__(config, dataset)
        self._build_llmemb(config, dataset)

    # ---------------------------------------------------------------- construction
    def _build_llmemb(self, config, dataset):
        matrix = getattr(dataset, self.llm_embedding_attr, None)
        if matrix is None:
            raise UserError(
                f"{type(self).__name__} needs the LM item embeddings on the dataset "
                f"(dataset.{self.llm_embedding_attr}). Run it through run_recbole_llmemb.py, which builds "
                f"them (`python -m recbole_llmemb.generate --method={self.item_embedding_method} "
                f"--dataset={config['dataset']}`) and attaches them with "
                "recbole_llmemb.data.dataset.attach_item_embeddings before data_preparation."
            )
        matrix = np.asarray(matrix, dtype=np.float32)
        if matrix.ndim != 2 or matrix.shape[0] != self.n_items:
            raise ValueError(
                f"dataset.{self.llm_embedding_attr} has shape {matrix.shape}; expected ({self.n_items}, d)"
            )

        # The backbone's own table tells the size the adapter must produce and how many special
        # rows follow the items (BERT4Rec: the mask token at index n_items).
        old = self.item_embedding
        out_dim, n_rows = old.embedding_dim, old.num_embeddings
        n_special = n_rows - self.n_items
        init_std = config["initializer_range"] or 0.02
        self.check_config(config)
        norm = str(_cfg(config, "llm_emb_norm"))
        # Built after the backbone's ``apply(self._init_weights)``: the LM matrix is never re-initialised.
        self.item_embedding = AdaptedItemEmbedding(
            matrix,
            out_dim,
            n_special=n_special,
            freeze=bool(_cfg(config, "freeze_emb")),
            hidden=_cfg(config, "adapter_hidden"),
            activation=_cfg(config, "adapter_act"),
            dropout=float(_cfg(config, "adapter_dropout")),
            layernorm=bool(_cfg(config, "adapter_layernorm")),
            special_init_std=init_std,
            input_norm=norm,
            precision=layers.adapter_precision(str(_cfg(config, "adapter_precision")), config["device"]),
            init=str(_cfg(config, "adapter_init")),
            id_table=bool(_cfg(config, "item_id_emb")),
        )
        del old
        self.alpha = float(_cfg(config, "alpha"))
        self.align_loss_fn = losses.ALIGN_LOSSES[str(_cfg(config, "align_loss"))]
        self.align_tau = float(_cfg(config, "align_tau"))
        self.align_normalize = bool(_cfg(config, "align_normalize"))
        self.align_targets = str(_cfg(config, "align_targets"))
        self.rat_init = str(_cfg(config, "rat_init"))
        self.seq_input_scale = out_dim ** 0.5 if str(_cfg(config, "seq_input_scale")) == "sqrt_hidden" else 1.0
        collab = getattr(dataset, COLLABORATIVE_ITEM_EMB_ATTR, None) if self.uses_collaborative(config) else None
        if self.rat_init == "collaborative" and collab is None and not _cfg(config, "eval_checkpoint"):
            raise UserError(
                f"{type(self).__name__} with rat_init=collaborative needs the alignment SASRec's item table on "
                "the dataset: run it through run_recbole_llmemb.py, which trains or loads it."
            )
        if collab is not None:
            collab = torch.as_tensor(np.asarray(collab, dtype=np.float32))
            if collab.shape != (self.n_items, out_dim):
                raise UserError(
                    f"The collaborative item table has shape {tuple(collab.shape)}, but alignment needs "
                    f"({self.n_items}, {out_dim}): train the alignment SASRec with hidden_size={out_dim} "
                    "(the size of this model's item table), or set alpha=0."
                )
            # Not persistent: checkpoints stay loadable without it (it only matters for training).
            self.register_buffer("collaborative_emb", collab, persistent=False)
            if self.rat_init == "collaborative":
                self._warm_start(collab, getattr(dataset, COLLABORATIVE_STATE_ATTR, None))
        else:
            self.collaborative_emb = None
            if self.alpha > 0:
                self.logger.warning(
                    set_color(
                        f"{type(self).__name__}: alpha={self.alpha} but no collaborative item table is "
                        "attached to the dataset; collaborative alignment is off.",
                        "yellow",
                    )
                )
        #: the last training step's loss terms (floats), for logging and tests
        self.loss_components = {}
        self._loss_sums, self._loss_steps = {}, 0
        if not bool(_cfg(config, "output_bias")) and isinstance(getattr(self, "output_bias", None), torch.nn.Parameter):
            # BERT4Rec's free per-item bias would learn popularity beside a frozen item table: off unless asked
            bias = self.output_bias.detach()
            del self.output_bias
            self.register_buffer("output_bias", torch.zeros_like(bias))

    def _warm_start(self, collab, state):
        """RAT starts where the alignment SASRec ended: the adapter fitted to its item table, and a
        SASRec backbone's encoder (positions, layers, norms) loaded from its weights."""
        r2 = self.item_embedding.fit_adapter(collab[1:])
        message = f"{type(self).__name__}: warm start, adapter fitted to the alignment SASRec's item table (R^2 {r2:.3f})"
        if self.item_embedding.id_weight is not None:  # text-plus-id: the ids hold what the text does not explain
            with torch.no_grad():
                self.item_embedding.id_weight.copy_(collab[1:] - self.item_embedding.adapted())
            message += ", id table = the rest of the SASRec's table"
        if self.warm_start_encoder():
            if state is None:
                raise UserError("rat_init=collaborative: the alignment SASRec's weights are missing from its cache "
                                "entry (built by an older version); delete the entry to retrain it.")
            own = self.state_dict()
            encoder = {k: v for k, v in state.items() if not k.startswith("item_embedding.")}
            bad = [k for k, v in encoder.items() if k not in own or own[k].shape != v.shape]
            if bad:
                raise UserError(
                    f"rat_init=collaborative: the alignment SASRec's encoder does not fit {type(self).__name__} "
                    f"({', '.join(bad[:3])}): give both the same n_layers, n_heads, inner_size and MAX_ITEM_LIST_LENGTH."
                )
            self.load_state_dict(encoder, strict=False)
            message += " and its encoder loaded"
        self.warm_start_r2 = r2
        self.logger.info(set_color(message, "green"))

    @property
    def align_enabled(self):
        return self.alpha > 0 and self.collaborative_emb is not None

    def pop_epoch_losses(self):
        """Each loss term's mean over the steps since the last call (the trainer logs it per epoch)."""
        means = {k: v / max(self._loss_steps, 1) for k, v in self._loss_sums.items()}
        self._loss_sums, self._loss_steps = {}, 0
        return means

    # ---------------------------------------------------------------- alignment
    def alignment_targets(self, interaction):
        """The batch's target item ids (may contain padding 0s and repeats); BERT4Rec's are the items
        at its masked positions (unmasked slots are padding)."""
        return interaction[self.POS_ITEMS if isinstance(self, BERT4Rec) else self.POS_ITEM_ID]

    def alignment_loss(self, interaction):
        """Contrastive loss between the adapted and the collaborative vectors of the batch's target items,
        each once or every position (``align_targets``; unweighted: ``calculate_loss`` multiplies by ``alpha``)."""
        ids = self.alignment_targets(interaction).reshape(-1)
        ids = ids[ids > 0]
        if self.align_targets == "unique":
            ids = torch.unique(ids)
        adapted = self.item_embedding(ids)
        collaborative = self.collaborative_emb[ids]
        if self.align_loss_fn is losses.soft_contrastive_loss:
            return losses.soft_contrastive_loss(collaborative, adapted, tau=self.align_tau, normalize=self.align_normalize)
        return self.align_loss_fn(collaborative, adapted, tau=self.align_tau)

    # ---------------------------------------------------------------- RecBole entry points
    def forward(self, *args, **kwargs):
        """The backbone's forward; its lookups of the input sequence scaled by ``seq_input_scale``."""
        with self.item_embedding.lookups_scaled(self.seq_input_scale):
            return super().forward(*args, **kwargs)

    def calculate_loss(self, interaction):
        with self.item_embedding.cached():
            loss = super().calculate_loss(interaction)
            components = {"rec": loss.detach().item()}
            if self.align_enabled:
                align = self.alignment_loss(interaction)
                components["align"] = align.detach().item()
                loss = loss + self.alpha * align
                components["align_share"] = self.alpha * components["align"] / max(loss.detach().item(), 1e-12)
        self.loss_components = components
        for k, v in components.items():
            self._loss_sums[k] = self._loss_sums.get(k, 0.0) + v
        self._loss_steps += 1
        return loss

    def predict(self, interaction):
        with self.item_embedding.cached():
            return super().predict(interaction)

    def full_sort_predict(self, interaction):
        with self.item_embedding.cached():
            return super().full_sort_predict(interaction)


class LLMEmbSASRec(LLMEmbMixin, SASRec):
    """RecBole's SASRec with LLMEmb's adapted frozen LM item table and collaborative alignment."""


class LLMEmbGRU4Rec(LLMEmbMixin, GRU4Rec):
    """RecBole's GRU4Rec with LLMEmb's adapted frozen LM item table (output size ``embedding_size``)."""


class LLMEmbBERT4Rec(LLMEmbMixin, BERT4Rec):
    """RecBole's BERT4Rec with LLMEmb's adapted frozen LM item table; the mask token (index
    ``n_items``) gets its own trainable vector, as in the official code."""
