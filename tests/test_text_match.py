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
                                            text_match_gate=gate, text_blend=0)
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
    # the inference blend is on by default: weight 0.3, gated by the share of tail items
    assert model.text_blend == 0.3 and model.blend_tail is not None
    with pytest.raises(UserError, match="text_match=True"):
        build(data_root, "LLMEmbBERT4Rec", tmp_path, text_match=True)


@pytest.mark.parametrize("name", ["LLMEmbSASRec", "LLMEmbBERT4Rec"])
def test_text_blend_standardises_both_scores_and_trains_nothing(data_root, tmp_path, name):  # noqa: F811
    _, _, plain, (train_data, _, _) = build(data_root, name, tmp_path, text_blend=0)
    _, _, blended, _ = build(data_root, name, tmp_path, text_blend=0.5, text_blend_gate="none")
    blended.load_state_dict(plain.state_dict())  # a checkpoint without the blend loads as it is
    assert [n for n, _ in blended.named_parameters()] == [n for n, _ in plain.named_parameters()]
    batch = first_batch(train_data)
    plain.eval(), blended.eval()
    with torch.no_grad():
        base = plain.full_sort_predict(batch)
        text = blended.text_blend_score(batch[plain.ITEM_SEQ], batch[plain.ITEM_SEQ_LEN])
        got = blended.full_sort_predict(batch)
        z = lambda x: (x - x.mean(1, keepdim=True)) / x.std(1, keepdim=True)  # noqa: E731
        torch.testing.assert_close(got, z(base[:, : text.shape[1]]) + 0.5 * z(text))
        # the text term is the cosine to the mean of the last 3 items (whitened vectors)
        q = blended.text_blend_score.query(batch[plain.ITEM_SEQ], batch[plain.ITEM_SEQ_LEN])
        torch.testing.assert_close(text, q @ blended.text_blend_score.table.T)
        batch.update(type(batch)({plain.ITEM_ID: torch.ones(len(got), dtype=torch.long) * 2}))
        torch.testing.assert_close(blended.predict(batch), got[:, 2])


def test_recent_share_counts_flags_over_the_last_items_only():
    flags = torch.tensor([0.0, 1.0, 0.0, 1.0, 0.0])  # items 1 and 3 flagged; 0 is padding
    seq = torch.tensor([[1, 2, 3, 4, 0], [2, 2, 0, 0, 0], [3, 0, 0, 0, 0]])
    score = layers.TextMatch(torch.eye(5), last=3, norm="none", learned=False)
    torch.testing.assert_close(score.recent_share(flags, seq, torch.tensor([4, 2, 1])), torch.tensor([1 / 3, 0.0, 1.0]))


def test_tail_gated_blend_leaves_head_histories_alone(data_root, tmp_path):  # noqa: F811
    """text_blend_gate=tail: weight x (share of tail items among the last 3); a user whose last
    items are all head items keeps the model's ranking, the others get the blend at that weight."""
    from recbole_llmemb.evaluation.longtail import build_groups, training_counts

    _, _, plain, (train_data, _, _) = build(data_root, "LLMEmbSASRec", tmp_path, text_blend=0)
    _, _, gated, _ = build(data_root, "LLMEmbSASRec", tmp_path, text_blend=0.5, text_blend_gate="tail")
    assert plain.text_blend_score is None
    gated.load_state_dict(plain.state_dict())
    groups = build_groups(*training_counts(train_data.dataset, []))
    assert gated.blend_tail[0] == 0 and gated.blend_tail[1:].sum() == (~groups.is_head[1:]).sum() > 0
    batch = first_batch(train_data)
    plain.eval(), gated.eval()
    with torch.no_grad():
        seq, length = batch[plain.ITEM_SEQ], batch[plain.ITEM_SEQ_LEN]
        share = gated.text_blend_score.recent_share(gated.blend_tail, seq, length)
        assert (share == 0).any() and (share > 0).any()
        base, text = plain.full_sort_predict(batch), gated.text_blend_score(seq, length)
        z = lambda x: (x - x.mean(1, keepdim=True)) / x.std(1, keepdim=True)  # noqa: E731
        torch.testing.assert_close(gated.full_sort_predict(batch), z(base[:, : text.shape[1]]) + 0.5 * share[:, None] * z(text))
    with pytest.raises(UserError, match="text_blend_gate=users: use one of none, tail"):
        build(data_root, "LLMEmbSASRec", tmp_path, text_blend=0.5, text_blend_gate="users")


def test_blend_reads_other_vectors_when_asked(data_root, tmp_path):  # noqa: F811
    """text_blend_vectors=plain (the default): the blend's text table comes from the attached store,
    not from the vectors the model reads (own); without that store the model refuses to build."""
    import numpy as np

    from recbole_llmemb.data.dataset import BLEND_ITEM_EMB_ATTR
    from recbole_llmemb.model import LLMEmbSASRec, SAIDSASRec

    def blend_of(**settings):
        config = {"text_blend": 0.3, "text_blend_vectors": "own", "llm_embedding_method": None, **settings}
        return LLMEmbSASRec.blend_vectors(config)

    assert blend_of() is None and blend_of(text_blend_vectors="plain") == "plain"
    assert LLMEmbSASRec.blend_vectors({}) == "plain"  # the default: the LM's plain vectors
    assert blend_of(text_blend_vectors="scft") is None  # the model's own method: nothing extra to load
    assert blend_of(text_blend_vectors="plain", text_blend=0) is None
    assert SAIDSASRec.blend_vectors({"text_blend": 0.3, "text_blend_vectors": "plain",
                                     "llm_embedding_method": "said"}) == "plain"

    from tests.test_llmemb_models import make_config

    _, _, own, (train_data, _, _) = build(data_root, "LLMEmbSASRec", tmp_path, text_blend=0.5, text_blend_vectors="own")
    torch.testing.assert_close(own.text_blend_score.table, layers.TextMatch(
        train_data.dataset.llm_item_emb, last=3, norm="whiten", learned=False).table)
    config = make_config(data_root, "LLMEmbSASRec", tmp_path, text_blend=0.5, text_blend_vectors="plain")
    delattr(train_data.dataset, BLEND_ITEM_EMB_ATTR)
    with pytest.raises(UserError, match="text_blend_vectors=plain: the blend's text vectors are not on the dataset"):
        LLMEmbSASRec(config, train_data.dataset)
    other = np.random.default_rng(7).normal(size=own.text_blend_score.table.shape).astype(np.float32)
    other[0] = 0
    setattr(train_data.dataset, BLEND_ITEM_EMB_ATTR, other)
    blended = LLMEmbSASRec(config, train_data.dataset)
    expected = layers.TextMatch(other, last=3, norm="whiten", learned=False).table
    torch.testing.assert_close(blended.text_blend_score.table, expected)
    assert not torch.allclose(own.text_blend_score.table, expected)
