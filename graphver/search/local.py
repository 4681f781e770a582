"""Cheap candidate points: random samples, corners, and projected gradient descent inside boxes.

All functions take a ``value`` function mapping points [P, n] to the quantity to minimise [P] (the
aggregated margin for verify, the objective for bound), work on batches of boxes, and return points
that lie inside their boxes (projection is a clamp).
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor

from graphver import clock

ValueFn = Callable[[Tensor], Tensor]


def random_points(lower: Tensor, upper: Tensor, count: int, generator: torch.Generator) -> Tensor:
    """``count`` uniform points in each box: [B * count, n]."""
    t = torch.rand(lower.shape[0], count, lower.shape[1], generator=generator, dtype=lower.dtype).to(lower.device)
    return (lower[:, None] + (upper - lower)[:, None] * t).reshape(-1, lower.shape[1])


def corners(lower: Tensor, upper: Tensor, count: int, generator: torch.Generator) -> Tensor:
    """``count`` random corners of each box (all corners when 2**n <= count): [B * count', n]."""
    n = lower.shape[1]
    if 2**n <= count:
        bits = ((torch.arange(2**n)[:, None] >> torch.arange(n)[None, :]) & 1).bool()
    else:
        bits = torch.rand(count, n, generator=generator) < 0.5
    bits = bits.to(lower.device)
    points = torch.where(bits[None], upper[:, None], lower[:, None])
    return points.reshape(-1, n)


def projected_gradient(value: ValueFn, start: Tensor, lower: Tensor, upper: Tensor, steps: int,
                       deadline: float | None = None, step_fraction: float = 1 / 8, halve_every: int = 3) -> Tensor:
    """Minimise ``value`` from ``start`` [P, n] inside [lower, upper] (each [P, n]) by signed projected
    gradient steps (step = width * ``step_fraction``, halved every ``halve_every`` steps; 0: constant
    steps, which explore instead of converging). Returns the best point seen per start; past ``deadline``
    (checked before each step) the steps stop there."""
    x = start.clone()
    best_x = x.clone()
    with torch.no_grad():
        best_v = torch.nan_to_num(value(x), nan=torch.inf)
    step = (upper - lower) * step_fraction
    for iteration in range(steps):
        if clock.passed(deadline):
            break
        x = x.detach().requires_grad_(True)
        v = value(x)
        grad, = torch.autograd.grad(torch.nan_to_num(v, nan=0.0).sum(), x)
        with torch.no_grad():
            x = torch.minimum(torch.maximum(x - step * torch.sign(grad), lower), upper)
            v_new = torch.nan_to_num(value(x), nan=torch.inf)
            better = v_new < best_v
            best_v = torch.where(better, v_new, best_v)
            best_x = torch.where(better[:, None], x, best_x)
        if halve_every and iteration % halve_every == halve_every - 1:
            step = step / 2
    return best_x
