"""Feasibility-based bound tightening (FBBT): shrink boxes to the part that can satisfy the constraints.

One round is a forward interval pass (IBP, the same one every bound starts from), the constraint rows
``c_k(x) <= 0`` cutting their output intervals at 0, and a backward pass that walks the instructions in
reverse and narrows each argument to the values that can still produce its output's interval:

- linear ``out = sum w_j x_j + b``: ``w_j x_j`` lies in ``out - b - (the other terms)``, divided by the
  weight's interval ``[w - e, w + e]`` (``e`` the stored weight's rounding error);
- monotone unary ops through their inverse (exp/log, sqrt, tanh, sigmoid, atan, odd powers, positive real
  powers), even powers through the root (and the side that the argument's interval allows), relu and abs;
  sin, cos, tan and negative powers are left alone;
- products ``z = x y``: ``x`` in ``z / y`` where ``y`` excludes 0, and the same for ``y``.

Every computed end point is widened outward (graphver/rounding.py holds the rules; every constant is the
one of the boxes' dtype): by the floating-point error of the sums (a gamma_n bound on the magnitudes
involved), by a few ulps for the quotients, and for the inverse functions by the error of the library
function (``INVERSE_ULPS``) plus what their formula loses: roots ``v**(1/p)`` use a rounded exponent,
which costs ``|ln v| * |1/p - fl(1/p)|`` relative (``root_slack``); the logit ``log(v) - log1p(-v)`` may
cancel, so its slack is absolute in the magnitudes of both logarithms. A box shrinks only by points that cannot satisfy the
constraints, so every later bound over the shrunk box is a bound over the feasible part of the old one.
A box whose interval of some node becomes empty contains no feasible point: it is *infeasible*. Forward
end points at the wrong infinity (overflow: a lower bound of +inf) are read as no information first.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from graphver.bounds.ibp import DomainMarks, NodeSplits, forward_bounds
from graphver.rounding import INVERSE_ULPS, eps_of, fill_nan, normal_of, root_slack, widen
from graphver.tape.tape import Instruction, Tape

HALF_PI_SAFE = math.pi / 2 - 1e-6  # tan is only used strictly inside (-pi/2, pi/2), also in float32


def divide(ql: Tensor, qh: Tensor, dl: Tensor, dh: Tensor) -> tuple[Tensor, Tensor]:
    """``[ql, qh] / [dl, dh]`` where the divisor excludes 0 (elsewhere: no information), widened."""
    usable = (dl > 0) | (dh < 0)
    safe_l = torch.where(usable, dl, torch.ones_like(dl))
    safe_h = torch.where(usable, dh, torch.ones_like(dh))
    corners = torch.stack([ql / safe_l, ql / safe_h, qh / safe_l, qh / safe_h])
    # inf / inf cannot occur (divisors are finite); a NaN corner from a NaN end point means no information
    lo = fill_nan(corners, -math.inf).amin(0)
    hi = fill_nan(corners, math.inf).amax(0)
    lo, hi = widen(lo, hi, 4 * eps_of(lo))
    inf = torch.full_like(lo, math.inf)
    return torch.where(usable, lo, -inf), torch.where(usable, hi, inf)


def backward_linear(instr: Instruction, lo: Tensor, hi: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Candidate intervals for each term's argument: (global node indices, lows, highs), [T], [B, T]."""
    rows, cols = instr.rows, instr.cols
    w = instr.weights.to(lo.dtype)
    e = instr.weight_error.to(lo.dtype) if instr.weight_error is not None else torch.zeros_like(w)
    xl, xh = lo[:, cols], hi[:, cols]
    magnitude = torch.maximum(xl.abs(), xh.abs())
    error = torch.where(e > 0, e * magnitude, torch.zeros_like(magnitude))  # an exact weight: no error (not 0 * inf)
    tl = torch.minimum(w * xl, w * xh) - error
    th = torch.maximum(w * xl, w * xh) + error
    tl = fill_nan(tl, -math.inf)  # 0 * inf
    th = fill_nan(th, math.inf)
    size = instr.size
    batch = lo.shape[0]

    def per_row(values: Tensor) -> Tensor:
        out = torch.zeros(batch, size, dtype=lo.dtype, device=lo.device)
        return out.index_add_(1, rows, values)

    finite_l, finite_h = torch.isfinite(tl), torch.isfinite(th)
    sum_l = per_row(torch.where(finite_l, tl, torch.zeros_like(tl)))
    sum_h = per_row(torch.where(finite_h, th, torch.zeros_like(th)))
    inf_l = per_row((~finite_l).to(lo.dtype))
    inf_h = per_row((~finite_h).to(lo.dtype))
    absolute = per_row(torch.where(finite_l, tl.abs(), torch.zeros_like(tl)) + torch.where(finite_h, th.abs(), torch.zeros_like(th)))
    bias = instr.bias.to(lo.dtype)
    bias_error = instr.bias_error.to(lo.dtype) if instr.bias_error is not None else torch.zeros_like(bias)
    out_l = lo[:, instr.start : instr.stop]
    out_h = hi[:, instr.start : instr.stop]
    # other terms of the row of each term: the row's sum less this term (infinite if another term is)
    other_l = torch.where(inf_l[:, rows] - (~finite_l).to(lo.dtype) > 0, torch.full_like(tl, -math.inf),
                          sum_l[:, rows] - torch.where(finite_l, tl, torch.zeros_like(tl)))
    other_h = torch.where(inf_h[:, rows] - (~finite_h).to(lo.dtype) > 0, torch.full_like(th, math.inf),
                          sum_h[:, rows] - torch.where(finite_h, th, torch.zeros_like(th)))
    ql = out_l[:, rows] - (bias[rows] + bias_error[rows]) - other_h
    qh = out_h[:, rows] - (bias[rows] - bias_error[rows]) - other_l
    scale = (absolute[:, rows] + out_l[:, rows].abs().nan_to_num(posinf=0.0) + out_h[:, rows].abs().nan_to_num(posinf=0.0)
             + bias[rows].abs() + tl.abs().nan_to_num(posinf=0.0) + th.abs().nan_to_num(posinf=0.0))
    slack = 2 * (instr.fan_in + 4) * eps_of(lo) * scale + normal_of(lo)
    ql, qh = fill_nan(ql - slack, -math.inf), fill_nan(qh + slack, math.inf)
    cl, ch = divide(ql, qh, (w - e).expand_as(ql), (w + e).expand_as(qh))
    return cols, cl, ch


def capped(root: Tensor) -> Tensor:
    """A root that overflowed lies above the largest float, within its rounding: the largest float is a
    lower bound of it (an end at +inf would wrongly empty the interval)."""
    return torch.where(root == math.inf, torch.full_like(root, torch.finfo(root.dtype).max), root)


def backward_unary(instr: Instruction, lo: Tensor, hi: Tensor) -> tuple[Tensor, Tensor, Tensor] | None:
    """Candidate intervals for the arguments of a unary instruction, or None when the op has no rule.

    Each rule computes the inverse image of the output interval and its error bound: ``relative`` (of the
    end points) and ``absolute``; the ends are then widened by both (``widen``)."""
    (args,) = instr.args
    ol, oh = lo[:, instr.start : instr.stop], hi[:, instr.start : instr.stop]
    al, ah = lo[:, args], hi[:, args]
    inf = torch.full_like(ol, math.inf)
    eps = eps_of(ol)
    relative: float | Tensor = INVERSE_ULPS * eps
    relative_high: float | Tensor | None = None  # the upper end's, when it differs from the lower end's
    absolute: float | Tensor | None = None  # widen's default: tiny
    op, p = instr.op, instr.param
    if op == "exp":
        cl = torch.where(ol > 0, torch.log(ol.clamp(min=0)), -inf)  # log of a subnormal is accurate: no clamp
        ch = torch.where(oh > 0, torch.log(oh.clamp(min=0)), -inf)
    elif op == "log":
        cl, ch = torch.exp(ol), torch.exp(oh)
    elif op == "sqrt":
        cl = torch.where(ol > 0, ol * ol, -inf)
        ch = torch.where(oh >= 0, oh * oh, -inf)
    elif op in ("tanh", "sigmoid", "atan"):
        # increasing with an open range (a, b): clip the ends into [a', b'] strictly inside it, so that
        # f(x) >= ol gives x >= f^-1(min(ol, b')) (valid) and f(x) <= oh gives x <= f^-1(max(oh, a'))
        inverse, a, b = {
            "tanh": (torch.atanh, -1 + eps, 1 - eps),
            "sigmoid": (lambda v: torch.log(v) - torch.log1p(-v), normal_of(ol), 1 - eps),
            "atan": (torch.tan, -HALF_PI_SAFE, HALF_PI_SAFE),
        }[op]
        cl = torch.where(ol > a, inverse(ol.clamp(a, b)), -inf)
        ch = torch.where(oh < b, inverse(oh.clamp(a, b)), inf)
        if op == "sigmoid":
            # log(v) - log1p(-v) may cancel (v near 1/2): its error is absolute in both logarithms
            def spread(v):
                v = v.clamp(a, b)
                return INVERSE_ULPS * eps * (torch.log(v).abs() + torch.log1p(-v).abs())
            absolute = torch.maximum(spread(ol), spread(oh)) + normal_of(ol)
    elif op == "relu":
        cl = torch.where(ol > 0, ol, -inf)
        ch = torch.where(oh >= 0, oh, -inf)
        relative, absolute = 0.0, 0.0
    elif op == "abs":
        cl, ch = -oh, oh  # oh < 0 gives an empty interval
        relative, absolute = 0.0, 0.0
    elif op == "pow_int" and p > 0 and int(p) % 2 == 1:
        root = lambda v: torch.sign(v) * v.abs() ** (1.0 / p)  # noqa: E731
        cl, ch = capped(root(ol)), root(oh)
        relative, relative_high = root_slack(ol, p), root_slack(oh, p)
    elif op == "pow_int" and p > 0:
        r = torch.where(oh >= 0, oh.clamp(min=0) ** (1.0 / p), -inf)
        s = capped(ol.clamp(min=0) ** (1.0 / p))
        s_lo, _ = widen(s, s, root_slack(s, p))  # the inner radius, shrunk (s_lo) to stay sound
        cl = torch.where(al > -s_lo, s_lo, -r)  # left branch impossible: x >= s
        ch = torch.where(ah < s_lo, -s_lo, r)  # right branch impossible: x <= -s
        both_out = (al > -s_lo) & (ah < s_lo) & (s_lo > 0)
        cl = torch.where(both_out, inf, cl)
        ch = torch.where(both_out, -inf, ch)
        cl = torch.where(r < 0, inf, cl)
        relative = relative_high = root_slack(oh, p)  # the inner radius is already shrunk
    elif op == "pow_real" and p > 0:
        cl = torch.where(ol > 0, capped(ol.clamp(min=0) ** (1.0 / p)), -inf)
        ch = torch.where(oh >= 0, oh.clamp(min=0) ** (1.0 / p), -inf)
        relative, relative_high = root_slack(ol, p), root_slack(oh, p)
    else:
        return None
    cl, _ = widen(cl, cl, relative, absolute)
    _, ch = widen(ch, ch, relative if relative_high is None else relative_high, absolute)
    return args, cl, ch


def backward_mul(instr: Instruction, lo: Tensor, hi: Tensor) -> list[tuple[Tensor, Tensor, Tensor]]:
    x, y = instr.args
    zl, zh = lo[:, instr.start : instr.stop], hi[:, instr.start : instr.stop]
    out = []
    for target, other in ((x, y), (y, x)):
        cl, ch = divide(zl, zh, lo[:, other], hi[:, other])
        out.append((target, cl, ch))
    return out


def tighten_nodes(lo: Tensor, hi: Tensor, nodes: Tensor, cl: Tensor, ch: Tensor) -> None:
    """Intersect the intervals of ``nodes`` with candidates (several candidates per node allowed)."""
    index = nodes.expand(lo.shape[0], -1)
    lo.scatter_reduce_(1, index, cl, reduce="amax", include_self=True)
    hi.scatter_reduce_(1, index, ch, reduce="amin", include_self=True)


def backward(tape: Tape, lo: Tensor, hi: Tensor) -> None:
    """One backward sweep over the tape, narrowing every node from its consumers' intervals (in place)."""
    for instr in reversed(tape.instructions):
        if instr.kind == "linear":
            found = [backward_linear(instr, lo, hi)]
        elif instr.kind == "unary":
            one = backward_unary(instr, lo, hi)
            found = [] if one is None else [one]
        elif instr.op == "mul":
            found = backward_mul(instr, lo, hi)
        else:
            found = []
        for nodes, cl, ch in found:
            tighten_nodes(lo, hi, nodes, cl, ch)


def fbbt(tape: Tape, lower: Tensor, upper: Tensor, rows: Tensor, splits: NodeSplits | None = None,
         rounds: int = 2, caps: Tensor | None = None) -> tuple[Tensor, Tensor, Tensor]:
    """Shrink boxes [B, n] to the points where every output in ``rows`` can be ``<= 0`` (``<= caps``, one
    per row, when given: an objective cutoff ``f <= U`` is a row with cap ``U``).

    Returns the new boxes and a mask of infeasible boxes (no point can satisfy the rows). Boxes whose
    forward pass leaves an op's domain are returned unchanged (never marked infeasible)."""
    n = tape.n_inputs
    infeasible = torch.zeros(lower.shape[0], dtype=torch.bool, device=lower.device)
    if rows.numel() == 0 or rounds <= 0:
        return lower, upper, infeasible
    targets = tape.outputs[rows.to(tape.outputs.device)].to(lower.device)
    caps = torch.zeros(targets.shape, dtype=lower.dtype, device=lower.device) if caps is None else caps.to(lower)
    new_lower, new_upper = lower.clone(), upper.clone()
    for _ in range(rounds):
        marks = DomainMarks(lower.shape[0], lower.device)
        node_splits = None if splits is None else NodeSplits(splits.nodes, splits.lo.clone(), splits.hi.clone())
        with torch.no_grad():
            lo, hi = forward_bounds(tape, new_lower, new_upper, None, node_splits, marks)
            # an end point at the wrong infinity (lo = +inf, hi = -inf) is an overflow artefact of a finite
            # real value (exp(800)): it carries no information, and must not read as an empty interval
            lo = torch.where(lo == math.inf, torch.full_like(lo, -math.inf), lo)
            hi = torch.where(hi == -math.inf, torch.full_like(hi, math.inf), hi)
            hi[:, targets] = torch.minimum(hi[:, targets], caps.expand_as(hi[:, targets]))
            backward(tape, lo, hi)
        empty = (lo > hi).any(dim=1)
        if node_splits is not None and node_splits.infeasible is not None:
            empty = empty | node_splits.infeasible
        keep = marks.bad[:, None]
        new_lower = torch.where(keep, new_lower, torch.maximum(new_lower, lo[:, :n]))
        new_upper = torch.where(keep, new_upper, torch.minimum(new_upper, hi[:, :n]))
        infeasible = infeasible | (empty & ~marks.bad)
        # an infeasible box keeps its last non-empty bounds (it is pruned anyway)
        new_lower = torch.where(infeasible[:, None], lower, new_lower)
        new_upper = torch.where(infeasible[:, None], upper, new_upper)
    return new_lower, new_upper, infeasible
