"""A stage killed part-way (issue 11): SCFT, SAID or TSLRec interrupted by SIGINT or SIGKILL leaves no store
entry that a later run would trust; the next run rebuilds and ends with the vectors of an
uninterrupted run. SCFT's and SAID's training stopped part-way resumes from its saved progress with
the weights and losses of a run that never stopped (TSLRec's: tests/test_tslrec.py)."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import torch

from recbole_llmemb.data import store
from recbole_llmemb.data.item_text import instruction, item_attributes
from recbole_llmemb.generator.backbone import load_backbone
from recbole_llmemb.generator.progress import EXTRACTION_FILE, FILE, Progress
from recbole_llmemb.generator.scft import SCFTTrainer
from recbole_llmemb.pipeline.config import Config
from tests.conftest import REPO, tiny_config, write_tiny_dataset
from tests.test_generator import as_argv, llama_dir  # noqa: F401  (module fixture: the tiny offline LLaMA)
from tests.test_said import setup as said_setup, trainer_for as said_trainer

from recbole.data import create_dataset  # noqa: E402  (after the compat patches)


#: method -> (its progress bar's name: the training steps are under way, settings that make it last)
#: progress saved every second, so a killed run resumes part-way (TSLRec: after its alignment SASRec)
METHODS = {"scft": ("SCFT:", {"scft_steps": 200, "scft_batch_size": 8, "stage_checkpoint_seconds": 1}),
           "said": ("SAID:", {"said_steps": 40, "stage_checkpoint_seconds": 1}),
           "tslrec": ("TSLRec SFT", {"tslrec_epochs": 12, "tslrec_batch_size": 4, "tslrec_k": 3, "collab_epochs": 1,
                                     "MAX_ITEM_LIST_LENGTH": 5, "tslrec_max_length": 48, "stage_checkpoint_seconds": 1})}


def generate(cfg, cwd, stderr=subprocess.PIPE, method="scft"):
    return subprocess.Popen([sys.executable, "-m", "recbole_llmemb.pipeline.generate", "--dataset=tiny", f"--method={method}", *as_argv(cfg)],
                            cwd=cwd, stdout=subprocess.PIPE, stderr=stderr, text=True,
                            env=dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO)))


def entry(cache, method="scft"):
    folders = list(Path(cache, "tiny").glob(f"{method}-*"))
    return folders[0] if folders else None


@pytest.mark.parametrize("method", sorted(METHODS))
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL])
def test_killed_build_leaves_nothing_trusted_and_the_rerun_matches(tmp_path, llama_dir, sig, method):  # noqa: F811
    write_tiny_dataset(tmp_path)
    bar, settings = METHODS[method]
    cfg = tiny_config(tmp_path, **settings, llm_path=llama_dir, state="WARNING")
    log = tmp_path / "stderr.txt"
    with open(log, "w") as err_file:
        proc = generate(cfg, tmp_path, stderr=err_file, method=method)
        deadline = time.time() + 180
        while time.time() < deadline and proc.poll() is None and bar not in log.read_text():
            time.sleep(0.1)  # kill once SCFT's steps are under way (its progress bar is up)
    assert proc.poll() is None, "the build ended before it could be interrupted"
    proc.send_signal(sig)
    proc.wait(timeout=60)
    folder = entry(cfg["embedding_cache_dir"], method)
    if proc.returncode != 0:
        with pytest.raises(store.StoreError):
            store.load(str(folder))  # nothing there that a later run would trust
    else:  # a SIGINT that a library absorbed: the build finished, and its entry is whole
        assert sig == signal.SIGINT
        store.load(str(folder))
    rerun = generate(cfg, tmp_path, method=method)
    out, err = rerun.communicate(timeout=600)
    assert rerun.returncode == 0, err[-2000:]
    assert out.strip().splitlines()[-1].startswith("built: " if proc.returncode != 0 else "reused: ")
    clean_cfg = dict(cfg, embedding_cache_dir=str(tmp_path / "clean"))
    clean = generate(clean_cfg, tmp_path, method=method)
    clean.communicate(timeout=600)
    a = store.load(str(entry(cfg["embedding_cache_dir"], method)))
    b = store.load(str(entry(clean_cfg["embedding_cache_dir"], method)))
    np.testing.assert_array_equal(a.vectors, b.vectors)
    assert not [f for f in (FILE, EXTRACTION_FILE) if (entry(cfg["embedding_cache_dir"], method) / f).exists()]  # kept until the entry is whole


def step_trainer_maker(method, root, llama_dir):
    """A function that makes the same fresh trainer each call (tiny LLaMA, LoRA with dropout, so the
    random states matter): 12 items in batches of 4, three steps a pass."""
    if method == "said":
        config, dataset = said_setup(root, llm_path=llama_dir, said_lora=True, lora_dropout=0.3, said_batch_size=4,
                                     said_vocab="full")

        def make():
            torch.manual_seed(0)
            return said_trainer(config, dataset)[0]
        return make
    write_tiny_dataset(root, n_users=8, n_items=12, per_user=4)
    config = Config("SASRec", "tiny", config_dict=tiny_config(root, llm_path=llama_dir, lora_dropout=0.3, scft_batch_size=4,
                                                              state="WARNING"))
    dataset = create_dataset(config)

    def make():
        torch.manual_seed(0)
        tokenizer, model, info = load_backbone(config, lora=True)
        return SCFTTrainer(config, tokenizer, model, info, item_attributes(config, dataset), instruction(config))
    return make


@pytest.mark.parametrize("method", ["scft", "said"])
def test_training_stopped_part_way_resumes_as_if_it_never_stopped(tmp_path, llama_dir, monkeypatch, method):  # noqa: F811
    make = step_trainer_maker(method, tmp_path, llama_dir)
    whole = make()
    expected = whole.train(6, progress=False)
    folder = tmp_path / "entry"
    stopped, calls = make(), []
    step = stopped.step

    def stop_at_the_fifth():  # in the second pass over the items: the batch order must resume too
        calls.append(1)
        if len(calls) == 5:
            raise KeyboardInterrupt
        return step()

    monkeypatch.setattr(stopped, "step", stop_at_the_fifth)
    with pytest.raises(KeyboardInterrupt):
        stopped.train(6, progress=False, saver=Progress(folder, "key-1", every_seconds=0))
    assert (folder / FILE).exists()
    assert Progress(folder, "key-2", 0).load() is None  # other settings never resume from it

    resumed = make()
    stats = resumed.train(6, progress=False, saver=Progress(folder, "key-1", every_seconds=0))
    assert stats["resumed_at"] == 4 and expected["resumed_at"] is None
    assert stats["final_loss"] == expected["final_loss"] and stats["first_loss"] == expected["first_loss"]
    after, reference = resumed.trained_parameters(), whole.trained_parameters()
    assert any("lora_" in n for n in after) and after.keys() == reference.keys()
    assert all(torch.equal(after[n], reference[n]) for n in reference)

    # the finished training is kept too: a run stopped after it (while extracting) takes no step again
    again = make()
    monkeypatch.setattr(again, "step", lambda: pytest.fail("a finished training stepped again"))
    stats = again.train(6, progress=False, saver=Progress(folder, "key-1", every_seconds=0))
    assert stats["resumed_at"] == 6 and stats["final_loss"] == expected["final_loss"]
    assert all(torch.equal(again.trained_parameters()[n], reference[n]) for n in reference)


class StopAt(torch.nn.Module):
    """A stand-in encoder whose ``stop``-th forward pass raises (as a kill would stop it there)."""

    def __init__(self, stop=None):
        super().__init__()
        torch.manual_seed(0)
        self.embed, self.calls, self.stop = torch.nn.Embedding(50, 8), 0, stop

    def forward(self, input_ids, attention_mask):
        self.calls += 1
        if self.calls == self.stop:
            raise KeyboardInterrupt
        return (self.embed(input_ids),)


def test_extraction_stopped_part_way_resumes_after_its_last_saved_batch(tmp_path):
    from types import SimpleNamespace

    from recbole_llmemb.generator.extract import _extract_batches, length_batches

    ids = [[1 + (i * 7 + j) % 40 for j in range(1 + i % 5)] for i in range(23)]
    batches, tokenizer = length_batches([len(x) for x in ids], 4), SimpleNamespace(pad_token_id=0)  # 6 batches
    whole = _extract_batches(StopAt(), tokenizer, ids, batches, "mean", "cpu", progress=False)

    def saver():
        return Progress(tmp_path, "key-1", every_seconds=0, file=EXTRACTION_FILE)

    with pytest.raises(KeyboardInterrupt):
        _extract_batches(StopAt(stop=4), tokenizer, ids, batches, "mean", "cpu", progress=False, saver=saver())
    resumed_model = StopAt()
    resumed = _extract_batches(resumed_model, tokenizer, ids, batches, "mean", "cpu", progress=False, saver=saver())
    assert resumed_model.calls == 3  # batches 4 to 6 only
    np.testing.assert_array_equal(resumed, whole)
    other = _extract_batches(StopAt(), tokenizer, ids[:-1], length_batches([len(x) for x in ids[:-1]], 4), "mean", "cpu",
                             progress=False, saver=saver())  # other texts never resume from it
    assert other.shape == (22, 8)
