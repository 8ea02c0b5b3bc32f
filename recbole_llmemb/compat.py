"""The one place where RecBole 1.2.1 is made to work on today's Python stack.

Every patch here is idempotent and names the failure it removes:

* numpy 2 removed ``np.float_``/``np.unicode_``/... that RecBole's Config aliases and its
  metrics use (``np.float``).
* torch >= 2.6 loads checkpoints ``weights_only=True``; RecBole's checkpoints pickle a Config.
* ``Collector.get_data_struct`` calls ``.cpu()`` on ints (ItemCoverage, GiniIndex, ...).
* ``Config`` reads ``--k=v`` from ``sys.argv``; the plugin's Config reads only what it is given.
* RecBole's trainer wraps a model for several processes as if it were always on a GPU, and its
  ``ensure_dir`` races when two processes make the same folder.
* ``recbole.quick_start`` imports ray 2.6.3, which needs ``pkg_resources`` (setuptools < 81, a
  requirement of this package) and ``np.bool8`` (aliased here); nothing in this package imports it.
"""
import numpy as np
import torch

_APPLIED = False

# numpy 2 names that RecBole 1.2.1 reads, with their numpy 1 meaning.
_NUMPY_ALIASES = {
    "float_": np.float64,
    "complex_": np.complex128,
    "unicode_": np.str_,
    "int_": np.int_,
    "bool": np.bool_,
    "bool8": np.bool_,  # ray 2.6.3 (RecBole's run_recbole imports it)
    "int": np.int_,
    "float": np.float64,
    "complex": np.complex128,
    "object": np.object_,
    "str": np.str_,
    "long": np.int_,
    "unicode": np.str_,
}


def patch_numpy():
    """Give numpy 2 back the aliases that RecBole 1.2.1 reads."""
    for name, value in _NUMPY_ALIASES.items():
        if name not in np.__dict__:
            setattr(np, name, value)


def load_checkpoint(path, map_location="cpu"):
    """Load a RecBole checkpoint (it pickles a Config, so it cannot be weights-only)."""
    return torch.load(path, map_location=map_location, weights_only=False)


def patch_trainer_checkpoint_loading():
    """Make ``Trainer.evaluate(load_best_model=True)`` and ``resume_checkpoint`` load under torch >= 2.6."""
    import recbole.trainer.trainer as trainer_module

    if getattr(trainer_module.torch, "_llmemb_patched", False):
        return

    class _TorchWithFullLoad:
        """``torch`` as seen from RecBole's trainer module, with a ``load`` that unpickles."""

        _llmemb_patched = True

        def __getattr__(self, name):
            return getattr(torch, name)

        @staticmethod
        def load(f, map_location=None, **kwargs):
            kwargs.setdefault("weights_only", False)
            return torch.load(f, map_location=map_location, **kwargs)

    trainer_module.torch = _TorchWithFullLoad()


def patch_collector():
    """RecBole 1.2.1's ``get_data_struct`` calls ``.cpu()`` on the ints that some metrics store."""
    import copy

    from recbole.evaluator.collector import Collector

    if getattr(Collector.get_data_struct, "_llmemb_patched", False):
        return

    def get_data_struct(self):
        for key, value in self.data_struct._data_dict.items():
            if isinstance(value, torch.Tensor):
                self.data_struct._data_dict[key] = value.cpu()
        returned = copy.deepcopy(self.data_struct)
        for key in ["rec.topk", "rec.meanrank", "rec.score", "rec.items", "data.label"]:
            if key in self.data_struct:
                del self.data_struct[key]
        return returned

    get_data_struct._llmemb_patched = True
    Collector.get_data_struct = get_data_struct


def quiet_pandas_warnings():
    """RecBole 1.2.1's pandas idioms warn on every load (FutureWarning); the behaviour is fine on pandas<3."""
    import warnings

    warnings.filterwarnings("ignore", category=FutureWarning, module=r"recbole\..*")


def turn_off_anomaly_detection():
    """RecBole's ``sine.py`` calls ``torch.autograd.set_detect_anomaly(True)`` at import, and
    ``recbole.model.sequential_recommender`` imports it: every model then trains with autograd's
    NaN checks on every op (SASRec on ml-100k, length 20: 150 s per epoch instead of ~15 s here).
    Import it once, then switch the global flag back off."""
    import torch

    import recbole.model.sequential_recommender  # noqa: F401  (runs sine.py's global switch)

    torch.autograd.set_detect_anomaly(False)


def fused_gelu():
    """RecBole's transformer feed-forward computes the exact GELU as five elementwise ops
    (``x * 0.5 * (1 + erf(x / sqrt 2))``); torch's ``gelu`` is the same function in one kernel
    (equal to within float rounding), 4x faster on a CPU, where it was a third of a SASRec epoch."""
    import torch.nn.functional as F
    from recbole.model.layers import FeedForward

    FeedForward.gelu = lambda self, x: F.gelu(x)


def patch_distributed_trainer():
    """RecBole's trainer wraps the model in ``DistributedDataParallel(model, device_ids=[local_rank])``,
    which fails for a model on the CPU (gloo), and DDP then broadcasts every buffer from rank 0 at
    start and at every step: the plugin's frozen item tables (N x d, identical on every rank, built
    from the same cache entry) among them. Here: device ids only for a CUDA model, and the frozen
    state (buffers other than normalisation statistics, parameters that do not learn) left out."""
    from recbole.trainer.trainer import AbstractTrainer
    from torch.nn.modules.batchnorm import _NormBase
    from torch.nn.parallel import DistributedDataParallel

    if getattr(AbstractTrainer.__init__, "_llmemb_patched", False):
        return

    def __init__(self, config, model):
        self.config, self.model = config, model
        if not config["single_spec"]:
            self.model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
            DistributedDataParallel._set_params_and_buffers_to_ignore_for_model(self.model, frozen_state_names(self.model))
            cuda = next(self.model.parameters()).device.type == "cuda"
            self.distributed_model = DistributedDataParallel(self.model, device_ids=[config["local_rank"]] if cuda else None)

    def frozen_state_names(module):
        statistics = {f"{name}.{b}" if name else b for name, m in module.named_modules() if isinstance(m, _NormBase)
                      for b, _ in m.named_buffers(recurse=False)}
        return ([name for name, _ in module.named_buffers() if name not in statistics]
                + [name for name, p in module.named_parameters() if not p.requires_grad])

    __init__._llmemb_patched = True
    AbstractTrainer.__init__ = __init__


def race_free_ensure_dir():
    """RecBole's ``ensure_dir`` tests for a folder, then makes it: two processes of one run (the same
    log and checkpoint folders) can both see it missing, and the second ``makedirs`` fails."""
    import importlib
    import os

    def ensure_dir(dir_path):
        os.makedirs(dir_path, exist_ok=True)

    for name in ("recbole.utils.utils", "recbole.utils", "recbole.utils.logger", "recbole.trainer.trainer",
                 "recbole.data.dataset.dataset", "recbole.data.utils"):
        module = importlib.import_module(name)
        if hasattr(module, "ensure_dir"):
            module.ensure_dir = ensure_dir


def apply():
    """Apply every patch once; cheap to call again."""
    global _APPLIED
    if _APPLIED:
        return
    quiet_pandas_warnings()
    patch_numpy()
    patch_trainer_checkpoint_loading()
    patch_collector()
    turn_off_anomaly_detection()
    fused_gelu()
    patch_distributed_trainer()
    race_free_ensure_dir()
    _APPLIED = True
