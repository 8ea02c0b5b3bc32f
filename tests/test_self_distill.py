"""self_distill (LLM-ESR's retrieval-augmented self-distillation): users retrieved by the text of their
training histories, teachers from the model itself, histories from the training split only."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from recbole_llmemb.model.self_distill import text_neighbours
from recbole.data import data_preparation

from recbole_llmemb.pipeline.config import UserError
from recbole_llmemb.pipeline.quick_start import load_dataset, prepare_plugin_inputs
from tests.conftest import write_tiny_dataset
from tests.test_rerank import run

pytestmark = pytest.mark.usefixtures("quiet_single_thread")


def test_neighbours_are_the_users_whose_history_text_is_alike():
    rng = np.random.default_rng(0)
    centres = np.eye(4, dtype=np.float32) * 5
    # items 1-4 read like topic 0, 5-8 like topic 1, 9-12 like topics 2 and 3 (row 0: padding)
    vectors = np.vstack([np.zeros((1, 4), np.float32),
                         *[centres[t] + rng.normal(scale=0.3, size=(4, 4)) for t in (0, 1)],
                         centres[[2, 3, 2, 3]] + rng.normal(scale=0.3, size=(4, 4))]).astype(np.float32)
    histories = torch.tensor([[0, 0, 0], [1, 2, 0], [5, 6, 7], [3, 4, 0], [8, 5, 0], [2, 3, 1], [9, 10, 11]])
    lengths = torch.tensor([0, 2, 3, 2, 2, 3, 3])  # user 0: no training history
    got = text_neighbours(histories, lengths, vectors, 2)
    assert set(got[1].tolist()) == {3, 5}  # topic 0
    assert set(got[3].tolist()) == {1, 5}
    assert got[2, 0].item() == 4 and got[4, 0].item() == 2  # topic 1: each other first
    assert 0 not in got[1:].flatten().tolist()  # a user without history teaches no one
    assert all(u not in got[u].tolist() for u in range(1, 7))  # nor does a user teach themselves


@pytest.fixture
def tiny(tmp_path):
    write_tiny_dataset(tmp_path, n_items=60)
    return tmp_path


def tokens_of(dataset, field, ids):
    return [str(t) for t in dataset.field2id_token[field][ids]]


def test_histories_are_the_training_part_and_the_teachers_the_model_itself(tiny):
    config, results, trainer, data = run(tiny, "LLMEmbSASRec", self_distill=1.0, self_distill_users=3,
                                      llm_embedding_method="plain", rat_init="scratch", alpha=0)
    model, dataset = trainer.model, trainer.model.self_distill
    assert all(np.isfinite(e["losses"]["distill"]) and e["losses"]["distill"] > 0 for e in results["history"])
    # leave-one-out (valid and test) on 8 time-ordered interactions: the first 6 of every user, in order
    lines = [line.split("\t") for line in (tiny / "tiny" / "tiny.inter").read_text().splitlines()[1:]]
    first_six = {}
    for user, item, _ in lines:
        first_six.setdefault(user, []).append(item)
    users = np.nonzero(dataset.lengths.numpy())[0]
    assert len(users) == 30
    for u in users:
        items = tokens_of(data, "item_id", dataset.histories[u, :dataset.lengths[u]].numpy())
        assert items == first_six[str(data.field2id_token["user_id"][u])][:6]
    # the teachers: every user's history through the model itself, without dropout
    model.train()
    model.on_epoch_start()
    assert model.training and not dataset.teachers.requires_grad
    model.eval()
    with torch.no_grad():
        want = model.forward(dataset.histories[users], dataset.lengths[users])
    torch.testing.assert_close(dataset.teachers[users], want, rtol=1e-4, atol=1e-5)
    rows = torch.as_tensor(users[:5])
    out = torch.randn(5, want.shape[1])
    hand = F.mse_loss(out, dataset.teachers[dataset.neighbours[rows]].mean(1))
    torch.testing.assert_close(dataset(rows, out), hand)


def test_ratio_split_keeps_held_out_interactions_out(tiny):
    config, _, trainer, _ = run(tiny, "LLMEmbSASRec", self_distill=0.5, llm_embedding_method="plain", rat_init="scratch",
                           alpha=0, eval_args={"split": {"RS": [0.5, 0.25, 0.25]}, "order": "TO", "mode": "full"})
    sd = trainer.model.self_distill
    dataset = load_dataset(config)
    prepare_plugin_inputs(config, dataset, type(trainer.model), {})
    held = set()
    for part in data_preparation(config, dataset)[1:]:
        inter = part.dataset.inter_feat
        held |= set(zip(inter["user_id"].tolist(), inter["item_id"].tolist()))
    seen = {(u, i) for u in range(len(sd.lengths)) for i in sd.histories[u, :sd.lengths[u]].tolist()}
    assert seen and not seen & held


def test_refused_where_undefined(tiny):
    with pytest.raises(UserError, match="self_distill"):
        run(tiny, "LLMEmbBERT4Rec", self_distill=0.1, llm_embedding_method="plain", rat_init="scratch", alpha=0)
