"""The text re-ranker: any model's scores blended with the text's at evaluation, checked against a
hand computation; training untouched; off by default; settings it does not use refused."""
import numpy as np
import pytest
import torch
from recbole.data import data_preparation
from recbole.utils import init_seed

from recbole_llmemb.pipeline.config import Config, UserError
from recbole_llmemb.evaluation.paired import per_user_values
from recbole_llmemb.pipeline.quick_start import main, prepare_plugin_inputs, train_and_evaluate
from recbole_llmemb.evaluation.rerank import TextReranker, zscore_rows
from recbole_llmemb.pipeline.training import load_dataset
from tests.conftest import tiny_config, write_tiny_dataset

pytestmark = pytest.mark.usefixtures("quiet_single_thread")


def whitened_unit(vectors):
    """The re-ranker's text table by hand: centre, ZCA-whiten, unit length (numpy, not the package)."""
    x = vectors[1:].astype(np.float64)
    x = x - x.mean(0)
    vals, vecs = np.linalg.eigh(x.T @ x / (len(x) - 1))
    vals = np.maximum(vals, vals.max() * 1e-6)
    x = x @ (vecs @ np.diag(vals ** -0.5) @ vecs.T)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return np.vstack([np.zeros((1, x.shape[1])), x])


def blend_by_hand(scores, vectors, histories, weight, tail=None):
    """z(scores) + weight [x tail share of the last 3] x z(cos(items, mean of the last 3 items' text))."""
    table = whitened_unit(vectors)
    out = []
    for row, history in zip(scores, histories):
        last = history[-3:]
        text = table @ table[last].mean(0)
        w = weight * (np.mean([tail[i] for i in last]) if tail is not None else 1.0)
        z = lambda v: (v - v.mean()) / v.std(ddof=1)  # noqa: E731  (torch.std is the unbiased one)
        out.append(z(np.asarray(row, dtype=np.float64)) + w * z(text))
    return np.array(out)


def test_blend_on_a_tiny_example_matches_the_hand_computation():
    rng = np.random.default_rng(0)
    vectors = np.vstack([np.zeros((1, 4)), rng.normal(size=(6, 4))]).astype(np.float32)
    scores = torch.as_tensor(rng.normal(size=(2, 7)), dtype=torch.float32)
    seq, length = torch.tensor([[1, 2, 3, 4], [5, 0, 0, 0]]), torch.tensor([4, 1])
    tail = np.array([False, False, False, True, True, True, True])
    for gate in (None, tail):
        reranker = TextReranker(vectors, 0.5, gate, last=3, seq_fields=("seq", "len"))
        got = reranker(scores, {"seq": seq, "len": length}).numpy()
        want = blend_by_hand(scores.numpy(), vectors, [[2, 3, 4], [5]], 0.5, gate)
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)
    # gated: the first user's last 3 are 2 (head), 3, 4 (tail): weight 0.5 x 2/3; the second's all tail
    gated = TextReranker(vectors, 0.5, tail, last=3, seq_fields=("seq", "len"))
    torch.testing.assert_close(gated.weights(seq, length), torch.tensor([[0.5 * 2 / 3], [0.5]]))
    with pytest.raises(UserError, match="text_blend=0"):
        TextReranker(vectors, 0.0)


def run(tiny, model, **settings):
    config = Config(model, "tiny", config_dict=tiny_config(tiny, epochs=2, **settings))
    config.check_applicable()
    return config, *train_and_evaluate(config)


def eval_batch(config, trainer):
    """The first test batch as the trainer scores it, the model's own scores for it, and the dataset
    (loaded again, as the pipeline loads it: the run's own is already split)."""
    dataset = load_dataset(config)
    prepare_plugin_inputs(config, dataset, type(trainer.model), {})
    init_seed(config["seed"], config["reproducibility"])
    _, _, test_data = data_preparation(config, dataset)
    batch = next(iter(test_data))
    with torch.no_grad():
        trainer.model.eval()
        _, got, _, _ = trainer._full_sort_batch_eval(batch)
        raw = trainer.model.full_sort_predict(batch[0]).view(len(batch[0]), -1)
    return batch, got, raw, dataset


@pytest.fixture
def wide(tmp_path):
    """The tiny dataset with more items than the LM has dimensions: whitened text vectors of fewer
    items than dimensions are equidistant (a regular simplex), and their cosine ranks nothing."""
    write_tiny_dataset(tmp_path, n_items=500)
    return tmp_path


@pytest.mark.parametrize("model", ["SASRec", "BPR"])
def test_reranker_on_recbole_models_blends_exactly_and_trains_nothing(wide, model):
    """RecBole's own SASRec (history: its input sequence) and BPR (history: the user's training items
    in time order) get the blend the hand computation gives; training losses are unchanged."""
    tiny = wide
    _, plain, _, _ = run(tiny, model)
    config, results, trainer, _ = run(tiny, model, text_blend=2.0, text_blend_gate="none")
    assert [h["train_loss"] for h in results["history"]] == [h["train_loss"] for h in plain["history"]]
    assert results["config"]["text_blend"] == 2.0 and plain["config"]["text_blend"] == 0
    for one in (plain, results):  # the per-user ranks in the results file give its overall and tail figures
        values = per_user_values(one["test"], "ndcg@10")
        assert np.mean(list(values["overall"].values())) == pytest.approx(one["test"]["overall"]["ndcg@10"], abs=1e-6)
        head = one["test"]["groups"]["item_head"]["metrics"]["ndcg@10"]  # (500 items: every target is a head item)
        assert np.mean(list(values["item_head"].values())) == pytest.approx(head, abs=1e-6)
    batch, got, raw, dataset = eval_batch(config, trainer)
    interaction, history_index = batch[0], batch[1]
    if model == "SASRec":
        seq, length = interaction["item_id_list"].numpy(), interaction["item_length"].numpy()
        histories = [list(s[:n]) for s, n in zip(seq, length)]
    else:  # the tiny file: each user's interactions at t = 0..7, the last two held out (valid, test)
        token = dataset.field2id_token["user_id"]
        inter = (tiny / "tiny" / "tiny.inter").read_text().split("\n")[1:]
        by_user = {}
        for line in filter(None, inter):
            u, i, t = line.split("\t")
            by_user.setdefault(u, []).append((float(t), dataset.token2id("item_id", i)))
        histories = [[i for _, i in sorted(by_user[token[u]])[:-2]] for u in interaction["user_id"].numpy()]
    want = torch.as_tensor(blend_by_hand(raw.numpy(), dataset.blend_item_emb, histories, 2.0), dtype=torch.float32)
    want[:, 0] = -np.inf
    if history_index is not None:  # general models: the user's training items are not ranked
        want[history_index] = -np.inf
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4)
    assert not torch.equal(got.argsort(1, descending=True)[:, :10],
                           zscore_rows(raw).masked_fill(torch.isinf(want), -np.inf).argsort(1, descending=True)[:, :10])


def test_sampled_protocol_reranks_from_the_full_sort(tiny):
    """Under uni100 each candidate's score is its re-ranked full-sort score."""
    _, results, _, _ = run(tiny, "BPR", text_blend=0.5, eval_args={"mode": "uni10"})
    assert np.isfinite(results["test"]["overall"]["ndcg@10"])


@pytest.mark.parametrize("model", ["LLMEmbSASRec", "SAIDSASRec", "TSLRecSASRec", "LLMEmbBERT4Rec", "SASRec", "BPR"])
def test_no_reranker_by_default(model):
    config = Config(model, "ml-100k")
    assert config["text_blend"] == 0


@pytest.mark.parametrize("args,words", [
    (["--model=SASRec", "--alpha=0.1"], "alpha is read only by the plugin's models"),
    (["--model=BPR", "--scft_steps=5"], "scft_steps is read only by the plugin's models and the text re-ranker"),
    (["--model=LLMEmbSASRec", "--text_blend_gate=none"], "text_blend_gate is a setting of the text re-ranker, which is off"),
    (["--model=SASRec", "--text_blend=0.3", "--text_blend_vectors=own"], "SASRec reads no text vectors of its own"),
])
def test_a_setting_the_run_would_not_use_is_one_line_and_exit_2(tmp_path, capsys, args, words):
    assert main(args + ["--dataset=ml-100k", f"--results_dir={tmp_path}", "--epochs=1"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and words in err and "\n" not in err
    assert not list(tmp_path.iterdir())  # refused before anything ran


def test_unused_settings_from_a_shared_config_file_are_left_out_and_named(tmp_path):
    """A file shared by several models (the main job's props/quickstart.yaml) may hold a plugin model's
    settings: a RecBole model runs without them, and neither they nor the re-ranker's enter its results."""
    from recbole_llmemb.evaluation.results import config_snapshot

    (tmp_path / "mine.yaml").write_text("item_id_emb: False\nscft_steps: 30\nepochs: 3\n")
    config = Config("GRU4Rec", "ml-100k", config_file_list=[str(tmp_path / "mine.yaml")])
    config.check_applicable()
    assert config.ignored_file_keys == ["item_id_emb", "scft_steps"] and config["epochs"] == 3
    recorded = config_snapshot(config)
    for key in ("item_id_emb", "scft_steps", "alpha", "llm_path", "llm_pooling", "text_blend_gate"):
        assert key not in recorded, key
    assert recorded["text_blend"] == 0 and recorded["epochs"] == 3
    plugin = Config("LLMEmbGRU4Rec", "ml-100k", config_file_list=[str(tmp_path / "mine.yaml")])
    assert plugin.ignored_file_keys == [] and plugin["item_id_emb"] is False and plugin["scft_steps"] == 30
    assert {"item_id_emb", "scft_steps", "alpha", "llm_pooling"} <= set(config_snapshot(plugin))
    reranked = config_snapshot(Config("GRU4Rec", "ml-100k", config_dict={"text_blend": 0.3}))
    assert "llm_pooling" in reranked and reranked["text_blend_gate"] == "tail" and "alpha" not in reranked


def test_the_pipeline_attaches_the_reranker_vectors_only_when_on(tiny):
    for blend, attached in ((0, False), (0.3, True)):
        config = Config("SASRec", "tiny", config_dict=tiny_config(tiny, text_blend=blend))
        dataset = load_dataset(config)
        prepare_plugin_inputs(config, dataset, type("M", (), {}), {})
        assert hasattr(dataset, "blend_item_emb") == attached


def test_the_tail_items_gate_reranks_tail_items_only():
    rng = np.random.default_rng(3)
    vectors = np.vstack([np.zeros((1, 4)), rng.normal(size=(6, 4))]).astype(np.float32)
    scores = torch.as_tensor(rng.normal(size=(2, 7)), dtype=torch.float32)
    seq, length = torch.tensor([[1, 2, 3, 4], [5, 0, 0, 0]]), torch.tensor([4, 1])
    tail = np.array([False, False, False, True, True, True, True])
    reranker = TextReranker(vectors, 0.5, tail, last=3, seq_fields=("seq", "len"), gate="tail_items")
    got = reranker(scores, {"seq": seq, "len": length}).numpy()
    everywhere = blend_by_hand(scores.numpy(), vectors, [[2, 3, 4], [5]], 0.5)
    model_only = blend_by_hand(scores.numpy(), vectors, [[2, 3, 4], [5]], 0.0)
    np.testing.assert_allclose(got, np.where(tail, everywhere, model_only), rtol=1e-4, atol=1e-4)


def test_mask_history_leaves_the_input_items_out_of_a_sequential_ranking_and_changes_nothing_else(tiny):
    """RecBole ranks a sequential model's input items with the rest; ``mask_history`` leaves exactly
    them out (every other score as the model gave it) and trains nothing differently."""
    _, plain, _, _ = run(tiny, "SASRec")
    config, masked, trainer, _ = run(tiny, "SASRec", mask_history=True)
    assert [h["train_loss"] for h in masked["history"]] == [h["train_loss"] for h in plain["history"]]
    batch, got, raw, _ = eval_batch(config, trainer)
    seq, length = batch[0]["item_id_list"], batch[0]["item_length"]
    seen = torch.zeros_like(raw, dtype=torch.bool)
    for row, (s, n) in enumerate(zip(seq, length)):
        seen[row, s[:n]] = True
    seen[:, 0] = True
    assert seen[:, 1:].sum() > 0 and torch.isinf(got[seen]).all()
    torch.testing.assert_close(got[~seen], raw[~seen])


def test_the_mixture_re_ranker_ranks_recbole_s_sasrec_by_the_mixture_and_refuses_a_share_it_cannot_use(wide):
    """``text_blend_mode: mixture``: the same mixture a plugin model trains with (``TextMixture``), after training."""
    from recbole_llmemb.model.text_score import TextMixture

    config, results, trainer, _ = run(wide, "SASRec", text_blend=0.4, text_blend_gate="none", text_blend_mode="mixture",
                                      text_mixture_tau=0.1)
    batch, got, raw, dataset = eval_batch(config, trainer)
    interaction = batch[0]
    want = TextMixture(dataset.blend_item_emb, 0.4, 0.1, last=3)(raw, interaction["item_id_list"], interaction["item_length"])
    want[:, 0] = -np.inf
    torch.testing.assert_close(got, want)
    assert results["config"]["text_blend_mode"] == "mixture"
    config["text_mixture_over"] = "new"  # the model's part over the items outside the input: the setting reaches it
    trainer.reranker = TextReranker.from_config(config, dataset.blend_item_emb, None, None, sequential=True)
    with torch.no_grad():
        _, got, _, _ = trainer._full_sort_batch_eval(batch)
    want = TextMixture(dataset.blend_item_emb, 0.4, 0.1, last=3, over="new")(raw, interaction["item_id_list"], interaction["item_length"])
    want[:, 0] = -np.inf  # the trainer takes padding out of every ranking
    torch.testing.assert_close(got, want)
    for bad, words in (({"text_blend": 1.0, "text_blend_gate": "none"}, "in \\(0, 1\\)"), ({"text_blend": 0.4}, "not tail")):
        with pytest.raises(UserError, match=words):
            run(wide, "SASRec", text_blend_mode="mixture", **bad)


def test_the_mixture_re_ranker_gives_new_items_their_own_share(wide):
    """``text_mixture_new_share``: the run's held-out items (``new_items``) mix at their own share."""
    _, results, trainer, _ = run(wide, "SASRec", new_items=0.2, text_blend=0.4, text_blend_gate="none",
                                 text_blend_mode="mixture", text_mixture_new_share=0.9)
    is_new = torch.as_tensor(trainer.groups.is_new)
    share = trainer.reranker.mixture.shares(torch.tensor([[1]]), torch.tensor([1]), len(is_new))[0]
    assert is_new.sum() == 100 and results["test"]["groups"]["item_new"]["size"] > 0
    torch.testing.assert_close(share, torch.where(is_new, 0.9, 0.4).double())


def test_the_mixture_re_ranker_gives_each_user_a_share_by_their_recent_tail_items(wide):
    """``text_mixture_tail_share`` reaches the re-ranker's mixture with the run's own tail items, and is
    refused where there is no mixture."""
    _, _, trainer, _ = run(wide, "SASRec", text_blend=0.2, text_blend_gate="none", text_blend_mode="mixture",
                           text_mixture_tail_share=0.7)
    mixture = trainer.reranker.mixture
    want = torch.as_tensor(~np.asarray(trainer.groups.is_head, dtype=bool), dtype=torch.float32)
    want[0] = 0
    assert mixture.tail_share == 0.7 and mixture.share == 0.2 and 0 < want.sum() < len(want) - 1
    torch.testing.assert_close(mixture.is_tail, want)
    with pytest.raises(UserError, match="there is no mixture"):
        run(wide, "SASRec", text_blend=0.3, text_blend_gate="none", text_mixture_tail_share=0.7)
