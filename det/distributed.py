"""Detectron2 in several processes through its own `launch` (tools/train_det.py --num-gpus N): one
process per GPU (NCCL), or, on a machine without CUDA, N processes on its CPUs (launch picks gloo).
What is in the way on CPUs is handled here: create_ddp_model passes device_ids=[local rank], which
DistributedDataParallel refuses for a CPU module; and every spawned process would take all the
machine's cores for its intra-op threads."""
import os
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from common.errors import UserError


def check_processes(num_processes: int, num_machines: int, total_batch_size: int | None = None) -> None:
    """Before any process starts: a GPU machine has a GPU for each process, and the training batch
    splits evenly (Detectron2 gives each process total_batch_size / processes images)."""
    if torch.cuda.is_available() and num_processes > torch.cuda.device_count():
        raise UserError(f"--num-gpus {num_processes}: this machine has {torch.cuda.device_count()} GPUs "
                        f"(one process per GPU)")
    world = num_processes * num_machines
    if total_batch_size is not None and total_batch_size % world:
        raise UserError(f"dataloader.train.total_batch_size={total_batch_size} does not split over {world} processes "
                        f"(each takes total / processes): make it a multiple of {world}")


def distributed_model(model: nn.Module, ddp_cfg: Mapping[str, Any]) -> nn.Module:
    """Detectron2's create_ddp_model (cfg.train.ddp's options); a CPU model gets no device_ids."""
    from detectron2.engine import create_ddp_model

    kwargs = dict(ddp_cfg)
    if next(model.parameters()).device.type == "cpu":
        kwargs.setdefault("device_ids", None)
    return create_ddp_model(model, **kwargs)


def share_cores() -> None:
    """In a CPU process: its share of the machine's cores for intra-op threads, unless OMP_NUM_THREADS
    sets them (torchrun sets 1). With all cores each, the processes' spinning threads take turns."""
    from detectron2.utils import comm

    if "OMP_NUM_THREADS" not in os.environ:
        torch.set_num_threads(max(1, torch.get_num_threads() // comm.get_local_size()))
