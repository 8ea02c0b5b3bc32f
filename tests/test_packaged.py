"""Packaged language models by name: a clear line when one is not installed; installed, each loads
offline and gives its documented size, and the decoder runs SCFT with LoRA on real LLaMA weights."""
import os

import numpy as np
import pytest

from recbole_llmemb.errors import UserError
from recbole_llmemb.generator import packaged
from recbole_llmemb.pipeline.config import Config
from recbole_llmemb.pipeline.generate import item_embeddings
from recbole_llmemb.pipeline.training import load_dataset
from tests.conftest import tiny_config, write_tiny_dataset

pytestmark = pytest.mark.usefixtures("quiet_single_thread")


def installed(name):
    try:
        return packaged.installed_path(name)
    except UserError:
        return None


def skip_unless_installed(name):
    return pytest.mark.skipif(installed(name) is None, reason=(
        f"{name} is not installed here (python -m recbole_llmemb.generator.packaged install {name}; "
        f"bash scripts/setup.sh --models={name})"))


def test_a_model_that_is_not_installed_is_one_line_saying_how(tmp_path, monkeypatch, capsys):
    from recbole_llmemb.pipeline.generate import main

    monkeypatch.setenv("RECBOLE_LLMEMB_MODELS", str(tmp_path / "models"))
    write_tiny_dataset(tmp_path)
    argv = ["--method=plain", "--dataset=tiny", f"--data_path={tmp_path}", f"--embedding_cache_dir={tmp_path / 'cache'}",
            "--llm_path=all-mpnet-base-v2"]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "not installed" in err and "packaged install all-mpnet-base-v2" in err and "\n" not in err
    assert not (tmp_path / "cache").exists() or not any((tmp_path / "cache").rglob("vectors.npy"))


def test_the_default_is_the_first_packaged_model_by_name(tmp_path):
    from recbole_llmemb.generator.backbone import resolve_model_path

    assert resolve_model_path({"llm_path": "all-MiniLM-L6-v2"}) == resolve_model_path({}) == packaged.default_model_path()
    with pytest.raises(UserError, match="one of all-MiniLM-L6-v2, all-mpnet-base-v2, SmolLM2-135M"):
        packaged.install("gpt-9")


def vectors(tmp_path, name, method="plain", **extra):
    write_tiny_dataset(tmp_path, n_users=10, n_items=12, per_user=4)
    config = Config("SASRec", "tiny", config_dict=tiny_config(tmp_path, llm_path=name, **extra))
    return item_embeddings(config, load_dataset(config), method, progress=False)


@skip_unless_installed("all-mpnet-base-v2")
def test_mpnet_by_name_gives_768_dimensions(tmp_path):
    es = vectors(tmp_path, "all-mpnet-base-v2")
    assert es.vectors.shape == (12, 768) and np.isfinite(es.vectors).all()
    assert es.meta["model"]["path"] == installed("all-mpnet-base-v2")
    assert np.linalg.matrix_rank(es.vectors) == 12  # twelve different texts, twelve different vectors


@skip_unless_installed("SmolLM2-135M")
def test_the_real_decoder_runs_scft_with_lora_and_last_token_pooling(tmp_path):
    es = vectors(tmp_path, "SmolLM2-135M", method="scft", llm_pooling="last", scft_steps=2, scft_batch_size=4,
                 llm_max_length=48)
    assert es.vectors.shape == (12, 576) and np.isfinite(es.vectors).all()
    model = es.meta["model"]
    assert model["family"] == "decoder" and model["model_type"] == "llama" and model["hidden_size"] == 576
    assert set(model["lora_target_modules"]) >= {"q_proj", "v_proj", "gate_proj"}
    assert os.path.isfile(os.path.join(installed("SmolLM2-135M"), packaged.MANIFEST))
