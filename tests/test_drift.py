"""Popularity drift: training targets weighted to the popularity mix of each user's last target."""
import numpy as np
import pytest
import torch

from recbole_llmemb.data.drift import recent_mix_weights, weight_loss
from recbole_llmemb.errors import UserError
from recbole_llmemb.pipeline.config import Config
from recbole_llmemb.pipeline.quick_start import run_recbole_llmemb
from tests.conftest import REPO, SHARED_DATASETS, tiny_config, write_tiny_dataset

pytestmark = pytest.mark.usefixtures("quiet_single_thread")


class Split:
    """The two columns ``recent_mix_weights`` reads, as RecBole's training split holds them."""
    uid_field, iid_field = "user_id", "item_id"

    def __init__(self, users, items):
        self.inter_feat = {"user_id": torch.tensor(users), "item_id": torch.tensor(items)}


def test_weights_by_hand():
    # items 1, 2 popular (bucket 1), 3, 4 rare (bucket 0); user 1: 1, 2, 3 (last: rare), user 2: 1, 4 (rare), user 3: 2, 1 (popular)
    split = Split([1, 1, 1, 2, 2, 3, 3], [1, 2, 3, 1, 4, 2, 1])
    bucket = np.array([-1, 1, 1, 0, 0])
    w = recent_mix_weights(split, bucket)
    # all targets: 2 of 7 rare; last targets: 2 of 3 rare -> rare (2/3)/(2/7) = 7/3, popular (1/3)/(5/7) = 7/15
    np.testing.assert_allclose(w, [1, 7 / 15, 7 / 15, 7 / 3, 7 / 3])


def test_rows_not_grouped_by_user_are_refused():
    with pytest.raises(ValueError, match="not grouped by user"):
        recent_mix_weights(Split([1, 2, 1], [1, 2, 3]), np.array([-1, 0, 0, 1]))


def test_the_weighted_loss_is_the_weighted_mean_of_each_rows_loss():
    class Model(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = torch.nn.Linear(2, 2)
            self.loss_fct = torch.nn.CrossEntropyLoss()

    model = Model()
    assert weight_loss(model, [1.0, 0.5, 3.0])
    logits, target = torch.randn(4, 3), torch.tensor([0, 1, 2, 2])
    rows = torch.nn.functional.cross_entropy(logits, target, reduction="none")
    w = torch.tensor([1.0, 0.5, 3.0])[target]
    assert torch.allclose(model.loss_fct(logits, target), (w * rows).sum() / w.sum())
    model.loss_fct = torch.nn.MSELoss()
    assert not weight_loss(model, [1.0])


def test_a_run_with_target_weights_trains_and_bpr_is_refused(tmp_path):
    write_tiny_dataset(tmp_path)
    results = run_recbole_llmemb("SASRec", "tiny", config_dict=tiny_config(tmp_path, target_weights="recent", epochs=1))
    assert results["config"]["target_weights"] == "recent" and results["test"]["n_rows"] > 0
    with pytest.raises(UserError, match="target_weights=recent weighs a cross-entropy loss"):
        run_recbole_llmemb("SASRec", "tiny", config_dict=tiny_config(
            tmp_path, target_weights="recent", loss_type="BPR", train_neg_sample_args={"distribution": "uniform", "sample_num": 1}))
    with pytest.raises(UserError, match="target_weights"):
        Config("SASRec", "tiny", config_dict=tiny_config(tmp_path, target_weights="old"))
    with pytest.raises(UserError, match="target_weights=recent weighs a cross-entropy loss; BERT4Rec"):
        run_recbole_llmemb("BERT4Rec", "tiny", config_dict=tiny_config(tmp_path, target_weights="recent"))


def test_a_plugin_model_warm_starts_from_a_sasrec_trained_with_target_weights(tmp_path):
    # the alignment SASRec's state holds its loss's class weights; the warm start must not read them as encoder
    write_tiny_dataset(tmp_path)
    results = run_recbole_llmemb("LLMEmbSASRec", "tiny", config_dict=tiny_config(
        tmp_path, target_weights="recent", llm_embedding_method="random", epochs=1))
    assert results["test"]["n_rows"] > 0 and results["config"]["rat_init"] == "collaborative"


@pytest.mark.skipif(not (SHARED_DATASETS / "amazon-beauty").is_dir(), reason="../shared/datasets/amazon-beauty is absent")
def test_settings_at_their_defaults_keep_the_alignment_sasrec_s_cache_key():
    """A setting added later, at its default, must not retrain every cached alignment SASRec: the key of
    the benchmark's Beauty SASRec is the one its cache entries were made under (2026-12-02)."""
    from recbole_llmemb.pipeline.collaborative import cache_entry

    def key(**extra):
        config = Config("LLMEmbSASRec", "amazon-beauty", [str(REPO / "benchmarks" / "beauty.yaml")],
                        {"data_path": str(SHARED_DATASETS), **extra})
        return cache_entry(config)[1][:16]

    assert key() == key(mask_history=False, target_weights="none", new_items=0) == "a47801b57a0236f3"
    assert len({key(), key(mask_history=True), key(target_weights="recent")}) == 3
