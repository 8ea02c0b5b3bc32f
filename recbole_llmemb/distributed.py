"""Several processes through torch.distributed: who this process is, and the few collectives the
plugin needs (a barrier, an object from rank 0, rows gathered to rank 0).

Everything here is a no-op in a single process, so callers never branch on it. The process group
is started from a RecBole config (:func:`init_from_config`: nccl on GPUs, gloo on CPUs); RecBole's
own ``local_rank`` is the rank on this machine, ``offset`` the first global rank of the machine.
"""
import os
from contextlib import contextmanager
from datetime import timedelta

import torch
import torch.distributed as dist

#: how long a rank waits in a collective: rank 0 may train a stage alone (an SCFT of hours on a
#: CPU) while the others wait at a barrier; a rank that fails ends the others through its launcher
TIMEOUT = timedelta(hours=48)

#: the launcher's settings (RecBole's names), which never change what a run computes
LAUNCH_KEYS = ("nproc", "world_size", "ip", "port", "offset")


def is_distributed():
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank():
    """This process's global rank (0 in a single process)."""
    return dist.get_rank() if is_distributed() else 0


def world_size():
    return dist.get_world_size() if is_distributed() else 1


def is_main():
    """Whether this process writes what a run writes once (cache entries, checkpoints, results)."""
    return rank() == 0


def init_from_config(final):
    """Join the process group a RecBole config describes (``local_rank``, ``offset``, ``world_size``,
    ``ip``, ``port``) and set its ``device``: cuda:local_rank with nccl where CUDA is present, the CPU
    with gloo otherwise. A second config in the same process (a stage's own run) joins nothing new."""
    local_rank = int(final["local_rank"])
    gpu = torch.cuda.is_available() and final.get("use_gpu", True) is not False
    if gpu:
        torch.cuda.set_device(local_rank)
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if gpu else "gloo", timeout=TIMEOUT,
                                init_method=f"tcp://{final['ip']}:{final['port']}",
                                rank=local_rank + int(final.get("offset") or 0), world_size=int(final["world_size"]))
    final["device"] = torch.device("cuda", local_rank) if gpu else torch.device("cpu")
    final["single_spec"] = False
    if local_rank != 0:  # RecBole's own quieting of the other ranks: one log, one progress bar
        final.update(state="error", show_progress=False, verbose=False)


def barrier():
    if is_distributed():
        dist.barrier()


def broadcast_object(value):
    """Rank 0's ``value`` on every rank."""
    if not is_distributed():
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def gather_objects(value):
    """Every rank's ``value`` as a list (rank order) on rank 0; ``None`` on the other ranks."""
    if not is_distributed():
        return [value]
    out = [None] * world_size() if is_main() else None
    dist.gather_object(value, out, dst=0)
    return out


def all_gather_objects(value):
    """Every rank's ``value`` as a list (rank order), on every rank."""
    if not is_distributed():
        return [value]
    out = [None] * world_size()
    dist.all_gather_object(out, value)
    return out


def mean_over_ranks(value):
    """The mean of a number over the ranks (a loss that each rank computed on its shard)."""
    if not is_distributed():
        return value
    return sum(all_gather_objects(float(value))) / world_size()


@contextmanager
def main_first():
    """Rank 0 runs the block first; the others enter it after rank 0 has left it (a cache entry that
    rank 0 writes, the others then read)."""
    if not is_main():
        barrier()
    yield
    if is_main():
        barrier()


def torchrun_settings(environ=None):
    """The launcher's settings from the variables ``torchrun`` sets (``{}`` outside torchrun)."""
    env = os.environ if environ is None else environ
    if "LOCAL_RANK" not in env or int(env.get("WORLD_SIZE", 1)) <= 1:
        return {}
    local_rank = int(env["LOCAL_RANK"])
    return {"local_rank": local_rank, "world_size": int(env["WORLD_SIZE"]),
            "nproc": int(env.get("LOCAL_WORLD_SIZE", env["WORLD_SIZE"])), "offset": int(env.get("RANK", local_rank)) - local_rank,
            "ip": env.get("MASTER_ADDR", "localhost"), "port": int(env.get("MASTER_PORT", 29500))}
