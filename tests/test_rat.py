"""RAT that does not collapse: collapse diagnostics with known answers, an alignment term that
learns, the warm start from the alignment SASRec, BERT4Rec's output bias, long-tail counts."""
import math

import numpy as np
import pytest
import torch

from recbole_llmemb.pipeline.config import UserError
from recbole_llmemb.data.dataset import COLLABORATIVE_STATE_ATTR, attach_collaborative_embeddings
from recbole_llmemb.evaluation.diagnostics import (
    effective_rank,
    list_diagnostics,
    near_duplicate_share,
    table_diagnostics,
)
from recbole_llmemb.evaluation.longtail import training_counts
from recbole_llmemb import losses
from recbole_llmemb.model import MODELS
from recbole_llmemb.pipeline.config import item_table_size
from tests.test_llmemb_models import build, data_root, first_batch, make_config  # noqa: F401  (fixture)

from recbole.data import create_dataset, data_preparation  # noqa: E402
from recbole.model.sequential_recommender import SASRec  # noqa: E402


# ----------------------------------------------------------------------------- diagnostics
def test_effective_rank_of_hand_made_tables():
    # k orthogonal rows of equal norm: k equally strong directions
    assert effective_rank(torch.eye(8)) == pytest.approx(8.0, rel=1e-9)
    assert effective_rank(3 * torch.eye(5)[:3]) == pytest.approx(3.0, rel=1e-9)
    # rank one, however many rows
    assert effective_rank(torch.outer(torch.arange(1.0, 11.0), torch.ones(4))) == pytest.approx(1.0, abs=1e-6)
    # singular values 3 and 1: p = (3/4, 1/4), exp(H) by hand
    h = -(0.75 * math.log(0.75) + 0.25 * math.log(0.25))
    assert effective_rank(torch.diag(torch.tensor([3.0, 1.0]))) == pytest.approx(math.exp(h), rel=1e-9)


def test_near_duplicate_share_of_a_hand_made_table():
    base = torch.eye(6) * 5 + 1.0  # 6 items, each its own direction after centring
    assert near_duplicate_share(base) == 0.0
    table = torch.cat([base, base[:2] * 1.01])  # items 6 and 7 are near-copies of items 0 and 1
    assert near_duplicate_share(table) == pytest.approx(4 / 8)
    # a shared offset says nothing: a large common row added to every item changes nothing
    assert near_duplicate_share(table + 100.0) == pytest.approx(4 / 8)
    # the blocked computation gives the same answer as one block
    assert near_duplicate_share(table, block=3) == near_duplicate_share(table, block=1000)


def test_list_diagnostics_hand_counted():
    # items 1..4 (0 is padding), training counts 10, 5, 1, 1; item 1 is head
    counts = np.array([0, 10, 5, 1, 1])
    is_head = np.array([False, True, False, False, False])
    listed = np.array([0, 3, 1, 0, 0])  # item 1 listed 3 times, item 2 once
    d = list_diagnostics(listed, counts, is_head, 10)
    assert d["coverage@10"] == 0.5
    assert d["mean_popularity@10"] == pytest.approx((3 * 10 + 5) / 4)
    assert d["tail_share@10"] == 0.25


# ----------------------------------------------------------------------------- alignment
def test_infonce_alignment_leaves_log_b_and_falls():
    torch.manual_seed(0)
    b, d = 64, 16
    target = torch.randn(b, d) * 0.05  # RecBole-scale collaborative vectors
    adapted = torch.nn.Parameter(torch.randn(b, d) * 0.05)
    soft = losses.soft_contrastive_loss(target, adapted, tau=2.0).item()
    assert soft == pytest.approx(math.log(b), abs=1e-3)  # the official form at this scale: stuck at log B
    opt = torch.optim.Adam([adapted], lr=0.05)
    values = []
    for _ in range(20):
        opt.zero_grad()
        loss = losses.infonce_loss(target, adapted, tau=0.1)
        loss.backward()
        opt.step()
        values.append(loss.item())
    assert values[-1] < 0.5 * math.log(b) and values[-1] < values[0]


def test_alignment_share_is_logged_per_epoch(data_root, tmp_path):  # noqa: F811
    _, _, model, (train_data, _, _) = build(data_root, "LLMEmbSASRec", tmp_path, alpha=0.5, align_loss="infonce", align_tau=0.1)
    batches = [b for _, b in zip(range(2), train_data)]
    for batch in batches:
        model.calculate_loss(batch)
    losses = model.pop_epoch_losses()
    assert set(losses) == {"rec", "align", "align_share"}
    assert 0 < losses["align_share"] < 1
    assert model.pop_epoch_losses() == {}  # reset for the next epoch


# ----------------------------------------------------------------------------- no collapse
def train_steps(model, train_data, steps):
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    model.train()
    done = 0
    while done < steps:
        for batch in train_data:
            opt.zero_grad()
            model.calculate_loss(batch).backward()
            opt.step()
            done += 1
            if done == steps:
                break
    return model


OFFICIAL = {"adapter_init": "xavier", "llm_emb_norm": "center", "rat_init": "scratch"}


def test_official_adapter_keeps_the_item_table_spread(data_root, tmp_path):  # noqa: F811
    """Gaussian LM vectors (full rank, 24-d) into a 16-d table. PyTorch's default init of the
    adapter (biases as large as the item signal) starts from a table whose rows are one shared
    offset plus small differences (effective rank about 4); the official recipe's spreads the
    items over most directions and keeps them spread while it trains."""
    _, _, model, (train_data, _, _) = build(data_root, "LLMEmbSASRec", tmp_path, alpha=0.0, **OFFICIAL)
    before = table_diagnostics(model)["effective_rank"]
    after = table_diagnostics(train_steps(model, train_data, 10))
    assert before > 8 and after["effective_rank"] > 8
    assert after["near_duplicate_share"] == 0.0


# ----------------------------------------------------------------------------- warm start
def sasrec_state(config, train_dataset):
    torch.manual_seed(3)
    sas = SASRec(config, train_dataset)
    for p in sas.parameters():
        p.data.normal_(0, 0.1)
    return {k: v.clone() for k, v in sas.state_dict().items()}


def build_warm(data_root, tmp_path, model_name, **extra):  # noqa: F811
    config = make_config(data_root, model_name, tmp_path, rat_init="collaborative", **extra)
    from tests.test_llmemb_models import attach_stores

    dataset = create_dataset(config)
    attach_stores(dataset)
    hidden = item_table_size(MODELS[model_name], config)
    collab = np.random.default_rng(2).normal(size=(dataset.item_num, hidden)).astype(np.float32)
    train_data, _, _ = data_preparation(config, dataset)
    state = sasrec_state(config, train_data.dataset) if model_name == "LLMEmbSASRec" else None
    attach_collaborative_embeddings(train_data.dataset, collab, state)
    return config, collab, state, MODELS[model_name](config, train_data.dataset)


def test_warm_start_fits_the_adapter_and_loads_the_encoder(data_root, tmp_path):  # noqa: F811
    # 39 items, 24-d Gaussian LM vectors, a linear adapter: the SASRec table is reachable up to its
    # part outside the 24-d span (R^2 about 24/39 for a random target)
    config, collab, state, model = build_warm(data_root, tmp_path, "LLMEmbSASRec", item_id_emb=False)
    assert 0.4 < model.warm_start_r2 <= 1.0
    own = model.state_dict()
    for key, value in state.items():
        if not key.startswith("item_embedding."):
            assert torch.equal(own[key], value), key
    # the encoder is the SASRec's, the table is the adapter's fit, not the SASRec's rows
    assert not torch.equal(model.item_embedding.weight[1:].detach(), torch.as_tensor(collab[1:]))


def test_warm_start_of_other_backbones_fits_the_adapter_only(data_root, tmp_path):  # noqa: F811
    _, _, _, model = build_warm(data_root, tmp_path, "LLMEmbGRU4Rec")
    assert model.warm_start_r2 > 0.4


def test_warm_start_without_a_table_is_a_user_error(data_root, tmp_path):  # noqa: F811
    with pytest.raises(UserError, match="rat_init=collaborative"):
        build(data_root, "LLMEmbSASRec", tmp_path, collaborative=False, rat_init="collaborative", alpha=0.0)


def test_warm_start_with_another_encoder_shape_is_a_user_error(data_root, tmp_path):  # noqa: F811
    config = make_config(data_root, "LLMEmbSASRec", tmp_path, rat_init="collaborative")
    from tests.test_llmemb_models import attach_stores

    dataset = create_dataset(config)
    attach_stores(dataset)
    train_data, _, _ = data_preparation(config, dataset)
    state = sasrec_state(config, train_data.dataset)
    state["position_embedding.weight"] = torch.zeros(50, 16)  # another MAX_ITEM_LIST_LENGTH
    attach_collaborative_embeddings(train_data.dataset, np.zeros((dataset.item_num, 16), np.float32), state)
    assert getattr(train_data.dataset, COLLABORATIVE_STATE_ATTR) is state
    with pytest.raises(UserError, match="position_embedding"):
        MODELS["LLMEmbSASRec"](config, train_data.dataset)


@pytest.mark.parametrize("bad", [{"rat_init": "sasrec"}, {"align_loss": "mse"}, {"adapter_init": "orthogonal"}])
def test_bad_rat_settings_are_refused(data_root, tmp_path, bad):  # noqa: F811
    key = next(iter(bad))
    with pytest.raises(UserError, match=f"{key}="):
        build(data_root, "LLMEmbSASRec", tmp_path, **bad)


# ----------------------------------------------------------------------------- text plus id
def test_item_id_table_from_scratch_starts_at_zero_and_learns(data_root, tmp_path):  # noqa: F811
    _, _, plain, (train_data, _, _) = build(data_root, "LLMEmbSASRec", tmp_path, alpha=0.0, rat_init="scratch", item_id_emb=False)
    _, _, dual, _ = build(data_root, "LLMEmbSASRec", tmp_path, alpha=0.0, rat_init="scratch", item_id_emb=True)
    assert torch.equal(plain.item_embedding.weight, dual.item_embedding.weight)  # same start
    dual.calculate_loss(first_batch(train_data)).backward()
    assert dual.item_embedding.id_weight.grad.abs().sum() > 0


def test_item_id_table_with_warm_start_makes_the_start_the_sasrec(data_root, tmp_path):  # noqa: F811
    _, collab, _, model = build_warm(data_root, tmp_path, "LLMEmbSASRec", item_id_emb=True)
    table = model.item_embedding.weight[1:].detach()
    assert torch.allclose(table, torch.as_tensor(collab[1:]), atol=1e-5)  # text part + id part = the SASRec's rows
    assert model.item_embedding.id_weight.abs().sum() > 0


def test_said_and_tslrec_models_on_random_vectors_are_one_run(data_root, tmp_path):  # noqa: F811
    """The benchmark's no-text control of SAID serves TSLRec too: on random vectors the two models'
    configs differ only in the model's name (both have alpha 0 and the same RAT)."""
    said, tslrec = (make_config(data_root, m, tmp_path, llm_embedding_method="random").final_config_dict
                    for m in ("SAIDSASRec", "TSLRecSASRec"))
    assert {k for k in set(said) | set(tslrec) if said.get(k) != tslrec.get(k)} == {"model"}
    assert said["alpha"] == 0.0


# ----------------------------------------------------------------------------- BERT4Rec's bias
def test_bert4rec_output_bias_off_by_default(data_root, tmp_path):  # noqa: F811
    _, _, model, (train_data, _, _) = build(data_root, "LLMEmbBERT4Rec", tmp_path)
    assert "output_bias" not in dict(model.named_parameters())
    assert torch.count_nonzero(model.output_bias) == 0
    model.calculate_loss(first_batch(train_data)).backward()  # still trains
    _, _, kept, _ = build(data_root, "LLMEmbBERT4Rec", tmp_path, output_bias=True)
    assert "output_bias" in dict(kept.named_parameters())


# ----------------------------------------------------------------------------- long-tail counts
def test_training_counts_include_each_users_first_interaction(tmp_path):
    """Hand-made: 3 users of 4+ interactions; leave-one-out holds out the last two of each user.
    RecBole's sequential data keeps each user's first interaction only inside item lists."""
    folder = tmp_path / "hand"
    folder.mkdir()
    histories = {"a": ["x", "y", "z", "x"], "b": ["y", "x", "y", "z"], "c": ["z", "z", "x", "y", "x"]}
    lines = ["user_id:token\titem_id:token\ttimestamp:float"]
    for user, items in histories.items():
        lines += [f"{user}\t{item}\t{t}" for t, item in enumerate(items)]
    (folder / "hand.inter").write_text("\n".join(lines) + "\n")
    from recbole_llmemb.pipeline.config import Config

    config = Config("SASRec", "hand", config_dict={
        "data_path": str(tmp_path), "user_inter_num_interval": None, "item_inter_num_interval": None,
        "load_col": {"inter": ["user_id", "item_id", "timestamp"]}, "MAX_ITEM_LIST_LENGTH": 2})
    dataset = create_dataset(config)
    _, valid, test = data_preparation(config, dataset)
    item_count, user_len = training_counts(dataset, [valid.dataset, test.dataset])
    training = {u: items[:-2] for u, items in histories.items()}  # a: x y, b: y x, c: z z x
    expected_items = {"x": 3, "y": 2, "z": 2}
    for token, n in expected_items.items():
        assert item_count[dataset.token2id("item_id", token)] == n, token
    for user, items in training.items():
        assert user_len[dataset.token2id("user_id", user)] == len(items), user


# ----------------------------------------------------------------------------- the paper's sampled evaluation, fast
@pytest.mark.parametrize("model_name", ["LLMEmbSASRec", "LLMEmbBERT4Rec", "LLMEmbGRU4Rec"])
def test_sampled_evaluation_from_one_full_sort_equals_recbole_predict(data_root, tmp_path, model_name):  # noqa: F811
    from recbole_llmemb.evaluation.longtail import build_groups, training_counts
    from recbole_llmemb.evaluation.trainer import long_tail_trainer
    from recbole.trainer import Trainer
    from recbole.utils import init_seed

    eval_args = {"split": {"LS": "valid_and_test"}, "order": "TO", "group_by": "user", "mode": "uni100"}
    config, dataset, model, (_, _, test_data) = build(data_root, model_name, tmp_path, eval_args=eval_args)
    groups = build_groups(*training_counts(dataset, [test_data.dataset]))
    results = []
    for fast in (True, False):
        trainer = long_tail_trainer(Trainer)(config, model, groups=groups)
        trainer.fast_sampled_eval = fast
        model.eval()
        init_seed(config["seed"], True)  # the same sampled candidates in both passes
        results.append((trainer.evaluate(test_data, load_best_model=False), trainer.last_groups["groups"]))
    assert results[0][0] == pytest.approx(results[1][0], abs=1e-6)
    assert results[0][1] == results[1][1]


# ----------------------------------------------------------------------------- sqrt(hidden) input scaling
@pytest.mark.parametrize("model_name", ["LLMEmbSASRec", "LLMEmbGRU4Rec"])
def test_sqrt_hidden_scales_the_encoder_input_and_not_the_scores(data_root, tmp_path, model_name):  # noqa: F811
    """seq_input_scale=sqrt_hidden: the item vectors the encoder reads are the table's rows times
    sqrt(16) = 4 (what reaches SASRec's LayerNorm / GRU4Rec's dropout is looked up once, scaled);
    the scored table is untouched."""
    _, _, plain, (train_data, _, _) = build(data_root, model_name, tmp_path, alpha=0.0, rat_init="scratch")
    _, _, scaled, _ = build(data_root, model_name, tmp_path, alpha=0.0, rat_init="scratch", seq_input_scale="sqrt_hidden")
    scaled.load_state_dict(plain.state_dict())
    batch = first_batch(train_data)
    seq, length = batch[plain.ITEM_SEQ], batch[plain.ITEM_SEQ_LEN]
    first_layer = "LayerNorm" if model_name == "LLMEmbSASRec" else "emb_dropout"
    seen = {}
    for name, model in (("plain", plain), ("scaled", scaled)):
        model.eval()
        hook = getattr(model, first_layer).register_forward_pre_hook(lambda m, args, name=name: seen.__setitem__(name, args[0]))
        with torch.no_grad():
            model.forward(seq, length)
        hook.remove()
    rows = plain.item_embedding(seq).detach()
    if model_name == "LLMEmbSASRec":  # positions are added after the scaling
        positions = plain.position_embedding(torch.arange(seq.shape[1])).unsqueeze(0)
        torch.testing.assert_close(seen["plain"], rows + positions)
        torch.testing.assert_close(seen["scaled"], 4.0 * rows + positions)
    else:
        torch.testing.assert_close(seen["scaled"], 4.0 * seen["plain"])
    torch.testing.assert_close(scaled.item_embedding.weight, plain.item_embedding.weight)
    assert scaled.item_embedding._lookup_scale == 1.0  # the scaling ends with the forward pass


def test_id_dropout_leaves_out_whole_offsets_in_training_only():
    """Each item's id offset is kept whole or left out (about the share asked), the same in one step's
    lookups and scores; in evaluation every offset is kept."""
    from recbole_llmemb.model.adapter import AdaptedItemEmbedding

    torch.manual_seed(0)
    emb = AdaptedItemEmbedding(torch.randn(2001, 8), 4, id_table=True, id_dropout=0.3)
    with torch.no_grad():
        emb.id_weight.fill_(1.0)
        base = emb.adapted()
    emb.train()
    with torch.no_grad(), emb.cached():
        offsets = emb.weight[1:] - base
        torch.testing.assert_close(emb(torch.arange(1, 2001)), emb.weight[1:])  # one draw per step
    kept = offsets.abs().sum(1) > 2.0  # whole offsets (4 ones) or none
    assert torch.all(kept | (offsets.abs().sum(1) < 1e-4))
    assert 0.6 < kept.float().mean().item() < 0.8
    emb.eval()
    with torch.no_grad():
        torch.testing.assert_close(emb.weight[1:] - base, torch.ones(2000, 4))


def test_id_l2_adds_the_offsets_sum_of_squares_and_shrinks_them(data_root, tmp_path):  # noqa: F811
    """``id_l2``: the loss is the model's plus id_l2 x the id table's sum of squares (by hand, same
    weights); trained with it, the offsets end smaller than the same training's without it."""
    _, _, model, (train_data, _, _) = build(data_root, "LLMEmbSASRec", tmp_path, alpha=0.0, id_l2=0.5)
    batch = first_batch(train_data)
    model.eval()  # no dropout: the two losses see the same network
    with torch.no_grad():
        with_penalty = model.calculate_loss(batch)
        model.id_l2 = 0.0
        without = model.calculate_loss(batch)
    offsets = model.item_embedding.id_weight.detach()
    assert offsets.abs().sum() > 0  # the warm start's offsets
    torch.testing.assert_close(with_penalty, without + 0.5 * offsets.pow(2).sum())
    norms = {}
    for weight in (0.0, 0.5):
        _, _, model, (train_data, _, _) = build(data_root, "LLMEmbSASRec", tmp_path, alpha=0.0, id_l2=weight)
        norms[weight] = train_steps(model, train_data, 10).item_embedding.id_weight.detach().norm().item()
    assert norms[0.5] < 0.5 * norms[0.0]
    with pytest.raises(UserError, match="id_l2="):
        make_config(data_root, "LLMEmbSASRec", tmp_path, id_l2=0.5, item_id_emb=False).check_applicable()


def test_adapter_mode_principal_keeps_the_texts_principal_components_and_never_trains(data_root, tmp_path):  # noqa: F811
    """``adapter_mode=principal``: the adapted text is the LM vectors' top components, whitened (by hand
    with numpy, up to each component's sign) at the collaborative table's scale; with the warm start
    the table still starts at the SASRec's rows, and training moves the id offsets, never the adapter."""
    from tests.test_llmemb_models import attach_stores

    config = make_config(data_root, "LLMEmbSASRec", tmp_path, rat_init="collaborative", adapter_mode="principal", alpha=0.0,
                         adapter_precision="float32")
    dataset = create_dataset(config)
    attach_stores(dataset)
    train_data, _, _ = data_preparation(config, dataset)
    collab = np.random.default_rng(2).normal(0, 0.3, size=(dataset.item_num, config["hidden_size"])).astype(np.float32)
    attach_collaborative_embeddings(train_data.dataset, collab, sasrec_state(config, train_data.dataset))
    model = MODELS["LLMEmbSASRec"](config, train_data.dataset)
    emb = model.item_embedding
    x = emb.adapter_input().detach().double().numpy()
    k = emb.embedding_dim
    centred = x - x.mean(0)
    _, singular, vt = np.linalg.svd(centred, full_matrices=False)
    scale = np.sqrt(np.mean(np.square(collab[1:].astype(np.float64))))
    expected = centred @ vt[:k].T / (singular[:k] / np.sqrt(len(x) - 1)) * scale
    with torch.no_grad():
        adapted = emb.adapted().double().numpy()
    np.testing.assert_allclose(np.abs(adapted), np.abs(expected), rtol=1e-3, atol=1e-3 * scale)
    assert torch.allclose(emb.weight[1:].detach(), torch.as_tensor(collab[1:]), atol=1e-4)  # text + id = the SASRec's rows
    adapter = {key: value.clone() for key, value in emb.adapter.state_dict().items()}
    ids = emb.id_weight.detach().clone()
    train_steps(model, train_data, 5)
    for key, value in emb.adapter.state_dict().items():
        assert torch.equal(value, adapter[key]), key
    assert not torch.equal(emb.id_weight.detach(), ids)


def test_adapter_mode_principal_refuses_a_table_wider_than_its_inputs(data_root, tmp_path):  # noqa: F811
    with pytest.raises(UserError, match="adapter_mode=principal"):
        build(data_root, "LLMEmbSASRec", tmp_path, adapter_mode="principal", adapter_hidden=4)
    with pytest.raises(UserError, match="adapter_mode=principal"):
        build(data_root, "LLMEmbSASRec", tmp_path, adapter_mode="principal", adapter_layernorm=True)
    with pytest.raises(UserError, match="adapter_mode=principal"):  # refused before any stage runs
        make_config(data_root, "LLMEmbSASRec", tmp_path, adapter_mode="principal", adapter_dropout=0.1).check_applicable()
