"""SAID (issue 9): soft tokens trained to reproduce item text with the packaged encoder and a tiny
random causal LM, only the soft tokens (and LoRA) learning, an item's own text reconstructed better
than another's, the store reused, bad settings refused, and SAIDSASRec / BERT4Rec / GRU4Rec end to end."""
import numpy as np
import pytest
import torch

from recbole_llmemb.pipeline.config import Config, UserError
from recbole_llmemb.data.item_text import item_attributes
from recbole_llmemb.pipeline.generate import item_embeddings, main as generate_main
from recbole_llmemb.generator import said
from recbole_llmemb.pipeline.quick_start import run_recbole_llmemb
from tests.conftest import tiny_config, write_tiny_dataset
from tests.test_generator import llama_dir  # noqa: F401  (module fixture: the tiny offline LLaMA)

from recbole.data import create_dataset  # noqa: E402

MINILM_HIDDEN = 384


pytestmark = pytest.mark.usefixtures("quiet_single_thread")


#: item texts that differ in their words, not only in a number
TITLES = ["red matte lipstick", "vitamin c face serum", "shampoo for dry hair", "black waterproof mascara",
          "lavender body lotion", "nail polish remover"]


def setup(root, n_items=12, titles=None, **overrides):
    folder = write_tiny_dataset(root, n_users=8, n_items=len(titles) if titles else n_items, per_user=3 if titles else 4)
    if titles:
        rows = [f"i{i}\t{t}\tbeauty\t{i}.00" for i, t in enumerate(titles, 1)]
        (folder / "tiny.item").write_text("\n".join(["item_id:token\ttitle:token\tcategories:token_seq\tprice:float"] + rows) + "\n")
    cfg = tiny_config(root, said_steps=2, said_batch_size=4, state="WARNING", said_max_length=32)
    cfg.update(overrides)
    config = Config("SASRec", "tiny", config_dict=cfg)
    return config, create_dataset(config)


def trainer_for(config, dataset):
    texts = said.said_texts(item_attributes(config, dataset))
    s = said.settings(config, len(texts))
    return said.make_trainer(config, texts, s), s


@pytest.mark.parametrize("model", ["minilm", "llama"])
def test_reconstruction_loss_falls_and_only_soft_tokens_learn(tmp_path, llama_dir, model):  # noqa: F811
    # the encoder scored against the item texts' tokens (the default), the LLaMA against its whole vocabulary
    config, dataset = setup(tmp_path, llm_path=None if model == "minilm" else llama_dir, said_lr=1e-3 if model == "minilm" else 0.01,
                            said_vocab="corpus" if model == "minilm" else "full")
    trainer, _ = trainer_for(config, dataset)
    assert len(trainer.vocab) == (len(trainer.output) if model == "llama" else len({t for ids in trainer.text_ids for t in ids}))
    lm_before = {n: p.detach().clone() for n, p in trainer.model.named_parameters()}
    soft_before = {n: p.detach().clone() for n, p in trainer.soft.named_parameters()}
    with torch.no_grad():
        start = float(trainer.example_losses(list(range(4))).mean())
    for _ in range(15):
        trainer.optimizer.zero_grad(set_to_none=True)
        loss = trainer.example_losses(list(range(4))).mean()
        loss.backward()
        for n, p in trainer.model.named_parameters():
            assert p.grad is None, f"the frozen LM's {n} got a gradient"
        trainer.optimizer.step()
    with torch.no_grad():
        end = float(trainer.example_losses(list(range(4))).mean())
    # a random LM's logits hardly depend on its input (loss ~ log vocabulary, floor ~0.08 lower): it
    # falls less than through the trained MiniLM, where the soft tokens steer real attention
    assert end < start - (0.3 if model == "minilm" else 0.05), (start, end)
    assert all(torch.equal(p.detach(), lm_before[n]) for n, p in trainer.model.named_parameters())
    assert {n for n, p in trainer.soft.named_parameters() if not torch.equal(p.detach(), soft_before[n])} == set(soft_before)
    grads = trainer.soft.ids.weight.grad.abs().sum(1)
    assert (grads[:4] > 0).all() and (grads[4:] == 0).all()  # only the batch's items


def test_lora_parameters_learn_beside_the_soft_tokens(tmp_path, llama_dir):  # noqa: F811
    config, dataset = setup(tmp_path, llm_path=llama_dir, said_lora=True)
    trainer, s = trainer_for(config, dataset)
    assert s["said_lora"] and s["lora_r"] == 8
    trainer.step()
    trained = {n for n, p in trainer.model.named_parameters() if p.grad is not None and float(p.grad.abs().sum()) > 0}
    assert trained and all("lora_" in n for n in trained)
    assert trainer.soft.projector[0].weight.grad is not None


def test_frequency_baselines_by_hand():
    # two examples: [1, 2] and [1, 1]; frequencies 1: 3/4, 2: 1/4; by position: p0 {1: 1}, p1 {2: 1/2, 1: 1/2}
    got = said.frequency_baselines([[1, 2], [1, 1]], vocab_size=3)
    plain = ((-np.log(0.75) - np.log(0.25)) / 2 + (-np.log(0.75) * 2) / 2) / 2
    assert got["word_frequency"] == pytest.approx(plain)
    assert got["word_frequency_by_position"] == pytest.approx((np.log(2) / 2 + np.log(2) / 2) / 2)


@pytest.mark.parametrize("seed", [2020, 1, 7])
def test_own_text_is_reconstructed_and_beats_both_frequency_baselines(tmp_path, seed):
    """The packaged MiniLM on six titles: the head starts exactly at the word-frequency baseline; 60 steps
    take the loss below the positional baseline (no item needed to reach it: about 0.80 here) and to
    a fifth or less of the word-frequency one (0.45-0.56 of 3.07 measured), and each item's soft tokens
    reconstruct its own text better than the next item's. (A random LM's outputs hardly depend on its
    input: it cannot tell texts apart.)"""
    config, dataset = setup(tmp_path, titles=TITLES, said_lr=1e-3, said_batch_size=6, said_steps=60, seed=seed)
    trainer, s = trainer_for(config, dataset)
    before = trainer.evaluate()
    assert before["loss"] == pytest.approx(before["word_frequency"], abs=1e-4)
    trainer.train(s["said_steps"], progress=False)
    after = trainer.evaluate()
    assert after["loss"] < after["word_frequency_by_position"] < after["word_frequency"], after
    assert after["loss"] < 0.3 * after["word_frequency"], after
    items = list(range(6))
    with torch.no_grad():
        own = trainer.example_losses(items).numpy()
        other = trainer.example_losses(items, texts_of=items[1:] + items[:1]).numpy()
    assert (own < other).all(), (own, other)


def test_vectors_are_stored_and_reused(tmp_path):
    config, dataset = setup(tmp_path)
    first = item_embeddings(config, dataset, "said", progress=False)
    assert first.meta["status"] == "built"
    assert first.vectors.shape == (12, MINILM_HIDDEN) and np.isfinite(first.vectors).all()
    assert len({v.tobytes() for v in first.vectors}) == 12
    assert first.meta["said"]["steps"] == 2 and first.meta["settings"]["said_tokens"] == 4
    e = first.meta["said"]["evaluation"]  # what it learned, beside what needs no item, in the record
    assert e["items"] == 12 and 0 < e["word_frequency_by_position"] < e["word_frequency"] and np.isfinite(e["loss"])
    second = item_embeddings(config, dataset, "said", progress=False)
    assert second.meta["status"] == "reused" and np.array_equal(first.vectors, second.vectors)
    # the same stage stored the other export under its own key: choosing costs no second stage
    config_id = Config("SASRec", "tiny", config_dict={**config.user_config_dict, "said_export": "id"})
    ids = item_embeddings(config_id, dataset, "said", progress=False)
    assert ids.meta["status"] == "reused" and ids.vectors.shape == (12, 64) and ids.meta["key"] != first.meta["key"]
    assert ids.meta["built_with"] == first.meta["key"] and ids.meta["said"] == first.meta["said"]
    assert "also" not in first.meta and ids.meta["settings"] == {**first.meta["settings"], "said_export": "id"}


@pytest.mark.parametrize("model", ["minilm", "llama"])
def test_text_start_puts_the_id_vectors_on_the_texts_principal_components(tmp_path, llama_dir, model):  # noqa: F811
    """said_id_init=text: the id vectors start at the plain method's vectors reduced by PCA (unit variance
    each), read through the encoder or the causal LM's body alike; one Adam step at lr 1e-3 moves a
    coordinate by about 1e-3, so the exported ids are still there. The random start keeps its cache key
    (the setting enters it only when it is text)."""
    config, dataset = setup(tmp_path, llm_path=None if model == "minilm" else llama_dir, said_id_init="text",
                            said_id_dim=8, said_export="id", said_steps=1)
    plain = item_embeddings(config, dataset, "plain", progress=False).vectors
    codes, explained = said.text_codes(plain, 8)
    assert codes.shape == (12, 8) and torch.allclose(codes.std(0), torch.ones(8))
    built = item_embeddings(config, dataset, "said", progress=False)
    assert built.meta["said"]["id_start_from_text"]["explained_variance"] == pytest.approx(explained, abs=1e-4)
    assert np.abs(built.vectors - codes.numpy()).max() < 3e-3
    tokens_config = Config("SASRec", "tiny", config_dict={**config.user_config_dict, "said_export": "tokens"})
    tokens = item_embeddings(tokens_config, dataset, "said", progress=False)  # the other export, same stage
    assert tokens.meta["status"] == "reused" and tokens.meta["built_with"] == built.meta["key"]
    assert tokens.vectors.shape[0] == 12 and tokens.vectors.shape[1] != 8
    assert built.meta["said"]["id_start_from_text"]["components"] == 8
    random_config = Config("SASRec", "tiny", config_dict={**config.user_config_dict, "said_id_init": "random"})
    assert "said_id_init" not in said.settings(random_config, 12)
    random_start = item_embeddings(random_config, dataset, "said", progress=False)
    assert random_start.meta["key"] != built.meta["key"] and np.abs(random_start.vectors - codes.numpy()).max() > 0.5


def test_text_start_on_a_catalogue_smaller_than_the_codes_fills_what_it_can(tmp_path):
    """The default said_id_dim (64) on 12 items: the text has 11 components with variance; they fill the
    first 11 columns, the others keep the random start (nothing refused: the text start is the default)."""
    config, dataset = setup(tmp_path, said_export="id", said_steps=1)
    assert said.settings(config, 12)["said_id_init"] == "text" and said.settings(config, 12)["said_id_dim"] == 64
    plain = item_embeddings(config, dataset, "plain", progress=False).vectors
    codes, _ = said.text_codes(plain, 64)
    built = item_embeddings(config, dataset, "said", progress=False)
    assert codes.shape == (12, 11) and built.meta["said"]["id_start_from_text"]["components"] == 11
    assert np.abs(built.vectors[:, :11] - codes.numpy()).max() < 3e-3
    rest = built.vectors[:, 11:]
    assert np.isfinite(rest).all() and 0.7 < rest.std() < 1.3  # N(0, 1), moved by one step at most


@pytest.mark.parametrize("override, words", [
    ({"said_tokens": 0}, "said_tokens=0"),
    ({"said_max_length": 600}, "limit of 512 positions"),
    ({"said_vocab": "all"}, "said_vocab=all"),
    ({"said_export": "pooled"}, "said_export=pooled"),
])
def test_bad_settings_are_one_clear_message(tmp_path, capsys, override, words):
    write_tiny_dataset(tmp_path, n_users=8, n_items=12, per_user=4)
    cfg = tiny_config(tmp_path, **override)
    argv = ["--method=said", "--dataset=tiny"] + [f"--{k}={v!r}" if isinstance(v, dict) else f"--{k}={v}" for k, v in cfg.items()]
    assert generate_main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and words in err and "\n" not in err
    assert not list((tmp_path / "cache").glob("tiny/said-*"))  # refused before anything was written


@pytest.mark.parametrize("model", ["SAIDSASRec", "SAIDBERT4Rec", "SAIDGRU4Rec"])
def test_said_models_end_to_end(tmp_path, llama_dir, model):  # noqa: F811
    write_tiny_dataset(tmp_path)
    cfg = tiny_config(tmp_path, epochs=1, collab_epochs=1, said_steps=2, said_batch_size=8,
                      MAX_ITEM_LIST_LENGTH=5, n_layers=1, n_heads=1, llm_path=llama_dir,
                      **({"text_blend": 0.3, "text_blend_vectors": "own"} if model == "SAIDBERT4Rec" else {}))
    results = run_recbole_llmemb(model, "tiny", config_dict=cfg)
    assert results["model"] == model and np.isfinite(results["test"]["overall"]["ndcg@10"])
    assert set(results["test"]["groups"]) == {"item_head", "item_tail", "user_short", "user_long"}
    assert "effective_rank" in results["test"]["diagnostics"]
    assert list((tmp_path / "cache" / "tiny").glob("said-*"))
    assert results["config"]["alpha"] == 0.0 and results["config"]["llm_embedding_method"] == "said"
    # no re-ranker by default, so no plain store; with it on and its own vectors, none either
    assert not list((tmp_path / "cache" / "tiny").glob("plain-*"))


def test_said_settings_refuse_zero_steps(tmp_path):
    with pytest.raises(UserError, match=r"said_steps=0: must be >= 1\."):  # by the config check, before any loading
        setup(tmp_path, said_steps=0)
    config, _ = setup(tmp_path)
    config["said_steps"] = 0  # a config built in code, past the check: the builder refuses too
    with pytest.raises(UserError, match="at least one step"):
        said.settings(config, 12)
