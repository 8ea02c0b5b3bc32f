"""run_recbole_llmemb(): RecBole's quick start for every model, plugin stages first, long-tail always.

The pipeline, each stage logged with whether it was reused or built and its time:
atomic files -> dataset -> (plugin models: item embeddings, collaborative table) -> split ->
long-tail groups -> training -> best-checkpoint evaluation (overall + groups) -> results file.
``recbole.quick_start`` is never imported: it pulls in ray (see compat.py).
"""
import json
import os
import sys
import time
from contextlib import contextmanager
from logging import getLogger

import pandas as pd

from recbole_llmemb.config import Config, UserError, get_model_class, split_command_line
from recbole_llmemb.data.atomic import check_atomic_files
from recbole_llmemb.evaluation.diagnostics import table_diagnostics
from recbole_llmemb.evaluation.longtail import build_groups, format_table, training_counts
from recbole_llmemb.evaluation.results import atomic_write_json, build_results
from recbole_llmemb.evaluation.trainer import long_tail_trainer, unique_run_id

from recbole.data import create_dataset, data_preparation  # noqa: E402  (after compat)
from recbole.utils import get_trainer, init_logger, init_seed, set_color  # noqa: E402


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


def prepare_plugin_inputs(config, dataset, model_class, seconds):
    """Attach what a plugin model reads from its dataset: LM item embeddings, a collaborative table.
    Returns the alignment SASRec's results file when one was used (else ``None``)."""
    method = getattr(model_class, "item_embedding_method", None)
    if method:
        from recbole_llmemb.data.dataset import align_item_embeddings, attach_item_embeddings
        from recbole_llmemb.generate import item_embeddings

        with stage(f"item_embeddings[{config['llm_embedding_method'] or method}]", seconds):
            emb = item_embeddings(config, dataset, method=config["llm_embedding_method"] or method)
            attach_item_embeddings(dataset, align_item_embeddings(dataset, emb.tokens, emb.vectors))
    if getattr(model_class, "needs_collaborative", False) and model_class.uses_collaborative(config):
        from recbole_llmemb.collaborative import collaborative_item_embeddings
        from recbole_llmemb.data.dataset import attach_collaborative_embeddings

        with stage("collaborative_sasrec", seconds):
            table, state, sasrec_results = collaborative_item_embeddings(config, dataset)
            attach_collaborative_embeddings(dataset, table, state)
        return sasrec_results
    return None


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


def train_and_evaluate(config, saved=True):
    """Run the whole pipeline for a built Config; returns (results dict, trainer, dataset)."""
    seconds = {}
    logger = getLogger()
    init_seed(config["seed"], config["reproducibility"])
    model_class = get_model_class(config["model"])
    if config["eval_checkpoint"] and not os.path.isfile(config["eval_checkpoint"]):
        raise UserError(f"eval_checkpoint={config['eval_checkpoint']}: no such checkpoint file.")
    if hasattr(model_class, "check_config"):
        model_class.check_config(config)
    with stage("dataset", seconds):
        dataset = load_dataset(config)
        logger.info(dataset)
    sasrec_results = prepare_plugin_inputs(config, dataset, model_class, seconds)
    init_seed(config["seed"], config["reproducibility"])  # same split/shuffle whether stages were cached or built
    with stage("split", seconds):
        train_data, valid_data, test_data = data_preparation(config, dataset)
        lt = config["long_tail"] or {}
        groups = build_groups(*training_counts(dataset, [valid_data.dataset, test_data.dataset]), **lt)

    init_seed(config["seed"] + config["local_rank"], config["reproducibility"])
    model = model_class(config, train_data.dataset).to(config["device"])
    logger.info(model)
    run_id = unique_run_id(config["model"], config["dataset"])
    trainer_class = long_tail_trainer(get_trainer(config["MODEL_TYPE"], config["model"]))
    trainer = trainer_class(config, model, groups=groups, run_id=run_id)

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
    atomic_write_json(path, results)
    results["path"] = os.path.abspath(path)
    logger.info(set_color("results file", "blue") + f": {results['path']}")
    return results, trainer, dataset


def compare_with_alignment_sasrec(results, metric="ndcg@10"):
    """The run's test metric beside the alignment SASRec's (trained on the same split), per group."""
    path = results.get("alignment_sasrec_results")
    try:
        with open(path) as f:
            base = json.load(f)["test"]
    except (TypeError, OSError, ValueError, KeyError):
        return ""
    mine = results["test"]
    rows = [("overall", mine["overall"].get(metric), base["overall"].get(metric))]
    rows += [(g, mine["groups"][g]["metrics"].get(metric), base["groups"].get(g, {}).get("metrics", {}).get(metric))
             for g in mine["groups"]]
    name = results["model"]
    lines = [f"{metric} on the test set: {name} vs its alignment SASRec (same split; {os.path.basename(path)})",
             f"{'group':<14}{name:>16}{'SASRec':>10}{'ratio':>8}"]
    for group, a, b in rows:
        ratio = f"{a / b:.2f}x" if a is not None and b else "-"
        lines.append(f"{group:<14}{a if a is not None else float('nan'):>16.4f}{b if b is not None else float('nan'):>10.4f}{ratio:>8}")
    d = mine.get("diagnostics", {}), base.get("diagnostics", {})
    if d[0] and d[1]:
        for key in ("effective_rank", "coverage@10", "tail_share@10"):
            lines.append(f"{key:<14}{d[0].get(key, float('nan')):>16.4g}{d[1].get(key, float('nan')):>10.4g}")
    return "\n".join(lines)


def run_recbole_llmemb(model=None, dataset=None, config_file_list=None, config_dict=None, saved=True):
    """Train and evaluate ``model`` (plugin or RecBole) on ``dataset``; returns the results dict.

    ``config_dict`` is the top layer (the runner puts the command line there).
    """
    config = Config(model, dataset, config_file_list, config_dict)
    init_logger(config)
    getLogger().info(config)
    results, _, _ = train_and_evaluate(config, saved=saved)
    return results


def main(argv=None):
    """Console entry point: exit 0 on success, 2 with one line on a user error."""
    argv = sys.argv[1:] if argv is None else argv
    try:
        model, dataset, files, args = split_command_line(argv)
        report = args.pop("report", False)
        results = run_recbole_llmemb(model, dataset, files, args)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    comparison = compare_with_alignment_sasrec(results)
    if comparison:
        print("\n" + comparison)
    print(f"\nresults file: {results['path']}")
    if report:
        from recbole_llmemb.report import ReportError, write_report

        try:
            index = write_report([results["path"]], os.path.join(os.path.dirname(results["path"]), results["run_id"]))
        except ReportError as e:  # the run itself succeeded; its results file stands
            print(f"report not written: {e}", file=sys.stderr)
            return 0
        print(f"report: {index}")
    return 0
