"""Recommendation adaptation training (RAT), LLMEmb's stage 2, on any of RecBole's sequential backbones.

:class:`RATMixin` makes one change to the RecBole class it precedes in the bases: the trainable
item-id table becomes ``adapter(frozen item vectors)`` (:class:`~recbole_llmemb.model.adapter.AdaptedItemEmbedding`),
used both for the input sequence and for the scores, plus ``alpha *`` the collaborative alignment
loss (:mod:`recbole_llmemb.model.alignment`). With ``text_score`` > 0 the scores also hold the text's
own similarity term (:mod:`recbole_llmemb.model.text_score`), in training as in evaluation. With ``rat_init: collaborative`` (the default) it starts
where the alignment SASRec ended: the adapter fitted to that SASRec's item table, the id table
holding the rest, a SASRec backbone's encoder loaded.

What it reads from the dataset passed to ``__init__`` (attached by the pipeline,
:mod:`recbole_llmemb.data.dataset`): the item vectors (required), the alignment SASRec's table and
weights (for ``alpha > 0`` or the warm start). Its settings: ``props/rat.yaml``.
"""
import numpy as np
import torch
from recbole.model.sequential_recommender import BERT4Rec, GRU4Rec, SASRec
from recbole.utils import set_color

from recbole_llmemb.data.dataset import (
    BLEND_ITEM_EMB_ATTR, COLLABORATIVE_ITEM_EMB_ATTR, COLLABORATIVE_STATE_ATTR, ITEM_IS_HEAD_ATTR, LLM_ITEM_EMB_ATTR,
)
from recbole_llmemb.data.new_items import HELD_OUT_ATTR
from recbole_llmemb.errors import UserError
from recbole_llmemb.model.adapter import AdaptedItemEmbedding, adapter_precision
from recbole_llmemb.model.alignment import CollaborativeAlignment
from recbole_llmemb.model.self_distill import UserSelfDistillation, text_neighbours, training_histories
from recbole_llmemb.model.text_score import TextMixture, TextScore
from recbole_llmemb.settings import read


class RATMixin:
    """Put it before the RecBole class in the bases: ``class LLMEmbSASRec(RATMixin, SASRec)``."""

    #: the stage-1 method whose vectors the model reads unless ``llm_embedding_method`` says otherwise
    embedding_method = "scft"
    #: the method's props file, layered over props/rat.yaml (``None``: RAT's defaults as they are)
    method_props = None

    def __init__(self, config, dataset):
        super().__init__(config, dataset)
        vectors = getattr(dataset, LLM_ITEM_EMB_ATTR, None)
        if vectors is None:
            raise UserError(f"{type(self).__name__} needs the item vectors on the dataset (dataset.{LLM_ITEM_EMB_ATTR}): "
                            "run it through run_recbole_llmemb.py, which builds them and attaches them with "
                            "recbole_llmemb.data.dataset.attach_item_embeddings before data_preparation.")
        vectors = np.asarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or vectors.shape[0] != self.n_items:
            raise ValueError(f"dataset.{LLM_ITEM_EMB_ATTR} has shape {vectors.shape}; expected ({self.n_items}, d)")
        # The backbone's own table tells the size the adapter must produce and how many special rows
        # follow the items (BERT4Rec: the mask token). Built after the backbone's weight init.
        old = self.item_embedding
        hidden = read(config, "adapter_hidden")
        if hidden is None and read(config, "adapter_mode") == "principal":  # room for the table's many components
            hidden = max(vectors.shape[1] // 2, old.embedding_dim)
        self.item_embedding = AdaptedItemEmbedding(
            vectors, old.embedding_dim, n_special=old.num_embeddings - self.n_items,
            freeze=bool(read(config, "freeze_emb")), hidden=hidden,
            dropout=float(read(config, "adapter_dropout")), layernorm=bool(read(config, "adapter_layernorm")),
            special_init_std=config["initializer_range"] or 0.02, input_norm=read(config, "llm_emb_norm"),
            precision=adapter_precision(read(config, "adapter_precision"), config["device"]),
            init=read(config, "adapter_init"), id_table=bool(read(config, "item_id_emb")),
            id_dropout=float(read(config, "id_dropout")))
        self.adapter_mode = read(config, "adapter_mode")
        if self.adapter_mode == "principal":  # at the collaborative table's scale (its entries' RMS) when there is one
            table = getattr(dataset, COLLABORATIVE_ITEM_EMB_ATTR, None)
            scale = float(np.sqrt(np.mean(np.square(np.asarray(table, dtype=np.float64)[1:])))) if table is not None else 1.0
            self.item_embedding.fix_principal(scale)
        self.alpha = float(read(config, "alpha"))
        self.id_l2 = float(read(config, "id_l2"))
        self.seq_input_scale = old.embedding_dim ** 0.5 if read(config, "seq_input_scale") == "sqrt_hidden" else 1.0
        del old
        self.alignment = None
        held_out = getattr(dataset, HELD_OUT_ATTR, None)
        held_out = held_out if held_out is not None and held_out.any() else None
        collaborative = getattr(dataset, COLLABORATIVE_ITEM_EMB_ATTR, None)
        warm = read(config, "rat_init") == "collaborative" and not config["eval_checkpoint"]
        if collaborative is not None and (self.alpha > 0 or warm):
            collaborative = torch.as_tensor(np.asarray(collaborative, dtype=np.float32))
            if collaborative.shape != (self.n_items, self.item_embedding.embedding_dim):
                raise UserError(f"The collaborative item table has shape {tuple(collaborative.shape)}, but "
                                f"{type(self).__name__} needs ({self.n_items}, {self.item_embedding.embedding_dim}): "
                                f"train the alignment SASRec with hidden_size={self.item_embedding.embedding_dim} (the size "
                                "of this model's item table), or set alpha=0.")
            if self.alpha > 0:
                self.alignment = CollaborativeAlignment(collaborative, read(config, "align_loss"),
                                                        read(config, "align_tau"), read(config, "align_targets"))
            if warm:
                self._warm_start(collaborative, getattr(dataset, COLLABORATIVE_STATE_ATTR, None), held_out)
        elif warm:
            raise UserError(f"{type(self).__name__} with rat_init=collaborative needs the alignment SASRec's item "
                            "table on the dataset: run it through run_recbole_llmemb.py, which trains or loads it.")
        elif self.alpha > 0 and not config["eval_checkpoint"]:
            self.logger.warning(set_color(f"{type(self).__name__}: alpha={self.alpha} but no collaborative item table "
                                          "is attached to the dataset; collaborative alignment is off.", "yellow"))
        if not read(config, "output_bias") and isinstance(getattr(self, "output_bias", None), torch.nn.Parameter):
            # BERT4Rec's free per-item bias would learn popularity beside a frozen item table: off unless asked
            bias = self.output_bias.detach()
            del self.output_bias
            self.register_buffer("output_bias", torch.zeros_like(bias))
        no_ids = held_out  # new items (``new_items``): their text alone
        if read(config, "id_offsets") == "head" and self.item_embedding.id_weight is not None:
            # tail items ranked by their text alone (with new_item_ids=neighbours they borrow, as new items do)
            is_tail = torch.as_tensor(self._tail_items(dataset, "id_offsets=head", "or leave id_offsets out"))
            no_ids = is_tail if no_ids is None else (torch.as_tensor(no_ids, dtype=torch.bool) | is_tail)
        if no_ids is not None:
            self.item_embedding.hold_out_ids(no_ids, neighbours=10 if read(config, "new_item_ids") == "neighbours" else 0)
        self.text_score = self._text_score(config, dataset)
        self.text_mixture = self._text_mixture(config, dataset, held_out)
        self.text_mixture_own_loss = float(read(config, "text_mixture_own_loss"))
        self.self_distill_weight = float(read(config, "self_distill"))
        self.self_distill = self._self_distill(config, dataset)
        #: the last training step's loss terms, and their sums since the trainer last asked (per-epoch means)
        self.loss_components, self._loss_sums, self._loss_steps = {}, {}, 0

    def _warm_start(self, collaborative, state, held_out=None):
        """The adapter fitted to the SASRec's item table (but for the rows of held-out items, which that
        SASRec never trained), the id table holding the rest, and a SASRec backbone's encoder
        (positions, layers, norms) loaded from its weights."""
        rows = None if held_out is None else ~held_out[1:]
        if self.adapter_mode == "principal":  # fixed: the text's own principal components, fitted to nothing
            self.warm_start_r2 = self.item_embedding.fit_adapter(collaborative[1:], steps=0, rows=rows)
            message = (f"{type(self).__name__}: warm start, adapter fixed at the text's principal components (R^2 to the "
                       f"alignment SASRec's item table {self.warm_start_r2:.3f})")
        else:
            self.warm_start_r2 = self.item_embedding.fit_adapter(collaborative[1:], rows=rows)
            message = f"{type(self).__name__}: warm start, adapter fitted to the alignment SASRec's item table (R^2 {self.warm_start_r2:.3f})"
        if self.item_embedding.id_weight is not None:
            with torch.no_grad():
                self.item_embedding.id_weight.copy_(collaborative[1:] - self.item_embedding.adapted())
            message += ", id table = the rest of the SASRec's table"
        if isinstance(self, SASRec):
            if state is None:
                raise UserError("rat_init=collaborative: the alignment SASRec's weights are missing from its cache "
                                "entry (built by an older version); delete the entry to retrain it.")
            own = self.state_dict()
            # the item table is the adapter's and the id table's; a loss's class weights (target_weights) are set per run
            encoder = {k: v for k, v in state.items() if not k.startswith(("item_embedding.", "loss_fct."))}
            bad = [k for k, v in encoder.items() if k not in own or own[k].shape != v.shape]
            if bad:
                raise UserError(f"rat_init=collaborative: the alignment SASRec's encoder does not fit {type(self).__name__} "
                                f"({', '.join(bad[:3])}): give both the same n_layers, n_heads, inner_size and "
                                "MAX_ITEM_LIST_LENGTH.")
            self.load_state_dict(encoder, strict=False)
            message += " and its encoder loaded"
        self.logger.info(set_color(message, "green"))

    @staticmethod
    def _text_vectors(dataset, setting):
        """The text query's item vectors the pipeline attached to ``dataset`` (``setting`` names who asks)."""
        vectors = getattr(dataset, BLEND_ITEM_EMB_ATTR, None)
        if vectors is None:
            raise UserError(f"{setting}: the text vectors are not on the dataset (dataset.{BLEND_ITEM_EMB_ATTR}); "
                            "run through run_recbole_llmemb.py, which builds them.")
        return vectors

    @staticmethod
    def _tail_items(dataset, setting, otherwise):
        """Bool per item id: the tail items of the training split (padding not one), for ``setting``'s gate."""
        is_head = getattr(dataset, ITEM_IS_HEAD_ATTR, None)
        if is_head is None:
            raise UserError(f"{setting} needs the head items on the training split (dataset.{ITEM_IS_HEAD_ATTR}); run "
                            f"through run_recbole_llmemb.py, {otherwise}.")
        is_tail = ~np.asarray(is_head, dtype=bool)
        is_tail[0] = False
        return is_tail

    def _text_score(self, config, dataset):
        """The learned text term of the scores (``text_score`` > 0), else ``None``."""
        weight = float(read(config, "text_score"))
        if weight <= 0:
            return None
        if not isinstance(self, (SASRec, GRU4Rec)):
            raise UserError(f"text_score={weight}: {type(self).__name__} scores masked positions, and the text term is "
                            "defined for models that score a user's next item from the last position (SASRec, "
                            "GRU4Rec backbones); use the re-ranker (text_blend) or leave text_score out.")
        vectors = self._text_vectors(dataset, f"text_score={weight}")
        gate = read(config, "text_blend_gate")
        is_tail = None if gate == "none" else self._tail_items(
            dataset, f"text_score={weight} with text_blend_gate={gate}", "or set text_blend_gate=none")
        return TextScore(vectors, weight, read(config, "text_blend_last"), is_tail, gate,
                         trainable=bool(read(config, "text_score_trainable")))

    def _text_mixture(self, config, dataset, held_out=None):
        """The text's next-item distribution mixed with the model's (``text_mixture`` > 0), else ``None``."""
        share = float(read(config, "text_mixture"))
        if share <= 0:
            return None
        if not isinstance(self, (SASRec, GRU4Rec)):
            raise UserError(f"text_mixture={share}: the mixture is of next-item distributions over every item, defined "
                            "for SASRec and GRU4Rec backbones; leave text_mixture out.")
        new_share = read(config, "text_mixture_new_share") if held_out is not None else None
        tail_share = read(config, "text_mixture_tail_share")
        is_tail = None if tail_share is None else self._tail_items(
            dataset, f"text_mixture_tail_share={tail_share}", "or leave text_mixture_tail_share out")
        return TextMixture(self._text_vectors(dataset, f"text_mixture={share}"), share, float(read(config, "text_mixture_tau")),
                           read(config, "text_blend_last"), read(config, "text_mixture_over"),
                           None if new_share is None else float(new_share), None if new_share is None else held_out,
                           None if tail_share is None else float(tail_share), is_tail)

    def _self_distill(self, config, dataset):
        """LLM-ESR's self-distillation towards text-retrieved users (``self_distill`` > 0), else ``None``."""
        if self.self_distill_weight <= 0:
            return None
        if not isinstance(self, (SASRec, GRU4Rec)):
            raise UserError(f"self_distill={self.self_distill_weight}: {type(self).__name__} represents masked positions, "
                            "and the distillation is defined for models that represent a user by the last position "
                            "(SASRec, GRU4Rec backbones); leave self_distill out.")
        vectors = self._text_vectors(dataset, f"self_distill={self.self_distill_weight}")
        self.USER_ID = config["USER_ID_FIELD"]
        histories, lengths = training_histories(dataset, self.USER_ID, self.ITEM_SEQ, self.ITEM_SEQ_LEN,
                                                self.POS_ITEM_ID, self.max_seq_length)
        neighbours = text_neighbours(histories, lengths, vectors, read(config, "self_distill_users"))
        return UserSelfDistillation(histories, lengths, neighbours)

    def on_epoch_start(self):
        """Called by the trainer as a training epoch starts: the self-distillation's teachers recomputed."""
        if self.self_distill is None:
            return
        training = self.training
        self.eval()
        with self.item_embedding.cached():
            self.self_distill.refresh(self.forward)
        self.train(training)

    def _text_term(self, interaction, items=None):
        return self.text_score(interaction[self.ITEM_SEQ], interaction[self.ITEM_SEQ_LEN], items)

    def _next_item_loss(self, interaction):
        """The backbone's next-item loss (SASRec's and GRU4Rec's, CE or BPR) on scores that hold the text
        term when there is one, and the users' representations it scored."""
        seq_output = self.forward(interaction[self.ITEM_SEQ], interaction[self.ITEM_SEQ_LEN])
        pos = interaction[self.POS_ITEM_ID]
        text = self.text_score is not None
        if self.loss_type == "BPR" and self.text_mixture is not None:  # the pair's log-probabilities in the mixture
            logits = seq_output @ self.item_embedding.weight.T
            logits = logits + self._text_term(interaction) if text else logits
            mixed = self.text_mixture(logits, interaction[self.ITEM_SEQ], interaction[self.ITEM_SEQ_LEN], pos)
            pair = torch.stack([pos, interaction[self.NEG_ITEM_ID]], dim=1)
            chosen, raw = mixed.gather(1, pair), logits.gather(1, pair)
            loss = self.loss_fct(chosen[:, 0], chosen[:, 1])
            own = self.text_mixture_own_loss
            return (loss + own * self.loss_fct(raw[:, 0], raw[:, 1]) if own > 0 else loss), seq_output
        if self.loss_type == "BPR":
            def score(items):
                dot = (seq_output * self.item_embedding(items)).sum(-1)
                return dot + self._text_term(interaction, items) if text else dot
            return self.loss_fct(score(pos), score(interaction[self.NEG_ITEM_ID])), seq_output
        logits = seq_output @ self.item_embedding.weight.T
        logits = logits + self._text_term(interaction) if text else logits
        if self.text_mixture is None:
            return self.loss_fct(logits, pos), seq_output
        # log-probabilities: the cross-entropy of them is the mixture's
        loss = self.loss_fct(self.text_mixture(logits, interaction[self.ITEM_SEQ], interaction[self.ITEM_SEQ_LEN], pos), pos)
        own = self.text_mixture_own_loss
        return (loss + own * self.loss_fct(logits, pos) if own > 0 else loss), seq_output

    def forward(self, *args, **kwargs):
        """The backbone's forward; its lookups of the input sequence scaled by ``seq_input_scale``."""
        with self.item_embedding.lookups_scaled(self.seq_input_scale):
            return super().forward(*args, **kwargs)

    def calculate_loss(self, interaction):
        """The backbone's loss, plus ``alpha *`` the alignment of the batch's target items (and
        ``id_l2 *`` the id offsets' sum of squares)."""
        with self.item_embedding.cached():
            if self.text_score is None and self.self_distill is None and self.text_mixture is None:
                loss = super().calculate_loss(interaction)
            else:
                loss, seq_output = self._next_item_loss(interaction)
            components = {"rec": loss.item()}
            if self.self_distill is not None:
                if self.self_distill.teachers is None:  # trained outside the plugin's trainer
                    self.on_epoch_start()
                distill = self.self_distill(interaction[self.USER_ID], seq_output)
                loss = loss + self.self_distill_weight * distill
                components["distill"] = distill.item()
            if self.text_score is not None:
                components["text_weight"] = self.text_score.weight.item()
            if self.id_l2 > 0 and self.item_embedding.id_weight is not None:
                # a Gaussian prior centred on the text: the data must pay for each offset, so a rare item's stays small
                penalty = self.item_embedding.id_weight.pow(2).sum()
                loss = loss + self.id_l2 * penalty
                components["id_l2"] = penalty.item()
            if self.alignment is not None:
                targets = interaction[self.POS_ITEMS if isinstance(self, BERT4Rec) else self.POS_ITEM_ID]
                align = self.alignment(self.item_embedding, targets)
                loss = loss + self.alpha * align
                components.update(align=align.item(), align_share=self.alpha * align.item() / max(loss.item(), 1e-12))
        self.loss_components = components
        for k, v in components.items():
            self._loss_sums[k] = self._loss_sums.get(k, 0.0) + v
        self._loss_steps += 1
        return loss

    def predict(self, interaction):
        if self.text_mixture is not None:  # one candidate's probability needs the whole distribution
            items = interaction[self.ITEM_ID]
            return self.full_sort_predict(interaction).gather(1, items.unsqueeze(1)).squeeze(1)
        with self.item_embedding.cached():
            scores = super().predict(interaction)
        return scores if self.text_score is None else scores + self._text_term(interaction, interaction[self.ITEM_ID])

    def full_sort_predict(self, interaction):
        with self.item_embedding.cached():
            scores = super().full_sort_predict(interaction)
        scores = scores if self.text_score is None else scores + self._text_term(interaction)
        if self.text_mixture is not None:
            scores = self.text_mixture(scores, interaction[self.ITEM_SEQ], interaction[self.ITEM_SEQ_LEN])
        return scores

    def pop_epoch_losses(self):
        """Each loss term's mean over the steps since the last call (the trainer logs it per epoch)."""
        means = {k: v / max(self._loss_steps, 1) for k, v in self._loss_sums.items()}
        self._loss_sums, self._loss_steps = {}, 0
        return means

