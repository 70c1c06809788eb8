"""torch.distributed in a few helpers that are no-ops in a single process.

The trainer runs under `torchrun --nproc-per-node N` (gloo on CPU with one thread per rank, NCCL on
GPUs) or as a plain process. Every rank builds the same full batch of prompts from a shared RNG
and works on its slice (`k % world == rank`); small per-item records are gathered to every rank so
buffers, advantages and metrics are identical everywhere; gradients are summed with all_reduce.
"""

from __future__ import annotations

import os

import torch
import torch.distributed as dist


def init_from_env(device: str = "cpu") -> None:
    """Join the process group torchrun describes (WORLD_SIZE > 1); nothing otherwise."""
    if dist.is_available() and not dist.is_initialized() and int(os.environ.get("WORLD_SIZE", "1")) > 1:
        dist.init_process_group(backend="nccl" if device.startswith("cuda") else "gloo")


def active() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    return dist.get_rank() if active() else 0


def world() -> int:
    return dist.get_world_size() if active() else 1


def is_main() -> bool:
    return rank() == 0


def gather_lists(local: list) -> list[list]:
    """Every rank's list, in rank order, on every rank (picklable items)."""
    if not active():
        return [local]
    out: list = [None] * world()
    dist.all_gather_object(out, local)
    return out


def interleave(per_rank: list[list], counts: list[int] | None = None) -> list:
    """Undo the `k % world` split: item k of the full list came from rank k % world."""
    n = sum(len(x) for x in per_rank)
    out = [None] * n
    w = len(per_rank)
    for r, items in enumerate(per_rank):
        for j, item in enumerate(items):
            out[j * w + r] = item
    return out


def all_reduce_sum(value: float) -> float:
    if not active():
        return value
    t = torch.tensor([value], dtype=torch.float64)
    dist.all_reduce(t)
    return float(t.item())


def all_reduce_max(value: int) -> int:
    if not active():
        return value
    t = torch.tensor([value], dtype=torch.int64)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return int(t.item())


def sum_gradients(parameters) -> None:
    """Sum gradients over ranks (each rank already divided by the global token count)."""
    if not active():
        return
    params = [p for p in parameters if p.requires_grad]
    for p in params:  # a rank with nothing to train this mini-batch still joins the reduction
        if p.grad is None:
            p.grad = torch.zeros_like(p)
    grads = [p.grad for p in params]
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    offset = 0
    for g in grads:
        n = g.numel()
        g.copy_(flat[offset:offset + n].view_as(g))
        offset += n


def barrier() -> None:
    if active():
        dist.barrier()
