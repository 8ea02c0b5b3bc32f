"""The runner end to end on a tiny dataset, and each bad input as one clear message."""
import math
import json
from pathlib import Path
import subprocess
import sys

import pytest

from recbole_llmemb.pipeline.config import Config, UserError
from recbole_llmemb.pipeline.config import parse_args
from recbole_llmemb.pipeline.quick_start import main, run_recbole_llmemb
from tests.conftest import REPO, SHARED_DATASETS, tiny_config, write_tiny_dataset


def as_argv(model, dataset, cfg):
    return [f"--model={model}", f"--dataset={dataset}"] + [f"--{k}={v!r}" if isinstance(v, (dict, list)) else f"--{k}={v}" for k, v in cfg.items()]


def test_parse_args_literals_and_yaml():
    args = parse_args(["--epochs=3", "--learning_rate=1e-3", "--eval_args={'mode': 'uni100'}", "--x=abc", "--y=None", "--z=True"])
    assert args == {"epochs": 3, "learning_rate": 0.001, "eval_args": {"mode": "uni100"}, "x": "abc", "y": None, "z": True}
    with pytest.raises(UserError):
        parse_args(["epochs=3"])


def test_script_end_to_end_prints_tables_and_writes_results(tiny):
    argv = as_argv("SASRec", "tiny", tiny_config(tiny, epochs=2))
    proc = subprocess.run([sys.executable, str(REPO / "run_recbole_llmemb.py"), *argv], capture_output=True, text=True, cwd=tiny)
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = proc.stdout + proc.stderr
    assert "best test result" in out and "item_tail" in out and "user_short" in out
    path = out.strip().splitlines()[-1].split("results file: ")[-1]
    res = json.loads(open(path).read())
    assert res["model"] == "SASRec" and res["dataset"] == "tiny"
    assert len(res["history"]) == 2 and res["timing"]["epoch_seconds_mean"] > 0
    assert res["test"]["n_rows"] == 30 and set(res["test"]["groups"]) == {"item_head", "item_tail", "user_short", "user_long"}
    assert res["checkpoint"].endswith(".pth") and res["run_id"] in res["checkpoint"]
    assert res["protocol"]["mode"] == {"valid": "full", "test": "full"}


@pytest.mark.parametrize("model", ["GRU4Rec", "BERT4Rec", "BPR"])
def test_other_recbole_models_run(tiny, model):
    extra = {"train_neg_sample_args": {"distribution": "uniform", "sample_num": 1, "alpha": 1.0, "dynamic": False, "candidate_num": 0}} if model == "BPR" else {}
    res = run_recbole_llmemb(model, "tiny", config_dict=tiny_config(tiny, epochs=1, **extra))
    assert res["model"] == model and len(res["history"]) == 1 and math.isfinite(res["history"][0]["train_loss"])
    test = res["test"]
    assert test["n_rows"] == 30  # one test row per user of the tiny dataset
    for key, value in test["overall"].items():  # the plugin's figures are RecBole's own evaluator's
        assert abs(test["recbole"][key] - value) < 1e-4, key
    assert test["groups"]["item_head"]["size"] + test["groups"]["item_tail"]["size"] == 30


def test_two_runs_same_second_do_not_collide(tiny):
    a = run_recbole_llmemb("SASRec", "tiny", config_dict=tiny_config(tiny, epochs=1))
    b = run_recbole_llmemb("SASRec", "tiny", config_dict=tiny_config(tiny, epochs=1))
    assert a["path"] != b["path"] and a["checkpoint"] != b["checkpoint"]
    assert a["test"]["overall"] == b["test"]["overall"]  # same seed, same numbers


def test_sampled_ranking_ranks_each_target_among_the_sampled_items_only(tiny):
    """uniN ranks each target against N sampled items: with 9, every target is in the top 10 (hit@10
    exactly 1), which full ranking of the same checkpoint over all 40 items does not give."""
    full = run_recbole_llmemb("SASRec", "tiny", config_dict=tiny_config(tiny, epochs=1))
    sampled = run_recbole_llmemb("SASRec", "tiny", config_dict=tiny_config(
        tiny, epochs=1, eval_args={"mode": "uni9"}, eval_checkpoint=full["checkpoint"]))
    assert sampled["protocol"]["mode"]["test"] == "uni9" and full["protocol"]["mode"]["test"] == "full"
    assert sampled["test"]["overall"]["hit@10"] == 1.0 and full["test"]["overall"]["hit@10"] < 1.0
    assert sampled["test"]["overall"]["ndcg@10"] > full["test"]["overall"]["ndcg@10"]


def test_config_layers(tiny, tmp_path):
    user_file = tmp_path / "mine.yaml"
    user_file.write_text("epochs: 7\nlearning_rate: 0.01\nlong_tail: {head_ratio: 0.1}\n")
    c = Config("SASRec", "ml-100k", [str(user_file)], {"learning_rate": 0.5})
    assert c["epochs"] == 7  # file over props/overall.yaml (50)
    assert c["learning_rate"] == 0.5  # command line over file
    assert c["MAX_ITEM_LIST_LENGTH"] == 50  # props/ml-100k.yaml
    assert c["long_tail"]["head_ratio"] == 0.1 and c["long_tail"]["popularity_buckets"] == 5  # dicts merge
    assert c["eval_args"]["split"] == {"LS": "valid_and_test"}


def _run_main(capsys, argv):
    code = main(argv)
    err = capsys.readouterr().err
    return code, err


def test_unknown_model(capsys, tiny):
    code, err = _run_main(capsys, ["--model=NoSuchRec", "--dataset=tiny", f"--data_path={tiny}"])
    assert code == 2 and "Unknown model 'NoSuchRec'" in err and "Traceback" not in err


def test_missing_dataset_no_download(capsys, tmp_path):
    code, err = _run_main(capsys, ["--model=SASRec", "--dataset=amazon-sports", f"--data_path={tmp_path}"])
    assert code == 2 and "amazon-sports.inter" in err and "dataset/README.md" in err


def test_missing_column(capsys, tiny):
    path = tiny / "tiny" / "tiny.inter"
    path.write_text(path.read_text().replace("timestamp:float", "time:float"))
    cfg = tiny_config(tiny)
    code, err = _run_main(capsys, as_argv("SASRec", "tiny", cfg))
    assert code == 2 and "timestamp" in err and "not in the header" in err


def test_malformed_row(capsys, tiny):
    path = tiny / "tiny" / "tiny.inter"
    lines = path.read_text().splitlines()
    lines[5] = lines[5] + "\textra"
    path.write_text("\n".join(lines) + "\n")
    code, err = _run_main(capsys, as_argv("SASRec", "tiny", tiny_config(tiny)))
    assert code == 2 and "row 6" in err and "fields" in err


def test_non_numeric_float(capsys, tiny):
    path = tiny / "tiny" / "tiny.inter"
    lines = path.read_text().splitlines()
    lines[3] = lines[3].rsplit("\t", 1)[0] + "\tyesterday"
    path.write_text("\n".join(lines) + "\n")
    code, err = _run_main(capsys, as_argv("SASRec", "tiny", tiny_config(tiny)))
    assert code == 2 and "'yesterday'" in err


def test_empty_after_filtering(capsys, tiny):
    code, err = _run_main(capsys, as_argv("SASRec", "tiny", tiny_config(tiny, user_inter_num_interval="[100,inf)")))
    assert code == 2 and "no interactions left" in err


@pytest.mark.skipif(not (SHARED_DATASETS / "amazon-beauty").is_dir(), reason="../shared/datasets/amazon-beauty not present")
def test_amazon_beauty_loads_with_item_features():
    from recbole_llmemb.pipeline.quick_start import load_dataset

    config = Config("SASRec", "amazon-beauty", config_dict={"data_path": str(SHARED_DATASETS)})
    ds = load_dataset(config)
    assert ds.user_num - 1 == 22363 and ds.item_num - 1 == 12101
    assert {"title", "categories", "brand", "price"} <= set(ds.item_feat.columns)


def test_runner_report_flag_writes_the_runs_report(tiny, capsys):
    argv = as_argv("SASRec", "tiny", tiny_config(tiny, epochs=1)) + ["--report=True"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    index = out.strip().splitlines()[-1].split("report: ")[-1]
    text = open(index).read()
    assert "| SASRec |" in text.replace("`", "") or "SASRec" in text.split("|")
    assert "tail" in text.lower() and (Path(index).parent / "index.html").is_file()


# ----------------------------------------------------------------------------- the bad-input matrix (issue 11)
def _edit_item_row(path, row, column, value):
    lines = path.read_text().splitlines()
    cells = lines[row].split("\t")
    cells[column] = value
    lines[row] = "\t".join(cells)
    path.write_text("\n".join(lines) + "\n")


@pytest.mark.parametrize("case, words", [
    ("empty", ["tiny.inter is empty", "header line"]),
    ("duplicate header", ["names 'item_id' twice"]),
    ("non-utf8", ["tiny.item, row 4", "not UTF-8", "re-save"]),
    ("items not covered", ["tiny.item lacks", "item id(s) that tiny.inter uses", "Add a row"]),
    ("wrong field type", ["tiny.inter", "header field 'timestamp:date'", "'float'", "'token'"]),
    ("unbalanced quote", ["tiny.item, row 4", "unexpected end of data", "starts with a double quote"]),
    ("text after a closing quote", ["tiny.item, row 4", "expected after", "double every quote"]),
    ("too few items", ["topk=[10, 20]", "has 6 items", "--topk=[6]"]),
])
def test_bad_file_is_one_line_naming_file_and_row(capsys, tiny, case, words):
    folder = tiny / "tiny"
    inter, item = folder / "tiny.inter", folder / "tiny.item"
    if case == "empty":
        inter.write_text("")
    elif case == "duplicate header":
        inter.write_text(inter.read_text().replace("timestamp:float", "item_id:token", 1))
    elif case == "non-utf8":
        item.write_bytes(item.read_bytes().replace(b"Product number 3\t", b"Product \xff number 3\t"))
    elif case == "unbalanced quote":  # pandas opens a quoted field that swallows the rest of the file
        _edit_item_row(item, 3, 1, '"Best lipstick')
    elif case == "text after a closing quote":  # pandas: '\t' expected after '"'
        _edit_item_row(item, 3, 1, '"Best" lipstick')
    elif case == "wrong field type":
        inter.write_text(inter.read_text().replace("timestamp:float", "timestamp:date", 1))
    elif case == "too few items":  # metrics at 10 and 20 over a catalogue of 6
        write_tiny_dataset(tiny, n_items=6, per_user=5)
    else:
        item.write_text("\n".join(item.read_text().splitlines()[:10]) + "\n")
    code, err = _run_main(capsys, as_argv("SASRec", "tiny", tiny_config(tiny)))
    err = err.strip()
    assert code == 2 and err.startswith("error: ") and "\n" not in err and "Traceback" not in err, err
    for w in words:
        assert w in err, err
    assert not (tiny / "results").exists()  # nothing half-written


@pytest.mark.parametrize("title", ["", "x" * 1_000_000])
def test_empty_or_enormous_item_text_still_runs(capsys, tiny, title):
    from recbole_llmemb.data.item_text import build_item_texts
    from recbole_llmemb.pipeline.training import load_dataset

    _edit_item_row(tiny / "tiny" / "tiny.item", 3, 1, title)  # item i3's title
    code, err = _run_main(capsys, as_argv("SASRec", "tiny", tiny_config(tiny, epochs=1)))
    assert code == 0, err
    # the text an LM reads: the empty title is left out, the enormous one cut to about 100 characters
    config = Config("LLMEmbSASRec", "tiny", config_dict=tiny_config(tiny))
    dataset = load_dataset(config)
    text = build_item_texts(config, dataset)[list(dataset.field2id_token["item_id"]).index("i3") - 1]
    assert "categories is cat0, sub3" in text and len(text) < 300, text[:300]
    assert ("title is" in text) == bool(title)
