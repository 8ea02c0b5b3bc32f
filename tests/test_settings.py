"""Bad settings are one clear message before anything runs (issue 11): unknown keys with a
"did you mean", numbers that are not numbers or out of range, a loss the model cannot train with."""
import re
from pathlib import Path

import pytest

from recbole_llmemb.config import Config, UserError
from recbole_llmemb.config_checks import known_keys
from recbole_llmemb.quick_start import main

PACKAGE = Path(__file__).resolve().parent.parent / "recbole_llmemb"


@pytest.mark.parametrize("arg, words", [
    ("--epochss=3", ["Unknown setting 'epochss'", "Did you mean epochs"]),
    ("--epochs=-1", ["epochs=-1", ">= 1"]),
    ("--epochs=ten", ["epochs='ten'", "whole number"]),
    ("--learning_rate=fast", ["learning_rate='fast'", "a number"]),
    ("--train_batch_size=0", ["train_batch_size=0", ">= 1"]),
    ("--loss_type=BCE", ["loss_type=BCE", "CE or BPR", "--loss_type=BPR"]),
    ("--said_tokens=0", ["said_tokens=0", ">= 1"]),
])
def test_bad_setting_is_one_line_and_exit_2(tmp_path, capsys, arg, words):
    code = main(["--model=SASRec", "--dataset=ml-100k", f"--results_dir={tmp_path}", arg])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.startswith("error: ") and "\n" not in err, err
    for w in words:
        assert w in err, err
    assert not list(tmp_path.iterdir())  # nothing ran, nothing written


def test_good_settings_pass_unchanged():
    config = Config("SASRec", "ml-100k", config_dict={"epochs": 3, "learning_rate": 0.01, "loss_type": "BPR",
                                                      "train_neg_sample_args": {"distribution": "uniform", "sample_num": 1}})
    assert config["epochs"] == 3 and config["loss_type"] == "BPR"


def test_every_key_the_code_reads_is_known():
    """A key read by the package but unknown to the check would be refused on the command line."""
    pattern = re.compile(r"""(?:setting|_cfg)\(config, "([A-Za-z_@0-9]+)"|config\["([A-Za-z_@0-9]+)"\]""")
    read = set()
    for path in PACKAGE.rglob("*.py"):
        for m in pattern.finditer(path.read_text()):
            read.add(m.group(1) or m.group(2))
    assert len(read) > 50
    assert sorted(read - known_keys()) == []


def test_words_stay_words_and_none_is_refused_for_a_rat_key(tmp_path, capsys):
    from recbole_llmemb.config import parse_args
    from recbole_llmemb.model.llmemb import _cfg

    args = parse_args(["--adapter_act=none", "--llm_emb_norm=none", "--pca_dim=~", "--alpha=None"])
    assert args == {"adapter_act": "none", "llm_emb_norm": "none", "pca_dim": None, "alpha": None}
    config = Config("LLMEmbSASRec", "ml-100k", config_dict={"llm_emb_norm": "none", "adapter_act": "none"})
    assert _cfg(config, "llm_emb_norm") == "none" and _cfg(config, "adapter_act") == "none"  # honoured, not the defaults
    code = main(["--model=LLMEmbSASRec", "--dataset=ml-100k", f"--results_dir={tmp_path}", "--alpha=None"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "alpha=None" in err and "0.1" in err and "\n" not in err
