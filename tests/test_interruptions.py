"""A stage killed part-way (issue 11): SCFT, SAID or TSLRec interrupted by SIGINT or SIGKILL leaves no store
entry that a later run would trust; the next run rebuilds and ends with the vectors of an
uninterrupted run."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from recbole_llmemb.data import store
from tests.conftest import REPO, tiny_config, write_tiny_dataset
from tests.test_generator import as_argv, llama_dir  # noqa: F401  (module fixture: the tiny offline LLaMA)


#: method -> (its progress bar's name: the training steps are under way, settings that make it last)
METHODS = {"scft": ("SCFT:", {"scft_steps": 200, "scft_batch_size": 8}), "said": ("SAID:", {"said_steps": 40}),
           # after its alignment SASRec; progress saved every second, so a killed run resumes part-way
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
