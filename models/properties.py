"""Properties for ``Model.verify`` whose verdict is known: true ones that need branching, false ones whose
violation region is narrow.

Each entry of ``PROPERTIES`` builds a fresh ``graphver.Model`` and returns a ``PropertyProblem``: the
model, the property (a relation, a list, ``gv.All`` or ``gv.Any``) and whether it ``holds``. The true ones
are chosen so that one bound pass (``m.interval(margin, method="alpha")``) does not prove them while
branch-and-bound can; the false ones are violated only on a small part of the box, so random sampling
alone rarely finds a counterexample. Each builder's comment says why the property holds or fails.

    from models.properties import PROPERTIES
    problem = PROPERTIES["sin_cos_identity"]()
    problem.model.verify(problem.prop).status   # "verified" (problem.holds is True)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

import graphver as gv


@dataclass
class PropertyProblem:
    """One property over one model's box; ``holds`` says whether it is true on the whole box."""

    name: str
    model: gv.Model
    prop: Any  # a sympy relation, a list of them, gv.All([...]) or gv.Any([...])
    holds: bool
    description: str


PROPERTIES: dict[str, Callable[[], PropertyProblem]] = {}


def register(builder: Callable[[], PropertyProblem]) -> Callable[[], PropertyProblem]:
    """Add a builder to ``PROPERTIES`` under its function name."""
    PROPERTIES[builder.__name__] = builder
    return builder


# --- true properties: one bound pass is not enough ----------------------------------------------------


@register
def sin_cos_identity() -> PropertyProblem:
    # sin^2 x + cos^2 x = 1 for every x, so the margin 1 + 1e-7 - (sin^2 + cos^2) is 1e-7 everywhere.
    # The two squares are relaxed separately on a 12 rad wide interval (each alone ranges over [0, 1]):
    # only narrow domains make the relaxation errors, which grow like the width squared, fall below 1e-7.
    m = gv.Model("sin_cos_identity")
    x = m.var("x", -6, 6)
    return PropertyProblem("sin_cos_identity", m, gv.sin(x) ** 2 + gv.cos(x) ** 2 <= 1 + 1e-7, True,
                           "sin^2 x + cos^2 x <= 1 + 1e-7 on [-6, 6] (an identity with margin 1e-7)")


@register
def x_exp_peak_holds() -> PropertyProblem:
    # g(x) = x e^-x has g'(x) = (1 - x) e^-x: increasing on [0, 1], decreasing on [1, 5], so max g = g(1)
    # = 1/e = 0.36787944117... < 0.36788 (margin 5.6e-7 at x = 1).
    m = gv.Model("x_exp_peak_holds")
    x = m.var("x", 0, 5)
    return PropertyProblem("x_exp_peak_holds", m, x * gv.exp(-x) <= 0.36788, True,
                           "x exp(-x) <= 0.36788 on [0, 5] (max 1/e, margin 5.6e-7)")


@register
def pendulum_step_energy() -> PropertyProblem:
    # One symplectic Euler step of the unit pendulum, h = 0.1: theta1 = theta + h w, w1 = w - h sin(theta1).
    # The energy change dE = E(theta1, w1) - E(theta, w), E = w^2/2 + 1 - cos theta, is, with
    # cos theta = cos(theta1 - h w) = cos theta1 cos hw + sin theta1 sin hw,
    #     dE = h^2 sin^2(theta1)/2 - (1 - cos hw) cos theta1 - (hw - sin hw) sin theta1,
    # so |dE| <= h^2/2 + (hw)^2/2 + (hw)^3/6 ~ 0.01 on the box. Its extremes over theta, w in [-1, 1]
    # (2001^2 grid polished with L-BFGS-B; both on the box edge): max 0.0035595146 at (theta, w) =
    # (-1, -0.0846) and (1, 0.0846); min -0.0049967600 at (-0.0889, 1) and (0.0889, -1). The bounds 0.0036
    # and -0.00501 leave margins 4.0e-5 and 1.3e-5; the relaxations of the composed step (sin of a sum,
    # then a square) lose far more than that on the whole box.
    m = gv.Model("pendulum_step_energy")
    theta, w = m.var("theta", -1, 1), m.var("w", -1, 1)
    h = 0.1
    theta1 = theta + h * w
    w1 = w - h * gv.sin(theta1)
    change = (w1**2 / 2 + 1 - gv.cos(theta1)) - (w**2 / 2 + 1 - gv.cos(theta))
    return PropertyProblem("pendulum_step_energy", m, gv.All([change <= 0.0036, change >= -0.00501]), True,
                           "energy drift of one symplectic Euler step (h = 0.1) of a pendulum within "
                           "[-0.00501, 0.0036]")


@register
def tanh_times_x() -> PropertyProblem:
    # tanh has the sign of its argument, so x tanh(x) >= 0 with equality only at x = 0; the margin to
    # -0.001 is at least 0.001. On [-2, 2] the product of two factors that each change sign is relaxed
    # (McCormick) far below -0.001; only domains narrow around 0 close it.
    m = gv.Model("tanh_times_x")
    x = m.var("x", -2, 2)
    return PropertyProblem("tanh_times_x", m, gv.tanh(x) * x >= -0.001, True,
                           "x tanh(x) >= -0.001 on [-2, 2] (true minimum 0 at x = 0)")


def relu_net(m: gv.Model):
    """A 2-5-1 ReLU network on [-1, 1]^2 (a residual-style unit h1 - h4 + 0.2 in its last layer)."""
    x, y = m.var("x", -1, 1), m.var("y", -1, 1)
    h1, h2 = gv.relu(x + y - 0.5), gv.relu(x - y + 0.5)
    h3, h4 = gv.relu(-x + 0.25), gv.relu(x / 2 + y)
    return h1 - h2 + h3 / 2 - 3 * h4 / 4 + 3 * gv.relu(h1 - h4 + 0.2) / 10


# The network is piecewise linear, so its maximum over the box is at a vertex of the arrangement of its
# breakpoint lines (x + y = 0.5, x - y = -0.5, x = 0.25, x/2 + y = 0, and for the last unit x = 0.6,
# x/2 + y = 0.2) with the box edges. Enumerating those vertices gives max 0.685, attained on the whole edge
# x = -1, -0.5 <= y <= 0.5, where h1 = h2 = h4 = 0, h3 = 1.25 and the last unit is 0.2:
# 1.25/2 + 0.3 * 0.2 = 0.685. Near that edge the output is 0.685 - (x + 1)/2.
RELU_NET_MAX = 0.685


@register
def relu_net_holds() -> PropertyProblem:
    # The maximum is 0.685 (see RELU_NET_MAX): output <= 0.69 holds with margin 0.005. The triangle
    # relaxations of the five unstable ReLUs (each changes phase inside the box) lose more than that.
    m = gv.Model("relu_net_holds")
    return PropertyProblem("relu_net_holds", m, relu_net(m) <= 0.69, True,
                           "2-5-1 ReLU network output <= 0.69 on [-1, 1]^2 (max 0.685)")


@register
def sigmoid_symmetry() -> PropertyProblem:
    # s(x) + s(-x) = 1/(1 + e^-x) + 1/(1 + e^x) = 1/(1 + e^-x) + e^-x/(e^-x + 1) = 1 for every x, so the
    # margin is 1e-6 everywhere. The two sigmoids are relaxed independently (each spans most of (0, 1) on
    # [-6, 6]), so the relaxation errors must be driven below 1e-6 by splitting.
    m = gv.Model("sigmoid_symmetry")
    x = m.var("x", -6, 6)
    return PropertyProblem("sigmoid_symmetry", m, gv.sigmoid(x) + gv.sigmoid(-x) <= 1 + 1e-6, True,
                           "sigmoid(x) + sigmoid(-x) <= 1 + 1e-6 on [-6, 6] (an identity with margin 1e-6)")


@register
def square_expanded() -> PropertyProblem:
    # x^2 - 2xy + y^2 = (x - y)^2 >= 0 > -1e-3. Written expanded, the bilinear term -2xy is relaxed
    # (McCormick) separately from the squares; the margin is smallest (1e-3) along the whole diagonal x = y,
    # so branching must cover a line of near-tight domains.
    m = gv.Model("square_expanded")
    x, y = m.var("x", -1, 1), m.var("y", -1, 1)
    return PropertyProblem("square_expanded", m, x**2 - 2 * x * y + y**2 >= -1e-3, True,
                           "x^2 - 2xy + y^2 >= -1e-3 on [-1, 1]^2 (= (x - y)^2, zero on the diagonal)")


@register
def sin_or_cos_small_holds() -> PropertyProblem:
    # Any: at each x, sin x <= 0.75 or cos x <= 0.75. On [-3, 3], sin x > 0.75 only for
    # x in (asin 0.75, pi - asin 0.75) = (0.848, 2.294) and cos x > 0.75 only for |x| < acos 0.75 = 0.723:
    # disjoint sets, so one relation holds everywhere. The best margin is smallest at x = pi/4, where
    # max(0.75 - sin, 0.75 - cos) = 0.75 - sqrt(2)/2 = 0.043. Neither relation holds on the whole box, so
    # no single bound pass proves the disjunction.
    m = gv.Model("sin_or_cos_small_holds")
    x = m.var("x", -3, 3)
    return PropertyProblem("sin_or_cos_small_holds", m, gv.Any([gv.sin(x) <= 0.75, gv.cos(x) <= 0.75]), True,
                           "Any(sin x <= 0.75, cos x <= 0.75) on [-3, 3] (worst margin 0.043 at pi/4)")


# --- false properties: narrow violation regions -------------------------------------------------------


@register
def x_exp_peak_fails() -> PropertyProblem:
    # max x e^-x = 1/e = 0.367879441... > 0.36787 (at x = 1). Near x = 1, g(x) ~ 1/e - (x - 1)^2/(2e), so
    # g > 0.36787 only for |x - 1| < sqrt(2e (1/e - 0.36787)) ~ 0.0072: 0.3 % of the box.
    m = gv.Model("x_exp_peak_fails")
    x = m.var("x", 0, 5)
    return PropertyProblem("x_exp_peak_fails", m, x * gv.exp(-x) <= 0.36787, False,
                           "x exp(-x) <= 0.36787 on [0, 5] (violated only for |x - 1| < 0.0072)")


@register
def gaussian_peak() -> PropertyProblem:
    # exp(-100 r^2), r the distance to (0.3, -0.2), is 1 at the peak. It exceeds 0.99 only where
    # 100 r^2 < -ln 0.99 = 0.01005, i.e. r < 0.010025: a disc of area 3.2e-4 in a box of area 4 (0.008 %).
    m = gv.Model("gaussian_peak")
    x, y = m.var("x", -1, 1), m.var("y", -1, 1)
    bump = gv.exp(-100 * (x - 0.3) ** 2 - 100 * (y + 0.2) ** 2)
    return PropertyProblem("gaussian_peak", m, bump <= 0.99, False,
                           "exp(-100((x-0.3)^2 + (y+0.2)^2)) <= 0.99 on [-1, 1]^2 (violated in a disc of "
                           "radius 0.01)")


@register
def six_hump_threshold() -> PropertyProblem:
    # The six-hump camel's global minimum is -1.0316284535 (models.optimization.six_hump_camel), at
    # +-(0.0898, -0.7126), so f >= -1.0316 fails by 2.85e-5 there. The Hessian's eigenvalues there are
    # 7.68 and 16.49, so f < -1.0316 only within sqrt(2 * 2.85e-5 / 7.68) ~ 0.0027 of each minimiser.
    m = gv.Model("six_hump_threshold")
    x, y = m.var("x", -3, 3), m.var("y", -2, 2)
    camel = (4 - 2.1 * x**2 + x**4 / 3) * x**2 + x * y + (-4 + 4 * y**2) * y**2
    return PropertyProblem("six_hump_threshold", m, camel >= -1.0316, False,
                           "six-hump camel >= -1.0316 on [-3, 3] x [-2, 2] (min -1.03163; two tiny "
                           "violation regions)")


@register
def relu_net_fails() -> PropertyProblem:
    # The maximum is 0.685 on the edge x = -1, -0.5 <= y <= 0.5 (see RELU_NET_MAX); near it the output is
    # 0.685 - (x + 1)/2, so output <= 0.684 fails only for x < -0.998, -0.5 <= y <= 0.5: 0.05 % of the box
    # (the corners, tried first by the search, all satisfy it: outputs 0.185, 0.25, -2.44, -0.065).
    m = gv.Model("relu_net_fails")
    return PropertyProblem("relu_net_fails", m, relu_net(m) <= RELU_NET_MAX - 0.001, False,
                           "2-5-1 ReLU network output <= 0.684 on [-1, 1]^2 (violated in a 0.002-wide strip)")


@register
def sin_or_cos_small_fails() -> PropertyProblem:
    # Any: sin x <= 0.7 or cos x <= 0.7. Both fail where sin x > 0.7 and cos x > 0.7, i.e. for
    # x in (asin 0.7, acos 0.7) = (0.77540, 0.79540): an interval of width 0.020 in [-3, 3], centred on
    # pi/4 where both equal sqrt(2)/2 = 0.7071 > 0.7.
    m = gv.Model("sin_or_cos_small_fails")
    x = m.var("x", -3, 3)
    return PropertyProblem("sin_or_cos_small_fails", m, gv.Any([gv.sin(x) <= 0.7, gv.cos(x) <= 0.7]), False,
                           f"Any(sin x <= 0.7, cos x <= 0.7) on [-3, 3] (both fail on (0.7754, 0.7954), "
                           f"around pi/4 = {math.pi / 4:.4f})")


__all__ = ["PROPERTIES", "PropertyProblem", "RELU_NET_MAX", "register"]
