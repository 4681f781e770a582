"""Adam for the bound optimisations (alpha's relaxation parameters, the Lagrangian's multipliers).

The same update as ``torch.optim.Adam`` with its defaults (no weight decay, no AMSGrad), written out:
constructing torch's optimiser imports ``torch._dynamo`` on first use, about 2 s of every process's start
(a VNN-COMP instance or a small MINLPLib problem is decided in less). Nothing here affects soundness: the
bounds the optimised parameters give are certified by the passes that use them.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor


class Adam:
    """``zero_grad()``, then ``loss.backward()``, then ``step()``, on tensors that require grad."""

    def __init__(self, params: list[Tensor], lr: float, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8):
        self.params = list(params)
        self.lr, (self.beta1, self.beta2), self.eps = lr, betas, eps
        self.steps = 0
        self.first = [torch.zeros_like(p) for p in self.params]
        self.second = [torch.zeros_like(p) for p in self.params]

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    @torch.no_grad()
    def step(self) -> None:
        self.steps += 1
        correction1 = 1 - self.beta1**self.steps
        correction2 = math.sqrt(1 - self.beta2**self.steps)
        for p, m, v in zip(self.params, self.first, self.second):
            if p.grad is None:
                continue
            g = p.grad
            m.mul_(self.beta1).add_(g, alpha=1 - self.beta1)
            v.mul_(self.beta2).addcmul_(g, g, value=1 - self.beta2)
            p.addcdiv_(m, v.sqrt().div_(correction2).add_(self.eps), value=-self.lr / correction1)
