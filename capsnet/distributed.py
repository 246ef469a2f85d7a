"""One training job across processes: `torchrun ... -m capsnet.train`.

torchrun sets RANK, LOCAL_RANK and WORLD_SIZE; without them (a plain `python -m
capsnet.train`) everything here is the identity and training is single-process.
Each rank trains on its own shard of every epoch's shuffle, DistributedDataParallel
averages the gradients, and only rank 0 evaluates and writes files.
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class World:
    rank: int = 0
    local_rank: int = 0
    size: int = 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.size > 1


def world_from_env() -> World:
    """The process's place in a torchrun job (a world of one when not launched by torchrun)."""
    size = int(os.environ.get("WORLD_SIZE", "1"))
    if size <= 1:
        return World()
    return World(int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0")), size)


def init(world: World, device: torch.device) -> None:
    """Join the process group: NCCL between GPUs, gloo between CPU processes."""
    if world.distributed and not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo", rank=world.rank, world_size=world.size)


def shutdown() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def barrier(world: World) -> None:
    if world.distributed:
        dist.barrier()


def sum_across(values: list[float], world: World, device: torch.device) -> list[float]:
    """Sum per-rank totals (loss, correct, seen...) so rank 0 reports the whole job's figures."""
    if not world.distributed:
        return values
    t = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return t.tolist()


def digest(indices: torch.Tensor) -> str:
    """A short fingerprint of the training images a rank saw in an epoch (recorded in the model card)."""
    return hashlib.sha1(indices.to(torch.int64).numpy().tobytes()).hexdigest()[:12]


def gather_strings(value: str, world: World) -> list[str]:
    if not world.distributed:
        return [value]
    out: list = [None] * world.size
    dist.all_gather_object(out, value)
    return out
