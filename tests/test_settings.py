"""Bad settings are one clear message before anything runs (issue 11): unknown keys with a
"did you mean", numbers that are not numbers or out of range, a loss the model cannot train with."""
import re
from pathlib import Path

import pytest

from recbole_llmemb.pipeline.config import Config, UserError
from recbole_llmemb.pipeline.checks import known_keys
from recbole_llmemb.pipeline.quick_start import main

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
    monkeypatch.setattr("recbole_llmemb.pipeline.training.train_and_evaluate", _must_not_run)  # a broken check fails fast
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
    monkeypatch.setattr("recbole_llmemb.pipeline.training.train_and_evaluate", _must_not_run)
    bad = tmp_path / "bad.yaml"
    bad.write_text(text)
    code = main(["--model=SASRec", "--dataset=ml-100k", f"--config_files={bad}", f"--results_dir={tmp_path / 'out'}"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.startswith("error: ") and "\n" not in err, err
    for w in words:
        assert w in err, err


def test_missing_language_model_is_one_line_and_exit_2(tmp_path, capsys, monkeypatch):
    """Said before the dataset loads, with the packaged names the setting also takes."""
    monkeypatch.setattr("recbole_llmemb.pipeline.training.create_dataset", _must_not_run)
    missing = tmp_path / "no-such-model"
    code = main(["--model=LLMEmbSASRec", "--dataset=ml-100k", f"--results_dir={tmp_path / 'results'}",
                 f"--embedding_cache_dir={tmp_path / 'cache'}", f"--llm_path={missing}"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.startswith("error: ") and "\n" not in err, err
    assert "llm_path" in err and str(missing) in err and "does not exist" in err, err
    assert "all-mpnet-base-v2" in err and "SmolLM2-135M" in err, err
    assert not [p for p in tmp_path.rglob("*") if p.is_file()]  # nothing half-written


def test_good_settings_pass_unchanged():
    config = Config("SASRec", "ml-100k", config_dict={"epochs": 3, "learning_rate": 0.01, "loss_type": "BPR",
                                                      "train_neg_sample_args": {"distribution": "uniform", "sample_num": 1}})
    assert config["epochs"] == 3 and config["loss_type"] == "BPR"


def test_every_key_the_code_reads_is_known():
    """A key read by the package but unknown to the check would be refused on the command line."""
    pattern = re.compile(r"""read\((?:ctx\.|self\.)?config, "([A-Za-z_@0-9]+)"|config\["([A-Za-z_@0-9]+)"\]""")
    read = set()
    for path in PACKAGE.rglob("*.py"):
        for m in pattern.finditer(path.read_text()):
            read.add(m.group(1) or m.group(2))
    assert len(read) > 50
    assert sorted(read - known_keys()) == []


def test_words_stay_words_and_none_is_refused_for_a_rat_key(tmp_path, capsys):
    from recbole_llmemb.pipeline.config import parse_args
    from recbole_llmemb.settings import read

    args = parse_args(["--seq_input_scale=none", "--llm_emb_norm=none", "--pca_dim=~", "--alpha=None"])
    assert args == {"seq_input_scale": "none", "llm_emb_norm": "none", "pca_dim": None, "alpha": None}
    config = Config("LLMEmbSASRec", "ml-100k", config_dict={"llm_emb_norm": "none"})
    assert read(config, "llm_emb_norm") == "none"  # honoured, not the default (center)
    code = main(["--model=LLMEmbSASRec", "--dataset=ml-100k", f"--results_dir={tmp_path}", "--alpha=None"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "alpha=None" in err and "0.1" in err and "\n" not in err


def _numeric_and_word_keys():
    from recbole_llmemb.settings import RECBOLE_NUMBERS, SETTINGS

    numbers = [k for k, s in SETTINGS.items() if s.kind in ("int", "float")] + list(RECBOLE_NUMBERS)
    return sorted(numbers), sorted(k for k, s in SETTINGS.items() if s.kind == "word")


@pytest.mark.parametrize("value", ["many", "none"])
def test_every_checked_setting_refuses_a_wrong_word_in_one_line(value):
    """Each numeric and each word setting, given a word it cannot take ('none' included), is refused
    by name before anything runs (issue 11: honoured or refused, never replaced by its default)."""
    from recbole.utils import ModelType

    from recbole_llmemb.pipeline.checks import check_values

    numbers, words = _numeric_and_word_keys()
    assert len(numbers) > 40 and len(words) >= 13
    for key in numbers + [k for k in words if not (value == "none" and k in ("llm_emb_norm", "text_blend_gate", "seq_input_scale", "target_weights"))]:
        config = {key: value, "MODEL_TYPE": ModelType.SEQUENTIAL, "loss_type": "CE", "model": "SASRec"}
        with pytest.raises(UserError) as e:
            check_values(config, [key])
        assert str(e.value).startswith(f"{key}=") and "\n" not in str(e.value), str(e.value)


def test_word_settings_accept_their_own_values_and_say_them_when_refused():
    from recbole_llmemb.settings import choices

    for key, value in [("llm_emb_norm", "whiten"), ("said_export", "id"), ("tslrec_loss", "kl"), ("rat_init", "scratch"),
                       ("llm_embedding_method", "plain"), ("adapter_init", "official")]:
        config = Config("LLMEmbSASRec", "ml-100k", config_dict={key: value})
        assert config[key] == value
    with pytest.raises(UserError, match=r"said_vocab=all: use one of corpus, full\."):
        Config("SAIDSASRec", "ml-100k", config_dict={"said_vocab": "all"})
    assert set(choices("llm_embedding_method")) >= {"scft", "said", "tslrec", "plain"}


# ----------------------------------------------------------------------------- one table of settings
def test_props_files_and_the_settings_page_come_from_the_table():
    """props/generator.yaml, props/rat.yaml and docs/settings.md are written from the table, and the
    plugin keys of props/overall.yaml hold the table's defaults: edit one without the other and this fails."""
    import yaml

    from recbole_llmemb import settings

    for group in ("generator", "rat"):
        assert settings.GROUP_FILES[group].read_text() == settings.props_text(group), \
            f"props/{group}.yaml differs from the table: python -m recbole_llmemb.settings --write"
    assert settings.DOCS_PAGE.read_text() == settings.markdown(), "docs/settings.md: python -m recbole_llmemb.settings --write"
    overall = yaml.safe_load(settings.GROUP_FILES["overall"].read_text())
    for key, s in settings.SETTINGS.items():
        assert (key in overall) == (s.group == "overall"), key
        if s.group == "overall":
            assert overall[key] == s.default, key
    for group in ("generator", "rat"):  # what the files hold, read back, is the table's
        loaded = yaml.safe_load(settings.GROUP_FILES[group].read_text())
        assert loaded == {k: s.default for k, s in settings.SETTINGS.items() if s.group == group}


def test_the_table_names_every_method_and_loss_the_code_has():
    from recbole_llmemb import losses, settings
    from recbole_llmemb.generator.registry import BUILDERS
    from recbole_llmemb.pipeline import generate  # noqa: F401  (registers the builders)

    assert set(BUILDERS) == set(settings.METHODS)
    assert set(losses.ALIGN_LOSSES) == set(settings.choices("align_loss"))


def test_a_setting_nothing_reads_is_not_in_the_table():
    """Every plugin key is read somewhere in the package by its name (no setting accepted that nothing reads)."""
    from recbole_llmemb import settings

    code = "\n".join(p.read_text() for p in PACKAGE.rglob("*.py") if p.name != "settings.py")
    unread = [k for k in settings.SETTINGS if f'"{k}"' not in code]
    assert unread == []


@pytest.mark.parametrize("key, value, words", [
    ("said_mask_ratio", 1.5, "<= 1"), ("scft_drop_ratio", 1.0, "< 1"), ("tslrec_valid_share", -0.1, ">= 0"),
    ("freeze_emb", "yes", "True or False"), ("llm_emb_norm", "shrink", "center, whiten, none"),
])
def test_the_table_refuses_out_of_range_values(key, value, words):
    from recbole_llmemb import settings

    with pytest.raises(UserError) as e:
        settings.check(key, value)
    assert str(e.value).startswith(f"{key}=") and words in str(e.value)
