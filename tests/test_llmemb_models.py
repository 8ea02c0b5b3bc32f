"""LLMEmb recommenders (RAT) on RecBole backbones: tiny data, end to end, fast."""
import logging

import numpy as np
import pytest
import torch

import recbole_llmemb  # noqa: F401  (compat patches)
from recbole_llmemb.pipeline.config import Config, UserError
from recbole_llmemb.data.dataset import (
    BLEND_ITEM_EMB_ATTR,
    align_item_embeddings,
    attach_collaborative_embeddings,
    attach_item_embeddings,
)
from recbole_llmemb import losses, settings
from recbole_llmemb.model import MODELS, LLMEmbBERT4Rec, LLMEmbGRU4Rec, LLMEmbSASRec
from recbole_llmemb.model.adapter import adapter_precision
from recbole_llmemb.pipeline.config import item_table_size, uses_collaborative

from recbole.data import create_dataset, data_preparation  # noqa: E402
from recbole.model.sequential_recommender import SASRec  # noqa: E402
from recbole.trainer import Trainer  # noqa: E402
from recbole.utils import init_seed  # noqa: E402

N_USERS, N_ITEMS, PER_USER, LLM_DIM = 30, 40, 8, 24
MODEL_NAMES = ["LLMEmbSASRec", "LLMEmbBERT4Rec", "LLMEmbGRU4Rec"]


@pytest.fixture(scope="module")
def data_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    d = root / "tiny"
    d.mkdir()
    rng = np.random.default_rng(0)
    lines = ["user_id:token\titem_id:token\ttimestamp:float"]
    for u in range(N_USERS):
        items = rng.choice(N_ITEMS, size=PER_USER, replace=False)
        for t, i in enumerate(items):
            lines.append(f"u{u}\ti{i}\t{1000 * u + t}")
    (d / "tiny.inter").write_text("\n".join(lines) + "\n")
    item_lines = ["item_id:token\ttitle:token_seq"]
    item_lines += [f"i{i}\tthing number {i}" for i in range(N_ITEMS)]
    (d / "tiny.item").write_text("\n".join(item_lines) + "\n")
    return root


def store_for(n_extra=3, seed=1):
    """A fake embedding store: every token of the files plus a few the dataset never sees."""
    rng = np.random.default_rng(seed)
    tokens = [f"i{i}" for i in range(N_ITEMS)] + [f"gone{k}" for k in range(n_extra)]
    vectors = rng.normal(size=(len(tokens), LLM_DIM)).astype(np.float32)
    rng.shuffle(tokens)  # store order has nothing to do with RecBole's ids
    return tokens, vectors


def make_config(data_root, model, tmp_path, **extra):
    config_dict = {
        "data_path": str(data_root),
        "epochs": 2,
        "train_batch_size": 64,
        "eval_batch_size": 256,
        "hidden_size": 16,
        "inner_size": 32,
        "embedding_size": 16,
        "n_layers": 1,
        "n_heads": 1,
        "MAX_ITEM_LIST_LENGTH": 10,
        "user_inter_num_interval": None,
        "item_inter_num_interval": None,
        "load_col": {"inter": ["user_id", "item_id", "timestamp"], "item": ["item_id", "title"]},
        "checkpoint_dir": str(tmp_path / "saved"),
        "show_progress": False,
        "state": "WARNING",
        "seed": 7,
    }
    config_dict.update(extra)
    return Config(model, "tiny", config_dict=config_dict)


def attach_stores(dataset, tokens=None, vectors=None):
    """What the pipeline attaches for a plugin model's vectors and the text blend's (plain) vectors:
    fake stores here (the blend's from another seed)."""
    if tokens is None:
        tokens, vectors = store_for()
    attach_item_embeddings(dataset, align_item_embeddings(dataset, tokens, vectors))
    attach_item_embeddings(dataset, align_item_embeddings(dataset, *store_for(seed=3)), name=BLEND_ITEM_EMB_ATTR)


def build(data_root, model, tmp_path, collaborative=True, **extra):
    config = make_config(data_root, model, tmp_path, **extra)
    init_seed(config["seed"], config["reproducibility"])
    logging.getLogger().setLevel(logging.WARNING)
    dataset = create_dataset(config)
    attach_stores(dataset)
    if collaborative and uses_collaborative(MODELS[model], config):
        # what the pipeline attaches: a SASRec's item table (random here) and its weights
        hidden = item_table_size(MODELS[model], config)
        collab = np.random.default_rng(2).normal(size=(dataset.item_num, hidden)).astype(np.float32) * 0.1
        state = SASRec(config, dataset).state_dict() if issubclass(MODELS[model], SASRec) else None
        attach_collaborative_embeddings(dataset, collab, state)
    train_data, valid_data, test_data = data_preparation(config, dataset)
    init_seed(config["seed"] + config["local_rank"], config["reproducibility"])
    model_obj = MODELS[model](config, train_data.dataset).to(config["device"])
    return config, dataset, model_obj, (train_data, valid_data, test_data)


def first_batch(train_data):
    return next(iter(train_data))


# ----------------------------------------------------------------------------- alignment of rows
def test_align_rows_follow_recbole_ids(data_root, tmp_path):
    config = make_config(data_root, "LLMEmbSASRec", tmp_path)
    dataset = create_dataset(config)
    tokens, vectors = store_for()
    matrix = align_item_embeddings(dataset, tokens, vectors)
    assert matrix.dtype == np.float32 and matrix.shape == (dataset.item_num, LLM_DIM)
    assert not matrix[0].any()
    row_of = {t: r for r, t in enumerate(tokens)}
    id_tokens = dataset.field2id_token[dataset.iid_field]
    for i in range(1, dataset.item_num):
        np.testing.assert_array_equal(matrix[i], vectors[row_of[id_tokens[i]]])


def test_store_missing_items_is_rejected(data_root, tmp_path):
    config = make_config(data_root, "LLMEmbSASRec", tmp_path)
    dataset = create_dataset(config)
    tokens, vectors = store_for()
    keep = [k for k, t in enumerate(tokens) if t not in {"i3", "i5"}]
    with pytest.raises(UserError) as err:
        align_item_embeddings(dataset, [tokens[k] for k in keep], vectors[keep])
    msg = str(err.value)
    assert "miss 2 of" in msg and "'i3'" in msg
    assert "python -m recbole_llmemb.pipeline.generate --method=scft --dataset=tiny" in msg


def test_attached_matrix_reaches_split_datasets(data_root, tmp_path):
    config, dataset, model, (train_data, valid_data, test_data) = build(data_root, "LLMEmbSASRec", tmp_path)
    for split in (train_data, valid_data, test_data):
        assert split.dataset is not dataset
        assert split.dataset.llm_item_emb is dataset.llm_item_emb
        assert split.dataset.collaborative_item_emb is dataset.collaborative_item_emb


def test_model_without_embeddings_is_a_user_error(data_root, tmp_path):
    config = make_config(data_root, "LLMEmbSASRec", tmp_path)
    dataset = create_dataset(config)
    train_data, _, _ = data_preparation(config, dataset)
    with pytest.raises(UserError, match="attach_item_embeddings"):
        LLMEmbSASRec(config, train_data.dataset)


# ----------------------------------------------------------------------------- models
def test_models_registered():
    for name, cls in [("LLMEmbSASRec", LLMEmbSASRec), ("LLMEmbBERT4Rec", LLMEmbBERT4Rec), ("LLMEmbGRU4Rec", LLMEmbGRU4Rec)]:
        assert MODELS[name] is cls
        assert cls.embedding_method == "scft"


@pytest.mark.parametrize("model_name", MODEL_NAMES)
def test_train_evaluate_and_reload(data_root, tmp_path, model_name):
    config, dataset, model, (train_data, valid_data, test_data) = build(data_root, model_name, tmp_path)
    table = model.item_embedding
    # the adapter produces the size of the backbone's own item table
    expected = config["embedding_size"] if model_name == "LLMEmbGRU4Rec" else config["hidden_size"]
    assert table.weight.shape == (dataset.item_num + (model_name == "LLMEmbBERT4Rec"), expected)
    assert table.llm_weight.requires_grad is False
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert not any(n.startswith("item_embedding.llm_weight") for n in trainable)
    before = table.llm_weight.detach().clone()
    np.testing.assert_array_equal(before.numpy(), dataset.llm_item_emb)  # not re-initialised

    trainer = Trainer(config, model)
    best_valid, _ = trainer.fit(train_data, valid_data, saved=True, show_progress=False)
    result = trainer.evaluate(test_data, load_best_model=True, show_progress=False)
    assert set(result) >= {"hit@10", "ndcg@10"}
    assert all(np.isfinite(v) for v in result.values())
    assert torch.equal(table.llm_weight.detach(), before)
    assert table.llm_weight.grad is None

    # a new instance + the checkpoint's state dict gives the same test metrics
    ckpt = recbole_llmemb.compat.load_checkpoint(trainer.saved_model_file)
    fresh = MODELS[model_name](config, train_data.dataset)
    fresh.load_state_dict(ckpt["state_dict"])
    fresh.load_other_parameter(ckpt.get("other_parameter"))
    again = Trainer(config, fresh).evaluate(test_data, load_best_model=False, show_progress=False)
    assert again == pytest.approx(result)


@pytest.mark.parametrize("model_name", MODEL_NAMES)
def test_frozen_matrix_untouched_by_a_step_and_trainable_when_unfrozen(data_root, tmp_path, model_name):
    for freeze in (True, False):
        config, dataset, model, (train_data, _, _) = build(
            data_root, model_name, tmp_path, freeze_emb=freeze
        )
        model.train()
        opt = torch.optim.Adam(model.parameters(), lr=0.01)
        before = model.item_embedding.llm_weight.detach().clone()
        adapter_before = model.item_embedding.adapter.net[0].weight.detach().clone()
        loss = model.calculate_loss(first_batch(train_data))
        loss.backward()
        opt.step()
        after = model.item_embedding.llm_weight.detach()
        assert not torch.equal(model.item_embedding.adapter.net[0].weight.detach(), adapter_before)
        if freeze:
            assert model.item_embedding.llm_weight.grad is None
            assert torch.equal(after, before)
        else:
            assert model.item_embedding.llm_weight.grad is not None
            assert not torch.equal(after, before)
            assert model.item_embedding.llm_weight.requires_grad


def test_table_computed_once_per_loss_call(data_root, tmp_path):
    _, _, model, (train_data, _, _) = build(data_root, "LLMEmbSASRec", tmp_path)
    calls = []
    handle = model.item_embedding.adapter.register_forward_hook(lambda *a: calls.append(1))
    model.calculate_loss(first_batch(train_data))
    handle.remove()
    assert len(calls) == 1


def _spy_alignment(monkeypatch):
    calls = []
    real = losses.ALIGN_LOSSES["infonce"]  # the default alignment loss

    def spy(x, y, *args, **kwargs):
        calls.append((x.shape, y.shape))
        return real(x, y, *args, **kwargs)

    monkeypatch.setitem(losses.ALIGN_LOSSES, "infonce", spy)
    return calls


@pytest.mark.parametrize("model_name", MODEL_NAMES)
def test_alignment_term_present_with_alpha(data_root, tmp_path, monkeypatch, model_name):
    calls = _spy_alignment(monkeypatch)
    config, dataset, model, (train_data, _, _) = build(data_root, model_name, tmp_path, alpha=0.5)
    assert model.alignment is not None
    model.eval()  # no dropout: the two losses below differ by the alignment term only
    batch = first_batch(train_data)
    with_align = model.calculate_loss(batch)
    assert len(calls) == 1
    targets = batch[model.POS_ITEMS if isinstance(model, LLMEmbBERT4Rec) else model.POS_ITEM_ID]
    n_unique = int(torch.unique(targets[targets > 0]).numel())
    assert calls[0][0][0] == n_unique  # unique target items, padding excluded
    comps = model.loss_components
    assert comps["align"] > 0
    assert with_align.item() == pytest.approx(comps["rec"] + 0.5 * comps["align"], rel=1e-5)
    # gradients of the alignment reach the adapter
    model.zero_grad()
    model.alignment(model.item_embedding, targets).backward()
    assert model.item_embedding.adapter.net[0].weight.grad.abs().sum() > 0


@pytest.mark.parametrize("model_name", MODEL_NAMES)
def test_alignment_absent_with_alpha_zero(data_root, tmp_path, monkeypatch, model_name):
    calls = _spy_alignment(monkeypatch)
    config, dataset, model, (train_data, _, _) = build(data_root, model_name, tmp_path, alpha=0.0)
    # even with a collaborative table on the dataset, alpha 0 means no term
    attach_collaborative_embeddings(train_data.dataset, np.ones((dataset.item_num, 16), dtype=np.float32),
                                    getattr(dataset, "collaborative_state"))
    model = MODELS[model_name](config, train_data.dataset)
    assert model.alignment is None
    model.calculate_loss(first_batch(train_data))
    assert calls == []
    assert "align" not in model.loss_components


def test_alpha_without_collaborative_table_turns_alignment_off(data_root, tmp_path, monkeypatch):
    calls = _spy_alignment(monkeypatch)
    _, _, model, (train_data, _, _) = build(data_root, "LLMEmbSASRec", tmp_path, collaborative=False, alpha=0.5,
                                            rat_init="scratch")
    assert model.alignment is None
    model.calculate_loss(first_batch(train_data))
    assert calls == []


def test_collaborative_hidden_size_is_the_item_table_size(data_root, tmp_path):
    for name in MODEL_NAMES:
        config = make_config(data_root, name, tmp_path, hidden_size=16, embedding_size=12)
        assert item_table_size(MODELS[name], config) == (12 if name == "LLMEmbGRU4Rec" else 16)


def adapter_input(emb):
    return emb.adapter_input().detach().double()


def test_input_normalisation(data_root, tmp_path):
    _, _, plain, _ = build(data_root, "LLMEmbSASRec", tmp_path, llm_emb_norm="none")
    assert torch.equal(adapter_input(plain.item_embedding).float(), plain.item_embedding.llm_weight[1:].detach())
    _, _, centred, _ = build(data_root, "LLMEmbSASRec", tmp_path)  # the default
    x = adapter_input(centred.item_embedding)
    assert centred.item_embedding.input_norm == "center"
    assert "item_embedding.input_scale" in centred.state_dict()
    assert x.mean(0).abs().max() < 1e-5 and x.norm(dim=1).mean() == pytest.approx(1.0, rel=1e-5)
    _, _, white, _ = build(data_root, "LLMEmbSASRec", tmp_path, llm_emb_norm="whiten")
    x = adapter_input(white.item_embedding)
    assert x.mean(0).abs().max() < 1e-5 and x.norm(dim=1).mean() == pytest.approx(1.0, rel=1e-5)
    cov = torch.cov(x.T)
    off = cov - torch.diag(torch.diag(cov))
    assert off.abs().max() < 1e-3 * cov.diag().max()  # decorrelated (rank permitting)
    with pytest.raises(UserError, match="llm_emb_norm=zscore"):
        build(data_root, "LLMEmbSASRec", tmp_path, llm_emb_norm="zscore")


def test_config_defaults(data_root, tmp_path):
    for name in MODEL_NAMES:
        config = Config(name, "tiny", config_dict={"data_path": str(data_root)})
        assert config["loss_type"] == "CE" and config["alpha"] == 0.1 and config["freeze_emb"] is True
        assert config["adapter_hidden"] is None and config["adapter_init"] == "xavier"
        assert config["align_loss"] == "infonce" and config["align_tau"] == 0.1 and config["llm_embedding_method"] == "scft"
        assert config["rat_init"] == "collaborative" and config["llm_emb_norm"] == "center" and config["item_id_emb"] is True
        # the props files and the settings table say the same
        for key in settings.keys(group="rat") - {"llm_embedding_method", "alpha"}:  # (the methods' files set these)
            assert key in config.final_config_dict, key
            assert config[key] == settings.SETTINGS[key].default, key
    assert Config("LLMEmbBERT4Rec", "tiny", config_dict={"data_path": str(data_root)})["transform"] == "mask_itemseq"


def test_alignment_dimension_mismatch_is_a_user_error(data_root, tmp_path):
    config = make_config(data_root, "LLMEmbSASRec", tmp_path)
    dataset = create_dataset(config)
    attach_stores(dataset)
    attach_collaborative_embeddings(dataset, np.zeros((dataset.item_num, 7), dtype=np.float32))
    train_data, _, _ = data_preparation(config, dataset)
    with pytest.raises(UserError, match="hidden_size=16"):
        LLMEmbSASRec(config, train_data.dataset)


def test_sasrec_bpr_loss(data_root, tmp_path):
    neg = {"distribution": "uniform", "sample_num": 1, "alpha": 1.0, "dynamic": False, "candidate_num": 0}
    config, _, model, (train_data, valid_data, test_data) = build(
        data_root, "LLMEmbSASRec", tmp_path, loss_type="BPR", train_neg_sample_args=neg
    )
    loss = model.calculate_loss(first_batch(train_data))
    assert loss.dim() == 0 and torch.isfinite(loss)
    trainer = Trainer(config, model)
    trainer.fit(train_data, valid_data, saved=True, show_progress=False)
    result = trainer.evaluate(test_data, load_best_model=True, show_progress=False)
    assert np.isfinite(result["ndcg@10"])


@pytest.mark.parametrize("model_name", ["LLMEmbSASRec", "LLMEmbBERT4Rec"])
def test_uni100_evaluation(data_root, tmp_path, model_name):
    eval_args = {"split": {"LS": "valid_and_test"}, "order": "TO", "group_by": "user", "mode": "uni100"}
    config, _, model, (train_data, valid_data, test_data) = build(
        data_root, model_name, tmp_path, eval_args=eval_args, epochs=1
    )
    trainer = Trainer(config, model)
    trainer.fit(train_data, valid_data, saved=True, show_progress=False)
    result = trainer.evaluate(test_data, load_best_model=True, show_progress=False)
    assert np.isfinite(result["ndcg@10"])


# ----------------------------------------------------------------------------- the loss itself
def test_soft_contrastive_loss_properties():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(6, 5, generator=g)
    y = torch.randn(6, 5, generator=g)
    loss = losses.soft_contrastive_loss(x, y, tau=2.0)
    assert loss.dim() == 0 and torch.isfinite(loss)
    # symmetric in its two arguments
    assert losses.soft_contrastive_loss(y, x, tau=2.0).item() == pytest.approx(loss.item(), rel=1e-6)
    # matches the written-out formula
    logits = x @ y.T / 2.0
    t = torch.softmax((x @ x.T + y @ y.T) / 2 * 2.0, dim=-1)
    ref = (-(t * logits.log_softmax(-1)).sum(-1) - (t * logits.T.log_softmax(-1)).sum(-1)).mean() / 2
    assert loss.item() == pytest.approx(ref.item(), rel=1e-6)
    # aligned pairs score lower than shuffled ones
    assert losses.soft_contrastive_loss(x, x * 3).item() < losses.soft_contrastive_loss(x, (x * 3).roll(1, 0)).item()
    # one row: nothing to contrast
    assert losses.soft_contrastive_loss(x[:1], y[:1]).item() == 0.0


def test_frozen_adapter_input_is_cached_until_the_matrix_changes(data_root, tmp_path):
    _, _, model, _ = build(data_root, "LLMEmbSASRec", tmp_path)
    emb = model.item_embedding
    first = emb.adapter_input()
    assert emb.adapter_input() is first  # frozen: computed once
    other = {k: v.clone() for k, v in model.state_dict().items()}
    other["item_embedding.llm_weight"] = other["item_embedding.llm_weight"] * 2 + 1
    model.load_state_dict(other, strict=False)
    again = emb.adapter_input()
    assert again is not first and torch.allclose(again, emb._normalised())
    _, _, unfrozen, _ = build(data_root, "LLMEmbSASRec", tmp_path, freeze_emb=False)
    assert unfrozen.item_embedding.adapter_input() is not unfrozen.item_embedding.adapter_input()


def test_bfloat16_adapter_matches_float32_and_trains(data_root, tmp_path):
    _, _, fp32, _ = build(data_root, "LLMEmbSASRec", tmp_path, adapter_precision="float32")
    _, _, bf16, _ = build(data_root, "LLMEmbSASRec", tmp_path, adapter_precision="bfloat16")
    assert fp32.item_embedding.precision == "float32" and bf16.item_embedding.precision == "bfloat16"
    bf16.load_state_dict(fp32.state_dict())
    a, b = fp32.item_embedding.weight, bf16.item_embedding.weight
    assert b.dtype == torch.float32 and not torch.equal(a, b)  # really computed in bf16
    assert torch.allclose(a, b, rtol=0.05, atol=0.02 * float(a.detach().abs().max()))
    b.sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in bf16.item_embedding.adapter.parameters())
    assert bf16.item_embedding.llm_weight.grad is None
    assert adapter_precision("auto", "cuda") == "float32"
    assert adapter_precision("float32", "cpu") == "float32"


@pytest.mark.parametrize("amx, avx512_bf16, expected", [(True, False, "bfloat16"), (False, True, "bfloat16"),
                                                         (False, False, "float32")])
def test_auto_precision_follows_the_cpus_native_bf16(monkeypatch, amx, avx512_bf16, expected):
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: amx, raising=False)
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: avx512_bf16, raising=False)
    assert adapter_precision("auto", "cpu") == expected
    assert adapter_precision("bfloat16", "cuda") == "bfloat16" and adapter_precision("auto", "cuda") == "float32"
