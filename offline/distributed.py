"""torch.distributed set-up for ``torchrun``: one process per GPU (or CPU process with gloo).

``torchrun --nproc_per_node=4 -m offline train CONFIG`` (or ``--nnodes``/``--rdzv_endpoint`` for
several nodes) sets ``WORLD_SIZE``, ``RANK`` and ``LOCAL_RANK``; :func:`init_distributed` reads
them and joins the process group (NCCL on CUDA, gloo on CPU). Without them, training runs in one
process and nothing here talks to a network.
"""

from __future__ import annotations

import dataclasses
import os

import torch
import torch.distributed as dist

from rtag.model import resolve_device

__all__ = ["DistributedContext", "init_distributed"]


@dataclasses.dataclass(frozen=True)
class DistributedContext:
    """Where this process stands in a (possibly single-process) training job.

    Attributes:
        rank: global rank (0 writes checkpoints, logs and reports).
        world_size: number of processes.
        device: the device this process trains on.
    """

    rank: int
    world_size: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        """True for the process that writes files."""
        return self.rank == 0

    @property
    def is_distributed(self) -> bool:
        """True when more than one process trains."""
        return self.world_size > 1

    def all_reduce_sum(self, values: list[float]) -> list[float]:
        """Sum ``values`` over all processes (identity in a single process)."""
        if not self.is_distributed:
            return values
        tensor = torch.tensor(values, dtype=torch.float64, device=self.device)
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
        return tensor.tolist()

    def barrier(self) -> None:
        """Wait for every process (no-op in a single process)."""
        if self.is_distributed:
            dist.barrier()

    def close(self, wait_for_others: bool = True) -> None:
        """Leave the process group (no-op in a single process).

        Without this, the backend's threads are still running when the interpreter exits, and
        the process can abort at exit ("terminate called without an active exception").

        Args:
            wait_for_others: meet the other processes at a barrier first (default true); false
                after an error, when the others may never arrive.
        """
        if self.is_distributed and dist.is_initialized():
            if wait_for_others:
                dist.barrier()
            dist.destroy_process_group()


def init_distributed(device: str = "auto") -> DistributedContext:
    """Join the process group described by torchrun's environment, if any.

    Args:
        device: ``"auto"``, ``"cpu"`` or ``"cuda"`` (default ``"auto"``). Under torchrun with
            CUDA, each process takes the GPU ``LOCAL_RANK``.
    """
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    resolved = resolve_device(device)
    if world_size <= 1:
        return DistributedContext(rank=0, world_size=1, device=resolved)
    rank = int(os.environ["RANK"])
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if resolved.type == "cuda":
        resolved = torch.device("cuda", local_rank)
        torch.cuda.set_device(resolved)
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if resolved.type == "cuda" else "gloo")
    return DistributedContext(rank=rank, world_size=world_size, device=resolved)
