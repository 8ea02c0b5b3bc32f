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
def test_bad_setting_is_one_line_and_exit_2(tmp_path, capsys, monkeypatch, arg, words):
    monkeypatch.setattr("recbole_llmemb.training.train_and_evaluate", _must_not_run)  # a broken check fails fast
    code = main(["--model=SASRec", "--dataset=ml-100k", f"--results_dir={tmp_path}", arg])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.startswith("error: ") and "\n" not in err, err
    for w in words:
        assert w in err, err
    assert not list(tmp_path.iterdir())  # nothing ran, nothing written


def _must_not_run(*args, **kwargs):
    raise AssertionError("the run started: the setting was not refused before training")


@pytest.mark.parametrize("text, words", [
    ("epochss: 3\n", ["Unknown setting 'epochss' in ", "bad.yaml", "Did you mean epochs"]),
    ("epochs: [1\n", ["bad.yaml is not valid YAML"]),
    ("- epochs\n", ["bad.yaml must hold key: value lines"]),
])
def test_a_bad_config_file_is_one_line_and_exit_2(tmp_path, capsys, monkeypatch, text, words):
    monkeypatch.setattr("recbole_llmemb.training.train_and_evaluate", _must_not_run)
    bad = tmp_path / "bad.yaml"
    bad.write_text(text)
    code = main(["--model=SASRec", "--dataset=ml-100k", f"--config_files={bad}", f"--results_dir={tmp_path / 'out'}"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.startswith("error: ") and "\n" not in err, err
    for w in words:
        assert w in err, err


def test_missing_language_model_is_one_line_and_exit_2(tmp_path, capsys):
    missing = tmp_path / "no-such-model"
    code = main(["--model=LLMEmbSASRec", "--dataset=ml-100k", f"--results_dir={tmp_path / 'results'}",
                 f"--embedding_cache_dir={tmp_path / 'cache'}", f"--llm_path={missing}"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.startswith("error: ") and "\n" not in err, err
    assert "llm_path" in err and str(missing) in err and "does not exist" in err, err
    assert not [p for p in tmp_path.rglob("*") if p.is_file()]  # nothing half-written


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


def _numeric_and_word_keys():
    from recbole_llmemb.config_checks import CHOICES, NUMBERS

    return sorted(NUMBERS), sorted(CHOICES)


@pytest.mark.parametrize("value", ["many", "none"])
def test_every_checked_setting_refuses_a_wrong_word_in_one_line(value):
    """Each numeric and each word setting, given a word it cannot take ('none' included), is refused
    by name before anything runs (issue 11: honoured or refused, never replaced by its default)."""
    from recbole.utils import ModelType

    from recbole_llmemb.config_checks import check_values

    numbers, words = _numeric_and_word_keys()
    assert len(numbers) > 40 and len(words) >= 13
    for key in numbers + [k for k in words if not (value == "none" and k in ("adapter_act", "llm_emb_norm", "text_blend_gate", "seq_input_scale"))]:
        config = {key: value, "MODEL_TYPE": ModelType.SEQUENTIAL, "loss_type": "CE", "model": "SASRec"}
        with pytest.raises(UserError) as e:
            check_values(config, [key])
        assert str(e.value).startswith(f"{key}=") and "\n" not in str(e.value), str(e.value)


def test_word_settings_accept_their_own_values_and_say_them_when_refused():
    from recbole_llmemb.config_checks import allowed_words

    for key, value in [("llm_emb_norm", "shrink"), ("said_export", "id"), ("tslrec_loss", "kl"), ("rat_init", "scratch"),
                       ("llm_embedding_method", "plain"), ("adapter_act", "GELU")]:
        config = Config("LLMEmbSASRec", "ml-100k", config_dict={key: value})
        assert config[key] == value
    with pytest.raises(UserError, match=r"said_vocab=all: use one of corpus, full\."):
        Config("SAIDSASRec", "ml-100k", config_dict={"said_vocab": "all"})
    assert set(allowed_words("llm_embedding_method")) >= {"scft", "said", "tslrec", "plain"}
