from typing import Any

import torch
from mmengine.optim import OptimWrapper
from mmengine.optim.scheduler import PolyLR
from mmseg.registry import PARAM_SCHEDULERS


@PARAM_SCHEDULERS.register_module()
class RunLengthPolyLR(PolyLR):
    """mmseg-MAE's poly decay (mmengine's PolyLR) that ends with the run: leave `end` unset and
    mmengine's runner sets it to train_cfg.max_iters. A run that ends within the warm-up
    (max_iters <= begin, e.g. max_iters=0 to evaluate the initial model) never reaches the decay,
    where PolyLR would refuse to be built."""

    def __init__(self, optimizer: torch.optim.Optimizer | OptimWrapper, begin: int = 0, end: int | None = None,
                 **kwargs: Any) -> None:
        if end is None:
            raise ValueError("RunLengthPolyLR needs an end: leave it unset in the config, the runner sets max_iters")
        super().__init__(optimizer, begin=begin, end=max(end, begin + 1), **kwargs)
