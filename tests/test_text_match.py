"""The text match: ``weight * cos(candidate's text, mean text of the user's last items)`` beside the
backbone's scores (SASRec, GRU4Rec), with hand-computed answers."""
import pytest
import torch

from recbole_llmemb.config import UserError
from recbole_llmemb.model import layers
from tests.test_llmemb_models import build, data_root, first_batch  # noqa: F401  (fixture)


def test_query_is_the_mean_of_the_last_items_and_scores_agree():
    # 4 items (row 0 padding) on the axes: unit vectors, so cosine = dot product
    matrix = torch.cat([torch.zeros(1, 4), torch.eye(4) * torch.tensor([[1.0], [2.0], [3.0], [4.0]])])
    match = layers.TextMatch(matrix, last=2, norm="none", weight=2.0)
    seq = torch.tensor([[1, 2, 3, 0], [4, 0, 0, 0]])  # left-aligned lists, lengths 3 and 1
    length = torch.tensor([3, 1])
    q = match.query(seq, length)
    torch.testing.assert_close(q, torch.tensor([[0.0, 0.5, 0.5, 0.0], [0.0, 0.0, 0.0, 1.0]]))
    scores = match(seq, length)
    assert scores.shape == (2, 5)
    torch.testing.assert_close(scores[0], torch.tensor([0.0, 0.0, 1.0, 1.0, 0.0]))  # 2 * 0.5 on items 2, 3
    torch.testing.assert_close(match(seq, length, torch.tensor([3, 4])), scores[torch.arange(2), torch.tensor([3, 4])])


def test_an_item_with_the_last_items_text_ranks_first():
    torch.manual_seed(0)
    matrix = torch.randn(9, 16)
    matrix[8] = matrix[3] * 2.0 + 0.01 * torch.randn(16)  # item 8 reads like item 3
    match = layers.TextMatch(matrix, last=1, norm="center")
    scores = match(torch.tensor([[5, 3]]), torch.tensor([2]))
    scores[0, [0, 3, 5]] = -1e9  # padding and the history are not ranked
    assert int(scores.argmax()) == 8


def test_bad_text_match_settings_are_refused():
    with pytest.raises(UserError, match="text_match_last"):
        layers.TextMatch(torch.randn(5, 4), last=0)
    with pytest.raises(UserError, match="text_match_norm"):
        layers.TextMatch(torch.randn(5, 4), norm="zscore")


@pytest.mark.parametrize("name,gate", [("LLMEmbSASRec", False), ("LLMEmbGRU4Rec", False), ("LLMEmbSASRec", True)])
def test_models_add_the_text_match_to_every_score(data_root, tmp_path, name, gate):  # noqa: F811
    _, _, model, (train_data, _, _) = build(data_root, name, tmp_path, text_match=True, text_match_weight=3.0,
                                            text_match_gate=gate)
    assert model.text_match is not None and model.text_match.weight.item() == pytest.approx(3.0)
    batch = first_batch(train_data)
    model.eval()
    seq, length = batch[model.ITEM_SEQ], batch[model.ITEM_SEQ_LEN]
    with torch.no_grad():
        full = model.full_sort_predict(batch)
        h = model.forward(seq, length)
        backbone = h @ model.item_embedding.weight[: model.n_items].T
        torch.testing.assert_close(full, backbone + model.text_match(seq, length, seq_output=h))
        batch.update(type(batch)({model.ITEM_ID: batch[model.POS_ITEM_ID]}))
        one = model.predict(batch)
    torch.testing.assert_close(one, full[torch.arange(len(one)), batch[model.POS_ITEM_ID]])
    # the weight learns with the rest (CE here; BPR is the same scores)
    model.train()
    before = model.text_match.log_weight.detach().clone()
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    for _ in range(3):
        opt.zero_grad()
        model.calculate_loss(batch).backward()
        opt.step()
    assert model.text_match.log_weight.item() != before.item()
    if gate:  # the per-user gate learns too (it starts at zero: a factor 1 for everyone)
        assert model.text_match.gate.weight.abs().sum().item() > 0
    model.calculate_loss(batch)  # the logged weight is the one the loss used
    assert model.loss_components["text_weight"] == pytest.approx(model.text_match.weight.item())


def test_text_match_off_by_default_and_refused_for_bert4rec(data_root, tmp_path):  # noqa: F811
    _, _, model, _ = build(data_root, "LLMEmbSASRec", tmp_path)
    assert model.text_match is None
    with pytest.raises(UserError, match="text_match=True"):
        build(data_root, "LLMEmbBERT4Rec", tmp_path, text_match=True)
