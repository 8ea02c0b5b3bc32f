"""New items (item cold start): held out of every training batch, ranked in test, counted by hand."""
import numpy as np
import pytest
import torch

from recbole_llmemb.data.new_items import choose_new_items, exclude_from_loss, hold_out, without_new_items
from recbole_llmemb.evaluation.longtail import build_groups, training_counts
from recbole_llmemb.pipeline.config import Config
from recbole_llmemb.pipeline.quick_start import run_recbole_llmemb
from tests.conftest import tiny_config, write_tiny_dataset

from recbole.data import create_dataset, data_preparation  # noqa: E402
from recbole.utils import init_seed  # noqa: E402

pytestmark = pytest.mark.usefixtures("quiet_single_thread")


def split(tmp_path, share, model="SASRec", **extra):
    write_tiny_dataset(tmp_path)
    config = Config(model, "tiny", config_dict=tiny_config(tmp_path, **extra))
    init_seed(config["seed"], True)
    dataset = create_dataset(config)
    is_new = choose_new_items(dataset.item_num, share, config["seed"])
    if share:
        hold_out(dataset, is_new)
    return config, dataset, is_new, data_preparation(config, dataset)


def test_the_share_is_drawn_from_the_seed_and_never_the_padding_id():
    a, b = choose_new_items(41, 0.25, 7), choose_new_items(41, 0.25, 7)
    assert np.array_equal(a, b) and a.sum() == 10 and not a[0]
    assert not np.array_equal(a, choose_new_items(41, 0.25, 8))
    assert not choose_new_items(41, 0, 7).any()


def test_a_new_item_is_in_no_training_batch_and_is_ranked_in_test(tmp_path):
    config, dataset, is_new, (train, valid, test) = split(tmp_path, 0.2)
    new_ids = torch.as_tensor(np.nonzero(is_new)[0])
    seen_rows = 0
    for batch in train:  # every batch the trainer would see: targets and histories
        items = torch.cat([batch["item_id"], batch["item_id_list"].reshape(-1)])
        assert not torch.isin(items, new_ids).any()
        lengths = batch["item_length"]
        assert (lengths > 0).all() and (batch["item_id_list"][torch.arange(len(lengths)), lengths - 1] > 0).all()
        seen_rows += len(lengths)
    assert seen_rows == len(train.dataset) > 0
    test_targets = test.dataset.inter_feat["item_id"]
    assert torch.isin(test_targets, new_ids).any()  # new items are among the test targets ...
    groups = build_groups(*training_counts(dataset, [valid.dataset, test.dataset], is_new), is_new=is_new)
    assert (groups.item_count[is_new] == 0).all()
    assert not (groups.is_head & is_new).any() and not (groups.is_tail & is_new).any()


@pytest.mark.parametrize("model_name", ["SASRec", "GRU4Rec"])
@pytest.mark.parametrize("negatives", [False, True])
def test_new_items_are_out_of_the_training_softmax_unless_asked(tmp_path, model_name, negatives):
    """Out of the softmax, a new item's row gets no gradient from a training step (every other item's
    row does, as a negative); kept as negatives (``new_items_negatives``), it is pushed like the rest."""
    from recbole.utils import get_model

    config, dataset, is_new, (train, _, _) = split(tmp_path, 0.2, model=model_name)
    model = get_model(model_name)(config, train.dataset)
    if not negatives:
        assert exclude_from_loss(model, is_new)
    batch = next(iter(train))
    model.train()
    loss = model.calculate_loss(batch)
    assert torch.isfinite(loss)
    loss.backward()
    moved = model.item_embedding.weight.grad[: dataset.item_num].abs().sum(1) > 0
    assert moved[1:][~is_new[1:]].all()  # every listed item is a negative (row 0: padding)
    assert moved[is_new].all() if negatives else not moved[is_new].any()
    model.eval()
    with torch.no_grad():  # evaluation scores every item, new ones included: the hook is training-only
        logits = torch.randn(3, dataset.item_num)
        target = torch.tensor([1, 2, 3])
        assert torch.isfinite(model.loss_fct(logits, target)).all()


def test_losses_it_cannot_reach_are_left_alone_with_a_warning(tmp_path, caplog):
    """BPR's sampled negatives and BERT4Rec's own cross-entropy (made inside its calculate_loss) stay as
    they are, and a run says so."""
    from recbole.model.sequential_recommender import BERT4Rec, SASRec

    config, _, is_new, (train, _, _) = split(tmp_path, 0.2, loss_type="BPR",
                                             train_neg_sample_args={"distribution": "uniform", "sample_num": 1})
    assert not exclude_from_loss(SASRec(config, train.dataset), is_new)
    config, _, is_new, (train, _, _) = split(tmp_path, 0.2, model="BERT4Rec")
    assert not exclude_from_loss(BERT4Rec(config, train.dataset), is_new)
    run_recbole_llmemb("BERT4Rec", "tiny", config_dict=tiny_config(tmp_path, new_items=0.2, epochs=1))
    assert "new items stay negatives" in caplog.text


def test_taking_new_items_out_of_a_history_keeps_the_rest_in_order(tmp_path):
    config, dataset, _, (train, _, _) = split(tmp_path, 0.0)
    part = train.dataset
    row = int(torch.nonzero(part.inter_feat["item_length"] >= 4)[0])
    history = part.inter_feat["item_id_list"][row][: int(part.inter_feat["item_length"][row])].tolist()
    is_new = np.zeros(dataset.item_num, dtype=bool)
    is_new[history[1]] = True  # one item of that history becomes new
    is_new[int(part.inter_feat["item_id"][row])] = False
    kept = without_new_items(part, is_new).inter_feat
    target_of = part.inter_feat["item_id"][row]
    same_user = (kept["user_id"] == part.inter_feat["user_id"][row]) & (kept["item_id"] == target_of)
    (j,) = torch.nonzero(same_user)[:, 0].tolist()
    expected = [i for i in history if i != history[1]]
    assert kept["item_length"][j] == len(expected)
    assert kept["item_id_list"][j][: len(expected)].tolist() == expected
    assert not kept["item_id_list"][j][len(expected):].any()  # padding after the history
    assert kept["timestamp_list"][j][: len(expected)].tolist() == sorted(kept["timestamp_list"][j][: len(expected)].tolist())


def test_item_new_counts_match_a_hand_count(tmp_path):
    write_tiny_dataset(tmp_path)
    results = run_recbole_llmemb("SASRec", "tiny", config_dict=tiny_config(tmp_path, new_items=0.2, epochs=1))
    _, _, is_new, (_, _, test) = split(tmp_path, 0.2)
    hand = int(np.isin(test.dataset.inter_feat["item_id"].numpy(), np.nonzero(is_new)[0]).sum())
    groups = results["test"]["groups"]
    assert groups["item_new"]["size"] == hand > 0
    assert groups["item_head"]["size"] + groups["item_tail"]["size"] + hand == results["test"]["n_rows"]
    assert results["test"]["definition"]["n_new_items"] == int(is_new.sum())
    assert results["config"]["new_items"] == 0.2


def test_a_plugin_model_reads_new_items_by_their_text_alone(tmp_path):
    """Held-out items keep a zero id offset that gets no gradient; the others keep theirs."""
    from recbole_llmemb.model.adapter import AdaptedItemEmbedding

    emb = AdaptedItemEmbedding(torch.randn(6, 8), 4, id_table=True)
    with torch.no_grad():
        emb.id_weight.normal_()
    is_new = np.array([False, False, True, False, True, False])
    emb.hold_out_ids(is_new)
    emb.table().sum().backward()
    assert not emb.id_weight[[1, 3]].any() and emb.id_weight[[0, 2, 4]].all()
    assert not emb.id_weight.grad[[1, 3]].any() and emb.id_weight.grad[[0, 2, 4]].all()
    assert "id_mask" not in emb.state_dict()  # checkpoints keep their layout


@pytest.mark.parametrize("share", [-0.1, 1.0])
def test_a_share_outside_zero_to_one_is_refused(tmp_path, share):
    from recbole_llmemb.errors import UserError

    write_tiny_dataset(tmp_path)
    with pytest.raises(UserError, match="new_items="):
        Config("SASRec", "tiny", config_dict=tiny_config(tmp_path, new_items=share))


def test_a_plugin_run_holds_out_the_same_items_in_its_alignment_sasrec(tmp_path):
    import json

    write_tiny_dataset(tmp_path)
    results = run_recbole_llmemb("LLMEmbSASRec", "tiny", config_dict=tiny_config(
        tmp_path, new_items=0.2, epochs=1, collab_epochs=1, scft_steps=0))
    with open(results["alignment_sasrec_results"]) as f:
        sasrec = json.load(f)
    assert sasrec["config"]["new_items"] == 0.2
    mine, theirs = results["test"]["groups"]["item_new"], sasrec["test"]["groups"]["item_new"]
    assert mine["size"] == theirs["size"] > 0
    assert results["test"]["definition"] == sasrec["test"]["definition"]


def test_a_new_item_can_borrow_the_id_offsets_of_its_nearest_items_by_text():
    from recbole_llmemb.model.adapter import AdaptedItemEmbedding

    text = torch.tensor([[0.0, 0, 0], [1, 0, 0], [0, 1, 0], [0.9, 0.1, 0], [0, 0.1, 1], [0, 0, 1]])
    emb = AdaptedItemEmbedding(text, 2, id_table=True, input_norm="none")
    with torch.no_grad():
        emb.id_weight.copy_(torch.tensor([[1.0, 0], [2, 0], [9, 9], [0, 3], [7, 7]]))
    is_new = np.array([False, False, False, True, False, True])  # items 3 and 5 are new
    emb.hold_out_ids(is_new, neighbours=1)
    rows = emb.table()[1:] - emb.adapted()
    assert torch.allclose(rows[2], torch.tensor([1.0, 0]))  # item 3 looks like item 1
    assert torch.allclose(rows[4], torch.tensor([0.0, 3]))  # item 5 looks like item 4
    assert torch.allclose(rows[[0, 1, 3]], torch.tensor([[1.0, 0], [2, 0], [0, 3]]))  # the others keep theirs
    rows.sum().backward()
    assert not emb.id_weight.grad[[2, 4]].any()  # a new item's own row stays untouched


def test_new_item_ids_without_new_items_is_refused_in_one_line(tmp_path):
    from recbole_llmemb.errors import UserError

    write_tiny_dataset(tmp_path)
    with pytest.raises(UserError, match="new_items=0"):
        Config("LLMEmbSASRec", "tiny", config_dict=tiny_config(tmp_path, new_item_ids="neighbours")).check_applicable()
    Config("LLMEmbSASRec", "tiny", config_dict=tiny_config(tmp_path, new_item_ids="neighbours", new_items=0.1)).check_applicable()


def test_id_dropout_without_an_id_table_is_refused(tmp_path):
    from recbole_llmemb.errors import UserError

    write_tiny_dataset(tmp_path)
    with pytest.raises(UserError, match="there are none \\(item_id_emb=False\\)"):
        Config("LLMEmbSASRec", "tiny", config_dict=tiny_config(tmp_path, id_dropout=0.5, item_id_emb=False)).check_applicable()
    Config("LLMEmbSASRec", "tiny", config_dict=tiny_config(tmp_path, id_dropout=0.5)).check_applicable()


def test_id_offsets_head_scores_tail_items_by_their_text_alone(tmp_path):
    """``id_offsets=head``: after training (warm start included) a tail item's table row is its adapted
    text, with no offset, while head items keep learned offsets; without an id table it is refused."""
    from recbole_llmemb.errors import UserError
    from recbole_llmemb.pipeline.training import train_and_evaluate

    write_tiny_dataset(tmp_path, n_items=60)
    with pytest.raises(UserError, match="id_offsets=head"):
        Config("LLMEmbSASRec", "tiny", config_dict=tiny_config(tmp_path, id_offsets="head", item_id_emb=False)).check_applicable()
    config = Config("LLMEmbSASRec", "tiny", config_dict=tiny_config(
        tmp_path, id_offsets="head", epochs=2, collab_epochs=1, scft_steps=0, long_tail={"head_ratio": 0.3}))
    config.check_applicable()
    from recbole_llmemb.pipeline.quick_start import prepare_plugin_inputs
    _, trainer, _ = train_and_evaluate(config, prepare=prepare_plugin_inputs)
    emb = trainer.model.item_embedding
    is_tail = ~np.asarray(trainer.groups.is_head, dtype=bool)[1:emb.n_items]
    assert 0 < is_tail.sum() < len(is_tail)
    with torch.no_grad():
        offsets = (emb.table()[1:emb.n_items] - emb.adapted()).abs().sum(1).numpy()
    assert (offsets[is_tail] == 0).all() and (offsets[~is_tail] > 0).all()
