"""Product of two expressions: McCormick planes with a tunable convex combination.

For x in [lx, ux], y in [ly, uy] (McCormick 1976):
  lower planes  P1 = ly*x + lx*y - lx*ly,  P2 = uy*x + ux*y - ux*uy   (both <= x*y on the box)
  upper planes  P3 = uy*x + lx*y - lx*uy,  P4 = ly*x + ux*y - ux*ly   (both >= x*y on the box)
Any convex combination r*P1 + (1-r)*P2 (resp. of P3, P4), r in [0, 1], is again valid: r is the
parameter of the alpha method. The planes' coefficients are the exact bounds; only the bias products
and the combination round, covered by a margin of a few ulps of |coefficient * magnitude|.
"""

from __future__ import annotations

import torch

from graphver.ops.base import BinaryOp, PlaneRelaxation
from graphver.rounding import eps_of, sanitize_lower, sanitize_upper, tiny_of, underflow_of
from graphver.ops.registry import register


@register
class Mul(BinaryOp):
    name = "mul"

    def f(self, x, y, param=None):
        return x * y

    def df(self, x, y, param=None):
        """Partial derivatives (d/dx, d/dy) = (y, x)."""
        return y, x

    def interval(self, lx, ux, ly, uy, param=None):
        products = torch.stack([lx * ly, lx * uy, ux * ly, ux * uy], -1)
        low, high = products.amin(-1), products.amax(-1)
        margin = eps_of(lx) * products.abs().amax(-1) + tiny_of(lx)
        return sanitize_lower(low - margin), sanitize_upper(high + margin)

    def relax(self, lx, ux, ly, uy, param=None, alpha_lower=None, alpha_upper=None):
        r_low = torch.full_like(lx, 0.5) if alpha_lower is None else alpha_lower.clamp(0.0, 1.0)
        r_up = torch.full_like(lx, 0.5) if alpha_upper is None else alpha_upper.clamp(0.0, 1.0)
        lower_x = r_low * ly + (1 - r_low) * uy
        lower_y = r_low * lx + (1 - r_low) * ux
        lower_bias = -(r_low * (lx * ly) + (1 - r_low) * (ux * uy))
        upper_x = r_up * uy + (1 - r_up) * ly
        upper_y = r_up * lx + (1 - r_up) * ux
        upper_bias = -(r_up * (lx * uy) + (1 - r_up) * (ux * ly))
        mag_x = torch.maximum(lx.abs(), ux.abs())
        mag_y = torch.maximum(ly.abs(), uy.abs())
        eps, underflow = eps_of(lx), underflow_of(lx)

        def margin(r, x1, x2, y1, y2):
            # The plane r*(y1 x + x1 y - x1 y1) + (1-r)*(y2 x + x2 y - x2 y2) is valid with its exact
            # coefficients; the computed ones differ by at most 3u of the magnitudes of their terms (the
            # sums may cancel, so not of their results) plus an underflow per product, and each
            # coefficient multiplies a value of size mag_x or mag_y.
            s = 1 - r
            coef_x = (r * y1).abs() + (s * y2).abs()
            coef_y = (r * x1).abs() + (s * x2).abs()
            constant = (r * (x1 * y1)).abs() + (s * (x2 * y2)).abs()
            rounding = 4.0 * eps * (coef_x * mag_x + coef_y * mag_y + constant)
            return rounding + 4.0 * underflow * (mag_x + mag_y) + tiny_of(lx)

        lower_bias = sanitize_lower(lower_bias - margin(r_low, lx, ux, ly, uy))
        upper_bias = sanitize_upper(upper_bias + margin(r_up, lx, ux, uy, ly))
        return PlaneRelaxation(lower_x, lower_y, lower_bias, upper_x, upper_y, upper_bias)

    def tight_alpha(self, lx, ux, ly, uy, x, y, param=None):
        """Per line, the McCormick plane (r = 1: P1 / P3, r = 0: P2 / P4) that is tighter at (x, y)."""
        lower_1 = ly * x + lx * y - lx * ly
        lower_2 = uy * x + ux * y - ux * uy
        upper_3 = uy * x + lx * y - lx * uy
        upper_4 = ly * x + ux * y - ux * ly
        return (lower_1 >= lower_2).to(x.dtype), (upper_3 <= upper_4).to(x.dtype)

    def branch_point(self, l, u, param=None):
        """Split a factor at 0 when its interval contains 0 (where McCormick is loosest), else the midpoint."""
        inside = (l < 0) & (u > 0)
        return torch.where(inside, torch.zeros_like(l), l + (u - l) / 2)


@register
class QuadOverLin(BinaryOp):
    """x^2 / y for y > 0: jointly convex (the perspective of x^2), e.g. the rotated second-order cone
    x^2 <= y z written as quad_over_lin(x, y) <= z.

    Lower planes: the tangent planes. f is homogeneous of degree 1, so the tangent plane at (x0, y0)
    depends only on the ratio r = x0 / y0 and has no constant: x^2/y >= 2r x - r^2 y for every real r and
    y > 0, since x^2/y - 2r x + r^2 y = (x - r y)^2 / y >= 0. The parameter picks r in the range of x/y on
    the box. Upper plane: f is convex, so a plane above f at the box's four corners is above f on the whole
    box; the slopes are the chord slopes of the corners, the bias covers every corner.
    """

    name = "quad_over_lin"
    domain = "y > 0"

    def f(self, x, y, param=None):
        return torch.where(y > 0, x * x / y, torch.full_like(y, float("nan")))

    def df(self, x, y, param=None):
        """(2x/y, -x^2/y^2)."""
        return 2 * x / y, -(x / y) ** 2

    def domain_violation(self, lx, ux, ly, uy, param=None):
        return ~(ly > 0)

    def interval(self, lx, ux, ly, uy, param=None):
        # x^2/y is formed as (m / y) * m, m = |x|: two roundings of u each, and underflows of at most
        # `underflow` (the quotient's is multiplied by m). x^2/y >= 0 for y > 0.
        inside = (lx <= 0) & (ux >= 0)
        m_low = torch.where(inside, torch.zeros_like(lx), torch.minimum(lx.abs(), ux.abs()))
        m_high = torch.maximum(lx.abs(), ux.abs())
        eps, underflow = eps_of(lx), underflow_of(lx)
        low = (m_low / uy) * m_low * (1 - 4 * eps) - underflow * (m_low + 2)
        high = (m_high / ly) * m_high * (1 + 4 * eps) + underflow * (m_high + 2) + tiny_of(lx)
        low = low.clamp(min=0)
        bad = ~(ly > 0)
        low = torch.where(bad, torch.full_like(low, -torch.inf), low)
        high = torch.where(bad, torch.full_like(high, torch.inf), high)
        return sanitize_lower(low), sanitize_upper(high)

    def ratio_range(self, lx, ux, ly, uy):
        safe_ly = torch.where(ly > 0, ly, torch.ones_like(ly))
        safe_uy = torch.where(uy > 0, uy, torch.ones_like(uy))
        ratios = torch.stack([lx / safe_ly, lx / safe_uy, ux / safe_ly, ux / safe_uy], -1)
        return ratios.amin(-1), ratios.amax(-1)

    def relax(self, lx, ux, ly, uy, param=None, alpha_lower=None, alpha_upper=None):
        eps, underflow = eps_of(lx), underflow_of(lx)
        rmin, rmax = self.ratio_range(lx, ux, ly, uy)
        a = torch.full_like(lx, 0.5) if alpha_lower is None else alpha_lower.clamp(0.0, 1.0)
        r = rmin + a * (rmax - rmin)
        lower_x = 2 * r  # exact
        square = r * r
        lower_y = -square
        # only r*r rounds: 2r x - fl(r^2) y <= x^2/y + |r^2 - fl(r^2)| y, |r^2 - fl(r^2)| <= u r^2 + underflow
        lower_bias = -((2 * eps * square + underflow) * uy.abs() + tiny_of(lx))
        # upper: chord slopes through the corners, bias lifted over all four
        safe_ly = torch.where(ly > 0, ly, torch.ones_like(ly))
        safe_uy = torch.where(uy > 0, uy, torch.ones_like(uy))
        mid_y = safe_ly / 2 + safe_uy / 2
        upper_x = (lx + ux) / mid_y
        # -(lx^2 + ux^2) / (2 ly uy), formed from ratios so that it neither underflows nor overflows early
        upper_y = -((lx / safe_ly) * (lx / safe_uy) + (ux / safe_ly) * (ux / safe_uy)) / 2
        corners_x = torch.stack([lx, lx, ux, ux], -1)
        corners_y = torch.stack([safe_ly, safe_uy, safe_ly, safe_uy], -1)
        values = (corners_x / corners_y) * corners_x  # as in interval: no underflow of x^2 before the division
        gaps = values - upper_x[..., None] * corners_x - upper_y[..., None] * corners_y
        sizes = values.abs() + (upper_x[..., None] * corners_x).abs() + (upper_y[..., None] * corners_y).abs()
        upper_bias = (gaps + 8 * eps * sizes + underflow * (corners_x.abs() + 4)).amax(-1) + tiny_of(lx)
        bad = ~(ly > 0)
        lower_bias = torch.where(bad, torch.full_like(lower_bias, -torch.inf), lower_bias)
        upper_bias = torch.where(bad, torch.full_like(upper_bias, torch.inf), upper_bias)
        return PlaneRelaxation(lower_x, lower_y, sanitize_lower(lower_bias), upper_x, upper_y, sanitize_upper(upper_bias))

    def tight_alpha(self, lx, ux, ly, uy, x, y, param=None):
        """The tangent plane at (x, y): the ratio x / y."""
        rmin, rmax = self.ratio_range(lx, ux, ly, uy)
        span = rmax - rmin
        safe = torch.where(y > 0, y, torch.ones_like(y))
        alpha = torch.where(span > 0, (x / safe - rmin) / torch.where(span > 0, span, torch.ones_like(span)), 0.5)
        alpha = torch.nan_to_num(alpha, nan=0.5).clamp(0.0, 1.0)
        return alpha, torch.full_like(alpha, 0.5)

    def branch_point(self, l, u, param=None):
        return l + (u - l) / 2
