"""Pre-optimised branching points: strictly inside every interval, better than the midpoint, cached."""

from __future__ import annotations

import os

import pytest
import torch

from graphver.bab import branch_points as bp
from graphver.ops import REGISTRY, UnaryOp

DT = torch.float64
CASES = [(n, p) for n, op in sorted(REGISTRY.items()) if isinstance(op, UnaryOp) for p in op.sample_params]


@pytest.fixture(autouse=True, scope="module")
def private_cache(tmp_path_factory):
    """Tables go to a private directory (module scope: each table is built once for all tests here)."""
    old = os.environ.get("GRAPHVER_CACHE_DIR")
    os.environ["GRAPHVER_CACHE_DIR"] = str(tmp_path_factory.mktemp("cache"))
    bp._memory.clear()
    yield
    bp._memory.clear()
    if old is None:
        del os.environ["GRAPHVER_CACHE_DIR"]
    else:
        os.environ["GRAPHVER_CACHE_DIR"] = old


@pytest.mark.parametrize("name, param", CASES)
def test_point_strictly_inside_any_interval(name, param):
    op = REGISTRY[name]
    gen = torch.Generator().manual_seed(1)
    centre = (torch.rand(4000, generator=gen, dtype=DT) * 2 - 1) * 20
    width = 10.0 ** (torch.rand(4000, generator=gen, dtype=DT) * 8 - 6)
    low, high = centre - width / 2, centre + width / 2
    keep = ~op.domain_violation(low, high, param)
    low, high = low[keep], high[keep]
    point = bp.optimized_point(op, param, low, high)
    assert bool(((point > low) & (point < high)).all())


@pytest.mark.parametrize("name", ["exp", "sin", "tanh", "sigmoid", "atan"])
def test_optimized_points_do_not_increase_the_integrated_gap(name):
    op = REGISTRY[name]
    low = torch.tensor([-3.0, -1.0, 0.5, -6.0, 1.0], dtype=DT)
    high = torch.tensor([2.0, 4.0, 3.0, -1.0, 7.0], dtype=DT)
    point = bp.optimized_point(op, None, low, high)
    mid = (low + high) / 2

    def total(p):
        return bp.integrated_gap(op, None, low, p) + bp.integrated_gap(op, None, p, high)

    # the table is built on a grid: allow the rounding of (l, u) to the nearest cell a small slack
    assert bool((total(point) <= total(mid) * 1.05 + 1e-12).all())
    assert float(total(point).sum()) < float(total(mid).sum())


def test_tables_are_cached_on_disk_with_a_version_tag():
    op = REGISTRY["exp"]
    bp._memory.clear()
    bp.table_for(op, None)
    files = list(bp.cache_dir().glob("branch_points-v*-exp-None.pt"))
    assert len(files) == 1 and f"v{bp.TABLE_VERSION}-" in files[0].name
    # a corrupt cache file is rebuilt, not trusted
    files[0].write_bytes(b"not a table")
    bp._memory.clear()
    table, low, high = bp.table_for(op, None)
    assert table.shape == (bp.GRID, bp.GRID) and low < high


def test_piecewise_linear_ops_split_at_the_kink():
    op = REGISTRY["relu"]
    low, high = torch.tensor([-1.0, -0.3], dtype=DT), torch.tensor([2.0, 5.0], dtype=DT)
    assert bp.optimized_point(op, None, low, high).tolist() == [0.0, 0.0]
