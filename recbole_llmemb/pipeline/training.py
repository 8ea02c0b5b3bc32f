"""One run of a RecBole model on a loaded dataset: split, train, evaluate (overall and long-tail
groups), results file. The pipeline (``quick_start``) adds the plugin stages through ``prepare``;
stages that train a model themselves (the alignment SASRec) call :func:`train_and_evaluate` here,
so nothing below the pipeline imports it.
"""
import os
import time
from contextlib import contextmanager
from logging import getLogger

import pandas as pd

from recbole_llmemb import distributed
from recbole_llmemb.pipeline.config import get_model_class
from recbole_llmemb.data.atomic import check_atomic_files
from recbole_llmemb.data.dataset import BLEND_ITEM_EMB_ATTR, ITEM_IS_HEAD_ATTR
from recbole_llmemb.data.drift import recent_mix_weights, weight_loss
from recbole_llmemb.data.new_items import choose_new_items, exclude_from_loss, hold_out
from recbole_llmemb.errors import UserError
from recbole_llmemb.evaluation.diagnostics import table_diagnostics
from recbole_llmemb.evaluation.longtail import build_groups, format_table, training_counts
from recbole_llmemb.evaluation.results import atomic_write_json, build_results
from recbole_llmemb.evaluation.trainer import long_tail_trainer, unique_run_id
from recbole_llmemb.evaluation.rerank import TextReranker

from recbole.data import create_dataset, data_preparation  # noqa: E402  (after compat, imported by config)
from recbole.utils import ModelType, get_trainer, init_seed, set_color  # noqa: E402


@contextmanager
def stage(name, seconds):
    """Time a pipeline stage into ``seconds[name]`` and log it."""
    start = time.perf_counter()
    yield
    seconds[name] = time.perf_counter() - start
    getLogger().info(set_color(f"stage {name}", "green") + f": {seconds[name]:.1f}s")


def load_dataset(config):
    """RecBole's dataset for this config, or one clear error about the atomic files."""
    check_atomic_files(config)
    model_class = get_model_class(config["model"])
    dataset_class = getattr(model_class, "dataset_class", None)
    try:
        dataset = dataset_class(config) if dataset_class else create_dataset(config)
    except (pd.errors.ParserError, ValueError, KeyError) as e:
        if "is empty" not in str(e):
            raise UserError(f"Could not load dataset '{config['dataset']}' from {config['data_path']}: {e}") from None
        dataset = None
    if dataset is None or dataset.inter_num == 0:
        raise UserError(
            f"Dataset '{config['dataset']}' has no interactions left after filtering "
            f"(user_inter_num_interval={config['user_inter_num_interval']}, "
            f"item_inter_num_interval={config['item_inter_num_interval']}). Loosen the filters."
        )
    return dataset


def check_topk(config, dataset):
    """Metrics at k rank k items: a catalogue smaller than the largest k is one clear error (RecBole's
    evaluator would fail inside ``torch.topk``)."""
    n_items, topk = dataset.item_num - 1, config["topk"]
    ks = list(topk) if isinstance(topk, (list, tuple)) else [int(topk)]
    if n_items < max(ks):
        smaller = [k for k in ks if k <= n_items] or [n_items]
        raise UserError(f"topk={topk}: dataset '{config['dataset']}' has {n_items} items after filtering, fewer "
                        f"than {max(ks)}; rank fewer, e.g. --topk={smaller}.")


#: the most bytes one evaluation batch's score matrix (users x every item, float32) may take
SCORE_BUDGET = 2 ** 30


def cap_eval_batch(config, dataset):
    """A sequential model's full ranking scores ``eval_batch_size`` users against every item at once:
    4,096 x 1,000,000 items is 16 GB. Fewer users per batch where the matrix would pass
    :data:`SCORE_BUDGET` (the metrics do not change, only the batching)."""
    mode = config["eval_args"]["mode"]
    if config["MODEL_TYPE"] != ModelType.SEQUENTIAL or "full" not in (mode.values() if isinstance(mode, dict) else [mode]):
        return
    users = max(1, SCORE_BUDGET // (4 * dataset.item_num))
    if config["eval_batch_size"] > users:
        getLogger().info(f"eval_batch_size {config['eval_batch_size']} -> {users}: {config['eval_batch_size']} users x "
                         f"{dataset.item_num} items of scores would pass {SCORE_BUDGET // 2**20} MiB")
        config["eval_batch_size"] = users


def build_reranker(config, dataset, train_dataset, groups):
    """The text re-ranker when ``text_blend`` > 0 (its text vectors attached to ``dataset`` by the
    pipeline), else ``None``."""
    if float(config["text_blend"] or 0) <= 0:
        return None
    vectors = getattr(dataset, BLEND_ITEM_EMB_ATTR, None)
    if vectors is None:
        raise UserError(f"text_blend={config['text_blend']}: the re-ranker's text vectors are not on the dataset "
                        f"(dataset.{BLEND_ITEM_EMB_ATTR}); run through run_recbole_llmemb.py, which builds them.")
    sequential = config["MODEL_TYPE"] == ModelType.SEQUENTIAL
    reranker = TextReranker.from_config(config, vectors, train_dataset, groups.is_head, sequential, groups.is_new)
    getLogger().info(set_color("text re-ranker", "green") + f": z(model) + {config['text_blend']} x z(text cosine to the "
                     f"last {config['text_blend_last']} items; {config['text_blend_vectors']} vectors), gate "
                     f"{config['text_blend_gate']}")
    return reranker.to(config["device"])


def evaluate_best(trainer, data, saved):
    """The best checkpoint on ``data``: group metrics plus RecBole's own result, side by side."""
    recbole_result = {k: float(v) for k, v in trainer.evaluate(data, load_best_model=saved).items()}
    block = {"overall": recbole_result, **(trainer.last_groups or {}), "recbole": recbole_result}
    block["diagnostics"] = {**table_diagnostics(trainer.model), **block.get("diagnostics", {})}
    return block


def resume_into(trainer, checkpoint):
    """Continue training from ``checkpoint`` into this run's own checkpoint file (never the old one)."""
    if not os.path.isfile(checkpoint):
        raise UserError(f"resume_checkpoint={checkpoint}: no such checkpoint file.")
    own = trainer.saved_model_file
    trainer.resume_checkpoint(checkpoint)
    trainer.saved_model_file = own
    trainer._save_checkpoint(trainer.start_epoch - 1, verbose=False)  # the start is the best so far


def train_and_evaluate(config, saved=True, prepare=None):
    """Load, split, train and evaluate for a built Config; returns (results dict, trainer, dataset).

    ``prepare(config, dataset, model_class, seconds)`` runs after loading (the pipeline attaches the
    plugin models' inputs there) and may return the alignment SASRec's results file.
    """
    seconds = {}
    logger = getLogger()
    init_seed(config["seed"], config["reproducibility"])
    model_class = get_model_class(config["model"])
    if config["eval_checkpoint"] and not os.path.isfile(config["eval_checkpoint"]):
        raise UserError(f"eval_checkpoint={config['eval_checkpoint']}: no such checkpoint file.")
    with stage("dataset", seconds):
        dataset = load_dataset(config)
        logger.info(dataset)
    check_topk(config, dataset)
    is_new = None
    if float(config["new_items"] or 0) > 0:  # item cold start: before the plugin stages, which train on the split too
        is_new = choose_new_items(dataset.item_num, config["new_items"], config["seed"])
        hold_out(dataset, is_new)
        logger.info(set_color("new items", "green") + f": {int(is_new.sum())} of {dataset.item_num - 1} held out of training")
    sasrec_results = prepare(config, dataset, model_class, seconds) if prepare else None
    init_seed(config["seed"], config["reproducibility"])  # same split/shuffle whether stages were cached or built
    cap_eval_batch(config, dataset)
    with stage("split", seconds):
        train_data, valid_data, test_data = data_preparation(config, dataset)
        lt = config["long_tail"] or {}
        groups = build_groups(*training_counts(dataset, [valid_data.dataset, test_data.dataset], is_new), **lt, is_new=is_new)

    setattr(train_data.dataset, ITEM_IS_HEAD_ATTR, groups.is_head)
    init_seed(config["seed"] + config["local_rank"], config["reproducibility"])
    model = model_class(config, train_data.dataset).to(config["device"])
    logger.info(model)
    if config["target_weights"] == "recent":  # before new items' mask: it replaces the loss module
        weights = recent_mix_weights(train_data.dataset, groups.item_bucket)
        if weight_loss(model, weights):
            per_bucket = ", ".join(f"{label}: {weights[groups.item_bucket == b][0]:.2f}"
                                   for b, label in enumerate(groups.item_bucket_labels) if (groups.item_bucket == b).any())
            logger.info(set_color("target weights", "green") + f" by training count ({per_bucket})")
        else:
            raise UserError(f"target_weights=recent weighs a cross-entropy loss; {config['model']} trains with "
                            "another (BPR, or BERT4Rec's own): leave target_weights out.")
    if is_new is not None and not config["new_items_negatives"] and not exclude_from_loss(model, is_new):
        logger.warning(set_color(f"new items stay negatives of {config['model']}'s training loss: only RecBole's "
                                 "cross-entropy loss_fct can leave them out (not sampled negatives, nor BERT4Rec's "
                                 "own loss)", "yellow"))
    run_id = distributed.broadcast_object(unique_run_id(config["model"], config["dataset"]))  # one checkpoint name
    trainer_class = long_tail_trainer(get_trainer(config["MODEL_TYPE"], config["model"]))
    trainer = trainer_class(config, model, groups=groups, run_id=run_id,
                            reranker=build_reranker(config, dataset, train_data.dataset, groups))

    with stage("train", seconds):
        if config["eval_checkpoint"]:  # no training: evaluate a trained checkpoint (e.g. under another protocol)
            trainer.saved_model_file, saved = config["eval_checkpoint"], True
        else:
            if config["resume_checkpoint"]:  # go on training a run (RecBole restores weights, optimizer, epoch)
                resume_into(trainer, config["resume_checkpoint"])
            trainer.fit(train_data, valid_data, saved=saved, show_progress=config["show_progress"])
    with stage("test", seconds):
        valid = evaluate_best(trainer, valid_data, saved)
        test = evaluate_best(trainer, test_data, saved)
    for name, block in (("valid", valid), ("test", test)):
        logger.info(set_color(f"best {name} result", "yellow") + "\n" + format_table(block, config["topk"]))
    results = build_results(config, run_id, trainer, valid, test, seconds)
    if sasrec_results:
        results["alignment_sasrec_results"] = sasrec_results
    for key in ("eval_checkpoint", "resume_checkpoint"):
        if config[key]:
            results[key] = os.path.abspath(config[key])
    path = os.path.join(config["results_dir"] or "results", f"{run_id}.json")
    if distributed.is_main():  # every rank holds the same gathered results: one file
        atomic_write_json(path, results)
    results["path"] = os.path.abspath(path)
    logger.info(set_color("results file", "blue") + f": {results['path']}")
    return results, trainer, dataset
