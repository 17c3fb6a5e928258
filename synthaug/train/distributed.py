"""Data-parallel training under ``torchrun`` (gloo on CPU, nccl on CUDA).

Every rank runs the same recipe with the same seed. Batches and noise are drawn for the *global* batch
from one seeded stream on every rank and each rank keeps its slice, so N processes with global batch B
follow the same optimisation as one process with batch B. Gradients are averaged with
``all_reduce`` after each backward, as DistributedDataParallel does; the DDP wrapper itself is not used
because GAN steps need what its reducer does not support (R1 / WGAN-GP double backward, two
discriminator passes per backward). Only rank 0 writes checkpoints, grids, logs and the model.
"""

from __future__ import annotations

import atexit
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistInfo:
    """Where this process sits in the job."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def init_distributed(device: str | None = None) -> DistInfo:
    """Join the ``torchrun`` job described by the environment (a no-op for a single process).

    Backend: nccl when CUDA is available and not disabled by ``device="cpu"``, else gloo. On CUDA each
    rank uses ``cuda:LOCAL_RANK``.
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo()
    rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = torch.cuda.is_available() and (device is None or str(device).startswith("cuda"))
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if use_cuda else "gloo")
        # tear the group down before interpreter exit: a gloo thread still joinable while C++ statics are
        # destroyed aborts the process ("terminate called without an active exception"), seen on busy machines
        atexit.register(_destroy)
    if use_cuda:
        torch.cuda.set_device(local)
    return DistInfo(rank=rank, world_size=world, local_rank=local)


def _destroy() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def current() -> DistInfo:
    """The :class:`DistInfo` of the initialised process group, or the single-process default."""
    if dist.is_available() and dist.is_initialized():
        return DistInfo(rank=dist.get_rank(), world_size=dist.get_world_size(),
                        local_rank=int(os.environ.get("LOCAL_RANK", "0")))
    return DistInfo()


def average_gradients(params) -> None:
    """Average the gradients of ``params`` over all ranks (one flattened all-reduce)."""
    info = current()
    if not info.enabled:
        return
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    flat /= info.world_size
    offset = 0
    for g in grads:
        g.copy_(flat[offset:offset + g.numel()].view_as(g))
        offset += g.numel()


def broadcast_module(module: torch.nn.Module) -> None:
    """Copy rank 0's parameters and buffers to every rank."""
    if not current().enabled:
        return
    for t in list(module.parameters()) + list(module.buffers()):
        dist.broadcast(t.data, src=0)


def mean_over_ranks(values: dict[str, float], device) -> dict[str, float]:
    """Average a dict of floats over ranks (so every rank logs and judges the same losses)."""
    info = current()
    if not info.enabled or not values:
        return values
    keys = sorted(values)
    t = torch.tensor([values[k] for k in keys], dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return dict(zip(keys, (t / info.world_size).tolist()))


def any_rank(flag: bool, device) -> bool:
    """True on every rank if ``flag`` is true on any rank."""
    if not current().enabled:
        return flag
    t = torch.tensor([1.0 if flag else 0.0], device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item())


def from_main_rank(value):
    """Rank 0's ``value`` on every rank (a small picklable object, e.g. a path or None)."""
    if not current().enabled:
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def barrier() -> None:
    if current().enabled:
        dist.barrier()


def local_slice(global_batch: torch.Tensor) -> torch.Tensor:
    """This rank's equal share of a tensor drawn for the global batch."""
    info = current()
    if not info.enabled:
        return global_batch
    n = len(global_batch)
    if n % info.world_size:
        raise ValueError(f"batch_size: expected a global batch divisible by the {info.world_size} processes, "
                         f"found {n}")
    per = n // info.world_size
    return global_batch[info.rank * per:(info.rank + 1) * per]
