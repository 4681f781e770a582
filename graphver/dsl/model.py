"""``Model``: variables with finite boxes, and the questions asked about expressions over them."""

from __future__ import annotations

import math
from decimal import Decimal
from fractions import Fraction
from typing import Any, Sequence

import numpy as np
import sympy
import torch

from graphver.bounds import output_bounds
from graphver.errors import InfeasibleBoxError, ModelError
from graphver.exact import enclosure, float_down, float_up
from graphver.options import BoundOptions, make_options
from graphver.report.interval import Interval
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
    def constraint_texts(self) -> list[str]:
        return [c.text for c in self.constraints]

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
        Interval fields are tensors of shape [B]. Options: see ``BoundOptions``. The bounds hold over the
        whole box: the model's constraints are not used here (``bound`` and ``verify`` use them).
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

    def verify(self, prop, timeout: float = 60.0, **options: Any):
        """Prove or refute a property over the box by branch-and-bound; returns a ``VerifyResult``.

        prop: a sympy relation (``f <= c``, ``f >= c``, strict ones too), a list of them (all must hold),
        ``gv.All([...])`` or ``gv.Any([...])``. Options: see ``BabOptions`` (``batch_size``, ``seed``,
        ``branching``, ``device``, ...). Ctrl-C or the timeout return "unknown" with the best proven margin.
        """
        from graphver.bab import Engine, normalise
        from graphver.options import BabOptions
        from graphver.report.results import VerifyResult

        opts = make_options(BabOptions, options, timeout=timeout)
        prop = normalise(prop)
        engine = Engine(self, prop.margins, prop.combine, "verify", opts, prop.strict, label=self.name)
        outcome = engine.run()
        status = {"proven": "verified", "falsified": "falsified", "infeasible": "infeasible"}.get(outcome.status, "unknown")
        counterexample = margins = None
        if status == "falsified":
            counterexample = dict(zip(self.names, outcome.best_point.tolist()))
            margins = self.evaluate(list(prop.margins), outcome.best_point[None])[0].tolist()
        check = engine.confirmed_margins if status == "falsified" else None
        violation = self.max_violation(counterexample) if counterexample is not None else None
        return VerifyResult(status, outcome.lower, counterexample, margins, list(prop.texts), prop.combine,
                            outcome.stats, options_record(opts), check, self.constraint_texts, violation)

    def bound(self, expr, sense: str = "min", rel_tol: float = 1e-4, abs_tol: float = 1e-6, timeout: float = 60.0,
              start=None, **options: Any):
        """Certified global minimum (or maximum) of ``expr`` over the box by branch-and-bound.

        Returns a ``BoundResult``: for "min", ``lower`` is proven and ``upper`` is the value at ``witness``;
        for "max", ``upper`` is proven and ``lower`` is the value at ``witness``. "solved" when
        ``upper - lower <= max(abs_tol, rel_tol*|value|)``. start: optional points (a dict, a sequence, or a
        list of them) evaluated first as incumbent candidates, e.g. a known local solution.
        """
        from graphver.bab import Engine
        from graphver.errors import OptionError
        from graphver.options import BabOptions
        from graphver.report.results import BoundResult

        if sense not in ("min", "max"):
            raise OptionError(f"sense must be 'min' or 'max', got {sense!r}")
        opts = make_options(BabOptions, options, timeout=timeout, rel_tol=rel_tol, abs_tol=abs_tol)
        expr = sympy.sympify(expr)
        row = expr if sense == "min" else -expr
        engine = Engine(self, [row], "all", "bound", opts, label=self.name, starts=self.start_tensor(start))
        outcome = engine.run()
        if sense == "min":
            lower, upper = outcome.lower, outcome.best_value
        else:
            lower, upper = -outcome.best_value, -outcome.lower
        gap = upper - lower
        tolerance = max(abs_tol, rel_tol * abs(outcome.best_value)) if math.isfinite(outcome.best_value) else 0.0
        status = "solved" if gap <= tolerance else "unknown"
        if outcome.status == "infeasible":
            status, gap = "infeasible", math.nan
        witness = None if outcome.best_point is None else dict(zip(self.names, outcome.best_point.tolist()))
        violation = self.max_violation(witness) if witness is not None else None
        return BoundResult(sense, lower, upper, gap, status, witness, str(expr), outcome.stats, options_record(opts),
                           self.constraint_texts, violation)

    def start_tensor(self, start) -> torch.Tensor | None:
        """Points given as a dict, a sequence, or a list of them, as a float64 tensor [S, n]."""
        if start is None:
            return None
        items = start if isinstance(start, (list, tuple)) and start and isinstance(start[0], (dict, list, tuple)) else [start]
        rows = [[float(p[n]) for n in self.names] if isinstance(p, dict) else [float(v) for v in p] for p in items]
        if any(len(r) != len(self.variables) for r in rows):
            raise ModelError(f"start points need {len(self.variables)} values (one per variable)")
        return torch.tensor(rows, dtype=torch.float64)

    def minimize(self, expr, start=None, **options):
        """Local minimum of ``expr`` over the box by IPOPT (no certificate); returns a ``LocalSolution``.

        start: a dict or sequence; without it, ``starts`` points (default 1: the box centre; more: the best
        random samples too) and the best result is returned. Options: ``starts``, ``max_iter``,
        ``max_wall_time`` (all starts together), ``hessian`` ("auto", "exact", "limited-memory"), ``tol``,
        ``verbose``, ``seed``. IPOPT failures are reported in the result, not raised."""
        from graphver.search.ipopt import local_solve

        return local_solve(self, expr, "min", start, **options)

    def maximize(self, expr, start=None, **options):
        """Local maximum of ``expr`` over the box by IPOPT (no certificate); see ``minimize``."""
        from graphver.search.ipopt import local_solve

        return local_solve(self, expr, "max", start, **options)

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
