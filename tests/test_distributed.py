"""Several processes (torch.distributed, gloo on the CPU): a plugin model trained by two processes
leaves what one process leaves (one results file and one checkpoint per run, one cache entry per
stage), sharded extraction equals one process's, and one checkpoint evaluated by one and by two
processes gives the same metrics, to the user (an odd number of users: the sampler pads a rank).
Two launches of two processes: the slowest tests of the suite, kept to the least that shows it."""
import glob
import json
import os
import socket

import numpy as np
import pytest

from recbole_llmemb import distributed
from recbole_llmemb.evaluation.longtail import RankAccumulator
from recbole_llmemb.pipeline.quick_start import run_recbole_llmemb

from conftest import tiny_config, write_tiny_dataset

pytestmark = pytest.mark.usefixtures("quiet_single_thread")


def free_port():
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def results_of(folder):
    return {os.path.basename(p): json.load(open(p)) for p in sorted(glob.glob(os.path.join(folder, "*.json")))}


@pytest.fixture(scope="module")
def trained_by_two(tmp_path_factory):
    """LLMEmbSASRec trained by two processes: SCFT (on rank 0), extraction (shared), its alignment
    SASRec and the model itself."""
    root = tmp_path_factory.mktemp("two")
    write_tiny_dataset(root, n_users=31)  # 31 test users: one rank gets a padding row
    cfg = tiny_config(root, epochs=1, scft_steps=2, llm_batch_size=8,  # 5 batches: 3 and 2 a rank
                      nproc=2, port=free_port())
    results = run_recbole_llmemb("LLMEmbSASRec", "tiny", config_dict=cfg)
    return root, cfg, results


def test_two_processes_leave_one_results_file_one_checkpoint_and_one_cache_entry_per_run(trained_by_two):
    root, cfg, results = trained_by_two
    files = results_of(cfg["results_dir"])
    assert sorted(r["model"] for r in files.values()) == ["LLMEmbSASRec", "SASRec"]  # the model and its alignment SASRec
    assert sorted(os.listdir(cfg["checkpoint_dir"])) == sorted(f"{r['run_id']}.pth" for r in files.values())
    entries = sorted(os.listdir(os.path.join(cfg["embedding_cache_dir"], "tiny")))
    assert [e.split("-")[0] for e in entries] == ["collab", "scft"]
    assert results["path"].endswith(f"{results['run_id']}.json") and results["test"]["n_rows"] == 31
    assert results["config"]["single_spec"] is False and len(results["history"]) == 1


def test_training_on_rank_0_and_sharded_extraction_equal_one_process(trained_by_two, tmp_path):
    from recbole_llmemb.data import store
    from recbole_llmemb.pipeline.config import Config
    from recbole_llmemb.pipeline.generate import item_embeddings
    from recbole_llmemb.pipeline.training import load_dataset

    root, cfg, _ = trained_by_two
    (entry,) = glob.glob(os.path.join(cfg["embedding_cache_dir"], "tiny", "scft-*"))
    two = store.load(entry)
    one_cfg = {k: v for k, v in cfg.items() if k not in distributed.LAUNCH_KEYS}
    config = Config("LLMEmbSASRec", "tiny", config_dict={**one_cfg, "embedding_cache_dir": str(tmp_path / "cache")})
    one = item_embeddings(config, load_dataset(config), method="scft", progress=False)
    assert one.meta["status"] == "built" and one.meta["key"] == two.meta["key"]
    assert two.tokens == one.tokens
    np.testing.assert_array_equal(np.asarray(two.vectors), np.asarray(one.vectors))
    plain = item_embeddings(config, load_dataset(config), method="plain", progress=False)
    assert np.abs(np.asarray(plain.vectors) - np.asarray(two.vectors)).max() > 1e-6  # rank 1 extracted with the tuned LM


def test_one_checkpoint_gives_the_same_metrics_in_one_and_two_processes_and_the_entries_are_reused(trained_by_two):
    root, cfg, results = trained_by_two
    checkpoint = results["checkpoint"]
    cache = os.path.join(cfg["embedding_cache_dir"], "tiny")
    before = {e: os.path.getmtime(os.path.join(cache, e, "meta.json")) for e in os.listdir(cache)}
    one_cfg = {k: v for k, v in cfg.items() if k not in distributed.LAUNCH_KEYS}
    one = run_recbole_llmemb("LLMEmbSASRec", "tiny", config_dict={**one_cfg, "eval_checkpoint": checkpoint,
                                                                  "results_dir": str(root / "one")})
    two = run_recbole_llmemb("LLMEmbSASRec", "tiny", config_dict={**cfg, "eval_checkpoint": checkpoint, "port": free_port(),
                                                                  "results_dir": str(root / "two")})
    for split in ("valid", "test"):
        for part in ("overall", "recbole", "groups", "buckets", "diagnostics", "per_user"):
            assert one[split][part] == two[split][part], (split, part)
    assert one["test"]["overall"] == results["test"]["overall"]  # and what the training run reported
    assert len(results_of(root / "two")) == 1
    assert before == {e: os.path.getmtime(os.path.join(cache, e, "meta.json")) for e in os.listdir(cache)}


def test_gathered_ranks_drop_the_samplers_padding_and_keep_one_process_order(monkeypatch):
    """Rows dealt round-robin to 2 ranks, the last padded with row 0 again: gathered, the rows come
    back in their one-process order, each once (checked without a process group: the collective
    is replaced by the two ranks' parts)."""
    import torch

    def accumulate(rows):
        acc = RankAccumulator(max_k=3, list_k=2)
        scores = torch.tensor([[0.0, 3.0 - r, 2.0, float(r)] for r in rows])
        acc.add(scores, torch.tensor(rows) + 100, torch.arange(len(rows)), torch.tensor([1 + r % 3 for r in rows]))
        return acc

    n_rows = 5
    ranks = [accumulate([0, 2, 4]), accumulate([1, 3, 0])]  # rank 1's last row: the padding
    parts = [(a.arrays(), torch.cat(a._top).numpy(), a._n_items, a.positions()) for a in ranks]
    monkeypatch.setattr(distributed, "is_distributed", lambda: True)
    monkeypatch.setattr(distributed, "all_gather_objects", lambda value: parts)
    gathered = ranks[0]
    gathered.gather(n_rows)
    whole = accumulate([0, 1, 2, 3, 4])
    for a, b in zip(gathered.arrays(), whole.arrays()):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(gathered.listed, whole.listed)
    np.testing.assert_array_equal(gathered.positions(), whole.positions())


def test_torchrun_settings_from_its_environment():
    env = {"LOCAL_RANK": "1", "RANK": "3", "WORLD_SIZE": "4", "LOCAL_WORLD_SIZE": "2", "MASTER_ADDR": "10.0.0.1",
           "MASTER_PORT": "29400"}
    assert distributed.torchrun_settings(env) == {"local_rank": 1, "world_size": 4, "nproc": 2, "offset": 2,
                                                  "ip": "10.0.0.1", "port": 29400}
    assert distributed.torchrun_settings({}) == {} and distributed.torchrun_settings({"LOCAL_RANK": "0", "WORLD_SIZE": "1"}) == {}


def test_tslrec_fine_tuned_on_rank_0_and_extracted_by_both_equals_one_process(tmp_path):
    """TSLRec's stage in two processes (its alignment SASRec trained by both, the fine-tuning on rank
    0, the extraction shared) gives what its builder gives in one process on that same SASRec."""
    from recbole_llmemb.data import store
    from recbole_llmemb.data.dataset import align_item_embeddings
    from recbole_llmemb.data.item_text import instruction, item_attributes, render
    from recbole_llmemb.generator.registry import BuildContext, get_builder
    from recbole_llmemb.pipeline.config import Config
    from recbole_llmemb.pipeline.training import load_dataset

    write_tiny_dataset(tmp_path, n_users=31)
    cfg = tiny_config(tmp_path, epochs=1, tslrec_k=3, tslrec_epochs=1, tslrec_batch_size=8, tslrec_max_length=64,
                      llm_batch_size=8, nproc=2, port=free_port())
    run_recbole_llmemb("TSLRecSASRec", "tiny", config_dict=cfg)
    cache = os.path.join(cfg["embedding_cache_dir"], "tiny")
    (entry,), (sasrec,) = glob.glob(os.path.join(cache, "tslrec-*")), glob.glob(os.path.join(cache, "collab-*"))
    two = store.load(entry)

    config = Config("TSLRecSASRec", "tiny", config_dict={k: v for k, v in cfg.items() if k not in distributed.LAUNCH_KEYS})
    dataset = load_dataset(config)
    table = store.load(sasrec)
    table = align_item_embeddings(dataset, table.tokens, table.vectors)
    builder = get_builder("tslrec")
    attributes = item_attributes(config, dataset)
    ctx = BuildContext(config=config, dataset=dataset, tokens=two.tokens, attributes=attributes,
                       texts=[render(instruction(config), a) for a in attributes], instruction=instruction(config),
                       folder=str(tmp_path / "one"), settings=builder.settings(config, len(two.tokens)), progress=False,
                       collaborative=lambda: table)
    os.makedirs(ctx.folder)
    one, _ = builder.build(ctx)
    np.testing.assert_array_equal(np.asarray(two.vectors), one)


@pytest.mark.parametrize("module", ["generate", "collaborative"])
def test_a_stages_own_command_refuses_several_processes_in_one_line(module, capsys):
    from importlib import import_module

    main = import_module(f"recbole_llmemb.pipeline.{module}").main
    assert main(["--model=LLMEmbSASRec", "--dataset=ml-100k", "--nproc=2"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--nproc" in err and "run_recbole_llmemb.py --nproc=N" in err


@pytest.mark.parametrize("args, words", [(["--port=29500"], "port sets up a run in several processes"),
                                         (["--offset=4"], "offset sets up a run in several processes"),
                                         (["--nproc=2", "--world_size=1"], "world_size=1 counts every process")])
def test_launcher_settings_a_run_would_not_use_are_refused_in_one_line(args, words, capsys):
    from recbole_llmemb.pipeline.quick_start import main

    assert main(["--model=SASRec", "--dataset=ml-100k", *args]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and words in err


def test_a_bad_data_file_stops_several_processes_before_they_start_in_one_line(tmp_path, capsys):
    from recbole_llmemb.pipeline.quick_start import main

    folder = write_tiny_dataset(tmp_path)
    with open(folder / "tiny.inter", "a") as f:
        f.write("u1\ti2\n")  # two fields under a three-column header
    assert main(["--model=SASRec", "--dataset=tiny", f"--data_path={tmp_path}", "--nproc=2", f"--port={free_port()}"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "tiny.inter, row" in err
