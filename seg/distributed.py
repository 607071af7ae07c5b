"""mmengine's launchers for tools/train_seg.py, on GPUs (NCCL) and on CPUs (gloo): `pytorch`
(torchrun sets RANK, LOCAL_RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT) and `slurm` (mmengine reads
SLURM_PROCID, SLURM_NTASKS, SLURM_LOCALID, SLURM_NODELIST in each task srun starts).

Where mmengine 0.10.7 needs CUDA, on CPUs:
- its launchers call torch.cuda.set_device(local_rank) unconditionally ("Found no NVIDIA driver"):
  join_process_group runs them before the Runner without it, and the Runner, finding the process
  group initialised, skips its own init_dist;
- Runner.wrap_model passes device_ids=[LOCAL_RANK], which DistributedDataParallel refuses for a CPU
  module: CPU processes use CPUDistributedDataParallel;
- torch's SyncBatchNorm trains on CUDA tensors only (and DistributedDataParallel refuses it in a CPU
  module): CPUDistributedDataParallel replaces every SyncBN layer by a GlooSyncBatchNorm (the same
  statistics, all-reduced through the process group).
A single process has nothing to synchronise: its SyncBN layers are plain BN (use_plain_batchnorm).
"""
from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import torch
import torch.distributed as dist
from mmengine.config import Config
from mmengine.model import MMDistributedDataParallel
from mmengine.registry import MODEL_WRAPPERS  # Runner.wrap_model looks the type up in mmengine's own

from common.errors import UserError

NEEDS = {"pytorch": ("RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"),
         "slurm": ("SLURM_PROCID", "SLURM_NTASKS", "SLURM_LOCALID", "SLURM_NODELIST")}
STARTED_BY = {"pytorch": "torchrun --nproc_per_node N tools/train_seg.py ...",
              "slurm": "srun (one task per process) tools/train_seg.py --launcher slurm ..."}


def chosen_launcher(requested: str | None) -> str:
    """--launcher, or by default `pytorch` in processes torchrun started (WORLD_SIZE > 1) and `none`
    otherwise. `slurm` only when asked: every process of a SLURM job sees SLURM_NTASKS, a lone
    python in a batch script too, which would wait for peers that never start."""
    world = int(os.environ.get("WORLD_SIZE", 1))
    chosen = requested or ("pytorch" if world > 1 else "none")
    if chosen == "none" and world > 1:
        raise UserError(f"--launcher none in one of torchrun's {world} processes: each would train alone; "
                        f"leave --launcher out (or pass --launcher pytorch)")
    missing = [name for name in NEEDS.get(chosen, ()) if name not in os.environ]
    if missing:
        raise UserError(f"--launcher {chosen} reads {', '.join(missing)} from the environment, which is not set: "
                        f"start the tool with {STARTED_BY[chosen]}")
    return chosen


def set_up(cfg: Config, requested_launcher: str | None) -> None:
    """cfg.launcher and what a run of that kind needs (batch norm, backend, model wrapper); joins
    the launcher's process group, so that the rank is known from here on."""
    cfg.launcher = chosen_launcher(requested_launcher)
    if cfg.launcher == "none":
        use_plain_batchnorm(cfg.model)
        return
    if not torch.cuda.is_available():
        cfg.env_cfg.dist_cfg = {**(cfg.env_cfg.get("dist_cfg") or {}), "backend": "gloo"}
        cfg.model_wrapper_cfg = dict(type="CPUDistributedDataParallel", broadcast_buffers=False,
                                     find_unused_parameters=cfg.get("find_unused_parameters", False))
    join_process_group(cfg.launcher, cfg.env_cfg)


def use_plain_batchnorm(node: object) -> None:
    """SyncBN needs a process group: single-process runs use BN (the same layer, not synchronised)."""
    if isinstance(node, dict):
        if node.get("type") == "SyncBN":
            node["type"] = "BN"
        for value in node.values():
            use_plain_batchnorm(value)
    elif isinstance(node, list):
        for value in node:
            use_plain_batchnorm(value)


def join_process_group(launcher: str, env_cfg: Mapping[str, Any]) -> None:
    """What Runner.setup_env does up to its init_dist, in its order (init_dist alone would choose the
    spawn start method); on CPUs without the launchers' torch.cuda.set_device call."""
    from mmengine.dist import init_dist
    from mmengine.utils.dl_utils import set_multi_processing

    set_multi_processing(**env_cfg.get("mp_cfg", {}), distributed=True)
    with contextlib.nullcontext() if torch.cuda.is_available() else _no_device_to_select():
        init_dist(launcher, **env_cfg.get("dist_cfg", {}))


@contextlib.contextmanager
def _no_device_to_select() -> Iterator[None]:
    """torch.cuda.set_device a no-op while open: a CPU process has no device to select."""
    set_device = torch.cuda.set_device
    torch.cuda.set_device = lambda device: None
    try:
        yield
    finally:
        torch.cuda.set_device = set_device


@MODEL_WRAPPERS.register_module()
class CPUDistributedDataParallel(MMDistributedDataParallel):
    """mmengine's DDP wrapper for CPU processes: no device_ids (a CPU module has none; mmengine passes
    [LOCAL_RANK]), and SyncBN layers synchronised over the process group (GlooSyncBatchNorm)."""

    def __init__(self, module: torch.nn.Module, device_ids: Sequence[int] | None = None, **kwargs: Any) -> None:
        super().__init__(module=sync_batchnorm_over_gloo(module), device_ids=None, **kwargs)


def sync_batchnorm_over_gloo(module: torch.nn.Module) -> torch.nn.Module:
    """module, its torch SyncBatchNorm layers replaced by GlooSyncBatchNorm layers holding their
    parameters and buffers (DistributedDataParallel refuses torch's on a CPU module)."""
    if isinstance(module, torch.nn.SyncBatchNorm):  # torch's and mmcv's SyncBN (a subclass)
        layer = GlooSyncBatchNorm(module.num_features, module.eps, module.momentum, module.affine,
                                  module.track_running_stats, module.process_group)
        if module.affine:
            layer.weight, layer.bias = module.weight, module.bias
        layer.running_mean, layer.running_var = module.running_mean, module.running_var
        layer.num_batches_tracked = module.num_batches_tracked
        return layer.train(module.training)
    for name, child in module.named_children():
        module.add_module(name, sync_batchnorm_over_gloo(child))
    return module


class _SumOverProcesses(torch.autograd.Function):
    """all_reduce (sum) with its gradient: the gradient of a sum over processes is the sum of theirs."""

    @staticmethod
    def forward(ctx: Any, tensor: torch.Tensor, group: dist.ProcessGroup | None) -> torch.Tensor:
        ctx.group = group
        tensor = tensor.clone()
        dist.all_reduce(tensor, group=group)
        return tensor

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        grad = grad.clone()
        dist.all_reduce(grad, group=ctx.group)
        return grad, None


class GlooSyncBatchNorm(torch.nn.modules.batchnorm._BatchNorm):
    """torch's SyncBatchNorm for CPU tensors: in training, the mean and variance of every process's
    batch (two passes: the mean, then the squared deviations from it), summed over the process group
    with autograd; otherwise (evaluation, one process) plain batch norm. The statistics are those
    one process would compute over the whole batch (torch's weight each process by its count too)."""

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1, affine: bool = True,
                 track_running_stats: bool = True, process_group: dist.ProcessGroup | None = None) -> None:
        super().__init__(num_features, eps, momentum, affine, track_running_stats)
        self.process_group = process_group

    def _check_input_dim(self, x: torch.Tensor) -> None:
        if x.dim() < 2:
            raise ValueError(f"expected at least 2D input (got {x.dim()}D input)")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        group = self.process_group or dist.group.WORLD
        if not (self.training and dist.is_initialized() and dist.get_world_size(group) > 1):
            return super().forward(x)
        self._check_input_dim(x)
        dims = [0, *range(2, x.dim())]
        shape = [1, -1] + [1] * (x.dim() - 2)
        sums = _SumOverProcesses.apply(torch.cat([x.sum(dims), x.new_tensor([x.numel() / x.shape[1]])]), group)
        count = sums[-1].detach()
        mean = sums[:-1] / count
        var = _SumOverProcesses.apply(((x - mean.view(shape)) ** 2).sum(dims), group) / count
        if self.track_running_stats:
            assert self.num_batches_tracked is not None and self.running_mean is not None and self.running_var is not None
            with torch.no_grad():
                self.num_batches_tracked += 1
                momentum = 1 / float(self.num_batches_tracked) if self.momentum is None else self.momentum
                self.running_mean.lerp_(mean, momentum)
                self.running_var.lerp_(var * count / (count - 1), momentum)  # unbiased, as torch's
        out = (x - mean.view(shape)) * torch.rsqrt(var.view(shape) + self.eps)
        return out * self.weight.view(shape) + self.bias.view(shape) if self.affine else out
