"""Training one model with several processes: torchrun and DistributedDataParallel.

    torchrun --nproc_per_node 8 -m diffgen_utils.train --profile paper --device cuda

`process_group` joins the group that torchrun describes in RANK, WORLD_SIZE, LOCAL_RANK,
MASTER_ADDR and MASTER_PORT (NCCL on CUDA, one GPU per process, else gloo). Without torchrun
it does nothing, and every helper answers as one process would (rank 0 of 1).

What the processes share: train.py draws every global batch on every rank and trains on the
rank's `share` of it; models.BiasFreeBatchNorm sums its batch statistics over the ranks;
rank 0 alone evaluates, writes checkpoints and holds the zoo's training lock (`main_holds`).
"""
from __future__ import annotations

import contextlib
import os

import torch
import torch.distributed as dist
import torch.distributed._functional_collectives as functional


@contextlib.contextmanager
def process_group(device: str):
    """Inside: a member of torchrun's process group (nothing happens without torchrun).

    The backend is NCCL when `device` is CUDA and a GPU exists (each process then uses the GPU
    of its LOCAL_RANK as "cuda"), else gloo."""
    if "WORLD_SIZE" not in os.environ or dist.is_initialized():
        yield
        return
    if str(device).startswith("cuda") and torch.cuda.is_available():
        gpu = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
        torch.cuda.set_device(gpu)
        dist.init_process_group("nccl", device_id=gpu)
    else:
        dist.init_process_group("gloo")
    try:
        yield
    finally:
        dist.destroy_process_group()


def world_size() -> int:
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def rank() -> int:
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def is_main() -> bool:
    """True in rank 0, the one process that evaluates, writes checkpoints and takes locks."""
    return rank() == 0


def barrier() -> None:
    if world_size() > 1:
        dist.barrier()


def share(batch: int) -> slice:
    """This rank's part of a global batch of `batch` items (all of it in one process)."""
    n = world_size()
    if batch % n:
        raise ValueError(f"the batch of {batch} cannot be shared by {n} processes; choose a "
                         f"number of processes (--nproc_per_node) that divides it")
    size = batch // n
    return slice(rank() * size, (rank() + 1) * size)


def sum_over_ranks(t: torch.Tensor) -> torch.Tensor:
    """The sum of `t` over all ranks, differentiable (the gradient is the sum of the ranks')
    and traceable by torch.compile."""
    return functional.all_reduce(t, "sum", dist.group.WORLD) if world_size() > 1 else t


def mean_over_ranks(t: torch.Tensor) -> torch.Tensor:
    """The mean of `t` over all ranks (not differentiable)."""
    if world_size() == 1:
        return t
    t = t.detach().clone()
    dist.all_reduce(t)
    return t / world_size()


def broadcast_object(obj):
    """Rank 0's `obj` (any picklable object) on every rank."""
    if world_size() == 1:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


@contextlib.contextmanager
def main_holds(lock: contextlib.AbstractContextManager):
    """Enter `lock` in rank 0 only, on behalf of all ranks. When rank 0 cannot take it, every
    rank raises rank 0's exception, so that all of them skip the locked work together."""
    with contextlib.ExitStack() as stack:
        error = None
        if is_main():
            try:
                stack.enter_context(lock)
            except Exception as e:  # noqa: BLE001 - handed to every rank, then raised
                error = e
        error = broadcast_object(error)
        if error is not None:
            raise error
        yield
