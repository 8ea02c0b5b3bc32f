"""What keeps a large catalogue in memory: the adapter's input statistics in row blocks, a frozen
table held once, and evaluation batches whose score matrix fits."""
import numpy as np
import pytest
import torch

from recbole_llmemb.model import adapter
from recbole_llmemb.pipeline import training
from recbole_llmemb.pipeline.quick_start import run_recbole_llmemb

from conftest import tiny_config

pytestmark = pytest.mark.usefixtures("quiet_single_thread")


@pytest.mark.parametrize("how", ["none", "center", "whiten"])
def test_input_statistics_in_blocks_equal_the_direct_ones(monkeypatch, how):
    items = torch.randn(3000, 24, generator=torch.Generator().manual_seed(0)) * 2 + 0.5
    direct = adapter.input_normalisation(items, how)
    monkeypatch.setattr(adapter, "LARGE_TABLE", 0)
    monkeypatch.setattr(adapter, "BLOCK_ELEMENTS", 257 * 24)  # blocks of 257 rows, the last one short
    blocked = adapter.input_normalisation(items, how)
    torch.testing.assert_close(blocked[0], direct[0], rtol=0, atol=1e-6)
    assert (blocked[1] is None) == (direct[1] is None)
    if direct[1] is not None:
        torch.testing.assert_close(blocked[1], direct[1], rtol=1e-5, atol=1e-5)
    assert blocked[2] == pytest.approx(direct[2], rel=1e-9)


def test_a_frozen_table_shares_the_callers_rows_and_an_unfrozen_one_copies_them():
    rows = np.random.default_rng(0).standard_normal((50, 8)).astype(np.float32)
    frozen = adapter.AdaptedItemEmbedding(rows, 4, freeze=True)
    tuned = adapter.AdaptedItemEmbedding(rows, 4, freeze=False)
    assert frozen.llm_weight.data_ptr() == torch.as_tensor(rows).data_ptr()
    assert tuned.llm_weight.data_ptr() != torch.as_tensor(rows).data_ptr()


def test_eval_batches_are_cut_to_the_score_budget_and_the_metrics_stay(tiny, monkeypatch):
    cfg = tiny_config(tiny, epochs=1)
    whole = run_recbole_llmemb("SASRec", "tiny", config_dict=cfg)
    monkeypatch.setattr(training, "SCORE_BUDGET", 4 * 41 * 3)  # 3 users x 41 item ids of float32 scores
    cut = run_recbole_llmemb("SASRec", "tiny", config_dict=cfg)
    assert whole["config"]["eval_batch_size"] == 256 and cut["config"]["eval_batch_size"] == 3
    for split in ("valid", "test"):
        assert cut[split]["overall"] == whole[split]["overall"] and cut[split]["per_user"] == whole[split]["per_user"]


@pytest.mark.parametrize("norm", ["center", "whiten", "none"])
def test_a_large_frozen_table_is_adapted_in_blocks_in_evaluation_alike(monkeypatch, norm):
    rows = np.random.default_rng(1).standard_normal((1001, 12)).astype(np.float32)
    emb = adapter.AdaptedItemEmbedding(rows, 6, freeze=True, input_norm=norm)
    with torch.no_grad():
        whole = emb.table()
        monkeypatch.setattr(adapter, "LARGE_TABLE", 0)
        monkeypatch.setattr(adapter, "BLOCK_ELEMENTS", 12 * 64)  # 64 rows a block, the last one short
        blocked = emb.table()
    torch.testing.assert_close(blocked, whole, rtol=1e-5, atol=1e-6)
    assert emb.table().requires_grad  # with gradients (training) the whole table as before
