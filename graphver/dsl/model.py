"""``Model``: variables with finite boxes, and the questions asked about expressions over them."""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Any, Sequence

import sympy
import torch

from graphver.bounds import output_bounds
from graphver.errors import InfeasibleBoxError, ModelError
from graphver.options import BoundOptions, make_options
from graphver.report.interval import Interval
from graphver.tape import Tape, compile_expressions, evaluate


def to_float_directed(value, direction: float) -> float:
    """A float at or beyond ``value`` in ``direction`` (-inf: round down, +inf: round up).

    Floats are taken as they are; ints, Fractions and sympy numbers (pi/2, 1/10) are rounded outward,
    so the declared box is never shrunk.
    """
    if isinstance(value, float):
        return value
    if isinstance(value, torch.Tensor):
        return to_float_directed(value.item(), direction)
    number = sympy.nsimplify(value, rational=False) if isinstance(value, str) else sympy.sympify(value)
    if isinstance(number, sympy.Float):
        return float(number)
    nearest = float(number)
    if not math.isfinite(nearest):
        return nearest
    if number.is_Rational:
        exact = Fraction(int(number.p), int(number.q))
        off = Fraction(nearest) - exact
    else:
        off = sympy.N(sympy.Float(nearest, 60) - number, 30)
    if (direction < 0 and off > 0) or (direction > 0 and off < 0):
        nearest = math.nextafter(nearest, direction)
    return nearest


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
        low = default_low if lower is None else as_float64(lower, device)
        high = default_high if upper is None else as_float64(upper, device)
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

    def interval(
        self,
        exprs,
        method: str = "crown",
        lower=None,
        upper=None,
        device=None,
        dtype=torch.float64,
        **options: Any,
    ):
        """Certified bounds of one expression (-> ``Interval``) or a list (-> list of ``Interval``).

        method: "ibp", "crown" (intermediate bounds = IBP intersected with CROWN) or "alpha" (CROWN with
        relaxation parameters optimised by Adam). lower, upper: optional boxes [B, n_vars]; then the
        Interval fields are tensors of shape [B]. Options: see ``BoundOptions``.
        """
        single = not isinstance(exprs, (list, tuple))
        opts = make_options(BoundOptions, options)
        tape = self.compile(exprs).to(device, dtype)
        batched = lower is not None and torch.as_tensor(lower).dim() == 2
        low, high = self.boxes_tensor(lower, upper, dtype, tape.device)
        out_low, out_high = output_bounds(tape, low, high, method, opts)
        results = []
        for j in range(tape.n_outputs):
            if batched:
                results.append(Interval(out_low[:, j].detach(), out_high[:, j].detach(), method))
            else:
                results.append(Interval(float(out_low[0, j]), float(out_high[0, j]), method))
        return results[0] if single else results

    def __repr__(self) -> str:
        box = ", ".join(f"{n} in [{l:g}, {u:g}]" for n, l, u in zip(self.names, self.lower, self.upper))
        return f"Model({self.name!r}: {box})"


def as_float64(values, device) -> torch.Tensor:
    if isinstance(values, torch.Tensor):
        return values.to(device=device, dtype=torch.float64)
    return torch.as_tensor(values, dtype=torch.float64, device=device)


def round_outward(low: torch.Tensor, high: torch.Tensor, dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """Convert a box to ``dtype`` so that it still contains the float64 box (lower down, upper up)."""
    if dtype == torch.float64:
        return low, high
    new_low, new_high = low.to(dtype), high.to(dtype)
    new_low = torch.where(new_low.double() > low, torch.nextafter(new_low, torch.full_like(new_low, -math.inf)), new_low)
    new_high = torch.where(new_high.double() < high, torch.nextafter(new_high, torch.full_like(new_high, math.inf)), new_high)
    return new_low, new_high


def as_list(exprs) -> list:
    return list(exprs) if isinstance(exprs, (list, tuple)) else [exprs]
