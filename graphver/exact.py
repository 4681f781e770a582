"""Certified evaluation of exact sympy constants.

``sympy.N`` cannot prove that a value is zero: for ``sin(1)**2 + cos(1)**2 - 1`` it returns noise such
as ``-0.e-160`` with no correct digit. Every constant graphver turns into a float therefore goes through
``enclosure``, which returns rational ends ``lo <= value <= hi`` that are guaranteed:

- rationals (and sympy Floats, taken as the binary fraction they store) are exact, ``lo == hi``;
- anything else is evaluated in interval arithmetic (``mpmath.iv``, outward rounded) at 256 bits, then
  at 1024 bits if the enclosure is still wider than 2**-64 relative (a value that cancels to 0 keeps an
  enclosure around 0: it is never claimed to be a nonzero number). Rigorous interval rules are used for
  + - * /, integer and real powers, sqrt, exp, log, sin, cos, tan, atan, tanh, sigmoid, Abs, Max, Min,
  relu and the constants pi and E; erf is monotone and its ends are evaluated by mpmath with 32 guard
  bits and widened by 2**-(prec - 8) relative; any other function or constant (gamma(1/3), EulerGamma)
  is evaluated by sympy's ``evalf(strict=True)`` (which raises rather than return digits it could not
  reach) to 10 digits more than the working precision, and widened by 2**-(prec - 8) relative;
- if that fails (an argument that cannot be certified inside a function's domain, a complex
  intermediate), the whole value is tried with ``evalf(strict=True)`` at 60 digits (widened by 10**-52
  relative; a zero result is not accepted), then ``sympy.simplify`` (only an exact 0 or rational is
  accepted from it); otherwise ``ModelError`` asks for a simpler constant.

``certified_float`` derives the float nearest the enclosure's midpoint and an error bound (rounded up)
with ``|value - nearest| <= error``; ``float_down`` / ``float_up`` round a rational in a direction.
"""

from __future__ import annotations

import functools
import math
from fractions import Fraction

import mpmath
import sympy
from mpmath import libmp
from mpmath.ctx_iv import MPIntervalContext

from graphver.errors import ModelError

PRECISIONS = (256, 1024)  # bits of the interval evaluation, tried in turn
RELATIVE_WIDTH = Fraction(1, 2**64)  # an enclosure this narrow (relative) is accepted at once
FALLBACK_DIGITS = 60
SIMPLIFY_LIMIT = 200  # count_ops above which sympy.simplify is not tried


class OutOfRange(Exception):
    """Internal: an enclosure of a value far beyond the float range."""


class Uncertified(ArithmeticError):
    """Internal: interval evaluation could not enclose this value (unsupported, domain unclear, complex)."""


def float_down(value: Fraction) -> float:
    """The largest float <= value (-inf below the float range)."""
    try:
        nearest = float(value)  # int/int division: correctly rounded
    except OverflowError:
        return -math.inf if value < 0 else math.nextafter(math.inf, 0.0)
    return math.nextafter(nearest, -math.inf) if Fraction(nearest) > value else nearest


def float_up(value: Fraction) -> float:
    """The smallest float >= value (+inf above the float range)."""
    return 0.0 - float_down(-value)  # 0.0 - x: +0.0 rather than -0.0 for a value of 0


HUGE_BITS = 1100  # beyond the float range (2**1024) on both sides


def _fraction(mpf_value, direction: int) -> Fraction:
    """An end of an enclosure (an mpf tuple) as a Fraction, moved in ``direction`` (-1: a lower end, +1:
    an upper end) when it is below 2**-HUGE_BITS in magnitude, so that no huge denominator is built."""
    if mpf_value in (libmp.finf, libmp.fninf, libmp.fnan):
        raise Uncertified("infinite end")
    if mpf_value == libmp.fzero:
        return Fraction(0)
    sign, _, exponent, bits = mpf_value
    if exponent + bits > HUGE_BITS:
        raise OutOfRange("beyond the float range")
    if exponent + bits < -HUGE_BITS:  # |end| < 2**-HUGE_BITS: move it outward to 0 or to +-2**-HUGE_BITS
        negative = bool(sign)
        if (direction < 0) == negative:
            return Fraction(-1 if negative else 1, 2**HUGE_BITS)
        return Fraction(0)
    p, q = libmp.to_rational(mpf_value)
    return Fraction(p, q)


class IntervalEvaluator:
    """Evaluates a sympy number in mpmath interval arithmetic at ``prec`` bits."""

    def __init__(self, prec: int):
        self.iv = MPIntervalContext()
        self.iv.prec = prec
        self.mp = mpmath.MPContext()
        self.mp.prec = prec + 32
        self.prec = prec

    # ends of an interval as mpf tuples
    @staticmethod
    def ends(x):
        return x._mpi_

    def make(self, a, b):
        return self.iv.make_mpf((a, b))

    def rational(self, value: sympy.Rational):
        return self.iv._mpq((int(value.p), int(value.q)))

    def finite(self, x):
        a, b = self.ends(x)
        if a in (libmp.finf, libmp.fninf, libmp.fnan) or b in (libmp.finf, libmp.fninf, libmp.fnan):
            raise Uncertified("an intermediate value is not finite")
        return x

    def positive(self, x):
        if not libmp.mpf_gt(self.ends(x)[0], libmp.fzero):
            raise Uncertified("argument not certified positive")
        return x

    def widen(self, value, relative_bits: int):
        """An interval around an mpf tuple, widened by 2**-relative_bits relative (mpmath accuracy)."""
        margin = libmp.mpf_shift(libmp.mpf_abs(value), -relative_bits)
        return self.make(libmp.mpf_sub(value, margin, self.prec, libmp.round_floor),
                         libmp.mpf_add(value, margin, self.prec, libmp.round_ceiling))

    def evaluate(self, expr):
        return self.finite(self._evaluate(expr))

    def _evaluate(self, expr):
        iv = self.iv
        if isinstance(expr, sympy.Float):
            if not expr.is_finite:
                raise ModelError(f"the constant {expr} is not a finite real number")
            return self.make(expr._mpf_, expr._mpf_)  # exact (a Float is a binary fraction); never as a Rational
        if expr.is_Rational:
            return self.rational(expr)
        if expr is sympy.pi:
            return +iv.pi
        if expr is sympy.E:
            return +iv.e
        args = expr.args
        if isinstance(expr, sympy.Add):
            return functools.reduce(lambda s, t: s + t, (self.evaluate(a) for a in args))
        if isinstance(expr, sympy.Mul):
            return functools.reduce(lambda s, t: s * t, (self.evaluate(a) for a in args))
        if isinstance(expr, sympy.Pow):
            return self.power(*args)
        if isinstance(expr, sympy.exp):
            return iv.exp(self.evaluate(args[0]))
        if isinstance(expr, sympy.log) and len(args) == 1:
            return iv.ln(self.positive(self.evaluate(args[0])))
        if isinstance(expr, sympy.sin):
            return iv.sin(self.evaluate(args[0]))
        if isinstance(expr, sympy.cos):
            return iv.cos(self.evaluate(args[0]))
        if isinstance(expr, sympy.tan):
            return iv.tan(self.evaluate(args[0]))
        if isinstance(expr, sympy.atan):
            return iv.atan2(self.evaluate(args[0]), iv.mpf(1))
        if isinstance(expr, sympy.tanh):  # 1 - 2/(exp(2x) + 1), no cancellation of large terms
            return 1 - 2 / (iv.exp(2 * self.evaluate(args[0])) + 1)
        if isinstance(expr, sympy.Abs):
            return abs(self.evaluate(args[0]))
        if isinstance(expr, (sympy.Max, sympy.Min)):
            return self.extremum([self.evaluate(a) for a in args], isinstance(expr, sympy.Max))
        if isinstance(expr, sympy.erf):
            return self.monotone(self.mp.erf, self.evaluate(args[0]))
        from graphver.dsl.functions import relu, sigmoid

        if isinstance(expr, sigmoid):
            return 1 / (1 + iv.exp(-self.evaluate(args[0])))
        if isinstance(expr, relu):
            return self.extremum([self.evaluate(args[0]), iv.mpf(0)], True)
        return self.leaf(expr)

    def power(self, base, exponent):
        iv = self.iv
        if exponent.is_Integer:
            n = int(exponent)
            b = self.evaluate(base)
            if n < 0:
                a, c = self.ends(b)
                if not (libmp.mpf_gt(a, libmp.fzero) or libmp.mpf_lt(c, libmp.fzero)):
                    raise Uncertified("a negative power of an interval containing 0")
            return b**n
        if exponent == sympy.S.Half:
            b = self.evaluate(base)
            if not libmp.mpf_ge(self.ends(b)[0], libmp.fzero):
                raise Uncertified("sqrt of an argument not certified non-negative")
            return iv.sqrt(b)
        if isinstance(exponent, sympy.Float) and sympy.Rational(exponent).q == 1:
            return self.power(base, sympy.Integer(sympy.Rational(exponent)))
        # a real power of a positive base (sympy's principal value is complex for a negative base)
        return iv.exp(self.evaluate(exponent) * iv.ln(self.positive(self.evaluate(base))))

    def extremum(self, values, is_max: bool):
        pick = libmp.mpf_max if is_max else libmp.mpf_min
        lows = [self.ends(v)[0] for v in values]
        highs = [self.ends(v)[1] for v in values]
        return self.make(functools.reduce(pick, lows), functools.reduce(pick, highs))

    def monotone(self, function, x):
        """An increasing function of an interval: its ends, evaluated with guard bits and widened."""
        a, b = self.ends(x)
        fa = function(self.mp.make_mpf(a))._mpf_
        fb = function(self.mp.make_mpf(b))._mpf_
        low, high = self.widen(fa, self.prec - 8), self.widen(fb, self.prec - 8)
        return self.make(self.ends(low)[0], self.ends(high)[1])

    def leaf(self, expr):
        """A function or constant without an interval rule: sympy's strict evalf, widened."""
        digits = int(self.prec * 0.30103) + 10
        value = strict_evalf(expr, digits)
        if value is None:
            raise Uncertified(f"{expr} could not be evaluated to {digits} digits")
        return self.widen(value._mpf_, self.prec - 8)


def strict_evalf(expr, digits: int):
    """``expr.evalf(digits, strict=True)`` as a real sympy Float, or None when sympy cannot reach the
    requested accuracy or the value is not real."""
    try:
        value = expr.evalf(digits, strict=True, maxn=4 * digits + 100)
    except (sympy.core.evalf.PrecisionExhausted, ValueError, TypeError, ZeroDivisionError, ArithmeticError):
        return None
    if not isinstance(value, sympy.Float) or not value.is_finite or value.is_zero:
        return None  # a zero is never taken from evalf: it carries no relative accuracy
    return value


def _enclosure_of_interval(expr) -> tuple[Fraction, Fraction] | None:
    last = None
    for prec in PRECISIONS:
        try:
            result = IntervalEvaluator(prec).evaluate(expr)
            a, b = result._mpi_
            lo, hi = _fraction(a, -1), _fraction(b, 1)
        except OutOfRange:
            raise ModelError(f"the constant {expr} is not a finite real number in the float range "
                             f"(|value| > 2**{HUGE_BITS})") from None
        except (Uncertified, ValueError, TypeError, ZeroDivisionError, AssertionError, OverflowError,
                ArithmeticError, AttributeError) as error:
            if isinstance(error, ModelError):
                raise
            continue
        last = (lo, hi)
        if hi - lo <= max(abs(lo), abs(hi)) * RELATIVE_WIDTH:
            break
    return last


@functools.lru_cache(maxsize=16384)
def _enclosure(value) -> tuple[Fraction, Fraction]:
    if isinstance(value, sympy.Float):
        if not value.is_finite:
            raise ModelError(f"the constant {value} is not a finite real number")
        # the binary fraction it stores, without building 2**exponent for a Float far outside the float range
        # (sympy evaluates exp(exp(exp(3.0))) to a Float with an exponent of 10**8 bits)
        try:
            return _fraction(value._mpf_, -1), _fraction(value._mpf_, 1)
        except OutOfRange:
            raise ModelError(f"the constant {value} is not a finite real number in the float range "
                             f"(|value| > 2**{HUGE_BITS})") from None
    if value.is_Rational:
        exact = Fraction(int(value.p), int(value.q))
        return exact, exact
    if not value.is_number:
        raise ModelError(f"{value} is not a number")
    if _known_not_finite_real(value):
        raise ModelError(f"the constant {value} is not a finite real number")
    found = _enclosure_of_interval(value)
    if found is not None:
        return found
    fallback = strict_evalf(value, FALLBACK_DIGITS)
    if fallback is not None:
        center = Fraction(*libmp.to_rational(fallback._mpf_))
        margin = abs(center) * Fraction(1, 10 ** (FALLBACK_DIGITS - 8))
        return center - margin, center + margin
    if sympy.count_ops(value) <= SIMPLIFY_LIMIT:
        simple = sympy.simplify(value)
        if simple.is_Rational:
            exact = Fraction(int(simple.p), int(simple.q))
            return exact, exact
    raise ModelError(
        f"the constant {value} cannot be evaluated with a certified error (it may be exactly 0 or not real, "
        "and sympy cannot prove which): simplify it (sympy.simplify, sympy.nsimplify) or write it as an exact number"
    )


def _known_not_finite_real(value: sympy.Expr) -> bool:
    """Whether sympy's assumptions say ``value`` is infinite, not real, NaN or zoo. Their deduction can
    contradict itself on unevaluated expressions (``InconsistentAssumptions``, depending on what its cache
    holds): then they say nothing, and the certified evaluation that follows decides."""
    from sympy.core.facts import InconsistentAssumptions

    try:
        return value.is_finite is False or value.is_real is False or value.has(sympy.nan, sympy.zoo)
    except InconsistentAssumptions:
        return value.has(sympy.nan, sympy.zoo)


def rational_float(p: int, q: int) -> tuple[float, float]:
    """``certified_float`` of the rational p / q (q > 0): the nearest float (int / int division is correctly
    rounded) and the smallest float >= the exact rounding error, computed on integers."""
    try:
        nearest = p / q
    except OverflowError:
        return (math.inf if p > 0 else -math.inf), math.inf
    n, d = nearest.as_integer_ratio()
    residual = abs(p * d - n * q)  # |p/q - nearest| = residual / (q * d)
    if residual == 0:
        return nearest, 0.0
    scale = q * d
    error = residual / scale  # correctly rounded, so possibly below the exact error: then one step up
    e_n, e_d = error.as_integer_ratio()
    if e_n * scale < residual * e_d:
        error = math.nextafter(error, math.inf)
    return nearest, error


def enclosure(value) -> tuple[Fraction, Fraction]:
    """Rational ``(lo, hi)`` with ``lo <= value <= hi`` for an exact real sympy number (guaranteed).

    Raises ``ModelError`` for a value that is not a finite real number or cannot be certified."""
    return _enclosure(sympy.sympify(value))


def certified_float(value) -> tuple[float, float]:
    """The float nearest ``value`` (an exact sympy number) and a bound ``error`` with
    ``|value - nearest| <= error`` guaranteed (``error`` is 0 only for a value that is a float)."""
    if isinstance(value, sympy.Rational):  # every float constant of a model: in integer arithmetic
        return rational_float(int(value.p), int(value.q))
    lo, hi = enclosure(value)
    if lo == hi:
        try:
            nearest = float(lo)
        except OverflowError:
            return (math.inf if lo > 0 else -math.inf), math.inf
        error = abs(lo - Fraction(nearest))
        return nearest, 0.0 if error == 0 else float_up(error)
    try:
        nearest = float((lo + hi) / 2) + 0.0  # + 0.0: no -0.0
    except OverflowError:
        return (math.inf if lo > 0 else -math.inf), math.inf
    return nearest, float_up(max(hi - Fraction(nearest), Fraction(nearest) - lo))
