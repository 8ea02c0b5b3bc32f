"""A long stage-1 training's progress, saved beside its store entry so that a stopped run (Ctrl-C,
a killed job, a machine's time running out) resumes where it was instead of starting over.

The file holds the trainable weights, the optimizer, the random states and the position; it is
written atomically and trusted only when it carries the entry's cache key, so a resumed run
follows the same batches with the same randomness as one that never stopped. It is removed once
the training ends; it never makes a store entry trusted (``meta.json`` still does, last).
"""
import io
import logging
import os
import time

import torch

from recbole_llmemb.data.store import atomic_write_bytes

FILE = "progress.pt"


class Progress:
    """``load()`` the saved state (or ``None``), ``due()`` every ``every_seconds``, ``save(state)``, ``clear()``."""

    def __init__(self, folder, key, every_seconds):
        self.path = os.path.join(folder, FILE)
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

    def clear(self):
        if os.path.exists(self.path):
            os.unlink(self.path)
