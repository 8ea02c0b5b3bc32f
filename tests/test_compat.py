"""Each RecBole 1.2.1 failure on today's stack (recbole_llmemb/compat.py), shown gone."""
import subprocess
import sys

import numpy as np
import pytest
import torch

from recbole_llmemb import compat
from recbole_llmemb.pipeline.config import RECBOLE_EXAMPLE_DIR, Config


def test_numpy2_aliases_let_config_build():
    for name in ("float_", "unicode_", "complex_", "float", "bool", "long"):
        assert hasattr(np, name)
    config = Config("SASRec", "ml-100k", config_dict={"epochs": 1})
    assert config["MAX_ITEM_LIST_LENGTH"] == 50


def test_config_ignores_sys_argv(monkeypatch):
    monkeypatch.setattr(sys, "argv", ["pytest", "--epochs=999", "-x", "--model=BPR"])
    config = Config("SASRec", "ml-100k", config_dict={"epochs": 3})
    assert config["epochs"] == 3 and config["model"] == "SASRec"


def test_recbole_own_config_still_reads_sys_argv(monkeypatch):
    """The plugin's argv handling is its own Config's: RecBole's entry points keep their behaviour."""
    from recbole.config import Config as RecBoleConfig

    monkeypatch.setattr(sys, "argv", ["run_recbole.py", "--epochs=7", "--learning_rate=0.01"])
    # (RecBole 1.2.1 refuses its own default negative sampling for CE unless told None)
    config = RecBoleConfig("SASRec", "ml-100k", config_dict={"data_path": str(RECBOLE_EXAMPLE_DIR), "train_neg_sample_args": None})
    assert config["epochs"] == 7 and config["learning_rate"] == 0.01


def test_checkpoint_with_pickled_config_loads(tmp_path):
    """torch >= 2.6 refuses RecBole's checkpoints (they pickle a Config) unless weights_only=False."""
    config = Config("SASRec", "ml-100k", config_dict={"epochs": 1})
    path = tmp_path / "ckpt.pth"
    torch.save({"config": config, "state_dict": {}}, path)
    import recbole.trainer.trainer as trainer_module

    loaded = trainer_module.torch.load(path, map_location="cpu")
    assert loaded["config"]["model"] == "SASRec"
    assert compat.load_checkpoint(path)["config"]["dataset"] == "ml-100k"


def test_collector_handles_int_metrics():
    """ItemCoverage etc. store ints; RecBole 1.2.1 called .cpu() on them."""
    from recbole.evaluator.collector import Collector

    config = Config("SASRec", "ml-100k", config_dict={"metrics": ["Hit", "ItemCoverage"], "topk": [10]})
    collector = Collector(config)
    collector.data_struct.set("data.num_items", 7)
    collector.data_struct.set("rec.topk", torch.zeros(2, 11))
    struct = collector.get_data_struct()
    assert struct.get("data.num_items") == 7


def test_package_never_imports_recbole_quick_start():
    """recbole.quick_start imports ray (broken on numpy 2 / setuptools >= 81)."""
    code = (
        "import sys, recbole_llmemb.pipeline.quick_start, recbole_llmemb.pipeline.config;"
        "assert 'recbole.quick_start' not in sys.modules, 'imported';"
        "assert 'ray' not in sys.modules, 'ray imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_recbole_run_recbole_imports_beside_the_plugin():
    """A user who mixes the plugin with RecBole's own entry point gets it (ray needs pkg_resources
    and np.bool8: setuptools < 81 is a requirement, the alias is compat's)."""
    code = "import recbole_llmemb; from recbole.quick_start import run_recbole; assert callable(run_recbole)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-1500:]


@pytest.mark.parametrize("plugin_import", ["from recbole_llmemb.model import LLMEmbSASRec",
                                           "from recbole_llmemb.pipeline.quick_start import run_recbole_llmemb"])
def test_recbole_sequential_models_do_not_turn_on_anomaly_detection(plugin_import):
    """recbole/model/sequential_recommender/sine.py switches autograd's anomaly detection on globally at
    import (3x slower training); in a fresh interpreter, RecBole alone leaves it on and the plugin's
    import paths leave it off."""
    check = "import torch; print(torch.is_anomaly_enabled())"
    alone = subprocess.run([sys.executable, "-c", f"import recbole.model.sequential_recommender; {check}"],
                           capture_output=True, text=True)
    assert alone.stdout.strip() == "True", alone.stderr[-800:]  # the failure, as RecBole ships it
    plugin = subprocess.run([sys.executable, "-c", f"{plugin_import}; {check}"], capture_output=True, text=True)
    assert plugin.stdout.strip() == "False", plugin.stderr[-800:]


def test_feed_forward_gelu_is_recbole_formula_in_one_kernel():
    """The fused GELU computes RecBole's own formula (within float rounding) and is what SASRec uses."""
    import math

    from recbole.model.layers import FeedForward

    layer = FeedForward(8, 16, 0.0, "gelu", 1e-12)
    x = torch.linspace(-6, 6, 1001)
    recbole_formula = x * 0.5 * (1.0 + torch.erf(x / math.sqrt(2.0)))
    torch.testing.assert_close(layer.intermediate_act_fn(x), recbole_formula, rtol=0, atol=2e-6)
    assert layer.intermediate_act_fn(x).grad_fn is None  # one op on a leaf without grad: nothing recorded
    y = x.clone().requires_grad_()
    layer.intermediate_act_fn(y).sum().backward()
    assert type(layer.intermediate_act_fn(y).grad_fn).__name__ == "GeluBackward0"


def test_checkpoints_from_before_the_pipeline_package_still_unpickle():
    """RecBole's checkpoints pickle the Config; older ones name it recbole_llmemb.config.Config."""
    import pickle

    from recbole_llmemb.pipeline.config import Config

    assert pickle.loads(b"crecbole_llmemb.config\nConfig\n.") is Config


def test_recbole_makes_a_folder_that_another_process_just_made_without_failing(tmp_path, monkeypatch):
    """Two processes of one run both find the log folder missing; the second to make it must not fail."""
    import os

    import recbole.utils.logger as logger_module

    folder = tmp_path / "log"
    folder.mkdir()
    monkeypatch.setattr(os.path, "exists", lambda path: False)  # this process looked before the other made it
    logger_module.ensure_dir(str(folder))
    assert folder.is_dir()
