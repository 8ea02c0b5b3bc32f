"""RecBole's trainers, with long-tail metrics in every evaluation and a per-epoch history.

``long_tail_trainer(base)`` adds the mixin to whichever trainer RecBole picks for a model, so
baselines and plugin models are evaluated by the same code.
"""
import os
import time
import uuid

import numpy as np
import torch
from recbole.model.abstract_recommender import SequentialRecommender
from recbole.utils import EvaluatorType

from recbole_llmemb import distributed
from recbole_llmemb.errors import UserError
from recbole_llmemb.settings import read
from recbole_llmemb.evaluation.diagnostics import table_diagnostics
from recbole_llmemb.evaluation.longtail import RankAccumulator, format_table, group_metrics


def unique_run_id(model, dataset):
    """A run id that two runs started in the same second never share."""
    return f"{model}-{dataset}-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"


class LongTailMixin:
    """Evaluate with per-group metrics; remember epoch times, losses and validation scores."""

    def __init__(self, config, model, groups=None, run_id=None, reranker=None):
        super().__init__(config, model)
        self.groups = groups
        #: blends the model's scores with the text's at every evaluation (``recbole_llmemb.evaluation.rerank``), or ``None``
        self.reranker = reranker
        self.run_id = run_id or unique_run_id(config["model"], config["dataset"])
        self.saved_model_file = os.path.join(self.checkpoint_dir, f"{self.run_id}.pth")
        self.ks = list(config["topk"])
        self.accumulator = RankAccumulator(max(self.ks))
        #: the input sequence's field when its items are left out of a sequential model's full ranking (``mask_history``)
        self.mask_field = model.ITEM_SEQ if read(config, "mask_history") and isinstance(model, SequentialRecommender) else None
        self.last_groups = None
        self.history = []

    # --- evaluation -------------------------------------------------------------------------
    def _full_sort_batch_eval(self, batched_data):
        if self.reranker is None:
            interaction, scores, positive_u, positive_i = super()._full_sort_batch_eval(batched_data)
        else:  # RecBole's steps, with the re-ranker between the scores and the masking of seen items
            interaction, history_index, positive_u, positive_i = batched_data
            scores = self._all_item_scores(interaction)
            scores[:, 0] = -np.inf
            if history_index is not None:
                scores[history_index] = -np.inf
        if self.mask_field is not None:  # padding is item 0, already out of the ranking
            scores.scatter_(1, interaction[self.mask_field].to(scores.device), -np.inf)
        self.accumulator.add(scores, interaction[self.config["USER_ID_FIELD"]], positive_u, positive_i)
        return interaction, scores, positive_u, positive_i

    def _all_item_scores(self, interaction):
        """``(rows, items)``: the model's score of every item for each row, re-ranked when a re-ranker is on."""
        try:
            scores = self.model.full_sort_predict(interaction.to(self.device)).view(len(interaction), -1)
        except NotImplementedError:
            raise UserError(f"text_blend: the re-ranker scores every item, and {type(self.model).__name__} has no "
                            "full_sort_predict; use text_blend=0 for it.") from None
        return scores if self.reranker is None else self.reranker(scores, interaction)

    #: score sampled candidates from one full-sort pass per evaluated row (see ``_sampled_scores``)
    fast_sampled_eval = True

    def _use_full_sort_for_samples(self):
        """Sequential models (one encoder pass per user, not per candidate) and any re-ranked model
        (the re-ranker standardises over the whole catalogue) score sampled candidates from a full sort."""
        return self.config["eval_type"] == EvaluatorType.RANKING and (
            self.reranker is not None or (self.fast_sampled_eval and isinstance(self.model, SequentialRecommender)))

    def _sampled_scores(self, interaction, row_idx):
        """The scores RecBole's ``predict`` gives each (row, candidate) pair, from one ``full_sort_predict``
        per distinct row. RecBole repeats a row's whole history for each of its 101 candidates, so
        ``predict`` runs the sequence encoder 101 times per user: hours on a CPU for Beauty."""
        n_rows = int(row_idx.max()) + 1
        first = torch.full((n_rows,), len(row_idx), dtype=torch.long)
        first.scatter_reduce_(0, row_idx.cpu(), torch.arange(len(row_idx)), reduce="amin")
        full = self._all_item_scores(interaction[first])
        items = interaction[self.config["ITEM_ID_FIELD"]].to(self.device)
        return full.view(n_rows, -1)[row_idx.to(self.device), items]

    def _neg_sample_batch_eval(self, batched_data):
        interaction, row_idx, positive_u, positive_i = batched_data
        if self._use_full_sort_for_samples():
            origin = self._sampled_scores(interaction, row_idx)
            scores = torch.full((int(positive_u[-1]) + 1, self.tot_item_num), -np.inf, device=self.device)
            scores[row_idx, interaction[self.config["ITEM_ID_FIELD"]]] = origin
        else:
            interaction, scores, positive_u, positive_i = super()._neg_sample_batch_eval(batched_data)
        if scores.dim() == 2:  # ranking: rows are users, interaction rows map to them by row_idx
            row_users = torch.zeros(scores.shape[0], dtype=torch.long)
            row_users[row_idx.cpu()] = interaction[self.config["USER_ID_FIELD"]].cpu()
            self.accumulator.add(scores, row_users, positive_u, positive_i)
        return interaction, scores, positive_u, positive_i

    @torch.no_grad()
    def evaluate(self, eval_data, load_best_model=True, model_file=None, show_progress=False):
        self.accumulator.reset()
        #: the rows of one whole pass (several processes each see a share, padded by their sampler)
        self._eval_rows = getattr(eval_data, "sample_size", None)
        if load_best_model:
            distributed.barrier()  # rank 0 has written the checkpoint the others load
        result = super().evaluate(eval_data, load_best_model, model_file, show_progress)
        self.last_groups = None
        if result is not None and self.groups is not None and self.accumulator._n_rows:
            self.last_groups = group_metrics(self.accumulator, self.groups, self.ks)
        return result

    def _map_reduce(self, result, num_sample):
        """Several processes: RecBole averages each rank's metrics weighted by its batch count (and
        counts the sampler's padding rows); here the ranking metrics are computed again over every
        rank's rows, each row once, as one process computes them. Other metrics keep RecBole's mean."""
        merged = super()._map_reduce(result, num_sample)
        if self.accumulator._n_rows and self._eval_rows:
            self.accumulator.gather(self._eval_rows)
            merged.update(topk_metrics(self.evaluator, self.accumulator))
        return merged

    def _save_checkpoint(self, epoch, verbose=True, **kwargs):
        """RecBole's checkpoint, written by rank 0 alone and atomically (a reader never sees half a file)."""
        if not distributed.is_main():
            return
        target = kwargs.pop("saved_model_file", self.saved_model_file)
        partial = f"{target}.partial"
        super()._save_checkpoint(epoch, verbose=False, saved_model_file=partial, **kwargs)
        os.replace(partial, target)
        if verbose:
            self.logger.info(f"Saving current: {target}")

    def group_table(self):
        return format_table(self.last_groups, self.ks) if self.last_groups else ""

    # --- history ----------------------------------------------------------------------------
    def _train_epoch(self, train_data, epoch_idx, *args, **kwargs):
        start = time.perf_counter()
        if hasattr(self.model, "on_epoch_start"):  # plugin models: state refreshed once an epoch (self_distill)
            self.model.on_epoch_start()
        loss = super()._train_epoch(train_data, epoch_idx, *args, **kwargs)
        total = sum(loss) if isinstance(loss, tuple) else loss
        entry = {"epoch": epoch_idx, "train_loss": distributed.mean_over_ranks(float(total)),
                 "epoch_seconds": time.perf_counter() - start}
        if hasattr(self.model, "pop_epoch_losses"):  # plugin models: each loss term's epoch mean
            entry["losses"] = {k: distributed.mean_over_ranks(v) for k, v in self.model.pop_epoch_losses().items()}
        self.history.append(entry)
        return loss

    def _valid_epoch(self, valid_data, show_progress=False):
        score, result = super()._valid_epoch(valid_data, show_progress=show_progress)
        if self.history:
            self.history[-1]["valid_score"] = float(score)
            self.history[-1]["valid"] = {k: float(v) for k, v in result.items()}
            if self.last_groups:
                self.history[-1]["valid_groups"] = {g: v["metrics"] for g, v in self.last_groups["groups"].items()}
            self.history[-1]["diagnostics"] = {**table_diagnostics(self.model), **(self.last_groups or {}).get("diagnostics", {})}
        return score, result


def topk_metrics(evaluator, accumulator):
    """RecBole's ranking metrics (those computed from the top-k lists alone: Hit, NDCG, MRR, Recall,
    Precision, MAP) from the accumulator's ranks, through RecBole's own metric classes."""
    from recbole.evaluator.collector import DataStruct

    _, pos_len, pair_row, _, pair_rank = accumulator.arrays()
    k = accumulator.max_k
    topk = torch.zeros(len(pos_len), k + 1, dtype=torch.int64)
    listed = pair_rank < k
    topk[torch.as_tensor(pair_row[listed]), torch.as_tensor(pair_rank[listed])] = 1
    topk[:, -1] = torch.as_tensor(pos_len)
    struct = DataStruct()
    struct.set("rec.topk", topk)
    out = {}
    for metric in evaluator.metric_class.values():
        if list(getattr(metric, "metric_need", [])) == ["rec.topk"]:
            out.update(metric.calculate_metric(struct))
    return out


_CLASSES = {}


def long_tail_trainer(base):
    """The long-tail version of a RecBole trainer class (one class per base, cached)."""
    if base not in _CLASSES:
        _CLASSES[base] = type(f"LongTail{base.__name__}", (LongTailMixin, base), {"__module__": __name__})
    return _CLASSES[base]
