"""What branch-and-bound sees: a tape, a box, which outputs are rows and which are constraints, and a goal.

``Problem`` is built by the public API from a ``Model`` (``graphver.api``) or straight from an imported tape
(the VNN-COMP runner): branch-and-bound never sees sympy or a model. The aggregated value over the box is
``v(x) = min_r row_r(x)`` ("all") or ``max_r row_r(x)`` ("any"), subject to the constraint rows
``c_k(x) <= 0`` (the tape's outputs after the rows).

A goal says what the rows mean, once:

- ``VerifyGoal``: the rows are margins, >= 0 where each relation holds (> 0 for a strict one); the property
  holds at a point when the rows, combined by all/any, hold there (``holds``). A domain is proven when its
  certified row bounds hold; a point is a counterexample when its margins do not hold (after
  confirmation); the run is done when every domain is proven or a confirmed counterexample is found.
- ``BoundGoal``: one objective row; a domain is pruned when its bound cannot beat the incumbent by more than
  the tolerance; the run is done when the gap is within the tolerance.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Sequence

import torch
from torch import Tensor

from graphver.rounding import round_outward
from graphver.tape.tape import Tape


@dataclass(frozen=True)
class Confirmation:
    """The verdict of a problem's ``confirm`` callable on a candidate counterexample."""

    violated: bool  # the point certainly violates the property (and satisfies every constraint)
    margins: tuple = ()  # the margins at the point, as text (for the report)


@dataclass
class Problem:
    """One branch-and-bound problem. ``tape`` outputs the ``n_rows`` rows, then the constraint rows."""

    tape: Tape
    lower: Tensor  # [n] float64 box
    upper: Tensor
    n_rows: int
    combine: str = "all"  # rows aggregate by min ("all") or max ("any")
    strict: tuple = ()  # per row: True when the row must be > 0 rather than >= 0 (verify)
    constraint_limits: tuple | None = None  # (rows, lower, upper) of the constraint rows for a local solver
    confirm: Callable[[Tensor], Confirmation] | None = None  # certified re-check of a counterexample
    names: tuple = ()  # input names, for messages
    starts: Tensor | None = None  # [S, n] points evaluated first (e.g. a known solution)
    label: str = ""

    def __post_init__(self):
        if self.combine not in ("all", "any"):
            raise ValueError(f"combine must be 'all' or 'any', got {self.combine!r}")
        if not 0 < self.n_rows <= self.tape.n_outputs:
            raise ValueError(f"{self.n_rows} rows for a tape of {self.tape.n_outputs} outputs")
        self.strict = tuple(self.strict) if self.strict else (False,) * self.n_rows
        if len(self.strict) != self.n_rows:
            raise ValueError(f"strict has {len(self.strict)} entries for {self.n_rows} rows")
        n = self.tape.n_inputs
        self.lower = torch.as_tensor(self.lower, dtype=torch.float64).reshape(-1).cpu()
        self.upper = torch.as_tensor(self.upper, dtype=torch.float64).reshape(-1).cpu()
        if self.lower.numel() != n or self.upper.numel() != n:
            raise ValueError(f"the box has {self.lower.numel()} entries for {n} inputs")
        if not bool((self.lower <= self.upper).all()):
            raise ValueError("the box is inverted (lower > upper somewhere)")
        self.names = tuple(self.names) if self.names else tuple(f"x_{i}" for i in range(n))
        if self.constraint_limits is None:  # every constraint row an inequality c_k(x) <= 0
            rows = list(range(self.n_rows, self.tape.n_outputs))
            self.constraint_limits = (rows, [-math.inf] * len(rows), [0.0] * len(rows))

    @property
    def n_constraints(self) -> int:
        return self.tape.n_outputs - self.n_rows

    def box(self, dtype, device) -> tuple[Tensor, Tensor]:
        """The box as [1, n] tensors of ``dtype``, rounded outward when that is not float64."""
        return round_outward(self.lower[None].to(device), self.upper[None].to(device), dtype)


def row_holds(values, strict: Sequence[bool]):
    """Per row, whether a value satisfies its row (> 0 when strict, >= 0 otherwise); tensors [..., rows] or
    sequences of numbers (Fractions included)."""
    if isinstance(values, Tensor):
        strict_t = torch.tensor(list(strict), dtype=torch.bool, device=values.device)
        return torch.where(strict_t, values > 0, values >= 0)
    return [v > 0 if s else v >= 0 for v, s in zip(values, strict)]


def combined(ok, combine: str):
    """all/any over the rows (the last dimension of a tensor, or a sequence of bools)."""
    if isinstance(ok, Tensor):
        return ok.all(dim=-1) if combine == "all" else ok.any(dim=-1)
    return all(ok) if combine == "all" else any(ok)


class Goal:
    """What the rows mean; see the module docstring. ``aggregate`` gives v from the rows."""

    kind = ""

    def __init__(self, combine: str, strict: Sequence[bool]):
        self.combine = combine
        self.strict = tuple(strict)

    def aggregate(self, rows: Tensor) -> Tensor:
        """min ("all") or max ("any") over the rows [..., n_rows]."""
        return rows.amin(dim=-1) if self.combine == "all" else rows.amax(dim=-1)

    def binding_row(self, rows: Tensor) -> Tensor:
        """The row that decides the aggregate of each domain [B]."""
        return rows.argmin(dim=-1) if self.combine == "all" else rows.argmax(dim=-1)

    def proven(self, rows: Tensor) -> Tensor:
        """[B]: domains whose certified row bounds [B, n_rows] finish them (no branching needed)."""
        return torch.zeros(rows.shape[0], dtype=torch.bool, device=rows.device)


class VerifyGoal(Goal):
    """The rows are margins of a property; see the module docstring."""

    kind = "verify"

    def holds(self, values):
        """Whether margins (certified lower bounds, or values at a point) satisfy the property."""
        return combined(row_holds(values, self.strict), self.combine)

    def proven(self, rows: Tensor) -> Tensor:
        return self.holds(rows)

    def counterexample(self, value: float) -> bool:
        """Whether an aggregated value at a point may violate the property (to be confirmed)."""
        return value <= 0 if any(self.strict) else value < 0

    def certainly_violated(self, upper_ends: Sequence) -> bool:
        """Whether margins whose enclosures have these upper ends certainly violate the property: it would
        hold for some values within the enclosures otherwise."""
        return not self.holds(list(upper_ends))


class BoundGoal(Goal):
    """Minimise the one row to within ``max(abs_tol, rel_tol * |best|)``."""

    kind = "bound"

    def __init__(self, rel_tol: float, abs_tol: float):
        super().__init__("all", (False,))
        self.rel_tol = rel_tol
        self.abs_tol = abs_tol

    def tolerance(self, best: float) -> float:
        return max(self.abs_tol, self.rel_tol * abs(best)) if math.isfinite(best) else 0.0

    def solved(self, lower: float, best: float) -> bool:
        return math.isfinite(best) and best - lower <= self.tolerance(best)

    def prunable(self, bounds: Tensor, best: float) -> Tensor:
        """[D]: domains that cannot beat the incumbent ``best`` by more than the tolerance."""
        if not math.isfinite(best):
            return torch.zeros_like(bounds, dtype=torch.bool)
        return bounds >= best - self.tolerance(best)
