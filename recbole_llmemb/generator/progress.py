"""A long stage-1 build's progress, saved beside its store entry so that a stopped run (Ctrl-C,
a killed job, a machine's time running out) resumes where it was instead of starting over.

Two files: the training's (trainable weights, optimizer, random states, position; the finished
training's too, so a run stopped while extracting does not train again) and the extraction's
(the vectors so far). Each is written atomically and trusted only when it carries the entry's
cache key, so a resumed run follows the same batches with the same randomness as one that never
stopped. They are removed once the entry is written (:func:`clear_all`); they never make a store
entry trusted (``meta.json`` still does, last).
"""
import io
import logging
import os
import time

import torch

from recbole_llmemb.data.store import atomic_write_bytes
from recbole_llmemb.settings import read

FILE = "progress.pt"
EXTRACTION_FILE = "extraction.pt"


def clear_all(folder):
    """Remove both progress files of an entry (once the entry itself is written)."""
    for name in (FILE, EXTRACTION_FILE):
        if os.path.exists(os.path.join(folder, name)):
            os.unlink(os.path.join(folder, name))


def for_build(ctx, file=FILE):
    """The :class:`Progress` of a build's store entry, saved every ``stage_checkpoint_seconds``."""
    return Progress(ctx.folder, ctx.key, float(read(ctx.config, "stage_checkpoint_seconds")), file=file)


class Progress:
    """``load()`` the saved state (or ``None``), ``due()`` every ``every_seconds``, ``save(state)``."""

    def __init__(self, folder, key, every_seconds, file=FILE):
        self.path = os.path.join(folder, file)
        self.key = str(key)
        self.every = float(every_seconds)
        self.last = time.monotonic()

    def load(self):
        if not os.path.exists(self.path):
            return None
        try:
            state = torch.load(self.path, map_location="cpu", weights_only=True)
        except Exception as e:  # truncated or foreign: start over rather than trust it
            logging.getLogger().warning(f"progress file {self.path} is unreadable ({e}); starting over.")
            return None
        if not isinstance(state, dict) or state.get("key") != self.key:
            logging.getLogger().warning(f"progress file {self.path} belongs to other settings; starting over.")
            return None
        return state

    def due(self):
        return time.monotonic() - self.last >= self.every

    def save(self, state):
        buffer = io.BytesIO()
        torch.save({**state, "key": self.key}, buffer)
        atomic_write_bytes(self.path, buffer.getvalue())
        self.last = time.monotonic()


class StepTrainer:
    """A stage-1 trainer that runs ``step()`` a fixed number of times and can resume part-way.

    Subclasses set ``optimizer``, ``rng`` (a ``random.Random``) and ``order`` (the items still to
    come in this pass) and define ``step()`` and ``trained_parameters()`` (name -> tensor, what
    training changes); their saved state is those, the torch random states and the position."""

    def state(self):
        return {"weights": {n: p.detach().cpu().clone() for n, p in self.trained_parameters().items()},
                "optimizer": self.optimizer.state_dict(), "rng": self.rng.getstate(), "order": list(self.order),
                "torch_rng": torch.get_rng_state(),
                "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []}

    def load_state(self, state):
        params = self.trained_parameters()
        with torch.no_grad():
            for name, value in state["weights"].items():
                params[name].copy_(value)
        self.optimizer.load_state_dict(state["optimizer"])
        self.rng.setstate(python_rng(state["rng"]))
        self.order = list(state["order"])
        torch.set_rng_state(state["torch_rng"])
        if state["cuda_rng"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["cuda_rng"])

    def run_steps(self, steps, desc, progress=True, saver=None, postfix=None):
        """``steps`` calls of ``step()``; with ``saver`` (a :class:`Progress`) the state is saved every
        so often and at the end, and a saved one resumed, so the run takes the batches and randomness of
        one that never stopped (a finished one takes no step). Returns ``(losses, seconds of training in
        all, the step it resumed at or None)``."""
        saved = saver.load() if saver else None
        losses, first, before = [], 0, 0.0
        if saved:
            self.load_state(saved)
            losses, first, before = list(saved["losses"]), int(saved["step"]), float(saved["seconds"])
            logging.getLogger().info(f"{desc}: resuming at step {first} of {steps} ({saver.path}, {before:.0f}s of training so far)"
                                     if first < steps else f"{desc}: the finished training reused ({saver.path})")
        bar = None
        if progress and steps > 0:
            from tqdm import tqdm

            bar = tqdm(total=steps, initial=first, desc=desc, unit="step")
        start = time.perf_counter()
        for i in range(first, steps):
            losses.append(self.step())
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{losses[-1]:.4f}", **(postfix() if postfix else {}))
            if saver and saver.due() and i + 1 < steps:
                saver.save({**self.state(), "step": i + 1, "losses": losses,
                            "seconds": before + time.perf_counter() - start})
        if bar is not None:
            bar.close()
        seconds = before + time.perf_counter() - start
        if saver and first < steps:
            saver.save({**self.state(), "step": steps, "losses": losses, "seconds": seconds})
        return losses, seconds, (first if saved else None)


def python_rng(state):
    """``random.Random.getstate()`` back from a saved file (tuples may come back as lists)."""
    version, internal, gauss = state
    return version, tuple(internal), gauss
