"""Data-parallel training under ``torchrun``: process group, batch sharding, device placement.

``torchrun --nproc_per_node=N script.py`` starts N copies of a script and sets ``RANK``,
``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR`` and ``MASTER_PORT`` in each. The
:class:`~srlib.train.Trainer` notices those variables, joins the process group (``nccl`` on
CUDA, ``gloo`` on CPU), wraps each trained model in ``DistributedDataParallel`` and gives each
process its share of every batch. Without those variables everything here is a no-op, so the
same notebook code runs on a laptop and on eight GPUs.

How a batch is split: ``batch_fn(step)`` returns the *global* batch (the same on every rank,
because it is a pure function of the step). Rank ``r`` of ``W`` keeps rows ``r::W`` of every
tensor in it (strided, so each rank sees a mix of the batch). With a loss that is a mean over
the rows, DDP's gradient averaging then gives exactly the gradient of the mean over the global
batch, i.e. the same update as one process on the whole batch. The global batch size must be a
multiple of ``W``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import numpy as np
import torch
import torch.distributed as dist

from ..errors import DatasetError


def distributed_env() -> tuple[int, int, int]:
    """``(rank, world_size, local_rank)`` from the ``torchrun`` environment; ``(0, 1, 0)`` without it."""
    if "RANK" not in os.environ or "WORLD_SIZE" not in os.environ:
        return 0, 1, 0
    return (int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"]),
            int(os.environ.get("LOCAL_RANK", os.environ["RANK"])))


def init_distributed(device: torch.device) -> tuple[int, int]:
    """Join the process group if launched by ``torchrun`` (once per process); ``(rank, world)``.

    The backend follows the device: ``nccl`` for CUDA, ``gloo`` for CPU.
    """
    rank, world, _ = distributed_env()
    if world <= 1:
        return 0, 1
    if not dist.is_initialized():
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return dist.get_rank(), dist.get_world_size()


def cleanup_distributed() -> None:
    """Leave the process group (call at the end of a ``torchrun`` script)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def shard_batch(batch, rank: int, world: int):
    """This rank's rows ``rank::world`` of every tensor / array in a (nested) batch.

    Dicts, lists and tuples are walked; other values (ints, strings) are passed through.
    A leading dimension that is not a multiple of ``world`` raises :class:`DatasetError`,
    because uneven shards would make the averaged gradient differ from the global-batch one.
    """
    if world <= 1:
        return batch
    if isinstance(batch, (torch.Tensor, np.ndarray)):
        if batch.ndim == 0:
            return batch
        if batch.shape[0] % world:
            raise DatasetError(
                f"a batch with {batch.shape[0]} rows cannot be split evenly over {world} processes; "
                f"make the global batch size a multiple of the world size ({world})")
        return batch[rank::world]
    if isinstance(batch, Mapping):
        return type(batch)({k: shard_batch(v, rank, world) for k, v in batch.items()})
    if isinstance(batch, (list, tuple)):
        items = [shard_batch(v, rank, world) for v in batch]
        return type(batch)(*items) if hasattr(batch, "_fields") else type(batch)(items)
    return batch


def to_device(batch, device: torch.device):
    """Move every tensor of a (nested) batch to ``device``; numpy arrays and scalars stay as they are."""
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, Mapping):
        return type(batch)({k: to_device(v, device) for k, v in batch.items()})
    if isinstance(batch, (list, tuple)):
        items = [to_device(v, device) for v in batch]
        return type(batch)(*items) if hasattr(batch, "_fields") else type(batch)(items)
    return batch
