"""The LLMEmb pipeline end to end through the real runner: item embeddings, the alignment SASRec
(its own stage, cached and shared between models), RAT training, results files, the stage CLI and
the runner's one-line errors. Tiny data, a random 2-layer LLaMA with an offline tokenizer as the
LM (``tests/test_generator.py``), 1 SCFT step, 1 epoch: seconds per run."""
import json
import re
import logging
from pathlib import Path

import pytest

from recbole_llmemb.pipeline import collaborative
from recbole_llmemb.pipeline.config import Config, UserError
from recbole_llmemb.evaluation.results import config_snapshot
from recbole_llmemb.model import LLMEmbGRU4Rec, LLMEmbSASRec
from recbole_llmemb import settings as settings_table
from recbole_llmemb.pipeline.config import item_table_size

RAT_KEYS = settings_table.keys(group="rat")
from recbole_llmemb.pipeline.quick_start import main as runner_main
from recbole_llmemb.pipeline.quick_start import run_recbole_llmemb
from tests.conftest import tiny_config, write_tiny_dataset
from tests.test_generator import llama_dir  # noqa: F401  (module fixture: the tiny offline LLaMA)

GROUPS = {"item_head", "item_tail", "user_short", "user_long"}
# what a plain SASRec run is decided by: these must match between the alignment SASRec and --model=SASRec
SASREC_KEYS = ("hidden_size", "epochs", "MAX_ITEM_LIST_LENGTH", "learning_rate", "train_batch_size", "eval_args",
               "n_layers", "n_heads", "inner_size", "hidden_dropout_prob", "attn_dropout_prob", "loss_type",
               "train_neg_sample_args", "seed", "load_col", "topk", "metrics", "valid_metric")


pytestmark = pytest.mark.usefixtures("quiet_single_thread")


def settings(root, llm_path, **overrides):
    """The user's layer for a pipeline run: every stage as small as it gets."""
    return tiny_config(root, epochs=1, collab_epochs=1, scft_steps=1, scft_batch_size=8, llm_batch_size=16,
                       MAX_ITEM_LIST_LENGTH=5, n_layers=1, n_heads=1, llm_path=llm_path, **overrides)


def as_argv(model, cfg, dataset="tiny"):
    return [f"--model={model}", f"--dataset={dataset}"] + [
        f"--{k}={v!r}" if isinstance(v, (dict, list)) else f"--{k}={v}" for k, v in cfg.items()
    ]


def sasrec_results(root):
    """Results files of SASRec runs (the alignment SASRec leaves one each time it is trained)."""
    return sorted(Path(root, "results").glob("SASRec-tiny-*.json"))


def collab_entries(root):
    return sorted(p.name for p in Path(root, "cache", "tiny").glob("collab-sasrec-*"))


def messages(caplog, needle):
    return [r.getMessage() for r in caplog.records if needle in r.getMessage()]


@pytest.fixture(scope="module")
def shared(tmp_path_factory, llama_dir):  # noqa: F811
    """One LLMEmbSASRec run with alignment on a tiny dataset; its caches are reused by the tests, and what
    it made is recorded here (later tests add their own files: no test may depend on running first)."""
    root = tmp_path_factory.mktemp("pipeline")
    write_tiny_dataset(root)
    cfg = settings(root, llama_dir)
    results = run_recbole_llmemb("LLMEmbSASRec", "tiny", config_dict=cfg)
    made = {"sasrec": sasrec_results(root), "collab": collab_entries(root),
            "scft": sorted(p.name for p in (root / "cache" / "tiny").glob("scft-*"))}
    return root, cfg, results, made


# ----------------------------------------------------------------------------- 1. end to end, then cached
def test_llmemb_sasrec_end_to_end_then_both_caches_reused(shared, caplog):
    root, cfg, first, made = shared
    assert first["model"] == "LLMEmbSASRec" and first["dataset"] == "tiny"
    on_disk = json.loads(Path(first["path"]).read_text())
    assert Path(first["path"]).parent == root / "results"
    assert on_disk["run_id"] == first["run_id"] and on_disk["test"]["overall"] == first["test"]["overall"]
    test = on_disk["test"]
    assert {"ndcg@10", "hit@10"} <= set(test["overall"]) and test["n_rows"] == 30
    assert set(test["groups"]) == GROUPS
    sizes = {g: test["groups"][g]["size"] for g in GROUPS}
    assert sizes["item_head"] > 0 and sizes["item_tail"] > 0 and sizes["user_short"] > 0
    assert sizes["item_head"] + sizes["item_tail"] == 30 and sizes["user_short"] + sizes["user_long"] == 30
    stages = on_disk["timing"]["stages"]
    assert {"dataset", "item_embeddings[scft]", "collaborative_sasrec", "split", "train", "test"} <= set(stages)
    assert on_disk["config"]["alpha"] == 0.1 and on_disk["config"]["llm_path"] == cfg["llm_path"]
    # the alignment SASRec went through the same pipeline: its own results file, sized to the item table
    (sas_file,) = made["sasrec"]
    sas = json.loads(sas_file.read_text())
    assert sas["model"] == "SASRec" and set(sas["test"]["groups"]) == GROUPS
    assert sas["config"]["hidden_size"] == 16 and sas["config"]["epochs"] == 1 and len(sas["history"]) == 1
    assert "alpha" not in sas["config"] and "adapter_init" not in sas["config"]
    assert len(made["collab"]) == 1 and len(made["scft"]) == 1

    caplog.set_level(logging.INFO)
    before = sasrec_results(root), collab_entries(root)
    second = run_recbole_llmemb("LLMEmbSASRec", "tiny", config_dict=cfg)
    assert messages(caplog, "item embeddings (scft): reused") and messages(caplog, "collaborative SASRec: reused")
    assert not messages(caplog, "collaborative SASRec: training") and not messages(caplog, "): built ")
    assert (sasrec_results(root), collab_entries(root)) == before
    assert second["path"] != first["path"]
    assert {"item_embeddings[scft]", "collaborative_sasrec"} <= set(second["timing"]["stages"])
    # same seed, same inputs whether built or reused: the same numbers, to the last digit
    assert second["test"]["overall"] == first["test"]["overall"]
    assert second["test"]["groups"] == first["test"]["groups"] and second["valid"] == first["valid"]


# ----------------------------------------------------------------------------- 7. peak memory
def test_peak_rss_in_results_file(shared):
    _, _, results, _ = shared
    on_disk = json.loads(Path(results["path"]).read_text())
    assert isinstance(on_disk["peak_rss_mb"], float) and 10 < on_disk["peak_rss_mb"] < 1e6


# ----------------------------------------------------------------------------- 2. one alignment SASRec, shared
def test_gru4rec_with_same_table_size_reuses_the_alignment_sasrec(shared, caplog):
    root, cfg, _, _ = shared
    assert item_table_size(LLMEmbGRU4Rec, Config("LLMEmbGRU4Rec", "tiny", config_dict=cfg)) == 16
    before, entries = sasrec_results(root), collab_entries(root)
    caplog.set_level(logging.INFO)
    res = run_recbole_llmemb("LLMEmbGRU4Rec", "tiny", config_dict=cfg)
    assert messages(caplog, "collaborative SASRec: reused")
    assert sasrec_results(root) == before and collab_entries(root) == entries
    assert res["model"] == "LLMEmbGRU4Rec" and "collaborative_sasrec" in res["timing"]["stages"]


@pytest.mark.parametrize("change", [
    {"alpha": 0.02},            # RAT
    {"llm_emb_norm": "whiten"},     # RAT
    {"adapter_init": "official"},  # RAT
    {"scft_steps": 2},          # generator
    {"llm_pooling": "last"},    # generator
])
def test_rat_and_generator_keys_do_not_retrain_it(shared, capsys, change):
    root, cfg, _, _ = shared
    before, entries = sasrec_results(root), collab_entries(root)
    assert collaborative.main(as_argv("LLMEmbSASRec", {**cfg, **change})) == 0
    out = capsys.readouterr().out
    assert "(40 items x 16)" in out and "SASRec results: " in out
    assert sasrec_results(root) == before and collab_entries(root) == entries


def test_rat_key_in_a_config_file_does_not_retrain_it(shared, tmp_path):
    root, cfg, _, _ = shared
    f = tmp_path / "mine.yaml"
    f.write_text("alpha: 0.05\nadapter_init: official\nscft_steps: 3\n")
    before, entries = sasrec_results(root), collab_entries(root)
    assert collaborative.main(as_argv("LLMEmbSASRec", cfg) + [f"--config_files={f}"]) == 0
    assert sasrec_results(root) == before and collab_entries(root) == entries


@pytest.mark.parametrize("change", [{"MAX_ITEM_LIST_LENGTH": 6}, {"learning_rate": 0.01}])
def test_data_and_training_keys_retrain_it(shared, change):
    root, cfg, _, _ = shared
    before, entries = sasrec_results(root), collab_entries(root)
    assert collaborative.main(as_argv("LLMEmbSASRec", {**cfg, **change})) == 0
    new = [p for p in sasrec_results(root) if p not in before]
    assert len(new) == 1 and len(collab_entries(root)) == len(entries) + 1
    (key, value), = change.items()
    assert json.loads(new[0].read_text())["config"][key] == value


# ----------------------------------------------------------------------------- 3. sasrec_config
def test_sasrec_config_is_a_plain_sasrec_run(tmp_path, llama_dir):  # noqa: F811
    write_tiny_dataset(tmp_path)
    user = settings(tmp_path, llama_dir, learning_rate=0.003, train_batch_size=32, alpha=0.02, adapter_init="official")
    user.pop("hidden_size")  # the props' size: LLMEmbSASRec hidden 64
    user["embedding_size"] = 64  # LLMEmbGRU4Rec's item table (SASRec reads no embedding_size)
    user.pop("collab_epochs")
    user.pop("MAX_ITEM_LIST_LENGTH")  # from the user's file below
    f = tmp_path / "mine.yaml"
    f.write_text("eval_args: {mode: uni10}\nMAX_ITEM_LIST_LENGTH: 7\n")
    plain = Config("SASRec", "tiny", [str(f)], {k: v for k, v in user.items() if k not in RAT_KEYS})
    snapshots = []
    for model_class in (LLMEmbSASRec, LLMEmbGRU4Rec):
        config = Config(model_class.__name__, "tiny", [str(f)], user)
        sas = collaborative.sasrec_config(config, model_class)
        assert sas["model"] == "SASRec"
        for key in SASREC_KEYS:
            assert sas[key] == plain[key], key
        assert sas["hidden_size"] == 64 and sas["MAX_ITEM_LIST_LENGTH"] == 7 and sas["eval_args"]["mode"]["test"] == "uni10"
        assert sas["learning_rate"] == 0.003 and sas["train_batch_size"] == 32 and sas["epochs"] == 1
        # nothing from the LLMEmb model's own props, nor a RAT key the user gave
        assert not (set(RAT_KEYS) & sas._explicit_keys)
        assert not (set(RAT_KEYS) & set(sas.final_config_dict))
        assert "adapter_init" not in sas._explicit_keys and "embedding_size" not in sas._explicit_keys
        snapshots.append(config_snapshot(sas))
    assert snapshots[0] == snapshots[1]  # one alignment SASRec for both models
    # collab_epochs sets the alignment SASRec's epochs, not the model's
    config = Config("LLMEmbSASRec", "tiny", [str(f)], {**user, "collab_epochs": 3})
    assert collaborative.sasrec_config(config, LLMEmbSASRec)["epochs"] == 3 and config["epochs"] == 1


# ----------------------------------------------------------------------------- 4. stage CLI
def test_collaborative_cli_builds_then_reuses(tmp_path, llama_dir, capsys):  # noqa: F811
    write_tiny_dataset(tmp_path)
    argv = as_argv("LLMEmbSASRec", settings(tmp_path, llama_dir))
    assert collaborative.main(argv) == 0
    out = capsys.readouterr().out
    assert "(40 items x 16)" in out and "SASRec results: " in out
    (entry,) = collab_entries(tmp_path)
    assert (tmp_path / "cache" / "tiny" / entry / "meta.json").is_file() and len(sasrec_results(tmp_path)) == 1
    assert not list((tmp_path / "cache" / "tiny").glob("scft-*"))  # the LM stage is not part of it
    assert collaborative.main(argv) == 0
    assert collab_entries(tmp_path) == [entry] and len(sasrec_results(tmp_path)) == 1


@pytest.mark.parametrize("damage", ["vectors.npy", "sasrec_state.pt", "meta.json"])
def test_a_damaged_alignment_sasrec_entry_is_retrained_not_trusted(tmp_path, llama_dir, caplog, damage):  # noqa: F811
    """Any file of the entry altered (the item table, the warm start's weights, the metadata): the next
    run says the entry is not intact, trains the SASRec again and leaves an intact entry with the same table."""
    import numpy as np

    from recbole_llmemb.data import store

    write_tiny_dataset(tmp_path)
    argv = as_argv("LLMEmbSASRec", settings(tmp_path, llama_dir))
    assert collaborative.main(argv) == 0
    (entry,) = collab_entries(tmp_path)
    folder = tmp_path / "cache" / "tiny" / entry
    table = np.load(folder / "vectors.npy")
    target = folder / damage
    data = bytearray(target.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one flipped byte in the middle
    target.write_bytes(bytes(data))
    caplog.set_level(logging.INFO)
    assert collaborative.main(argv) == 0
    assert messages(caplog, "is not intact") and messages(caplog, "collaborative SASRec: training")
    assert len(sasrec_results(tmp_path)) == 2 and collab_entries(tmp_path) == [entry]
    rebuilt = store.load(str(folder))
    np.testing.assert_array_equal(rebuilt.vectors, table)  # same seed, same split: the same SASRec again
    assert collaborative.load_state(rebuilt)


def test_collaborative_cli_refuses_a_model_without_a_table(tmp_path, capsys):
    write_tiny_dataset(tmp_path)
    assert collaborative.main(as_argv("SASRec", tiny_config(tmp_path))) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "uses no collaborative table" in err and "Traceback" not in err
    assert not collab_entries(tmp_path) and not sasrec_results(tmp_path)


# ----------------------------------------------------------------------------- 5. alpha = 0
def test_alpha_zero_from_scratch_trains_no_sasrec(tmp_path, llama_dir, caplog):  # noqa: F811
    write_tiny_dataset(tmp_path)
    caplog.set_level(logging.INFO)
    res = run_recbole_llmemb("LLMEmbSASRec", "tiny", config_dict=settings(tmp_path, llama_dir, alpha=0, rat_init="scratch"))
    stages = res["timing"]["stages"]
    assert "collaborative_sasrec" not in stages and "item_embeddings[scft]" in stages
    assert not sasrec_results(tmp_path) and not collab_entries(tmp_path)
    assert not messages(caplog, "collaborative SASRec")
    assert res["config"]["alpha"] == 0 and set(res["history"][0]["losses"]) == {"rec"}  # trained with no alignment term


# ----------------------------------------------------------------------------- 6. runner errors
def test_runner_rejects_zscore_in_one_line(shared, capsys):
    root, cfg, _, _ = shared
    before = len(sasrec_results(root))
    code = runner_main(as_argv("LLMEmbSASRec", {**cfg, "llm_emb_norm": "zscore"}))
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and err.startswith("error: ")
    assert "llm_emb_norm=zscore" in err and "whiten" in err and "Traceback" not in err
    assert len(sasrec_results(root)) == before  # the alignment SASRec is a RAT-free cache hit


def test_runner_rejects_unknown_model_in_one_line(tmp_path, capsys):
    write_tiny_dataset(tmp_path)
    code = runner_main(as_argv("LLMEmbNoSuchRec", tiny_config(tmp_path)))
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "Unknown model 'LLMEmbNoSuchRec'" in err and "LLMEmbSASRec" in err
    assert not (tmp_path / "results").exists()


def test_bad_rat_setting_fails_before_any_stage(shared, tmp_path, capsys):
    _, cfg, _, _ = shared
    cold = tmp_path / "cold-cache"
    code = runner_main(as_argv("LLMEmbSASRec", {**cfg, "llm_emb_norm": "zscore", "embedding_cache_dir": str(cold)}))
    assert code == 2 and "llm_emb_norm=zscore" in capsys.readouterr().err
    assert not cold.exists()  # no SCFT, no alignment SASRec was started


# ----------------------------------------------------------------------------- issue 8: protocol, comparison, diagnostics
def test_results_carry_collapse_diagnostics_per_run_and_per_epoch(shared):
    _, _, results, _ = shared
    on_disk = json.loads(Path(results["path"]).read_text())
    diag = on_disk["test"]["diagnostics"]
    assert {"effective_rank", "near_duplicate_share", "coverage@10", "tail_share@10", "mean_popularity@10"} <= set(diag)
    assert 1.0 <= diag["effective_rank"] <= 16 and 0 < diag["coverage@10"] <= 1
    epoch = on_disk["history"][0]
    assert "effective_rank" in epoch["diagnostics"] and set(epoch["losses"]) >= {"rec", "align", "align_share"}
    assert on_disk["protocol"]["name"] == "full" and on_disk["protocol"]["loss_type"] == "CE"


def test_runner_ends_with_the_alignment_sasrec_side_by_side(shared, capsys):
    root, cfg, _, _ = shared
    assert runner_main(as_argv("LLMEmbSASRec", cfg)) == 0
    out = capsys.readouterr().out
    assert "vs its alignment SASRec" in out
    table = out.split("vs its alignment SASRec", 1)[1]
    assert "what differs besides the item table: LLMEmbSASRec started from this SASRec's weights" in table
    for group in ("overall", "item_tail", "user_short"):
        line = next(line for line in table.splitlines() if line.startswith(group))
        assert re.search(r"\d\.\d\dx \[\d+\.\d\d, \d+\.\d\d\]$", line.rstrip()), line  # a ratio and its interval


def test_paper_protocol_end_to_end(tmp_path, llama_dir):  # noqa: F811
    write_tiny_dataset(tmp_path)
    paper = str(Path(collaborative.__file__).resolve().parent.parent.parent / "props" / "paper.yaml")
    cfg = settings(tmp_path, llama_dir, hidden_size=16, embedding_size=16)
    results = run_recbole_llmemb("LLMEmbSASRec", "tiny", config_file_list=[paper], config_dict=cfg)
    p = results["protocol"]
    assert p["name"] == "paper" and p["mode"]["test"] == "uni100" and p["loss_type"] == "BPR"
    assert set(results["test"]["groups"]) == GROUPS and results["test"]["n_rows"] == 30
    (sas_file,) = sasrec_results(tmp_path)  # the alignment SASRec ran the same protocol
    sas = json.loads(sas_file.read_text())
    assert sas["protocol"]["name"] == "paper" and sas["config"]["loss_type"] == "BPR"


def sasrec_settings(cfg):
    """A plugin run's settings less those a RecBole SASRec does not read (it refuses them)."""
    from recbole_llmemb.pipeline.checks import plugin_model_keys, text_keys

    return {k: v for k, v in cfg.items() if k not in plugin_model_keys() | text_keys()}


def test_a_checkpoint_evaluated_under_another_protocol_without_training(shared, tmp_path):
    root, cfg, first, _ = shared
    eval_args = {"mode": "uni100"}
    before = sasrec_results(root)
    again = run_recbole_llmemb("LLMEmbSASRec", "tiny", config_dict=dict(cfg, eval_checkpoint=first["checkpoint"], eval_args=eval_args))
    assert again["history"] == [] and again["eval_checkpoint"] == first["checkpoint"]
    assert again["protocol"]["mode"]["test"] == "uni100" and again["test"]["n_rows"] == 30
    assert sasrec_results(root) == before  # no alignment SASRec is trained for an evaluation
    # the same checkpoint under full ranking gives the first run's numbers
    same = run_recbole_llmemb("LLMEmbSASRec", "tiny", config_dict=dict(cfg, eval_checkpoint=first["checkpoint"]))
    assert same["test"]["overall"] == pytest.approx(first["test"]["overall"])
    with pytest.raises(UserError, match="no such checkpoint"):
        run_recbole_llmemb("SASRec", "tiny", config_dict=dict(sasrec_settings(cfg), eval_checkpoint=str(tmp_path / "none.pth")))


def test_resume_goes_on_training_into_its_own_checkpoint(shared, tmp_path):
    _, cfg, _, made = shared
    base = json.loads(made["sasrec"][0].read_text())  # the shared run's alignment SASRec
    before = Path(base["checkpoint"]).read_bytes()
    more = run_recbole_llmemb("SASRec", "tiny", config_dict=dict(
        sasrec_settings(cfg), epochs=3, resume_checkpoint=base["checkpoint"], results_dir=str(tmp_path)))
    assert [h["epoch"] for h in more["history"]] == [1, 2]  # the first run did epoch 0
    assert more["checkpoint"] != base["checkpoint"] and Path(base["checkpoint"]).read_bytes() == before
