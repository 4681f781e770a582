"""GPU (CUDA) checks: the same bounds on the GPU as on the CPU, and still sound. Skipped without CUDA.

Run with ``python -m pytest -m gpu``.
"""

from __future__ import annotations

import pytest
import torch

import graphver as gv
from models import PROBLEMS

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]


@pytest.mark.parametrize("name", sorted(PROBLEMS))
@pytest.mark.parametrize("method", ["ibp", "crown", "alpha"])
def test_zoo_on_cuda_matches_cpu(name, method):
    problem = PROBLEMS[name]()
    cpu = problem.model.interval(problem.expr, method=method, alpha_iterations=10)
    gpu = problem.model.interval(problem.expr, method=method, device="cuda", alpha_iterations=10)
    assert gpu.lower <= problem.exact_lower and gpu.upper >= problem.exact_upper
    scale = 1.0 + abs(problem.exact_lower) + abs(problem.exact_upper)
    assert gpu.lower == pytest.approx(cpu.lower, abs=1e-9 * scale)
    assert gpu.upper == pytest.approx(cpu.upper, abs=1e-9 * scale)


def test_batched_boxes_on_cuda_are_sound():
    m = gv.Model("gpu")
    x = m.vars("x", 4, -2, 2)
    expr = gv.sin(x[0] * x[1]) + gv.exp(x[2] - x[3]) * gv.tanh(x[0]) + (x[1] - x[2]) ** 2
    gen = torch.Generator().manual_seed(0)
    lower = torch.rand(2048, 4, generator=gen, dtype=torch.float64) * 3 - 2
    upper = lower + torch.rand(2048, 4, generator=gen, dtype=torch.float64)
    for method in ("ibp", "crown", "alpha"):
        iv = m.interval(expr, method=method, lower=lower, upper=upper, device="cuda", alpha_iterations=5)
        assert iv.lower.device.type == "cuda"
        pts = lower[:, None] + (upper - lower)[:, None] * torch.rand(2048, 64, 4, generator=gen, dtype=torch.float64)
        values = m.evaluate(expr, pts.reshape(-1, 4)).reshape(2048, 64)
        assert bool((values >= iv.lower.cpu()[:, None]).all() and (values <= iv.upper.cpu()[:, None]).all())


def test_branch_and_bound_on_cuda():
    m = gv.Model("gpu-bab")
    x, y = m.var("x", -3, 3), m.var("y", -2, 2)
    camel = (4 - 2.1 * x**2 + x**4 / 3) * x**2 + x * y + (-4 + 4 * y**2) * y**2
    result = m.bound(camel, timeout=60, device="cuda")
    assert result.status == "solved"
    assert result.lower <= -1.0316284534898774 <= result.upper + 1e-12
    v = m.verify(x * gv.exp(-x) <= 2.0, timeout=30, device="cuda")
    assert v.status == "verified"
