"""Lower sympy expressions to the IR graph.

Structural sharing comes for free: identical sympy subexpressions map to one node through a memo.
Rewrites made here, each exact:
- ``a*b*c*d`` -> a balanced tree of binary products; numeric factors become linear coefficients;
- ``x/y`` (sympy: ``x*y**-1``) -> product with ``pow_int(y, -1)``;
- ``b**e`` with a symbolic exponent -> ``exp(e*log(b))``; ``sqrt`` -> sqrt; ``x**n`` -> pow_int or pow_real;
- ``Max(a, b) = b + relu(a - b)``, ``Min(a, b) = a - relu(a - b)`` (n-ary: a balanced tree);
- numbers stay exact sympy numbers (floats become the exact binary fraction they denote) through every
  pass; the tape rounds each coefficient once and records a bound on that rounding error.
"""

from __future__ import annotations

import math

import sympy

from graphver.dsl.functions import quad_over_lin, relu, round_half_even, sigmoid
from graphver.errors import ModelError, UnsupportedOpError, label_text
from graphver.exact import certified_float, enclosure
from graphver.ir.graph import IRGraph
from graphver.ops.power import MAX_INT_EXPONENT

UNARY_FUNCTIONS = {
    sympy.exp: "exp",
    sympy.log: "log",
    sympy.sin: "sin",
    sympy.cos: "cos",
    sympy.tan: "tan",
    sympy.atan: "atan",
    sympy.tanh: "tanh",
    sympy.erf: "erf",
    sigmoid: "sigmoid",
    relu: "relu",
    sympy.Abs: "abs",
    sympy.floor: "floor",
    sympy.ceiling: "ceil",
    round_half_even: "round",
}

SUPPORTED_TEXT = (
    "+, -, * (constants and products), / , ** (integer, real and symbolic exponents), "
    "sqrt, exp, log, sin, cos, tan, atan, tanh, erf, sigmoid, relu, Abs, Min, Max, quad_over_lin, floor, ceiling, round_half_even"
)


class PartLabel:
    """Label of a helper node created while lowering ``whole``; printed lazily."""

    def __init__(self, what: str, whole):
        self.what, self.whole = what, whole

    def __str__(self) -> str:
        return f"{self.what} {self.whole}"


def exact(number: sympy.Expr, where: str) -> sympy.Expr:
    """An exact real sympy number (a Float becomes the binary fraction it stores); rejects inf, nan, complex
    and constants that cannot be enclosed with a certified error (``graphver.exact.enclosure``)."""
    if isinstance(number, sympy.Float):
        if not number.is_finite:
            raise ModelError(f"the constant {number} in {label_text(where)} is not a finite real number")
        return sympy.Rational(number)
    if number.is_Rational:
        return number
    try:
        lo, hi = enclosure(number)
    except ModelError as error:
        raise ModelError(f"{error} (in {label_text(where)})") from None
    return sympy.Rational(lo.numerator, lo.denominator) if lo == hi else number  # proven rational


def integer_exponent(exponent: sympy.Expr, where) -> int | None:
    """The value of an exponent that is exactly an integer (an Integer, or a Float/Rational whose exact
    value is one: ``x**2.0`` is ``x**2``), else None. ``Float("2.0000000000000002", 30)`` is not."""
    if exponent.is_Integer:
        return int(exponent)
    if isinstance(exponent, sympy.Float) and exponent.is_finite:
        value = sympy.Rational(exponent)
        return int(value) if value.q == 1 else None
    if exponent.is_integer:  # an integer by sympy's knowledge (e.g. floor(pi)): find which one, certified
        lo, hi = enclosure(exponent)
        if math.floor(hi) == math.ceil(lo):
            return math.ceil(lo)
        raise ModelError(f"the integer exponent {exponent} in {label_text(where)} cannot be evaluated; "
                         "write it as a number")
    return None




ZERO = sympy.S.Zero


def sympy_function_of(op: str):
    """The exact sympy counterpart of an op, for folding constants without rounding."""
    functions = {name: fn for fn, name in UNARY_FUNCTIONS.items()}
    functions.update(
        sqrt=sympy.sqrt,
        pow_int=lambda v, p: v ** int(p),
        pow_real=lambda v, p: v**p,
        mul=lambda a, b, p=None: a * b,
        quad_over_lin=lambda a, b, p=None: quad_over_lin(a, b),
    )
    return functions[op]


class Lowerer:
    def __init__(self, symbols: list[sympy.Symbol]):
        self.ir = IRGraph()
        self.ir.input_names = [s.name for s in symbols]
        self.memo: dict[sympy.Expr, int] = {}
        for i, symbol in enumerate(symbols):
            node = self.ir.add("input", symbol.name, index=i)
            self.ir.inputs.append(node)
            self.memo[symbol] = node

    def lower(self, expr) -> int:
        expr = sympy.sympify(expr)
        if expr in self.memo:
            return self.memo[expr]
        node = self._lower(expr)
        self.memo[expr] = node
        return node

    def const(self, value) -> int:
        return self.ir.add("const", str(value), value=value)

    def linear(self, terms, bias, label: str) -> int:
        merged: dict = {}
        for arg, coef in terms:
            merged[arg] = merged.get(arg, ZERO) + coef
        return self.ir.add("linear", label, terms=tuple((a, c) for a, c in merged.items() if c != 0), bias=bias)

    def unary(self, op: str, arg: int, label: str, param: float | None = None) -> int:
        return self.ir.add("unary", label, op=op, param=param, args=(arg,))

    def product(self, nodes: list[int], label: str) -> int:
        """Balanced tree of binary products (depth log2(n))."""
        while len(nodes) > 1:
            paired = []
            for i in range(0, len(nodes) - 1, 2):
                sub = label if len(nodes) == 2 else PartLabel("partial product in", label)
                paired.append(self.ir.add("binary", sub, op="mul", param=None, args=(nodes[i], nodes[i + 1])))
            if len(nodes) % 2:
                paired.append(nodes[-1])
            nodes = paired
        return nodes[0]

    def _lower(self, expr) -> int:
        label = expr  # printed lazily (printing large sums costs more than compiling them)
        if expr.is_Symbol:
            raise ModelError(f"symbol {expr} is not a variable of this model; declare it with m.var({expr.name!r}, lb, ub)")
        if expr.is_number:
            if not expr.is_real and expr.is_real is not None:
                raise ModelError(f"the constant {expr} is not real")
            return self.const(exact(expr, label))
        if isinstance(expr, sympy.Add):
            terms, bias = [], ZERO
            for arg in expr.args:
                if arg.is_number:
                    bias += exact(arg, label)
                    continue
                coef, rest = arg.as_coeff_Mul()
                terms.append((self.lower(rest), exact(coef, label)))
            return self.linear(terms, bias, label)
        if isinstance(expr, sympy.Mul):
            numbers = [f for f in expr.args if f.is_number]
            others = [f for f in expr.args if not f.is_number]
            if numbers:
                coef = exact(sympy.Mul(*[exact(n, label) for n in numbers]), label)
                return self.linear([(self.lower(sympy.Mul(*others)), coef)], ZERO, label)
            return self.product([self.lower(f) for f in others], label)
        if isinstance(expr, sympy.Pow):
            return self._lower_pow(expr, label)
        if isinstance(expr, (sympy.Max, sympy.Min)):
            return self._lower_minmax(expr, label)
        if isinstance(expr, quad_over_lin):
            x, y = (self.lower(a) for a in expr.args)
            return self.ir.add("binary", label, op="quad_over_lin", param=None, args=(x, y))
        for sympy_function, op in UNARY_FUNCTIONS.items():
            if isinstance(expr, sympy_function):
                if len(expr.args) != 1:
                    raise UnsupportedOpError(f"{expr.func.__name__} with {len(expr.args)} arguments in {label}")
                return self.unary(op, self.lower(expr.args[0]), label)
        name = getattr(expr.func, "__name__", type(expr).__name__)
        raise UnsupportedOpError(
            f"unsupported function {name!r} in {label}: graphver has no sound relaxation for it. "
            f"Supported: {SUPPORTED_TEXT}."
        )

    def _lower_pow(self, expr, label: str) -> int:
        base, exponent = expr.args
        if not exponent.is_number:
            if base == sympy.E:
                return self.unary("exp", self.lower(exponent), label)
            log_base = sympy.log(base)
            return self.unary("exp", self.lower(sympy.expand_mul(exponent * log_base)), label)
        if exponent == sympy.Rational(1, 2):
            return self.unary("sqrt", self.lower(base), label)
        n = integer_exponent(exponent, label)
        if n is not None:  # exactly an integer: x**2.0 is x**2 (also for negative x)
            if abs(n) > MAX_INT_EXPONENT:
                raise UnsupportedOpError(
                    f"the integer exponent {n} in {label_text(label)} is too large (|n| > 2**31 - 1): x**n "
                    f"overflows or underflows floating point except within 1e-9 of |x| = 1. Rewrite it, e.g. "
                    f"as exp({n}*log(x)) for x > 0, or rescale the model."
                )
            if n == 0:
                return self.const(sympy.S.One)
            if n == 1:
                return self.lower(base)
            return self.unary("pow_int", self.lower(base), label, param=float(n))
        # Any other exponent is rounded to a float here. PowReal.eval_error (and the FBBT inverse) assume the
        # stored float is within |p| * 2**-52 of the exact exponent: certified, or the model is rejected.
        exact_exponent = exact(exponent, label)
        nearest, error = certified_float(exact_exponent)
        if not (math.isfinite(nearest) and nearest != 0 and error <= abs(nearest) * 2.0**-52):
            raise ModelError(
                f"the exponent {exponent} in {label_text(label)} cannot be rounded to a float with a certified "
                f"relative error of 2**-52 (it evaluates to {nearest:g} +- {error:.3g}; it may be exactly 0 or an "
                f"integer that sympy cannot prove): simplify it or write it as an exact number"
            )
        node = self.unary("pow_real", self.lower(base), label, param=nearest)
        self.ir.attrs(node)["exact_param"] = exact_exponent  # for exact constant folding
        return node

    def _lower_minmax(self, expr, label: str) -> int:
        nodes = [self.lower(a) for a in expr.args]
        is_max = isinstance(expr, sympy.Max)
        while len(nodes) > 1:
            paired = []
            for i in range(0, len(nodes) - 1, 2):
                a, b = nodes[i], nodes[i + 1]
                # a constant goes where IBP keeps it exact: max(y, c) = c + relu(y - c) >= c and
                # min(c, y) = c - relu(c - y) <= c, so Max(0, h) guards sqrt(Max(0, h)) as relu(h) does
                constant = [self.ir.graph.nodes[n]["kind"] == "const" for n in (a, b)]
                if (is_max and constant[0] and not constant[1]) or (not is_max and constant[1] and not constant[0]):
                    a, b = b, a
                one = sympy.S.One
                diff = self.linear([(a, one), (b, -one)], ZERO, PartLabel("difference inside", label))
                r = self.unary("relu", diff, PartLabel("relu inside", label))
                # max(a, b) = b + relu(a - b);  min(a, b) = a - relu(a - b)
                terms = [(b, one), (r, one)] if is_max else [(a, one), (r, -one)]
                paired.append(self.linear(terms, ZERO, label))
            if len(nodes) % 2:
                paired.append(nodes[-1])
            nodes = paired
        return nodes[0]


def lower_sympy(symbols: list[sympy.Symbol], outputs: list) -> IRGraph:
    """Build the IR graph of ``outputs`` (sympy expressions) over the variables ``symbols``."""
    lowerer = Lowerer(symbols)
    lowerer.ir.outputs = [lowerer.lower(expr) for expr in outputs]
    return lowerer.ir
