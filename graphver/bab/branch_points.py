"""Pre-optimised branching points for nonlinear nodes (GenBaB's lookup tables, built lazily).

For a unary op f and an interval [l, u], splitting at p gives two children whose relaxations (CROWN's
default lines on [l, p] and [p, u]) leave gaps between their upper and lower lines. The table stores,
for a grid of (l, u), the fraction t = (p - l)/(u - l) minimising the summed integrated gap

    G(p) = int_l^p (upper - lower) dx + int_p^u (upper - lower) dx,

where each integral is exact for lines: int_a^b (s x + d) dx = s (b^2 - a^2)/2 + d (b - a).

Soundness does not depend on the table: the point is only a choice, and the lookup returns
``l + t (u - l)`` with t clamped to [0.05, 0.95], strictly inside the interval. Intervals outside the grid
fall back to the op's own ``branch_point``. Tables are cached in the user cache directory
(``GRAPHVER_CACHE_DIR`` or ``~/.cache/graphver``) under a name carrying ``TABLE_VERSION``, the graphver
version and the op (with its parameter); an unwritable cache directory only costs a rebuild per process.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import Tensor

from graphver.ops.base import UnaryOp

TABLE_VERSION = 1
GRID = 48  # grid points per axis
FRACTIONS = torch.linspace(0.05, 0.95, 37, dtype=torch.float64)
RANGE = 8.0  # default grid of l, u in [-RANGE, RANGE] (ops with a restricted domain use their own)

_memory: dict[tuple, tuple[Tensor, float, float]] = {}


def cache_dir() -> Path:
    return Path(os.environ.get("GRAPHVER_CACHE_DIR", Path.home() / ".cache" / "graphver"))


def grid_range(op: UnaryOp, param) -> tuple[float, float]:
    """Range of l and u covered by the table: inside the op's domain."""
    if op.name in ("log", "sqrt") or (op.name == "pow_real") or (op.name == "pow_int" and param is not None and param < 0):
        return 1e-3, RANGE
    if op.name == "tan":
        return -1.5, 1.5
    return -RANGE, RANGE


def integrated_gap(op: UnaryOp, param, a: Tensor, b: Tensor) -> Tensor:
    lines = op.relax(a, b, param)
    slope = lines.upper_slope - lines.lower_slope
    offset = lines.upper_bias - lines.lower_bias
    gap = slope * (b * b - a * a) / 2 + offset * (b - a)
    return torch.nan_to_num(gap, nan=float("inf"), posinf=float("inf"))


def build_table(op: UnaryOp, param) -> tuple[Tensor, float, float]:
    """Best split fraction for every grid cell (l_i < u_j); cells with l >= u hold 0.5."""
    low, high = grid_range(op, param)
    axis = torch.linspace(low, high, GRID, dtype=torch.float64)
    l, u = torch.meshgrid(axis, axis, indexing="ij")
    valid = u > l
    l_v, u_v = l[valid], u[valid]
    ok = ~op.domain_violation(l_v, u_v, param)
    t = FRACTIONS[None, :]
    p = l_v[:, None] + t * (u_v - l_v)[:, None]
    left = integrated_gap(op, param, l_v[:, None].expand_as(p), p)
    right = integrated_gap(op, param, p, u_v[:, None].expand_as(p))
    best = FRACTIONS[torch.argmin(left + right, dim=1)]
    table = torch.full((GRID, GRID), 0.5, dtype=torch.float64)
    table[valid] = torch.where(ok, best, torch.full_like(best, 0.5))
    return table, low, high


def table_for(op: UnaryOp, param) -> tuple[Tensor, float, float]:
    from graphver import __version__

    key = (op.name, param)
    if key in _memory:
        return _memory[key]
    name = f"branch_points-v{TABLE_VERSION}-{__version__}-{op.name}-{param}.pt"
    path = cache_dir() / name
    entry = None
    if path.exists():
        try:
            data = torch.load(path)
            entry = (data["table"], float(data["low"]), float(data["high"]))
        except Exception:  # a corrupt or foreign file: rebuild it
            entry = None
    if entry is None:
        entry = build_table(op, param)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp")
            torch.save({"table": entry[0], "low": entry[1], "high": entry[2]}, tmp)
            tmp.replace(path)
        except OSError:
            pass
    _memory[key] = entry
    return entry


def optimized_point(op: UnaryOp, param, l: Tensor, u: Tensor) -> Tensor:
    """Branching point from the table (nearest grid cell), strictly inside (l, u); op default elsewhere."""
    if not op.tabulate_branch_points:
        return op.branch_point(l, u, param)
    table, low, high = table_for(op, param)
    table = table.to(device=l.device, dtype=l.dtype)
    scale = (GRID - 1) / (high - low)
    i = ((l - low) * scale).round().clamp(0, GRID - 1).long()
    j = ((u - low) * scale).round().clamp(0, GRID - 1).long()
    inside = (l >= low) & (u <= high) & (u > l) & (i < j)
    fraction = table[i, j].clamp(0.05, 0.95)
    point = l + fraction * (u - l)
    default = op.branch_point(l, u, param)
    return torch.where(inside & (point > l) & (point < u), point, default)
