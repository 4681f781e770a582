"""False properties whose violation region is too narrow for random sampling: the search side's test set.

Each entry of ``FALSIFIABLE`` builds a fresh model in 3 to 6 dimensions and returns a ``PropertyProblem``
(``holds`` is False) together with ``witness``, a point where the property fails, and ``share``, an
estimate of the fraction of the box where it fails (the volume of the small region around the witness
divided by the box's volume; each builder's comment derives it). With shares of 1e-8 and below, 100,000
uniform samples hit the region with probability under 0.1 %, while a local solver that follows the
function's gradient into the region finds it (IPOPT in ``tests/test_search.py`` and ``bench/search.py``).

The regions are narrow in different ways: a thin spike on a smooth bowl, at the end of a curved valley,
or among many local minima; the solution of a small nonlinear system (trigonometric, bilinear, atan); a
saturating tanh term per coordinate; an "all" property with one narrow row and an "any" property whose
two rows fail together only on a lens between two small balls.

    from models.falsifiable import FALSIFIABLE
    problem = FALSIFIABLE["spike_in_bowl"]()
    problem.model.verify(problem.prop).status   # "falsified"
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import sympy

import graphver as gv
from models.properties import PropertyProblem


@dataclass
class NarrowProblem(PropertyProblem):
    """A false property with a known ``witness`` (variable -> value) and the ``share`` of the box where it fails."""

    witness: dict | None = None
    share: float = 0.0


FALSIFIABLE: dict[str, Callable[[], NarrowProblem]] = {}


def register(builder: Callable[[], NarrowProblem]) -> Callable[[], NarrowProblem]:
    """Add a builder to ``FALSIFIABLE`` under its function name."""
    FALSIFIABLE[builder.__name__] = builder
    return builder


def ball_share(radius: float, dims: int, box_volume: float) -> float:
    """Volume of a ``dims``-ball of ``radius`` over ``box_volume``."""
    return math.pi ** (dims / 2) / math.gamma(dims / 2 + 1) * radius**dims / box_volume


def squared_distance(xs, centre) -> sympy.Expr:
    return sum((x - c) ** 2 for x, c in zip(xs, centre))


def problem(name, m, prop, description, witness, share) -> NarrowProblem:
    return NarrowProblem(name, m, prop, False, description, dict(zip(m.names, witness)), share)


@register
def spike_in_bowl() -> NarrowProblem:
    # f = 0.1 + s - 0.2 exp(-1e4 s), s = |x - a|^2. f < 0 needs 0.2 exp(-1e4 s) > 0.1, so s < ln 2 / 1e4 and
    # |x - a| < 0.0083: a ball of that radius in the box [-2, 2]^3 (volume 64).
    m = gv.Model("spike_in_bowl")
    xs = m.vars("x", 3, -2, 2)
    a = (0.3, -0.7, 1.1)
    s = squared_distance(xs, a)
    return problem("spike_in_bowl", m, 0.1 + s - 0.2 * gv.exp(-1e4 * s) >= 0,
                   "a thin Gaussian spike at the bottom of a bowl (3 dims)", a,
                   ball_share(math.sqrt(math.log(2) / 1e4), 3, 64))


@register
def spike_rosenbrock() -> NarrowProblem:
    # Rosenbrock's curved valley ends at (1, 1, 1, 1), where a spike of depth 0.002 dips below the floor 0.001:
    # f < 0 needs 0.002 exp(-1e4 s) > 0.001, so |x - 1| < 0.0083 (box [-2, 2]^4, volume 256).
    m = gv.Model("spike_rosenbrock")
    xs = m.vars("x", 4, -2, 2)
    rosenbrock = sum(100 * (xs[i + 1] - xs[i] ** 2) ** 2 + (1 - xs[i]) ** 2 for i in range(3))
    s = squared_distance(xs, (1, 1, 1, 1))
    return problem("spike_rosenbrock", m, 0.01 * rosenbrock + 0.001 - 0.002 * gv.exp(-1e4 * s) >= 0,
                   "a spike at the end of Rosenbrock's curved valley (4 dims)", (1, 1, 1, 1),
                   ball_share(math.sqrt(math.log(2) / 1e4), 4, 256))


@register
def spike_among_minima() -> NarrowProblem:
    # A cosine background with a local minimum at every lattice point a + integer vector (81 of them in the box),
    # tilted by 0.002 |x - a|^2 so that a is the lowest; the spike at a is the only violation: f < 0 needs
    # 0.02 exp(-1e4 s) > 0.01 + (nonnegative terms), so |x - a| < 0.0083 (box [-2, 2]^4).
    m = gv.Model("spike_among_minima")
    xs = m.vars("x", 4, -2, 2)
    a = (0.2, -0.4, 0.6, 0.1)
    s = squared_distance(xs, a)
    background = sum(0.05 * (1 - gv.cos(2 * sympy.pi * (x - c))) for x, c in zip(xs, a)) + 0.002 * s
    return problem("spike_among_minima", m, background + 0.01 - 0.02 * gv.exp(-1e4 * s) >= 0,
                   "a spike at the lowest of 81 cosine minima (4 dims)", a,
                   ball_share(math.sqrt(math.log(2) / 1e4), 4, 256))


@register
def bilinear_system() -> NarrowProblem:
    # x y = 1, y z = 2, x + z = 3 has the single solution (1, 1, 2) (z = 2x from the first two, then x = 1).
    # The sum of squared residuals is below 1e-8 only where |J d| < 1e-4 (J the Jacobian there, |det J| = 3):
    # an ellipsoid of volume 4/3 pi 1e-12 / 3 in the box [-3, 3]^3 (volume 216).
    m = gv.Model("bilinear_system")
    x, y, z = m.vars("x", 3, -3, 3)
    residual = (x * y - 1) ** 2 + (y * z - 2) ** 2 + (x + z - 3) ** 2
    return problem("bilinear_system", m, residual >= 1e-8, "no point solves x y = 1, y z = 2, x + z = 3 (3 dims)",
                   (1, 1, 2), 4 / 3 * math.pi * 1e-12 / 3 / 216)


@register
def trig_system() -> NarrowProblem:
    # sin x = 1/2, cos y = -0.3, x y = z: in [0, 2] x [0, 3] x [-2, 6] the one solution is x = pi/6,
    # y = acos(-0.3), z = x y. Residuals below 1e-5 in each equation: a region of volume about (2e-5)^3 times
    # the inverse Jacobian determinant (cos x sin y ~ 0.83), in a box of volume 48.
    m = gv.Model("trig_system")
    x, y, z = m.var("x", 0, 2), m.var("y", 0, 3), m.var("z", -2, 6)
    residual = (gv.sin(x) - 0.5) ** 2 + (gv.cos(y) + 0.3) ** 2 + (x * y - z) ** 2
    wx, wy = math.pi / 6, math.acos(-0.3)
    return problem("trig_system", m, residual >= 1e-10, "no point solves sin x = 1/2, cos y = -0.3, x y = z (3 dims)",
                   (wx, wy, wx * wy), (2e-5) ** 3 / 0.83 / 48)


@register
def atan_system() -> NarrowProblem:
    # atan x = atan y, y z = 1, x = z / 2 in [0, 2]^3: x = y = 1/sqrt 2, z = sqrt 2. Residual squares below
    # 1e-9 need each residual below 3.2e-5: a region of volume about (6.4e-5)^3 / |det J| (|det J| ~ 1.8),
    # box volume 8.
    m = gv.Model("atan_system")
    x, y, z = m.vars("x", 3, 0, 2)
    residual = (gv.atan(x) - gv.atan(y)) ** 2 + (y * z - 1) ** 2 + (x - z / 2) ** 2
    r = 1 / math.sqrt(2)
    return problem("atan_system", m, residual >= 1e-9, "no point solves atan x = atan y, y z = 1, x = z/2 (3 dims)",
                   (r, r, 2 * r), (6.4e-5) ** 3 / 1.8 / 8)


@register
def tanh_box() -> NarrowProblem:
    # sum_i tanh(3 (x_i - a_i))^2 < 1e-6 needs |tanh(3 (x_i - a_i))| < 1e-3 for every i, so |x_i - a_i| < 3.4e-4:
    # a cube of side 6.7e-4 in [-1, 1]^6 (volume 64).
    m = gv.Model("tanh_box")
    xs = m.vars("x", 6, -1, 1)
    a = (0.31, -0.52, 0.13, 0.77, -0.25, 0.05)
    total = sum(gv.tanh(3 * (x - c)) ** 2 for x, c in zip(xs, a))
    return problem("tanh_box", m, total >= 1e-6, "every tanh(3 (x_i - a_i)) near zero at once (6 dims)", a,
                   (6.7e-4) ** 6 / 64)


@register
def log_distance() -> NarrowProblem:
    # log(1 + sum w_i (x_i - a_i)^2) < 1e-6 needs the weighted distance below 1e-6, an ellipsoid with semi-axes
    # 1e-3 / sqrt(w_i) in [-3, 3]^5 (volume 7776); the weights make the valley ill-conditioned (1 to 100).
    m = gv.Model("log_distance")
    xs = m.vars("x", 5, -3, 3)
    a = (1.2, -0.8, 2.1, 0.4, -1.7)
    w = (1, 10, 100, 3, 30)
    weighted = sum(wi * (x - c) ** 2 for wi, x, c in zip(w, xs, a))
    volume = ball_share(1e-3, 5, 7776) / math.sqrt(math.prod(w))
    return problem("log_distance", m, gv.log(1 + weighted) >= 1e-6,
                   "an ill-conditioned distance to a point, through log (5 dims)", a, volume)


@register
def narrow_row_of_all() -> NarrowProblem:
    # Two rows that must both hold: the first (sum <= 8.5) holds on all of [0, 2]^4 with margin >= 0.5 and is
    # the smaller one almost everywhere; the second fails only where 1e4 s < e^1e-3 - 1, |x - a| < 3.2e-4.
    m = gv.Model("narrow_row_of_all")
    xs = m.vars("x", 4, 0, 2)
    a = (0.4, 1.3, 0.7, 1.6)
    s = squared_distance(xs, a)
    prop = [sum(xs) <= 8.5, gv.log(1 + 1e4 * s) >= 1e-3]
    return problem("narrow_row_of_all", m, prop, "an 'all' property whose second row fails near one point (4 dims)",
                   a, ball_share(math.sqrt(math.expm1(1e-3) / 1e4), 4, 16))


@register
def lens_of_any() -> NarrowProblem:
    # Any([|x - a|^2 >= 1e-4, |x - b|^2 >= 1e-4]) fails only where x is within 0.01 of both a and b, which are
    # 0.015 apart: a lens inside a ball of radius 0.0067 around the midpoint, in [-1, 1]^5 (volume 32).
    m = gv.Model("lens_of_any")
    xs = m.vars("x", 5, -1, 1)
    a = (0.1, 0.2, -0.3, 0.4, 0.0)
    b = (0.1 + 0.015, 0.2, -0.3, 0.4, 0.0)
    prop = gv.Any([squared_distance(xs, a) >= 1e-4, squared_distance(xs, b) >= 1e-4])
    middle = tuple((p + q) / 2 for p, q in zip(a, b))
    return problem("lens_of_any", m, prop, "an 'any' property failing on the lens between two small balls (5 dims)",
                   middle, ball_share(math.sqrt(1e-4 - 0.0075**2), 5, 32))
