"""Shared fixtures: a tiny dataset in RecBole's atomic format, written by the test itself."""
import random
from pathlib import Path

import pytest

import recbole_llmemb  # noqa: F401  (applies the compatibility patches)

REPO = Path(__file__).resolve().parent.parent
SHARED_DATASETS = REPO.parent / "shared" / "datasets"


def write_tiny_dataset(root, name="tiny", n_users=30, n_items=40, per_user=8, seed=0):
    """Users with ``per_user`` time-ordered interactions, popularity skewed towards low ids."""
    rng = random.Random(seed)
    folder = Path(root) / name
    folder.mkdir(parents=True, exist_ok=True)
    lines = ["user_id:token\titem_id:token\ttimestamp:float"]
    for u in range(1, n_users + 1):
        items = set()
        while len(items) < per_user:
            items.add(min(int(rng.paretovariate(1.2)), n_items))
        for t, i in enumerate(sorted(items, key=lambda _: rng.random())):
            lines.append(f"u{u}\ti{i}\t{t}")
    (folder / f"{name}.inter").write_text("\n".join(lines) + "\n")
    item_lines = ["item_id:token\ttitle:token\tcategories:token_seq\tprice:float"]
    for i in range(1, n_items + 1):
        item_lines.append(f"i{i}\tProduct number {i}\tcat{i % 3} sub{i % 5}\t{i * 1.5:.2f}")
    (folder / f"{name}.item").write_text("\n".join(item_lines) + "\n")
    return folder


def tiny_config(tmp_path, **overrides):
    """A config dict that trains in seconds on the tiny dataset."""
    cfg = {
        "data_path": str(tmp_path),
        "checkpoint_dir": str(tmp_path / "saved"),
        "results_dir": str(tmp_path / "results"),
        "embedding_cache_dir": str(tmp_path / "cache"),
        "epochs": 2,
        "train_batch_size": 64,
        "eval_batch_size": 256,
        "hidden_size": 16,
        "inner_size": 32,
        "embedding_size": 16,
        "MAX_ITEM_LIST_LENGTH": 10,
        "user_inter_num_interval": "[0,inf)",
        "item_inter_num_interval": "[0,inf)",
        "load_col": {"inter": ["user_id", "item_id", "timestamp"], "item": ["item_id", "title", "categories", "price"]},
        "show_progress": False,
    }
    cfg.update(overrides)
    return cfg


@pytest.fixture(scope="module")
def quiet_single_thread(tmp_path_factory):
    """One torch thread (tiny models; a busy 2-core machine) and a scratch cwd for RecBole's
    ./log and ./log_tensorboard; both restored afterwards. Modules that run pipelines use it with
    ``pytestmark = pytest.mark.usefixtures("quiet_single_thread")``."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(tmp_path_factory.mktemp("cwd"))
        yield
    torch.set_num_threads(threads)


@pytest.fixture
def tiny(tmp_path):
    write_tiny_dataset(tmp_path)
    return tmp_path
