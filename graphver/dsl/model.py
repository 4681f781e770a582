"""``Model``: variables with finite boxes, constraints, compilation and evaluation of expressions over them.

The questions asked about a model (``interval``, ``verify``, ``bound``, ``minimize``) are in ``graphver.api``,
whose ``Model`` (the one ``graphver.Model`` names) adds them to this one.
"""

from __future__ import annotations

import math
from decimal import Decimal
from fractions import Fraction
from typing import Sequence

import numpy as np
import sympy
import torch

from graphver.errors import InfeasibleBoxError, ModelError
from graphver.exact import enclosure, float_down, float_up
from graphver.rounding import round_outward
from graphver.tape import Tape, compile_expressions, evaluate


def to_float_directed(value, direction: float) -> float:
    """A float at or beyond ``value`` in ``direction`` (-inf: round down, +inf: round up).

    Floats are taken as they are; ints, Fractions and sympy numbers (pi/2, 1/10) are rounded outward,
    so the declared box is never shrunk: from a certified enclosure of the exact value
    (``graphver.exact.enclosure``), so a bound that cancels to 0 gives a float <= 0 below and >= 0 above.
    """
    if isinstance(value, float):
        return value
    if isinstance(value, torch.Tensor):
        return to_float_directed(value.item(), direction)
    if isinstance(value, Decimal):
        value = Fraction(value)
    if isinstance(value, Fraction):
        value = sympy.Rational(value.numerator, value.denominator)
    lo, hi = enclosure(sympy.sympify(value))  # a sympy Float is the binary fraction it stores
    return float_down(lo) if direction < 0 else float_up(hi)


def check_bound_pair(name: str, lb, ub) -> tuple[float, float]:
    try:
        low, high = to_float_directed(lb, -math.inf), to_float_directed(ub, math.inf)
    except (TypeError, ValueError, sympy.SympifyError):
        raise ModelError(f"variable {name!r}: bounds must be real numbers, got lb={lb!r}, ub={ub!r}") from None
    if not (math.isfinite(low) and math.isfinite(high)):
        raise ModelError(f"variable {name!r}: bounds must be finite, got [{low}, {high}]. Give every variable a finite box.")
    if low > high:
        raise ModelError(f"variable {name!r}: lower bound {low} exceeds upper bound {high}")
    return low, high


class Model:
    """A model: named variables, each a real sympy Symbol with a finite box [lb, ub].

    >>> import graphver as gv
    >>> m = gv.Model("demo")
    >>> x = m.var("x", -1, 2)
    >>> m.interval(x**2 - x, method="crown")
    Interval(lower=-0.25..., upper=2.0..., method='crown')
    """

    def __init__(self, name: str = "model"):
        self.name = name
        self.variables: list[sympy.Symbol] = []
        self.lower: list[float] = []
        self.upper: list[float] = []
        self._index: dict[str, int] = {}
        self._tapes: dict[tuple, Tape] = {}
        self.constraints: list = []  # graphver.dsl.constraints.Constraint

    # --- constraints ----------------------------------------------------------------------------
    def constrain(self, relations) -> None:
        """Add constraints: ``gv.Eq(h, c)``, ``g <= c``, ``g >= c`` (or a list). ``verify`` and ``bound`` then
        work on the feasible set ``box ∩ {constraints}``; ``minimize`` / ``maximize`` respect them too.
        (Python's ``h == c`` is a structural comparison giving a bool: it is rejected with a hint.)"""
        from graphver.dsl.constraints import as_constraints

        added = as_constraints(relations)
        known = set(self.variables)
        for constraint in added:
            unknown = constraint.expr.free_symbols - known
            if unknown:
                raise ModelError(f"constraint {constraint.text}: symbols {sorted(map(str, unknown))} are not "
                                 f"variables of model {self.name!r}")
        self.constraints.extend(added)

    @property
    def constraint_texts(self):
        """The constraints' texts (a sequence that prints each one when first read)."""
        from graphver.dsl.constraints import ConstraintTexts

        return ConstraintTexts(self.constraints)

    @property
    def constraint_rows(self) -> list[sympy.Expr]:
        """Every constraint as rows ``c_k(x) <= 0`` (an equality gives two)."""
        return [row for constraint in self.constraints for row in constraint.rows]

    def constraint_limits(self, first_row: int = 0) -> tuple[list[int], list[float], list[float]]:
        """For a local solver: one row per constraint (an equality's first row, with limits [0, 0]; an
        inequality's row with (-inf, 0]), as indices into ``constraint_rows`` offset by ``first_row``."""
        rows, lower, upper = [], [], []
        index = first_row
        for constraint in self.constraints:
            rows.append(index)
            lower.append(0.0 if constraint.kind == "eq" else -math.inf)
            upper.append(0.0)
            index += len(constraint.rows)
        return rows, lower, upper

    def max_violation(self, point) -> float:
        """Largest constraint violation at ``point`` (dict or sequence), in float64: max(c_k(x), 0)."""
        rows = self.constraint_rows
        if not rows:
            return 0.0
        x = [point[n] for n in self.names] if isinstance(point, dict) else list(point)
        values = self.evaluate(rows, torch.tensor([x], dtype=torch.float64))[0]
        return float(torch.clamp(values, min=0).max())

    # --- variables ------------------------------------------------------------------------------
    def var(self, name: str, lb: float, ub: float) -> sympy.Symbol:
        """Declare a variable with the box [lb, ub] (finite, lb <= ub) and return its sympy Symbol."""
        if not isinstance(name, str) or not name:
            raise ModelError(f"variable names must be non-empty strings, got {name!r}")
        if name in self._index:
            raise ModelError(f"variable {name!r} is declared twice in model {self.name!r}")
        low, high = check_bound_pair(name, lb, ub)
        symbol = sympy.Symbol(name, real=True)
        self._index[name] = len(self.variables)
        self.variables.append(symbol)
        self.lower.append(low)
        self.upper.append(high)
        self._tapes.clear()
        return symbol

    def vars(self, name: str, n: int, lb, ub) -> list[sympy.Symbol]:
        """Declare ``n`` variables ``name_0 .. name_{n-1}``; lb and ub are scalars or sequences of length n."""
        lbs = list(lb) if isinstance(lb, (Sequence, torch.Tensor)) or hasattr(lb, "__len__") else [lb] * n
        ubs = list(ub) if isinstance(ub, (Sequence, torch.Tensor)) or hasattr(ub, "__len__") else [ub] * n
        if len(lbs) != n or len(ubs) != n:
            raise ModelError(f"vars({name!r}, {n}, ...): lb and ub must be scalars or have length {n}")
        return [self.var(f"{name}_{i}", lbs[i], ubs[i]) for i in range(n)]

    @property
    def names(self) -> list[str]:
        return [s.name for s in self.variables]

    def box(self, dtype=torch.float64, device=None) -> tuple[torch.Tensor, torch.Tensor]:
        """The model's box as two tensors of shape [1, n_vars]."""
        low = torch.tensor([self.lower], dtype=dtype, device=device)
        high = torch.tensor([self.upper], dtype=dtype, device=device)
        return low, high

    # --- compilation ----------------------------------------------------------------------------
    def compile(self, exprs, debug: bool | None = None) -> Tape:
        """Compile one expression or a list of them to a tape (cached per expression tuple)."""
        exprs = as_list(exprs)
        key = tuple(sympy.sympify(e) for e in exprs)
        if key not in self._tapes:
            self._tapes[key] = compile_expressions(self.variables, list(key), debug=debug)
        return self._tapes[key]

    # --- questions ------------------------------------------------------------------------------
    def evaluate(self, exprs, points, device=None, dtype=torch.float64) -> torch.Tensor:
        """Evaluate expressions at points: [B, n_vars] array-like, or a dict name -> value(s).

        Returns [B] for one expression and [B, n_exprs] for a list.
        """
        single = not isinstance(exprs, (list, tuple))
        tape = self.compile(exprs).to(device, dtype)
        x = self.points_tensor(points, dtype, tape.device)
        values = evaluate(tape, x)
        return values[:, 0] if single else values

    def points_tensor(self, points, dtype, device) -> torch.Tensor:
        if isinstance(points, dict):
            unknown = set(points) - set(self._index)
            if unknown:
                raise ModelError(f"unknown variable(s) {sorted(unknown)}; the model has {self.names}")
            missing = [n for n in self.names if n not in points]
            if missing:
                raise ModelError(f"points lack values for {missing}")
            columns = [torch.as_tensor(points[n], dtype=dtype).reshape(-1) for n in self.names]
            x = torch.stack(torch.broadcast_tensors(*columns), dim=1)
        else:
            x = torch.as_tensor(points, dtype=dtype)
            if x.dim() == 1:
                x = x.unsqueeze(0)
        if x.dim() != 2 or x.shape[1] != len(self.variables):
            raise ModelError(f"points must have shape [B, {len(self.variables)}], got {tuple(x.shape)}")
        return x.to(device)

    def boxes_tensor(self, lower, upper, dtype, device) -> tuple[torch.Tensor, torch.Tensor]:
        """Validated boxes [B, n_vars] in ``dtype``, rounded outward; defaults to the model's own box."""
        default_low, default_high = self.box(torch.float64, device)
        low = default_low if lower is None else as_float64(lower, device, -math.inf)
        high = default_high if upper is None else as_float64(upper, device, math.inf)
        low, high = (t.unsqueeze(0) if t.dim() == 1 else t for t in (low, high))
        n = len(self.variables)
        if low.dim() != 2 or low.shape != high.shape or low.shape[1] != n:
            raise InfeasibleBoxError(
                f"boxes must be two arrays of shape [B, {n}] (or [{n}]), got {tuple(low.shape)} and {tuple(high.shape)}"
            )
        bad = ~(torch.isfinite(low) & torch.isfinite(high) & (low <= high))
        if bool(bad.any()):
            b, i = (int(v) for v in torch.nonzero(bad)[0])
            what = "is not finite" if not (math.isfinite(low[b, i]) and math.isfinite(high[b, i])) else "is inverted (lb > ub)"
            raise InfeasibleBoxError(
                f"box {b}: the interval of variable {self.names[i]!r}, [{float(low[b, i])}, {float(high[b, i])}], {what}"
            )
        return round_outward(low, high, dtype)

    def start_tensor(self, start) -> torch.Tensor | None:
        """Points given as a dict, a sequence, or a list of them, as a float64 tensor [S, n]."""
        if start is None:
            return None
        items = start if isinstance(start, (list, tuple)) and start and isinstance(start[0], (dict, list, tuple)) else [start]
        rows = [[float(p[n]) for n in self.names] if isinstance(p, dict) else [float(v) for v in p] for p in items]
        if any(len(r) != len(self.variables) for r in rows):
            raise ModelError(f"start points need {len(self.variables)} values (one per variable)")
        return torch.tensor(rows, dtype=torch.float64)

    def __repr__(self) -> str:
        box = ", ".join(f"{n} in [{l:g}, {u:g}]" for n, l, u in zip(self.names, self.lower, self.upper))
        return f"Model({self.name!r}: {box})"


def options_record(options) -> dict:
    """Options as plain data for results (nested option objects flattened)."""
    import dataclasses

    return dataclasses.asdict(options)


def as_float64(values, device, direction: float) -> torch.Tensor:
    """Box bounds as float64, rounded in ``direction`` where they are not floats already (ints, sympy numbers)."""
    if isinstance(values, torch.Tensor) and values.is_floating_point():
        return values.to(device=device, dtype=torch.float64)
    array = np.asarray(values, dtype=object) if not isinstance(values, torch.Tensor) else values.numpy().astype(object)
    if array.dtype != object or all(isinstance(v, float) for v in array.flat):
        return torch.as_tensor(np.asarray(values, dtype=np.float64), device=device)
    try:
        rounded = [to_float_directed(v, direction) for v in array.flat]
    except (TypeError, ValueError, sympy.SympifyError):
        raise InfeasibleBoxError(f"box bounds must be real numbers, got {values!r}") from None
    return torch.tensor(rounded, dtype=torch.float64, device=device).reshape(array.shape)


def as_list(exprs) -> list:
    return list(exprs) if isinstance(exprs, (list, tuple)) else [exprs]
