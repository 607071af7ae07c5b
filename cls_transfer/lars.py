"""LARS with the semantics of the official MAE's util/lars.py (its linear-probing optimizer)."""
from collections.abc import Callable
from typing import overload

import torch
from torch.optim.optimizer import ParamsT


class LARS(torch.optim.Optimizer):
    """SGD with momentum and layer-wise adaptive rate scaling (You et al. 2017).

    For each parameter with more than one dimension the update u = grad + weight_decay * w is scaled
    by trust_coefficient * ||w|| / ||u|| (by 1 where either norm is 0); 1-D parameters (biases, norm
    weights) get neither weight decay nor the scaling. Then mu = momentum * mu + u and w -= lr * mu.
    """

    def __init__(self, params: ParamsT, lr: float = 0.0, weight_decay: float = 0.0, momentum: float = 0.9,
                 trust_coefficient: float = 0.001) -> None:
        super().__init__(params, dict(lr=lr, weight_decay=weight_decay, momentum=momentum,
                                      trust_coefficient=trust_coefficient))

    @overload
    def step(self, closure: None = None) -> None: ...

    @overload
    def step(self, closure: Callable[[], float]) -> float: ...

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                update = p.grad
                if p.ndim > 1:
                    update = update.add(p, alpha=group["weight_decay"])
                    w_norm, u_norm = torch.linalg.vector_norm(p), torch.linalg.vector_norm(update)
                    trust = torch.where((w_norm > 0) & (u_norm > 0), group["trust_coefficient"] * w_norm / u_norm,
                                        torch.ones_like(w_norm))
                    update = update.mul(trust)
                state = self.state[p]
                if "mu" not in state:
                    state["mu"] = torch.zeros_like(p)
                state["mu"].mul_(group["momentum"]).add_(update)
                p.add_(state["mu"], alpha=-group["lr"])
        return loss
