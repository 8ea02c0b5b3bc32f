"""text_score: the text's similarity as a learned term of a plugin model's scores, in training and
evaluation; checked against a hand computation, learned, reloaded, refused where undefined."""
import numpy as np
import pytest
import torch

from recbole_llmemb.model.text_score import TextMixture, TextScore, text_cosines, text_table
from recbole_llmemb.pipeline.config import Config, UserError
from recbole_llmemb.pipeline.quick_start import main
from tests.conftest import tiny_config, write_tiny_dataset
from tests.test_rerank import eval_batch, run, whitened_unit

pytestmark = pytest.mark.usefixtures("quiet_single_thread")


def test_cosines_match_the_hand_computation():
    rng = np.random.default_rng(1)
    vectors = np.vstack([np.zeros((1, 4)), rng.normal(size=(6, 4))]).astype(np.float32)
    table, hand = text_table(vectors), whitened_unit(vectors)
    np.testing.assert_allclose(table.numpy(), hand, atol=1e-5)
    seq, length = torch.tensor([[1, 2, 3, 4], [5, 0, 0, 0]]), torch.tensor([4, 1])
    want = np.stack([hand @ hand[[2, 3, 4]].mean(0), hand @ hand[5]])  # the last 3 items of each row
    np.testing.assert_allclose(text_cosines(table, seq, length, 3).numpy(), want, atol=1e-5)
    items = torch.tensor([6, 1])
    np.testing.assert_allclose(text_cosines(table, seq, length, 3, items).numpy(), want[[0, 1], [6, 1]], atol=1e-5)
    pairs = torch.tensor([[6, 2], [1, 3]])
    np.testing.assert_allclose(text_cosines(table, seq, length, 3, pairs).numpy(),
                               np.stack([want[0, [6, 2]], want[1, [1, 3]]]), atol=1e-5)
    score = TextScore(vectors, 2.0, last=3)
    with torch.no_grad():
        score.log_scale.fill_(np.log(1.5))
    np.testing.assert_allclose(score(seq, length).detach().numpy(), 3.0 * want, atol=1e-5)


@pytest.fixture
def wide(tmp_path):
    """More items than the LM's dimensions (else whitened text vectors are equidistant)."""
    write_tiny_dataset(tmp_path, n_items=500)
    return tmp_path


@pytest.mark.parametrize("gate", ["none", "tail"])
def test_the_term_is_in_training_and_evaluation_and_its_weight_learns(wide, gate):
    """Scores = the backbone's + w x cos (x the tail share of the last 3 items with the tail gate)."""
    config, results, trainer, _ = run(wide, "LLMEmbSASRec", text_score=3.0, llm_embedding_method="plain",
                                      text_blend_vectors="own", rat_init="scratch", alpha=0, text_blend_gate=gate,
                                      long_tail={"head_ratio": 0.05})
    model = trainer.model
    assert model.text_score.weight.item() != pytest.approx(3.0, abs=1e-4)  # learned
    assert results["history"][-1]["losses"]["text_weight"] == pytest.approx(model.text_score.weight.item(), rel=0.05)
    batch, got, raw, dataset = eval_batch(config, trainer)
    interaction = batch[0]
    seq, length = interaction["item_id_list"], interaction["item_length"]
    hand = whitened_unit(dataset.blend_item_emb)
    text = np.stack([hand @ hand[s[max(n - 3, 0):n].numpy()].mean(0) for s, n in zip(seq, length)])
    if gate == "tail":
        is_tail = ~trainer.groups.is_head
        share = np.array([is_tail[s[max(n - 3, 0):n].numpy()].mean() for s, n in zip(seq, length)])
        assert 0 < share.mean() < 1
        text = text * share[:, None]
    with torch.no_grad():
        term = model.text_score.weight.item() * torch.as_tensor(text, dtype=torch.float32)
        saved = model.text_score
        model.text_score = None
        backbone = model.full_sort_predict(interaction)
        model.text_score = saved
    torch.testing.assert_close(raw, backbone + term, rtol=1e-4, atol=1e-4)
    want = raw.clone()
    want[:, 0] = -np.inf
    torch.testing.assert_close(got, want)


def test_bpr_training_and_sampled_evaluation(wide):
    _, results, trainer, _ = run(wide, "LLMEmbGRU4Rec", text_score=3.0, llm_embedding_method="plain", rat_init="scratch",
                                 alpha=0, loss_type="BPR", text_blend_gate="none", train_neg_sample_args={"distribution": "uniform", "sample_num": 1},
                                 eval_args={"split": {"LS": "valid_and_test"}, "order": "TO", "mode": "uni10"})
    assert np.isfinite(results["test"]["overall"]["ndcg@10"])
    assert trainer.model.text_score.log_scale.item() != 0.0


def test_refused_where_undefined(tiny):
    with pytest.raises(UserError, match="text_score=1.0: LLMEmbBERT4Rec represents masked positions"):
        run(tiny, "LLMEmbBERT4Rec", text_score=1.0)


@pytest.mark.parametrize("args,words", [
    (["--model=LLMEmbSASRec", "--text_blend_last=2"], "or a plugin model's text score (--text_score=5)"),
    (["--model=SASRec", "--text_score=1"], "text_score is read only by the plugin's models"),
])
def test_text_query_settings_are_refused_when_nothing_reads_them(tmp_path, capsys, args, words):
    assert main(args + ["--dataset=ml-100k", f"--results_dir={tmp_path}", "--epochs=1"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and words in err and "\n" not in err


def test_text_query_settings_are_read_with_the_text_score(tiny):
    config = Config("LLMEmbSASRec", "tiny", config_dict=tiny_config(tiny, text_score=1.0, text_blend_last=2))
    config.check_applicable()
    assert config["text_blend_last"] == 2 and "text_blend_last" not in config.unused_keys


def test_the_tail_items_gate_adds_the_term_to_tail_items_only():
    rng = np.random.default_rng(2)
    vectors = np.vstack([np.zeros((1, 4)), rng.normal(size=(6, 4))]).astype(np.float32)
    is_tail = np.array([False, False, True, False, True, True, False])
    seq, length = torch.tensor([[1, 2, 3, 4], [5, 0, 0, 0]]), torch.tensor([4, 1])
    plain = TextScore(vectors, 2.0, last=3)(seq, length).detach()
    gated = TextScore(vectors, 2.0, last=3, is_tail=is_tail, gate="tail_items")
    torch.testing.assert_close(gated(seq, length).detach(), plain * torch.as_tensor(is_tail, dtype=torch.float32))
    items = torch.tensor([[2, 3], [4, 6]])
    torch.testing.assert_close(gated(seq, length, items).detach(), torch.stack([plain[0, [2, 3]] * torch.tensor([1.0, 0.0]),
                                                                              plain[1, [4, 6]] * torch.tensor([1.0, 0.0])]))
    share = TextScore(vectors, 2.0, last=3, is_tail=is_tail, gate="tail")  # user 1's last 3: 2, 3, 4 -> 2 of 3 tail; user 2's: 5
    torch.testing.assert_close(share(seq, length).detach(), plain * torch.tensor([[2 / 3], [1.0]]))
    with pytest.raises(ValueError, match="needs the tail items"):
        TextScore(vectors, 2.0, last=3, gate="tail")


def test_a_fixed_weight_stays_at_its_start(wide):
    _, results, trainer, _ = run(wide, "LLMEmbSASRec", text_score=3.0, text_score_trainable=False, text_blend_gate="none",
                                 llm_embedding_method="plain", rat_init="scratch", alpha=0)
    assert trainer.model.text_score.weight.item() == 3.0
    assert [h["losses"]["text_weight"] for h in results["history"]] == [3.0, 3.0]


def test_text_score_trainable_without_the_term_is_refused(tiny):
    with pytest.raises(UserError, match="there is no text term"):
        Config("LLMEmbSASRec", "tiny", config_dict=tiny_config(tiny, text_score_trainable=False)).check_applicable()
    Config("LLMEmbSASRec", "tiny", config_dict=tiny_config(tiny, text_score_trainable=False, text_score=2.0)).check_applicable()


def test_the_mixture_matches_the_hand_computation():
    """log((1 - s) softmax(scores) + s softmax(cos / tau)), the input items out of the text's part."""
    rng = np.random.default_rng(3)
    vectors = np.vstack([np.zeros((1, 4)), rng.normal(size=(8, 4))]).astype(np.float32)
    scores = torch.as_tensor(rng.normal(size=(2, 9)), dtype=torch.float32)
    seq, length = torch.tensor([[1, 2, 3, 4], [5, 0, 0, 0]]), torch.tensor([4, 1])
    got = TextMixture(vectors, 0.3, 0.1, last=3)(scores, seq, length)
    table = whitened_unit(vectors)
    for row, history in enumerate([[1, 2, 3, 4], [5]]):
        own = np.exp(scores[row].numpy().astype(np.float64))
        own /= own.sum()
        text = np.exp(table @ table[history[-3:]].mean(0) / 0.1)
        text[[0] + history] = 0.0
        want = 0.7 * own + 0.3 * text / text.sum()
        np.testing.assert_allclose(got[row].exp().numpy(), want, rtol=1e-4, atol=1e-7)
    with pytest.raises(ValueError, match="share must be in"):
        TextMixture(vectors, 1.0, 0.1, last=3)


def test_the_mixture_over_new_items_renormalises_the_model_outside_the_input():
    """``over="new"``: the model's softmax over the items outside the input (as the text's), input items out of
    the ranking; in training a target that repeats an input item keeps the model's part."""
    rng = np.random.default_rng(4)
    vectors = np.vstack([np.zeros((1, 4)), rng.normal(size=(8, 4))]).astype(np.float32)
    scores = torch.as_tensor(rng.normal(size=(2, 9)) * 3, dtype=torch.float32)
    seq, length = torch.tensor([[1, 2, 3, 4], [5, 0, 0, 0]]), torch.tensor([4, 1])
    mixture = TextMixture(vectors, 0.3, 0.1, last=3, over="new")
    got = mixture(scores, seq, length)
    table = whitened_unit(vectors)
    for row, history in enumerate([[1, 2, 3, 4], [5]]):
        own = np.exp(scores[row].numpy().astype(np.float64))
        own[[0] + history] = 0.0
        text = np.exp(table @ table[history[-3:]].mean(0) / 0.1)
        text[[0] + history] = 0.0
        want = 0.7 * own / own.sum() + 0.3 * text / text.sum()
        np.testing.assert_allclose(got[row].exp().numpy(), want, rtol=1e-4, atol=1e-7)
    assert (got[0, [0, 1, 2, 3, 4]] < -1e8).all() and (got[0, 5:] > -100).all()  # input items: last
    repeat = mixture(scores, seq, length, target=torch.tensor([2, 6]))
    assert repeat[0, 2] > -100 and repeat[0, 1] < -1e8
    scores.requires_grad_(True)  # finite gradients, the hidden items' included (training takes this path)
    mixture(scores, seq, length, target=torch.tensor([2, 6])).gather(1, torch.tensor([[2], [6]])).sum().backward()
    assert torch.isfinite(scores.grad).all() and scores.grad[0, 1] == 0
    # the two forms differ: "all" leaves the model's mass on the input items, so less on the rest
    assert (TextMixture(vectors, 0.3, 0.1, last=3)(scores, seq, length)[0, 5:] < got[0, 5:]).all()
    with pytest.raises(ValueError, match="over all or new"):
        TextMixture(vectors, 0.3, 0.1, last=3, over="rest")


def test_the_mixture_gives_new_items_their_own_share():
    """``new_share``: the held-out items mix at their own share, the others at the common one."""
    rng = np.random.default_rng(5)
    vectors = np.vstack([np.zeros((1, 4)), rng.normal(size=(8, 4))]).astype(np.float32)
    scores = torch.as_tensor(rng.normal(size=(1, 9)), dtype=torch.float32)
    seq, length = torch.tensor([[1, 2]]), torch.tensor([2])
    is_new = np.zeros(9, dtype=bool)
    is_new[[6, 7]] = True
    got = TextMixture(vectors, 0.3, 0.1, last=3, new_share=0.8, is_new=is_new)(scores, seq, length)[0].exp().numpy()
    own = np.exp(scores[0].numpy().astype(np.float64))
    own /= own.sum()
    table = whitened_unit(vectors)
    text = np.exp(table @ table[[1, 2]].mean(0) / 0.1)
    text[[0, 1, 2]] = 0.0
    text /= text.sum()
    share = np.where(is_new, 0.8, 0.3)
    np.testing.assert_allclose(got, (1 - share) * own + share * text, rtol=1e-4, atol=1e-7)
    with pytest.raises(ValueError, match="come together"):
        TextMixture(vectors, 0.3, 0.1, last=3, new_share=0.8)


def test_the_mixture_gives_each_user_a_share_by_the_tail_items_among_their_last_items():
    """``tail_share``: the common share for a user with no tail item among the last 3, ``tail_share`` for one
    with only tail items, and a third of the way for one tail item in three; new items keep their own."""
    rng = np.random.default_rng(6)
    vectors = np.vstack([np.zeros((1, 4)), rng.normal(size=(8, 4))]).astype(np.float32)
    scores = torch.as_tensor(rng.normal(size=(3, 9)), dtype=torch.float32)
    is_tail = np.zeros(9, dtype=bool)
    is_tail[[4, 5, 6]] = True
    # last three items: none tail / all tail / one tail (item 4), the first row's oldest item (5) out of the window
    seq, length = torch.tensor([[5, 1, 2, 3], [4, 5, 6, 0], [1, 2, 4, 0]]), torch.tensor([4, 3, 3])
    got = TextMixture(vectors, 0.2, 0.1, last=3, tail_share=0.8, is_tail=is_tail)(scores, seq, length).exp().numpy()
    table = whitened_unit(vectors)
    for row, (history, share) in enumerate([([5, 1, 2, 3], 0.2), ([4, 5, 6], 0.8), ([1, 2, 4], 0.4)]):
        own = np.exp(scores[row].numpy().astype(np.float64))
        own /= own.sum()
        text = np.exp(table @ table[history[-3:]].mean(0) / 0.1)
        text[[0] + history] = 0.0
        np.testing.assert_allclose(got[row], (1 - share) * own + share * text / text.sum(), rtol=1e-4, atol=1e-7)
    is_new = np.zeros(9, dtype=bool)
    is_new[7] = True
    both = TextMixture(vectors, 0.2, 0.1, last=3, new_share=0.9, is_new=is_new, tail_share=0.8, is_tail=is_tail)
    shares = both.shares(seq, length, 9)
    assert shares.shape == (3, 9) and (shares[:, 7] == 0.9).all()
    torch.testing.assert_close(shares[:, 1], torch.tensor([0.2, 0.8, 0.4], dtype=torch.float64))
    with pytest.raises(ValueError, match="come together"):
        TextMixture(vectors, 0.3, 0.1, last=3, tail_share=0.8)
    with pytest.raises(ValueError, match="share must be in"):
        TextMixture(vectors, 0.3, 0.1, last=3, tail_share=1.0, is_tail=is_tail)


def test_a_model_with_the_mixture_trains_on_it_and_ranks_by_it(wide):
    """The training loss is the mixture's cross-entropy; evaluation ranks by the mixture's probabilities."""
    config, results, trainer, _ = run(wide, "LLMEmbSASRec", text_mixture=0.4, llm_embedding_method="plain",
                                      rat_init="scratch", alpha=0)
    model = trainer.model
    batch, got, raw, _ = eval_batch(config, trainer)
    interaction = batch[0]
    torch.testing.assert_close(raw.exp().sum(1), torch.ones(len(raw)), rtol=1e-4, atol=1e-4)
    with torch.no_grad():
        saved, model.text_mixture = model.text_mixture, None
        own = model.full_sort_predict(interaction)
        model.text_mixture = saved
        want = saved(own, interaction["item_id_list"], interaction["item_length"])
    torch.testing.assert_close(raw, want)
    with torch.no_grad():  # eval mode (no dropout): the loss on these rows is their mean negative log-probability
        loss = model.calculate_loss(interaction)
    target = interaction["item_id"]
    rows = torch.arange(len(raw))
    torch.testing.assert_close(loss, -raw[rows, target].mean(), rtol=1e-4, atol=1e-5)
    model.text_mixture_own_loss = 0.5  # text_mixture_own_loss: the model's own cross-entropy joins the mixture's
    with torch.no_grad():
        both = model.calculate_loss(interaction)
    own_nll = -torch.log_softmax(own, dim=1)[rows, target].mean()
    torch.testing.assert_close(both, loss + 0.5 * own_nll, rtol=1e-4, atol=1e-5)
    assert own_nll > 0.1
    assert np.isfinite(results["test"]["overall"]["ndcg@10"]) and results["history"][-1]["losses"]["rec"] > 0


def test_a_model_trained_with_the_mixture_takes_each_user_s_share_from_the_training_tail(wide):
    """``text_mixture_tail_share`` in training: the model's mixture gates by the training split's tail items."""
    _, _, trainer, _ = run(wide, "LLMEmbSASRec", text_mixture=0.2, text_mixture_tail_share=0.6,
                           llm_embedding_method="plain", rat_init="scratch", alpha=0)
    mixture = trainer.model.text_mixture
    want = torch.as_tensor(~np.asarray(trainer.groups.is_head, dtype=bool), dtype=torch.float32)
    want[0] = 0
    assert (mixture.share, mixture.tail_share) == (0.2, 0.6) and 0 < want.sum() < len(want) - 1
    torch.testing.assert_close(mixture.is_tail, want)


def test_a_model_trained_with_bpr_takes_the_pairwise_loss_on_the_mixture(wide):
    """``loss_type: BPR`` (the paper's protocol): -log sigmoid(log p(pos) - log p(neg)) under the mixture."""
    config, results, trainer, _ = run(wide, "LLMEmbSASRec", text_mixture=0.4, text_mixture_over="new", loss_type="BPR",
                                      train_neg_sample_args={"distribution": "uniform", "sample_num": 1},
                                      llm_embedding_method="plain", rat_init="scratch", alpha=0)
    model = trainer.model
    batch, _, _, _ = eval_batch(config, trainer)
    interaction = batch[0]
    pos, seq, length = interaction["item_id"], interaction["item_id_list"], interaction["item_length"]
    neg = (pos * 7 + 3) % (model.n_items - 1) + 1
    interaction["neg_item_id"] = neg
    with torch.no_grad():
        loss = model.calculate_loss(interaction)
        saved, model.text_mixture = model.text_mixture, None
        own = model.full_sort_predict(interaction)
        model.text_mixture = saved
        mixed = saved(own, seq, length, target=pos)  # the target stays in the model's part, as in training
    rows = torch.arange(len(pos))
    want = -torch.log(1e-10 + torch.sigmoid(mixed[rows, pos] - mixed[rows, neg]))
    torch.testing.assert_close(loss, want.mean(), rtol=1e-4, atol=1e-5)
    assert (mixed[rows, pos] > -100).all() and np.isfinite(results["test"]["overall"]["ndcg@10"])
    assert results["history"][-1]["losses"]["rec"] > 0


def test_the_mixture_is_refused_where_undefined(tiny):
    with pytest.raises(UserError, match="text_mixture=0.3: .*represents masked positions"):
        run(tiny, "LLMEmbBERT4Rec", text_mixture=0.3)
    with pytest.raises(UserError, match="text_mixture_tau is the temperature .* no mixture"):
        Config("LLMEmbSASRec", "tiny", config_dict=tiny_config(tiny, text_mixture_tau=0.1)).check_applicable()
    with pytest.raises(UserError, match="text_mixture_over is the items .* no mixture"):
        Config("LLMEmbSASRec", "tiny", config_dict=tiny_config(tiny, text_mixture_over="new")).check_applicable()
    with pytest.raises(UserError, match="no item is held out"):
        Config("LLMEmbSASRec", "tiny", config_dict=tiny_config(tiny, text_mixture=0.3, text_mixture_new_share=0.7)).check_applicable()
    with pytest.raises(UserError, match="no model is trained with a mixture"):
        Config("LLMEmbSASRec", "tiny", config_dict=tiny_config(tiny, text_mixture_own_loss=1.0)).check_applicable()
