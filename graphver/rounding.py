"""Every floating-point rounding rule of graphver, in one place.

graphver computes in round-to-nearest and widens every concretised value by a margin that bounds the
rounding of the computation (docs/developer.md, "Soundness under floating point"). The rules, for a
dtype with machine epsilon ``eps`` (unit roundoff ``u = eps/2``), assuming IEEE arithmetic with gradual
underflow (torch's default; ``torch.set_flush_denormal(True)`` is not supported):

- a sum or product of floats rounds with ``|fl(a op b) - a op b| <= u * |fl(a op b)| * (1 + u)``, and a
  product or quotient may in addition underflow by at most half the smallest subnormal; ``underflow``
  is twice that (the smallest subnormal, ``tiny_normal * eps``). Sums never underflow (they are exact
  when the result is subnormal).
- an absolute error that is never multiplied again is covered by ``tiny`` (1e-300 in float64, 16 times the
  smallest normal number otherwise), added once to each concretised value. It covers up to 1e8 (float32)
  or 1e23 (float64) underflowing products, more than any pass forms per row.
- an underflowing coefficient that a pass multiplies later by a node's value (up to ``size = max(|l|, |u|)``)
  costs ``underflow * size``: ``coefficient_floor`` folds it into the gamma-scaled slack of a pass.
- an n-term sum of products has relative error at most ``gamma(n) = 2 n eps / (1 - n eps)`` (Higham's
  gamma_n with eps for the unit roundoff, so four times the textbook value) of the sum of magnitudes.
- a NaN or overflowed lower bound becomes -inf, an upper bound +inf (``sanitize_lower``/``sanitize_upper``):
  weak, never wrong.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

# Absolute slack for results that underflow, in float64 (other dtypes: 16 times their smallest normal).
TINY64 = 1e-300
# Distance below a closed domain edge (sqrt at 0), in units of eps * (1 + |u|), still treated as rounding
# slack of the argument's own bound (sqrt(x + 1) on x >= -1 sees [-4e-15, 3]).
EDGE_ULPS = 64.0
# Slopes are choices; they stay in [1/MAX_SLOPE, MAX_SLOPE] in magnitude, or 0 (and representable in float32).
MAX_SLOPE = 1e100
# Bound on the library error of log, exp, atanh, tan, log1p and pow, in ulps of the result (FBBT's inverses).
INVERSE_ULPS = 16.0
# The relative factor that covers the rounding of a slack's own computation (n * eps << 1e-6).
SLACK_FACTOR = 1.0 + 1e-6


def dtype_of(value: Tensor | torch.dtype) -> torch.dtype:
    return value if isinstance(value, torch.dtype) else value.dtype


def eps_of(value: Tensor | torch.dtype) -> float:
    """Machine epsilon of a tensor's dtype (2**-52 for float64)."""
    return torch.finfo(dtype_of(value)).eps


def tiny_of(value: Tensor | torch.dtype) -> float:
    """Absolute slack covering underflow, added once to each concretised value."""
    dtype = dtype_of(value)
    return TINY64 if dtype == torch.float64 else float(torch.finfo(dtype).tiny) * 16


def normal_of(value: Tensor | torch.dtype) -> float:
    """Smallest positive normal number of the dtype."""
    return float(torch.finfo(dtype_of(value)).tiny)


def underflow_of(value: Tensor | torch.dtype) -> float:
    """Bound on the absolute error of one product or quotient beyond its relative error (gradual underflow):
    the smallest subnormal, twice the true bound."""
    info = torch.finfo(dtype_of(value))
    return float(info.tiny) * float(info.eps)


def gamma(n: int, eps: float) -> float:
    """Higham's gamma_n bound on the relative rounding error of an n-term sum of products (doubled)."""
    return 2.0 * n * eps / (1.0 - n * eps)


def coefficient_floor(n: int, value: Tensor | torch.dtype) -> float:
    """What a formed coefficient that may have underflowed adds to a backward pass's slack, per unit of the
    value it later multiplies: ``4 * underflow / gamma(n)``, so that ``gamma(n) * slack`` covers up to four
    underflowing products per coefficient term (the term itself, its weight-error product, and their use)."""
    return 4.0 * underflow_of(value) / gamma(n, eps_of(value))


def may_underflow(product: Tensor, a: Tensor, b: Tensor) -> Tensor:
    """Mask of products ``a * b`` that may have lost absolute accuracy to underflow: both factors non-zero
    and the result below twice the smallest normal number (exact zeros are exact)."""
    return (a != 0) & (b != 0) & (product.abs() < 2.0 * normal_of(product))


def magnitude(term: Tensor, size: Tensor) -> Tensor:
    """|term| * size, with 0 * inf taken as 0."""
    return torch.nan_to_num(term.abs() * size, nan=0.0)


def term_slack(term: Tensor, size: Tensor, underflowed: Tensor, floor: float) -> Tensor:
    """Slack of coefficient terms that multiply node values of magnitude ``size``: ``|term| * size``, plus
    ``floor * size`` where the term may have underflowed; 0 * inf is taken as 0."""
    magnitude = term.abs() + torch.where(underflowed, torch.full_like(term, floor), torch.zeros_like(term))
    return torch.nan_to_num(magnitude * size, nan=0.0)


def concretised_lower(value: Tensor, slack: Tensor, constant_error: Tensor, n: int) -> Tensor:
    """The ending shared by every backward pass: ``value`` (computed in floating point) less the rounding
    of the pass (``gamma(n) * slack``), the distance of the stored constants from the exact ones and
    ``tiny``; NaN becomes -inf."""
    rounding = gamma(n, eps_of(value)) * slack * SLACK_FACTOR
    result = value - rounding - constant_error - tiny_of(value)
    return torch.where(torch.isnan(result), torch.full_like(result, -math.inf), result)


def sanitize_lower(b: Tensor) -> Tensor:
    """A lower bound that is NaN or +inf (overflow) is replaced by -inf: weak but sound."""
    return torch.where(torch.isnan(b) | (b == math.inf), torch.full_like(b, -math.inf), b)


def sanitize_upper(b: Tensor) -> Tensor:
    """An upper bound that is NaN or -inf (overflow) is replaced by +inf: weak but sound."""
    return torch.where(torch.isnan(b) | (b == -math.inf), torch.full_like(b, math.inf), b)


def fill_nan(values: Tensor, fill: float) -> Tensor:
    """NaN entries replaced by ``fill`` (infinities kept: torch.nan_to_num would clamp them to finite)."""
    return torch.where(torch.isnan(values), torch.full_like(values, fill), values)


def widen(lo: Tensor, hi: Tensor, relative: float | Tensor, absolute: float | Tensor | None = None) -> tuple[Tensor, Tensor]:
    """``[lo, hi]`` grown by ``relative * |end| + absolute`` on each side (``absolute`` defaults to
    ``tiny``); NaN ends become infinite (no information)."""
    absolute = tiny_of(lo) if absolute is None else absolute
    lo = fill_nan(lo, -math.inf)
    hi = fill_nan(hi, math.inf)
    lo = lo - (lo.abs() * relative + absolute)
    hi = hi + (hi.abs() * relative + absolute)
    return fill_nan(lo, -math.inf), fill_nan(hi, math.inf)


def max_slope(t: Tensor) -> float:
    """The largest slope a relaxation line may take in the tensor's dtype (its square is finite)."""
    return min(MAX_SLOPE, math.sqrt(torch.finfo(t.dtype).max) / 4)


def slope_floor(t: Tensor) -> float:
    """The smallest non-zero slope a relaxation line may take (its square is a normal number)."""
    return max(1.0 / MAX_SLOPE, 4 * math.sqrt(normal_of(t)))


def flush_slope(a: Tensor) -> Tensor:
    """Slopes below ``slope_floor`` become 0. Any slope gives sound lines, but the critical points of
    ``f'(x) = a`` are computed by formulas (1/a^2, (a/p)^(1/(p-1))) that underflow for tiny slopes and then
    miss the true point by far more than the second-order margin allows; slope 0 is always safe.

    The gradient passes straight through (alpha optimises slopes that may sit at 0): the value is
    ``a + (flushed - a)``, exactly ``flushed`` in floating point (``a + (-a)`` is exactly 0)."""
    flushed = torch.where(a.abs() < slope_floor(a), torch.zeros_like(a), a)
    return a + (flushed - a).detach() if a.requires_grad else flushed


def snap_to_zero(l: Tensor, u: Tensor) -> Tensor:
    """``l`` moved to 0 where it lies in [-EDGE_ULPS*eps*(1 + |u|), 0)."""
    slack = (l < 0) & (l >= -EDGE_ULPS * eps_of(l) * (1.0 + u.abs()))
    return torch.where(slack, torch.zeros_like(l), l)


def convert_constants(values: Tensor, error: Tensor, dtype) -> tuple[Tensor, Tensor]:
    """Constants in another float dtype, with their error bound grown by the new rounding (rounded up).

    The distance of the converted values from the stored ones is computed in float64 (the factor
    1 + 1e-12 covers that subtraction and the sum), and the total is rounded up into ``dtype``."""
    if values.dtype == dtype:
        return values, error
    converted = values.to(dtype)
    extra = (values.double() - converted.double()).abs()
    total = (error.double() + extra) * (1.0 + 1e-12)
    total_new = total.to(dtype)
    total_new = torch.where(total_new.double() < total, torch.nextafter(total_new, torch.full_like(total_new, math.inf)), total_new)
    return converted, total_new


def computed_error(value):
    """Bound on the rounding error of a float64 number computed by one correctly rounded operation (1/c):
    ``eps * |value|`` plus one underflow. Works on numpy arrays and floats."""
    return abs(value) * eps_of(torch.float64) + underflow_of(torch.float64)


def root_slack(v: Tensor, p: float) -> Tensor:
    """Relative error bound of ``v ** fl(1/p)`` against the exact root ``v ** (1/p)``: the library's error plus
    ``exp(|ln v| * delta) - 1`` for the exponent's error ``delta <= 2 eps / |p|`` (``fl(1/p)`` rounds once,
    and ``p`` itself is the float nearest the model's exponent). The exponential is bounded by twice its
    linear term while that is below 1; beyond it (never in practice) the slack is infinite."""
    eps = eps_of(v)
    spread = v.abs().clamp(min=underflow_of(v)).log().abs() * (2.0 * eps / abs(p))  # subnormals included
    factor = torch.where(spread < 1.0, 2.0 * spread, torch.full_like(spread, math.inf))
    return INVERSE_ULPS * eps + factor


def round_outward(low: torch.Tensor, high: torch.Tensor, dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """Convert a box to ``dtype`` so that it still contains the float64 box (lower down, upper up)."""
    if dtype == torch.float64:
        return low, high
    new_low, new_high = low.to(dtype), high.to(dtype)
    new_low = torch.where(new_low.double() > low, torch.nextafter(new_low, torch.full_like(new_low, -math.inf)), new_low)
    new_high = torch.where(new_high.double() < high, torch.nextafter(new_high, torch.full_like(new_high, math.inf)), new_high)
    return new_low, new_high
