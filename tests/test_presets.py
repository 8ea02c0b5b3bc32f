"""Each paper's recipe is one props file that runs end to end with the settings it documents."""
import numpy as np
import pytest
import yaml

from recbole_llmemb.pipeline.config import PROPS_DIR
from recbole_llmemb.pipeline.quick_start import run_recbole_llmemb
from tests.conftest import tiny_config

pytestmark = pytest.mark.usefixtures("quiet_single_thread")

#: sizes that make a tiny run take seconds (a preset's own values are checked for every other key)
FAST = {"epochs": 1, "collab_epochs": 1, "scft_steps": 2, "said_steps": 2, "said_batch_size": 8,
        "tslrec_batch_size": 8, "MAX_ITEM_LIST_LENGTH": 5, "hidden_size": 16, "embedding_size": 16,
        "n_layers": 1, "train_batch_size": 64}


@pytest.mark.parametrize("model,preset", [("LLMEmbSASRec", "llmemb-paper.yaml"), ("SAIDSASRec", "said-paper.yaml"),
                                          ("TSLRecSASRec", "tslrec-paper.yaml")])
def test_paper_preset_runs_with_the_settings_it_documents(tiny, model, preset):
    documented = yaml.safe_load((PROPS_DIR / preset).read_text())
    fast = {k: v for k, v in FAST.items() if k in documented or k in ("collab_epochs", "tslrec_batch_size")}
    results = run_recbole_llmemb(model, "tiny", config_file_list=[str(PROPS_DIR / "paper.yaml"), str(PROPS_DIR / preset)],
                                 config_dict=tiny_config(tiny, **fast))
    config = results["config"]
    for key, value in documented.items():
        if key not in fast:
            assert config[key] == value, key
    assert config["item_id_emb"] is False and config["rat_init"] == "scratch" and config["text_blend"] == 0
    assert results["protocol"]["name"] == "paper" and np.isfinite(results["test"]["overall"]["ndcg@10"])
    # from scratch: the alignment SASRec enters RAT only through LLMEmb's alignment term (alpha 0.01)
    assert ("alignment_sasrec_results" in results) == (model == "LLMEmbSASRec")
