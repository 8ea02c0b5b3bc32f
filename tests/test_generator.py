"""The embedding generator (issue 3): item text of real rows, SCFT loss and LoRA training, encoder
and decoder backbones, the cached store, bad inputs and the command line. Tiny data, 1-2 SCFT
steps, no network: the encoder is the packaged all-MiniLM-L6-v2, the decoder a randomly
initialised 2-layer LLaMA written to a temporary folder with an offline word-level tokenizer."""
import ast
import html
import io
import json
import logging
import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from recbole_llmemb.pipeline.config import RECBOLE_EXAMPLE_DIR, Config, UserError
from recbole_llmemb.data import store
from recbole_llmemb.data.item_text import FALLBACK_NAME, build_item_texts, item_attributes, instruction
from recbole_llmemb.pipeline.generate import item_embeddings, main
from recbole_llmemb.generator import backbone
from recbole_llmemb.generator.scft import SCFTTrainer, infonce_loss
from recbole_llmemb.generator.scft import soft_contrastive_loss as scft_soft_loss
from recbole_llmemb.losses import soft_contrastive_loss
from tests.conftest import SHARED_DATASETS, tiny_config, write_tiny_dataset

from recbole.data import create_dataset  # noqa: E402  (after the compat patches)

BEAUTY = SHARED_DATASETS / "amazon-beauty"
MINILM_HIDDEN = 384
LLAMA_HIDDEN = 32
LLAMA_TARGETS = {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}


# ----------------------------------------------------------------------------- helpers
def load(root, dataset="tiny", **overrides):
    """(config, dataset) for ``root/<dataset>`` with generator settings sized for a test."""
    cfg = tiny_config(root, scft_steps=1, scft_batch_size=8, llm_batch_size=16, state="WARNING")
    cfg.update(overrides)
    config = Config("SASRec", dataset, config_dict=cfg)
    return config, create_dataset(config)


def files_under(folder):
    """Every file below ``folder`` (relative paths); empty when the folder does not exist."""
    out = []
    for dirpath, _, names in os.walk(folder):
        out += [os.path.relpath(os.path.join(dirpath, n), folder) for n in names]
    return sorted(out)


def temp_files(folder):
    return [f for f in files_under(folder) if ".tmp" in f]


def tokens_of(dataset):
    return [str(t) for t in dataset.field2id_token["item_id"][1:]]


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """Tiny models gain nothing from threads, and on a busy 2-core machine OpenMP's spinning
    threads make each MiniLM step some 30x slower; restored afterwards."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def small(tmp_path):
    """A smaller tiny dataset (12 items) for the tests that run all-MiniLM-L6-v2."""
    write_tiny_dataset(tmp_path, n_users=8, n_items=12, per_user=4)
    return tmp_path


@pytest.fixture(scope="module")
def llama_dir(tmp_path_factory):
    """A random 2-layer LLaMA (hidden 32) and a word-level tokenizer with <pad>/</s>, saved offline."""
    from tokenizers import Tokenizer, normalizers, pre_tokenizers
    from tokenizers.models import WordLevel
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    folder = tmp_path_factory.mktemp("tiny-llama")
    words = ("the item has following attributes title is product number categories price cat sub "
             "completely different thing").split()
    specials = ["<unk>", "<pad>", "<s>", "</s>"]
    vocab = {w: i for i, w in enumerate(specials + words + list("0123456789:;.,"))}
    tok = Tokenizer(WordLevel(vocab=vocab, unk_token="<unk>"))
    tok.normalizer = normalizers.Lowercase()
    tok.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Whitespace(), pre_tokenizers.Digits(individual_digits=True)])
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>", pad_token="<pad>",
                                   bos_token="<s>", eos_token="</s>")
    hf = LlamaConfig(vocab_size=len(vocab), hidden_size=LLAMA_HIDDEN, intermediate_size=64, num_hidden_layers=2,
                     num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=256,
                     pad_token_id=vocab["<pad>"], bos_token_id=vocab["<s>"], eos_token_id=vocab["</s>"])
    torch.manual_seed(0)
    LlamaForCausalLM(hf).save_pretrained(folder)
    fast.save_pretrained(folder)
    assert (folder / "config.json").is_file() and (folder / "tokenizer.json").is_file()
    return str(folder)


def hf_hidden(folder, ids):
    """Last hidden states of the base model in ``folder`` for one unpadded id list."""
    from transformers import AutoModel

    model = AutoModel.from_pretrained(folder, local_files_only=True).eval()
    with torch.no_grad():
        return model(input_ids=torch.tensor([ids])).last_hidden_state[0]


# ----------------------------------------------------------------------------- item text, real rows
def test_ml100k_item_text_real_rows():
    config = Config("SASRec", "ml-100k", config_dict={"data_path": str(RECBOLE_EXAMPLE_DIR), "state": "WARNING"})
    assert Path(config["data_path"]) == (RECBOLE_EXAMPLE_DIR / "ml-100k").resolve()
    dataset = create_dataset(config)
    tokens = tokens_of(dataset)
    texts = dict(zip(tokens, build_item_texts(config, dataset)))
    assert len(texts) == len(tokens) > 1000
    head = "The movie's attributes are as follows:\n"  # props/ml-100k.yaml
    # title (free text, joined with spaces), year, genres (a label field, joined with ", "), in that order
    assert texts["1"] == head + "title is Toy Story; year is 1995; genres is Animation, Children's, Comedy"
    assert texts["12"] == head + "title is Usual Suspects, The; year is 1995; genres is Crime, Thriller"
    assert texts["50"] == head + "title is Star Wars; year is 1977; genres is Action, Adventure, Romance, Sci-Fi, War"
    assert all(t.startswith(head + "title is ") for t in texts.values())


@pytest.mark.skipif(not BEAUTY.is_dir(), reason="../shared/datasets/amazon-beauty not present")
def test_amazon_beauty_item_text_real_rows():
    config = Config("SASRec", "amazon-beauty", config_dict={"data_path": str(SHARED_DATASETS), "state": "WARNING"})
    dataset = create_dataset(config)
    tokens = tokens_of(dataset)
    attrs = dict(zip(tokens, item_attributes(config, dataset)))
    texts = dict(zip(tokens, build_item_texts(config, dataset)))
    head = "The beauty item has the following attributes:\n"
    # complete row: fields in item_text_fields order, the list-string categories as readable values
    assert texts["7806397051"] == head + (
        "title is WAWO 15 Color Professionl Makeup Eyeshadow Camouflage Facial Concealer Neutral Palette; "
        "brand is COKA; categories is Beauty, Makeup, Face, Concealers & Neutralizers; price is 5.04; "
        "sales type is Beauty")
    # categories with a CSV-quoted "Women's" item
    assert texts["9788072216"] == head + (
        "title is Prada Candy By Prada Eau De Parfum Spray 1.7 Oz For Women; brand is Prada; "
        "categories is Beauty, Fragrance, Women's, Eau de Parfum; price is 65.86; sales type is Beauty")
    # no brand, no price: left out (RecBole filled the price with the column mean; that must not show)
    assert texts["9790794231"] == head + (
        "title is Stella McCartney Stella; categories is Beauty, Fragrance, Women's, Eau de Parfum; sales type is Beauty")
    # HTML entities unescaped
    assert texts["B00004U9V2"] == head + (
        "title is Crabtree & Evelyn - Gardener's Ultra-Moisturising Hand Therapy Pump - 250g/8.8 OZ; "
        "categories is Beauty, Skin Care, Hands & Nails, Hand Creams & Lotions; sales type is Beauty")
    # empty title, brand and price
    assert texts["B000GZES7A"] == head + "categories is Beauty, Skin Care, Eyes, Creams; sales type is Health & Personal Care"

    # every item against the raw file: an attribute is present exactly when its cell is non-empty
    raw = pd.read_csv(BEAUTY / "amazon-beauty.item", sep="\t", dtype=str, keep_default_na=False)
    raw.columns = [c.split(":")[0] for c in raw.columns]
    raw = raw.set_index("item_id")
    assert len(attrs) == len(raw) == 12101
    for field, name in [("title", "title"), ("brand", "brand"), ("price", "price"), ("sales_type", "sales type")]:
        have = {t for t, a in attrs.items() if name in dict(a)}
        filled = set(raw.index[raw[field].str.strip() != ""])
        assert have == filled, field
    for t in ["7806397051", "9788072216", "B000GZES7A"]:  # categories: the parsed list, joined
        cats = [html.unescape(c) for c in ast.literal_eval("[" + raw.loc[t, "categories"] + "]")]
        assert dict(attrs[t])["categories"] == ", ".join(cats)
    for t, a in attrs.items():
        values = dict(a)
        assert a and FALLBACK_NAME not in values  # every real item has some text
        for v in values.values():
            assert v and v.lower() not in ("nan", "none", "[]") and "&amp;" not in v
            assert len(v) <= 100  # cut to about item_text_max_chars
        cats = values["categories"]  # every raw cell is a quoted list: never shown as one
        assert not cats.startswith(("[", "'", '"')) and "', '" not in cats and not cats.endswith("'")
    # the longest title is cut at a word boundary, keeping its beginning
    longest = raw["title"].str.len().idxmax()
    full = " ".join(html.unescape(raw.loc[longest, "title"]).split())
    cut = dict(attrs[longest])["title"]
    assert len(full) > 300 and 60 <= len(cut) <= 100 and full.startswith(cut) and full[len(cut)] in " ,;:"


def test_item_without_text_gets_fallback_and_is_warned(tiny, caplog):
    path = tiny / "tiny" / "tiny.item"
    lines = path.read_text().splitlines()
    assert lines[1].startswith("i1\t")
    lines[1] = "i1\t\t\t"  # the most popular item, every field empty
    path.write_text("\n".join(lines) + "\n")
    config, dataset = load(tiny)
    with caplog.at_level(logging.WARNING):
        texts = dict(zip(tokens_of(dataset), build_item_texts(config, dataset)))
    assert texts["i1"] == "The item has the following attributes:\nitem id is i1"
    assert texts["i2"] == "The item has the following attributes:\ntitle is Product number 2; categories is cat2, sub2; price is 3.00"
    assert sum(t.endswith("item id is " + k) for k, t in texts.items()) == 1
    warned = [r.getMessage() for r in caplog.records if "fallback" in r.getMessage()]
    assert len(warned) == 1 and f"1 of {len(texts)} items" in warned[0] and "i1" in warned[0]


# ----------------------------------------------------------------------------- SCFT loss
def _pairs(seed, n=16, d=32, noise=0.3):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=g)
    y = x + noise * torch.randn(n, d, generator=g)
    shuffled = y[torch.roll(torch.arange(n), 1)]  # every row paired with another item's view
    return x, y, shuffled


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_losses_prefer_aligned_views(seed):
    x, y, shuffled = _pairs(seed)
    losses = {
        "RAT soft tau 2": lambda a, b: soft_contrastive_loss(a, b, tau=2.0),
        "scft soft tau 3": lambda a, b: scft_soft_loss(a, b, torch.tensor(3.0)),
        "scft soft tau 0.2": lambda a, b: scft_soft_loss(a, b, torch.tensor(0.2)),
        "infonce tau 0.05": lambda a, b: infonce_loss(a, b, torch.tensor(0.05)),
    }
    for name, fn in losses.items():
        aligned, wrong = float(fn(x, y)), float(fn(x, shuffled))
        assert np.isfinite(aligned) and np.isfinite(wrong), name
        assert aligned < wrong, f"{name}: aligned {aligned:.4f} >= shuffled {wrong:.4f}"
    # InfoNCE with a sharp temperature: aligned views are nearly solved, shuffled ones are not
    assert float(infonce_loss(x, y, torch.tensor(0.05))) < 0.1 < float(infonce_loss(x, shuffled, torch.tensor(0.05)))


def test_soft_loss_temperature_gets_a_gradient():
    x, y, _ = _pairs(3)
    tau = torch.tensor(3.0, requires_grad=True)
    scft_soft_loss(x, y, tau).backward()
    assert tau.grad is not None and float(tau.grad) != 0.0


@pytest.mark.parametrize("model,loss", [("minilm", "soft"), ("llama", "infonce")])
def test_scft_step_trains_only_lora_and_temperature(small, llama_dir, model, loss):
    llm_path = None if model == "minilm" else llama_dir
    config, dataset = load(small, llm_path=llm_path, scft_loss=loss, scft_batch_size=4)
    tokenizer, lm, info = backbone.load_backbone(config, lora=True)
    trainer = SCFTTrainer(config, tokenizer, lm, info, item_attributes(config, dataset), instruction(config))
    base_before = {n: p.detach().clone() for n, p in lm.named_parameters() if "lora_" not in n}
    lora_before = {n: p.detach().clone() for n, p in lm.named_parameters() if "lora_" in n}
    tau_before = float(trainer.tau.detach())
    assert lora_before and len(base_before) > len(lora_before) / 4

    first = trainer.step()
    assert np.isfinite(first)

    lora_grads = {}
    for n, p in lm.named_parameters():
        if "lora_" in n:
            assert p.requires_grad, n
            if p.grad is not None:
                lora_grads[n] = float(p.grad.abs().sum())
        else:
            assert not p.requires_grad and p.grad is None, f"base weight {n} was trained"
            assert torch.equal(p.detach(), base_before[n]), n
    assert any(g > 0 for g in lora_grads.values())
    assert trainer.tau.grad is not None and float(trainer.tau.grad) != 0.0
    assert float(trainer.tau.detach()) != tau_before
    changed = [n for n, p in lm.named_parameters() if "lora_" in n and not torch.equal(p.detach(), lora_before[n])]
    assert changed and all("lora_" in n for n in changed)
    if model == "llama":
        assert {n.split(".lora_")[0].split(".")[-1] for n in changed} == LLAMA_TARGETS


# ----------------------------------------------------------------------------- SCFT + extraction end to end
def test_scft_and_extraction_with_packaged_minilm(small):
    config, dataset = load(small, scft_steps=1, scft_batch_size=4)
    es = item_embeddings(config, dataset, "scft", progress=False)
    n = len(tokens_of(dataset))
    assert es.meta["status"] == "built" and es.tokens == tokens_of(dataset)
    assert es.vectors.shape == (n, MINILM_HIDDEN) and es.vectors.dtype == np.float32
    assert np.isfinite(es.vectors).all()
    assert len({v.tobytes() for v in es.vectors}) == n  # distinct texts, distinct vectors
    assert es.meta["scft"]["steps"] == 1 and np.isfinite(es.meta["scft"]["final_loss"])
    assert es.meta["settings"]["pooling"] == "mean" and es.meta["model"]["family"] == "encoder"
    adapter = Path(es.path) / "adapter"
    cfg = json.loads((adapter / "adapter_config.json").read_text())
    assert cfg["peft_type"] == "LORA" and cfg["r"] == 8 and cfg["lora_alpha"] == 32
    assert set(cfg["target_modules"]) == {"query", "key", "value", "dense"}
    assert any(f.startswith("adapter_model") for f in os.listdir(adapter))
    assert temp_files(config["embedding_cache_dir"]) == []


def test_scft_and_last_token_extraction_with_tiny_llama(tiny, llama_dir):
    from peft import PeftModel
    from transformers import AutoModel, AutoTokenizer

    config, dataset = load(tiny, llm_path=llama_dir, llm_pooling="last", scft_steps=2, scft_lr=0.01)
    es = item_embeddings(config, dataset, "scft", progress=False)
    n = len(tokens_of(dataset))
    assert es.vectors.shape == (n, LLAMA_HIDDEN) and np.isfinite(es.vectors).all()
    assert es.meta["model"]["family"] == "decoder" and es.meta["settings"]["pooling"] == "last"
    adapter = Path(es.path) / "adapter"
    cfg = json.loads((adapter / "adapter_config.json").read_text())
    assert cfg["peft_type"] == "LORA" and set(cfg["target_modules"]) == LLAMA_TARGETS

    # the stored vector is the tuned model's hidden state at the appended EOS, i.e. the saved
    # adapter merged into the base model, read at the last token
    texts = build_item_texts(config, dataset)
    tok = AutoTokenizer.from_pretrained(llama_dir, local_files_only=True)
    tuned = PeftModel.from_pretrained(AutoModel.from_pretrained(llama_dir, local_files_only=True), str(adapter))
    tuned = tuned.merge_and_unload().eval()
    for i in (0, n // 2, n - 1):
        ids = tok(texts[i])["input_ids"] + [tok.eos_token_id]
        with torch.no_grad():
            h = tuned(input_ids=torch.tensor([ids])).last_hidden_state[0]
        np.testing.assert_allclose(es.vectors[i], h[-1].numpy(), atol=1e-4)
        assert np.abs(es.vectors[i] - hf_hidden(llama_dir, ids)[-1].numpy()).max() > 1e-3  # SCFT changed it


def test_plain_extraction_pooling_on_decoder(tiny, llama_dir):
    from transformers import AutoTokenizer

    config, dataset = load(tiny, llm_path=llama_dir, llm_pooling="last")
    last = item_embeddings(config, dataset, "plain", progress=False)
    config_mean, _ = load(tiny, llm_path=llama_dir, llm_pooling="mean")
    mean = item_embeddings(config_mean, dataset, "plain", progress=False)
    assert last.path != mean.path and not (Path(last.path) / "adapter").exists()
    tok = AutoTokenizer.from_pretrained(llama_dir, local_files_only=True)
    texts = build_item_texts(config, dataset)
    for i in (0, 3, len(texts) - 1):
        ids = tok(texts[i])["input_ids"]
        assert len(ids) > 10
        # batched, right-padded extraction == the text alone; "last" reads the appended EOS
        with_eos = hf_hidden(llama_dir, ids + [tok.eos_token_id])
        np.testing.assert_allclose(last.vectors[i], with_eos[-1].numpy(), atol=1e-4)
        np.testing.assert_allclose(mean.vectors[i], hf_hidden(llama_dir, ids).mean(0).numpy(), atol=1e-4)
        assert np.abs(last.vectors[i] - mean.vectors[i]).max() > 1e-3


def test_pca_reduces_dimensions(tiny, llama_dir):
    config, dataset = load(tiny, llm_path=llama_dir, pca_dim=4)
    es = item_embeddings(config, dataset, "plain", progress=False)
    assert es.vectors.shape == (len(tokens_of(dataset)), 4) and np.isfinite(es.vectors).all()
    assert es.meta["pca_dim"] == 4 and 0 < es.meta["pca_explained_variance"] <= 1


# ----------------------------------------------------------------------------- store
def test_second_call_is_a_hit(tiny, monkeypatch):
    config, dataset = load(tiny)  # the packaged all-MiniLM-L6-v2, one SCFT step
    first = item_embeddings(config, dataset, "scft", progress=False)
    assert first.meta["status"] == "built"

    def no_model(*a, **k):
        raise AssertionError("a store hit must not load the language model")

    monkeypatch.setattr(backbone, "load_backbone", no_model)
    config2, dataset2 = load(tiny)  # a fresh config and dataset, as in a new run
    second = item_embeddings(config2, dataset2, "scft", progress=False)
    assert second.meta["status"] == "reused" and second.path == first.path
    assert second.meta["key"] == first.meta["key"]
    np.testing.assert_array_equal(second.vectors, first.vectors)
    assert second.tokens == first.tokens
    assert second.meta["seconds"] < first.meta["seconds"] and second.meta["seconds"] < 10


def test_changed_item_text_is_a_miss(tiny, llama_dir):
    config, dataset = load(tiny, llm_path=llama_dir)
    before = item_embeddings(config, dataset, "plain", progress=False)
    path = tiny / "tiny" / "tiny.item"
    path.write_text(path.read_text().replace("i2\tProduct number 2\t", "i2\tCompletely different thing\t"))
    config2, dataset2 = load(tiny, llm_path=llama_dir)
    after = item_embeddings(config2, dataset2, "plain", progress=False)
    assert after.meta["status"] == "built"
    assert after.meta["key"] != before.meta["key"] and after.path != before.path
    assert after.meta["texts_sha256"] != before.meta["texts_sha256"]
    assert after.tokens == before.tokens
    row = after.tokens.index("i2")
    assert np.abs(after.vectors[row] - before.vectors[row]).max() > 1e-3
    others = [k for k in range(len(after.tokens)) if k != row]
    np.testing.assert_allclose(after.vectors[others], before.vectors[others], atol=1e-4)
    store.load(before.path, expect_key=before.meta["key"])  # the old entry is still intact


def test_truncated_or_corrupt_vectors_are_rebuilt(tiny, llama_dir, caplog):
    config, dataset = load(tiny, llm_path=llama_dir)
    good = item_embeddings(config, dataset, "plain", progress=False)
    vec = Path(good.path) / store.VECTORS
    data = vec.read_bytes()
    vec.write_bytes(data[: len(data) // 2])
    with pytest.raises(store.StoreError, match="checksum"):
        store.load(good.path)
    with caplog.at_level(logging.WARNING):
        rebuilt = item_embeddings(config, dataset, "plain", progress=False)
    assert rebuilt.meta["status"] == "built" and rebuilt.path == good.path
    assert any("not intact" in r.getMessage() for r in caplog.records)
    np.testing.assert_allclose(rebuilt.vectors, good.vectors, atol=1e-6)
    assert vec.read_bytes() == data

    # same size, one byte changed: also caught
    corrupt = bytearray(data)
    corrupt[-3] ^= 0xFF
    vec.write_bytes(bytes(corrupt))
    with pytest.raises(store.StoreError):
        store.load(good.path)
    assert item_embeddings(config, dataset, "plain", progress=False).meta["status"] == "built"
    assert item_embeddings(config, dataset, "plain", progress=False).meta["status"] == "reused"
    assert temp_files(config["embedding_cache_dir"]) == []


def _rewrite_vectors(folder, array):
    """Replace an entry's vectors with ``array`` and keep its checksum consistent, so that only the
    shape / dtype check can tell."""
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    data = buffer.getvalue()
    (Path(folder) / store.VECTORS).write_bytes(data)
    meta = json.loads((Path(folder) / store.META).read_text())
    meta["vectors_sha256"] = store.sha256_bytes(data)
    (Path(folder) / store.META).write_text(json.dumps(meta))


@pytest.mark.parametrize("damage", ["shape", "dtype", "other dataset"])
def test_entries_of_the_wrong_shape_dtype_or_dataset_are_rebuilt(tiny, llama_dir, caplog, damage):
    config, dataset = load(tiny, llm_path=llama_dir)
    good = item_embeddings(config, dataset, "plain", progress=False)
    if damage == "shape":
        _rewrite_vectors(good.path, good.vectors[:, :-1].copy())
        expected = "shape"
    elif damage == "dtype":
        _rewrite_vectors(good.path, good.vectors.astype(np.float64))
        expected = "float64"
    else:  # another dataset's entry copied over this one: its key is not ours
        meta = json.loads((Path(good.path) / store.META).read_text())
        meta["key"], meta["dataset"] = "0" * 64, "ml-100k"
        (Path(good.path) / store.META).write_text(json.dumps(meta))
        expected = "has key"
    with pytest.raises(store.StoreError, match=expected):
        store.load(good.path, expect_key=good.meta["key"])
    with caplog.at_level(logging.WARNING):
        rebuilt = item_embeddings(config, dataset, "plain", progress=False)
    assert rebuilt.meta["status"] == "built" and rebuilt.path == good.path
    assert any("not intact" in r.getMessage() and expected in r.getMessage() for r in caplog.records)
    np.testing.assert_allclose(rebuilt.vectors, good.vectors, atol=1e-6)
    assert item_embeddings(config, dataset, "plain", progress=False).meta["status"] == "reused"


def test_store_writes_are_atomic(tmp_path, monkeypatch):
    folder = tmp_path / "entry"
    tokens = ["a", "b", "c"]
    vectors = np.arange(6, dtype=np.float32).reshape(3, 2)
    es = store.save(folder, tokens, vectors, {"key": "k1"})
    assert sorted(os.listdir(folder)) == [store.META, store.VECTORS]
    loaded = store.load(folder, expect_key="k1")
    np.testing.assert_array_equal(loaded.vectors, vectors)
    assert loaded.tokens == tokens
    with pytest.raises(store.StoreError):
        store.load(folder, expect_key="other")
    assert es.dim == 2

    real_replace = os.replace

    def crash(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="disk full"):
        store.save(folder, tokens, vectors * 2, {"key": "k2"})
    monkeypatch.setattr(os, "replace", real_replace)
    assert temp_files(folder) == []  # the temporary file is removed
    with pytest.raises(store.StoreError):  # and the half-replaced entry is not usable
        store.load(folder)
    with pytest.raises(ValueError):  # NaN vectors are never stored
        store.save(tmp_path / "nan", tokens, np.full((3, 2), np.nan))
    assert files_under(tmp_path / "nan") == []


# ----------------------------------------------------------------------------- bad inputs
@pytest.mark.parametrize("kind", ["missing folder", "hub id not cached", "folder without config.json", "no tokenizer"])
def test_bad_llm_path_is_a_user_error(tiny, llama_dir, kind):
    expected = {"missing folder": "does not exist", "hub id not cached": "nothing is downloaded",
                "folder without config.json": "no config.json", "no tokenizer": "cannot load its tokenizer"}[kind]
    if kind == "missing folder":
        llm_path = str(tiny / "no-such-model")
    elif kind == "hub id not cached":
        llm_path = "nobody-here/no-such-model-xyz"
    else:
        llm_path = tiny / "broken-model"
        llm_path.mkdir()
        if kind == "no tokenizer":
            for f in ("config.json", "model.safetensors"):
                shutil.copy(Path(llama_dir) / f, llm_path)
        llm_path = str(llm_path)
    config, dataset = load(tiny, llm_path=llm_path)
    with pytest.raises(UserError) as err:
        item_embeddings(config, dataset, "scft", progress=False)
    msg = str(err.value)
    assert "llm_path" in msg and llm_path in msg and expected in msg
    assert files_under(config["embedding_cache_dir"]) == []  # nothing half-written


def test_pca_dim_larger_than_hidden_is_a_user_error(tiny):
    config, dataset = load(tiny, pca_dim=500)  # all-MiniLM-L6-v2 has 384 dimensions
    with pytest.raises(UserError, match="pca_dim=500 is larger than the model's hidden size 384"):
        item_embeddings(config, dataset, "scft", progress=False)
    assert files_under(config["embedding_cache_dir"]) == []


@pytest.mark.parametrize("case", ["no item file", "no text columns", "empty item_text_fields"])
def test_dataset_without_item_text_is_a_user_error(tiny, case):
    overrides = {}
    if case == "no item file":
        (tiny / "tiny" / "tiny.item").unlink()
        overrides["load_col"] = {"inter": ["user_id", "item_id", "timestamp"]}
    elif case == "no text columns":
        overrides["load_col"] = {"inter": ["user_id", "item_id", "timestamp"], "item": ["item_id"]}
    else:
        overrides["item_text_fields"] = []
    config, dataset = load(tiny, **overrides)
    with pytest.raises(UserError, match="no item text fields") as err:
        item_embeddings(config, dataset, "scft", progress=False)
    assert "tiny.item" in str(err.value)
    assert files_under(config["embedding_cache_dir"]) == []


# ----------------------------------------------------------------------------- command line
def as_argv(cfg):
    return [f"--{k}={v!r}" if isinstance(v, (dict, list)) else f"--{k}={v}" for k, v in cfg.items()]


def test_cli_builds_then_reuses(tiny, llama_dir, capsys):
    cfg = tiny_config(tiny, scft_steps=1, scft_batch_size=8, llm_path=llama_dir, state="WARNING")
    argv = ["--dataset=tiny", "--method=scft", *as_argv(cfg)]
    assert main(argv) == 0
    out1 = capsys.readouterr().out.strip().splitlines()[-1]
    assert out1.startswith("built: ") and f"x {LLAMA_HIDDEN})" in out1
    assert main(argv) == 0
    out2 = capsys.readouterr().out.strip().splitlines()[-1]
    assert out2.startswith("reused: ")
    path = out1.split()[1]
    assert out2.split()[1] == path and (Path(path) / "adapter" / "adapter_config.json").is_file()
    es = store.load(path)
    assert es.vectors.shape[1] == LLAMA_HIDDEN and es.meta["settings"]["scft_steps"] == 1


def test_cli_unknown_method_and_missing_text(tiny, capsys):
    cfg = tiny_config(tiny)
    assert main(["--dataset=tiny", "--method=nope", *as_argv(cfg)]) == 2
    err = capsys.readouterr().err
    assert "Unknown embedding method 'nope'" in err and "scft" in err and "Traceback" not in err
    cfg["load_col"] = {"inter": ["user_id", "item_id", "timestamp"]}
    assert main(["--dataset=tiny", *as_argv(cfg)]) == 2
    assert "no item text fields" in capsys.readouterr().err
    assert files_under(tiny / "cache") == []


@pytest.mark.parametrize("dtype", ["float32", "float16"])
def test_store_writes_in_blocks_and_loads_mapped(tmp_path, monkeypatch, dtype):
    """Written block by block (here 3 rows a block), the file is byte for byte what np.save writes
    (so entries written before stay valid); float16 halves it; a mapped load gives the same rows."""
    monkeypatch.setattr(store, "BLOCK_BYTES", 3 * 4 * np.dtype(dtype).itemsize)
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(10, 4)).astype(np.float32)
    tokens = [f"i{k}" for k in range(10)]
    es = store.save(tmp_path / "e", tokens, vectors, {"key": "k"}, dtype=dtype)
    buffer = io.BytesIO()
    np.save(buffer, vectors.astype(dtype), allow_pickle=False)
    assert (tmp_path / "e" / store.VECTORS).read_bytes() == buffer.getvalue()
    assert es.meta["dtype"] == dtype and es.vectors.dtype == np.dtype(dtype)
    for mmap in (False, True):
        loaded = store.load(tmp_path / "e", expect_key="k", mmap=mmap)
        assert isinstance(loaded.vectors, np.memmap) == mmap and loaded.vectors.dtype == np.dtype(dtype)
        np.testing.assert_array_equal(loaded.vectors, vectors.astype(dtype))
    np.testing.assert_allclose(loaded.vectors, vectors, rtol=1e-3 if dtype == "float16" else 0)
    with pytest.raises(ValueError, match="beyond float16's range"):
        store.save(tmp_path / "big", ["a"], np.full((1, 4), 1e6, dtype=np.float32), dtype="float16")
    with pytest.raises(ValueError, match="store dtype"):
        store.save(tmp_path / "x", ["a"], np.zeros((1, 4)), dtype="int8")


def test_a_float16_store_is_its_own_cache_entry(tiny, llama_dir):
    config, dataset = load(tiny, llm_path=llama_dir)
    full = item_embeddings(config, dataset, "plain", progress=False)
    config16, dataset16 = load(tiny, llm_path=llama_dir, store_dtype="float16")
    half = item_embeddings(config16, dataset16, "plain", progress=False)
    assert half.path != full.path and half.vectors.dtype == np.float16 and half.meta["status"] == "built"
    np.testing.assert_allclose(half.vectors.astype(np.float32), full.vectors, rtol=1e-2, atol=1e-3)
    again = item_embeddings(config16, dataset16, "plain", progress=False)
    assert again.meta["status"] == "reused"
    np.testing.assert_array_equal(again.vectors, half.vectors)
