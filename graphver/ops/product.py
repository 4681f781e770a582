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

from graphver.ops.base import BinaryOp, PlaneRelaxation, eps_of, sanitize_lower, sanitize_upper, tiny_of
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
        eps = eps_of(lx)

        def margin(cx, cy, b):
            return 8.0 * eps * (cx.abs() * mag_x + cy.abs() * mag_y + b.abs()) + tiny_of(lx)

        lower_bias = sanitize_lower(lower_bias - margin(lower_x, lower_y, lower_bias))
        upper_bias = sanitize_upper(upper_bias + margin(upper_x, upper_y, upper_bias))
        return PlaneRelaxation(lower_x, lower_y, lower_bias, upper_x, upper_y, upper_bias)

    def branch_point(self, l, u, param=None):
        """Split a factor at 0 when its interval contains 0 (where McCormick is loosest), else the midpoint."""
        inside = (l < 0) & (u > 0)
        return torch.where(inside, torch.zeros_like(l), l + (u - l) / 2)
