"""run_recbole_llmemb(): RecBole's quick start for every model, plugin stages first, long-tail always.

The pipeline, each stage logged with whether it was reused or built and its time:
atomic files -> dataset -> (plugin models: item embeddings, collaborative table) -> split ->
long-tail groups -> training -> best-checkpoint evaluation (overall + groups) -> results file.
``recbole.quick_start`` is never imported: it pulls in ray (see compat.py).
"""
import json
import os
import sys
from logging import getLogger

import torch

from recbole_llmemb import distributed
from recbole_llmemb.data.atomic import check_atomic_files
from recbole_llmemb.data.dataset import (
    BLEND_ITEM_EMB_ATTR, LLM_ITEM_EMB_ATTR, align_item_embeddings, attach_collaborative_embeddings, attach_item_embeddings,
)
from recbole_llmemb.evaluation.paired import GROUPS, compare_blocks, format_ratio
from recbole_llmemb.pipeline import training
from recbole_llmemb.pipeline.config import (
    Config, UserError, embedding_method, is_plugin_model, split_command_line, uses_collaborative,
)
from recbole_llmemb.pipeline.checks import no_own_vectors, uses_text_query
from recbole_llmemb.pipeline.training import load_dataset, stage  # noqa: F401  (load_dataset: part of the API)

from recbole.utils import init_logger  # noqa: E402  (after compat)


def text_vectors_method(config, model_class):
    """The embedding method whose vectors the re-ranker reads: ``text_blend_vectors``, with ``own``
    resolved to the plugin model's own method."""
    method = str(config["text_blend_vectors"])
    if method == "own":
        if not is_plugin_model(model_class):
            raise no_own_vectors(config["model"])  # a config built in code, past the runner's check
        return embedding_method(model_class, config)
    return method


def prepare_plugin_inputs(config, dataset, model_class, seconds):
    """Attach what a run reads from its dataset: a plugin model's LM item embeddings and collaborative
    table, the text vectors of the re-ranker and of ``text_score``. Returns the alignment SASRec's results file when one was
    used (else ``None``)."""
    from recbole_llmemb.pipeline.generate import item_embeddings

    own = None
    if is_plugin_model(model_class):
        own = embedding_method(model_class, config)
        with stage(f"item_embeddings[{own}]", seconds):
            emb = item_embeddings(config, dataset, method=own)
            attach_item_embeddings(dataset, align_item_embeddings(dataset, emb.tokens, emb.vectors, own))
    if uses_text_query(config, own is not None):
        method = text_vectors_method(config, model_class)
        if method == own:
            attach_item_embeddings(dataset, getattr(dataset, LLM_ITEM_EMB_ATTR), name=BLEND_ITEM_EMB_ATTR)
        else:
            with stage(f"item_embeddings[{method}] (text query)", seconds):
                emb = item_embeddings(config, dataset, method=method)
                attach_item_embeddings(dataset, align_item_embeddings(dataset, emb.tokens, emb.vectors, method),
                                       name=BLEND_ITEM_EMB_ATTR)
    if uses_collaborative(model_class, config):
        from recbole_llmemb.pipeline.collaborative import collaborative_item_embeddings

        with stage("collaborative_sasrec", seconds):
            table, state, sasrec_results = collaborative_item_embeddings(config, dataset)
            attach_collaborative_embeddings(dataset, table, state)
        return sasrec_results
    return None


def train_and_evaluate(config, saved=True):
    """The whole pipeline for a built Config (plugin stages, then training and evaluation);
    returns (results dict, trainer, dataset)."""
    return training.train_and_evaluate(config, saved=saved, prepare=prepare_plugin_inputs)


def what_differs(results, base):
    """The ways a plugin run differs from its alignment SASRec besides the item table, in words."""
    config, name = results["config"], results["model"]
    notes = []
    if config.get("rat_init") == "collaborative" and not results.get("eval_checkpoint"):
        notes.append(f"{name} started from this SASRec's weights and trained {len(results['history'])} epochs more "
                     f"(SASRec: {len(base['history'])} epochs)")
    if float(config.get("text_blend") or 0) > 0:
        notes.append(f"{name} is re-ranked with the text (text_blend={config['text_blend']}) and SASRec is not: "
                     "not like for like")
    return notes


def compare_with_alignment_sasrec(results, metric="ndcg@10"):
    """The run's test metric beside the alignment SASRec's (trained on the same split), per group, each
    ratio with its 95% paired bootstrap interval over the test users."""
    path = results.get("alignment_sasrec_results")
    try:
        with open(path) as f:
            base = json.load(f)
    except (TypeError, OSError, ValueError):
        return ""
    name = results["model"]
    compared = compare_blocks(results["test"], base["test"], metric) or {}
    lines = [f"{metric} on the test set: {name} vs its alignment SASRec (same split, seed and architecture; "
             f"{os.path.basename(path)})"]
    lines += [f"  what differs besides the item table: {note}" for note in what_differs(results, base)]
    lines.append(f"{'group':<14}{name:>16}{'SASRec':>10}  ratio [95% paired bootstrap interval over users]")
    for group in (g for g in GROUPS if g == "overall" or g in results["test"]["groups"]):
        entry = compared.get(group)
        mine = results["test"]["overall"] if group == "overall" else results["test"]["groups"][group]["metrics"]
        theirs = base["test"]["overall"] if group == "overall" else base["test"]["groups"].get(group, {}).get("metrics", {})
        a, b = mine.get(metric), theirs.get(metric)
        ratio = format_ratio(entry) if entry else (f"{a / b:.2f}x" if a is not None and b else "-")
        lines.append(f"{group:<14}{a if a is not None else float('nan'):>16.4f}{b if b is not None else float('nan'):>10.4f}  {ratio}")
    d = results["test"].get("diagnostics", {}), base["test"].get("diagnostics", {})
    if d[0] and d[1]:
        for key in ("effective_rank", "coverage@10", "tail_share@10"):
            lines.append(f"{key:<14}{d[0].get(key, float('nan')):>16.4g}{d[1].get(key, float('nan')):>10.4g}")
    return "\n".join(lines)


def run_recbole_llmemb(model=None, dataset=None, config_file_list=None, config_dict=None, saved=True):
    """Train and evaluate ``model`` (plugin or RecBole) on ``dataset``; returns the results dict.

    ``config_dict`` is the top layer (the runner puts the command line there). With ``nproc`` > 1 (or
    a ``world_size`` beyond it) the run goes to that many processes (:func:`launch`); under ``torchrun``
    this process is one of them.
    """
    config_dict = dict(config_dict or {})
    if "local_rank" not in config_dict:
        config_dict.update(distributed.torchrun_settings())
    nproc, world = int(config_dict.get("nproc") or 1), config_dict.get("world_size")
    if "local_rank" not in config_dict and (nproc > 1 or (world and int(world) > nproc)):
        return launch(model, dataset, config_file_list, config_dict, saved)
    config = Config(model, dataset, config_file_list, config_dict)
    config.check_applicable()
    init_logger(config)
    if config.ignored_file_keys:
        getLogger().warning(f"{config['model']} does not use {', '.join(config.ignored_file_keys)} from the config files "
                            "(left out of its results file)")
    getLogger().info(config)
    try:
        results, _, _ = train_and_evaluate(config, saved=saved)
    finally:
        main = distributed.is_main()
        if distributed.is_distributed():
            distributed.barrier()
            torch.distributed.destroy_process_group()
    return results if main else None  # several processes: rank 0 answers for the run


def launch(model, dataset, config_file_list, config_dict, saved=True):
    """RecBole's way to several processes on this machine: ``nproc`` processes spawned, each running
    the whole pipeline as one rank (``local_rank``), rank 0's results back through a queue. The
    settings and the data files are checked here first, so a mistake is one line, not one per process."""
    import torch.multiprocessing as mp

    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    try:  # RecBole's Config narrows the visible GPUs to gpu_id: not for the parent of several processes
        config = Config(model, dataset, config_file_list, config_dict)
        config.check_applicable()
        check_atomic_files(config)
    finally:
        if visible is None:
            os.environ.pop("CUDA_VISIBLE_DEVICES", None)
        else:
            os.environ["CUDA_VISIBLE_DEVICES"] = visible
    nproc = int(config_dict.get("nproc") or 1)
    config_dict = {**config_dict, "nproc": nproc, "world_size": int(config_dict.get("world_size") or nproc)}
    queue = mp.get_context("spawn").SimpleQueue()
    try:
        mp.spawn(_run_rank, args=(model, dataset, config_file_list, config_dict, saved, queue), nprocs=nproc, join=True)
    except mp.ProcessExitedException as e:
        raise UserError(f"process {e.error_index} of {nproc} stopped (exit code {e.exit_code}); its message is above.") from None
    return None if queue.empty() else queue.get()


def _run_rank(local_rank, model, dataset, config_file_list, config_dict, saved, queue):
    """One process of :func:`launch`: the pipeline as rank ``local_rank`` (CPU threads shared out)."""
    if "OMP_NUM_THREADS" not in os.environ and not torch.cuda.is_available():
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // int(config_dict["nproc"])))
    try:
        results = run_recbole_llmemb(model, dataset, config_file_list, {**config_dict, "local_rank": local_rank}, saved)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    if results is not None:
        queue.put(results)


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
    if results is None:  # a process of a run on several machines other than the first
        return 0
    comparison = compare_with_alignment_sasrec(results)
    if comparison:
        print("\n" + comparison)
    print(f"\nresults file: {results['path']}")
    if report:
        from recbole_llmemb.pipeline.report import ReportError, write_report

        try:
            index = write_report([results["path"]], os.path.join(os.path.dirname(results["path"]), results["run_id"]))
        except ReportError as e:  # the run itself succeeded; its results file stands
            print(f"report not written: {e}", file=sys.stderr)
            return 0
        print(f"report: {index}")
    return 0
