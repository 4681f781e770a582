"""Pyomo models -> graphver: ``from_pyomo(block)`` reads a Pyomo ``ConcreteModel`` (or any block) as it is.

What is read: the unfixed continuous variables that the active objective and the active constraints use,
with their bounds (a variable without finite bounds is an error naming it, unless the constraints imply
finite bounds, see ``derive_bounds``); fixed variables, Params and numbers as exact constants; named
Expressions (lowered once, however often they are used); the active objective (min or max) and every
active constraint (equalities, inequalities, ranged), indexed components and sub-blocks included.

Expression trees are walked with Pyomo's own ``StreamBasedExpressionVisitor`` and emitted straight into
the tape builder, without sympy: a sum stays an affine form (exact ``Fraction`` coefficients) until a
nonlinear op needs it as a node, so ``3*x + 2*y*z - 1`` is one linear instruction over ``x`` and a product
node. Nodes are grouped by depth and op into instructions (``Emitter``), as the sympy compiler does, so a
model with tens of thousands of terms gives a tape of a few dozen instructions. Exact rewrites made here:

- ``x*x`` -> ``pow_int(x, 2)`` (tighter than the product's McCormick planes); ``x/c`` -> ``(1/c) x``;
  ``x/y`` -> ``x * pow_int(y, -1)``; ``x**n`` (n exactly an integer) -> ``pow_int``; ``x**0.5`` -> ``sqrt``;
  other constant exponents -> ``pow_real``; ``b**e`` with a variable exponent -> ``exp(e*log(b))``;
- ``log10(x) = log(x) / log(10)``, ``sinh``/``cosh`` through ``exp``; ``max(a, b) = b + relu(a - b)``,
  ``min(a, b) = a - relu(a - b)``.

Constants stay exact until they are emitted: rationals as ``Fraction`` (a float is the dyadic rational it
stores), irrational ones (``log(10)``, ``exp(p)`` of a Param) as sympy numbers, used only as numbers and
rounded with a certified error bound (``graphver.exact.certified_float``); every weight carries its
rounding error into the tape, as the compiler's do. Unsupported pieces (integer or binary variables,
functions without a relaxation, external functions, if-then-else, logical constraints) raise an error
that names the component and the expression.

The same walker also writes the expressions as exact sympy expressions (``SympyTarget``): the certified
confirmation of a counterexample (``graphver.confirm``) evaluates those, independently of the tape.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, Callable

import numpy as np

from graphver.errors import DomainError, ModelError, UnsupportedOpError
from graphver.exact import certified_float, enclosure, float_down, float_up
from graphver.ops.power import MAX_INT_EXPONENT
from graphver.tape.builder import TapeBuilder
from graphver.tape.tape import Tape

SHOWN = 200  # characters of an expression shown in messages

# Pyomo's unary function names -> registry ops (applied directly); rewritten ones are handled in the targets.
UNARY_OPS = {"exp": "exp", "log": "log", "sin": "sin", "cos": "cos", "tan": "tan", "atan": "atan", "tanh": "tanh",
             "sqrt": "sqrt", "abs": "abs", "floor": "floor", "ceil": "ceil"}
REWRITTEN = ("log10", "sinh", "cosh")
SUPPORTED_TEXT = ("+, -, *, /, ** (any constant or variable exponent), " + ", ".join(sorted([*UNARY_OPS, *REWRITTEN]))
                  + ", max, min (Pyomo's MaxExpression/MinExpression)")


def pyomo_modules():
    """Pyomo's expression modules, imported on first use (``pyomo`` is a dependency, but loading it takes a
    while and most runs never need it)."""
    from pyomo.core.expr import numeric_expr, relational_expr, visitor

    return numeric_expr, relational_expr, visitor


def text_of(expr, limit: int = SHOWN) -> str:
    """A Pyomo expression (or component) as text for messages, shortened."""
    try:
        text = str(expr)
    except Exception:  # noqa: BLE001  (printing must never hide the real error)
        text = repr(expr)
    return text if len(text) <= limit else text[: limit - 3] + "..."


class PyomoLabel:
    """Label of a node lowered from a Pyomo expression; printed lazily (printing large sums is slow)."""

    def __init__(self, where: str, expr):
        self.where, self.expr = where, expr

    def __str__(self) -> str:
        return f"{text_of(self.expr)} (in {self.where})"


# --- exact constants ----------------------------------------------------------------------------------
Number = Any  # Fraction (rational, exact) or an exact real sympy number (irrational)


def exact_number(value, where: str) -> Number:
    """A Python/numpy number as an exact ``Fraction`` (a float is the binary fraction it stores)."""
    if isinstance(value, bool):
        value = int(value)
    if isinstance(value, (int, np.integer)):
        return Fraction(int(value))
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ModelError(f"{where}: the constant {value!r} is not a real number") from None
    if not math.isfinite(number):
        raise ModelError(f"{where}: the constant {number} is not a finite real number")
    return Fraction(number)


def is_fraction(value) -> bool:
    return isinstance(value, Fraction)


def sympy_of(value):
    import sympy

    return sympy.Rational(value.numerator, value.denominator) if is_fraction(value) else value


def simplified(value) -> Number:
    """A sympy number that is provably rational becomes a Fraction (so that 1/log(10)*log(10) stays cheap)."""
    if is_fraction(value):
        return value
    if value.is_Rational:
        return Fraction(int(value.p), int(value.q))
    return value


def add(a: Number, b: Number) -> Number:
    return a + b if is_fraction(a) and is_fraction(b) else simplified(sympy_of(a) + sympy_of(b))


def multiply(a: Number, b: Number) -> Number:
    if is_fraction(a) and is_fraction(b):
        return a * b
    if (is_fraction(a) and a == 0) or (is_fraction(b) and b == 0):
        return Fraction(0)
    return simplified(sympy_of(a) * sympy_of(b))


def certified(value: Number, where: str) -> Number:
    """``value`` checked to be a finite real number that can be enclosed (sympy results of functions)."""
    if is_fraction(value):
        return value
    try:
        lo, hi = enclosure(value)
    except ModelError as error:
        raise DomainError(f"{where}: the constant {value} is not defined or cannot be certified: {error}") from None
    return Fraction(lo) if lo == hi else value


def rounded(value: Number) -> tuple[float, float]:
    """The float nearest an exact constant and a bound on the rounding error (0 when it is a float)."""
    if is_fraction(value):
        try:
            nearest = float(value)  # correctly rounded (integer true division)
        except OverflowError:
            return (math.inf if value > 0 else -math.inf), math.inf
        error = abs(value - Fraction(nearest)) if math.isfinite(nearest) else None
        if error is None:
            return nearest, math.inf
        return nearest, 0.0 if error == 0 else float_up(error)
    return certified_float(value)


def sign_of(value: Number) -> int:
    """The sign of an exact constant (certified)."""
    if is_fraction(value):
        return (value > 0) - (value < 0)
    lo, hi = enclosure(value)
    if lo > 0:
        return 1
    if hi < 0:
        return -1
    if lo == hi == 0:
        return 0
    raise ModelError(f"the sign of the constant {value} cannot be certified")


def integer_value(value: Number) -> int | None:
    """The integer an exact constant equals, else None."""
    if is_fraction(value):
        return int(value) if value.denominator == 1 else None
    return None  # an irrational sympy number is never an integer


# --- the scalar DAG emitted through the tape builder --------------------------------------------------
@dataclass
class Affine:
    """``sum_node coef * node + bias`` not yet emitted; ``node`` caches its emitted node."""

    terms: dict  # node index -> exact coefficient (non-zero)
    bias: Number
    node: int | None = None


@dataclass
class Emitter:
    """Scalar nodes of the model (inputs first), grouped at the end by (depth, kind, op, param) into the tape
    builder's instructions: the number of instructions grows with the depth of the model, not its size."""

    n_inputs: int
    names: list
    kinds: list = field(default_factory=list)  # per non-input node: ("linear", terms, bias) or (kind, op, param, args)
    labels: list = field(default_factory=list)
    depth: list = field(default_factory=list)  # per node, inputs included

    def __post_init__(self):
        self.depth = [0] * self.n_inputs

    def new(self, record: tuple, label, args) -> int:
        self.kinds.append(record)
        self.labels.append(label)
        self.depth.append(1 + max((self.depth[a] for a in args), default=0))
        return self.n_inputs + len(self.kinds) - 1

    def linear(self, terms: dict, bias: Number, label) -> int:
        return self.new(("linear", tuple(terms.items()), bias), label, terms)

    def op(self, kind: str, op: str, args: tuple, label, param: float | None = None) -> int:
        return self.new((kind, op, param, args), label, args)

    def tape(self, outputs: list[int]) -> Tape:
        builder = TapeBuilder(list(self.names))
        index = list(range(self.n_inputs)) + [-1] * len(self.kinds)
        groups: dict[tuple, list[int]] = {}
        for local, record in enumerate(self.kinds):
            node = self.n_inputs + local
            param = record[2] if record[0] != "linear" else None
            key = (self.depth[node], record[0], record[1] if record[0] != "linear" else "",
                   -math.inf if param is None else param)
            groups.setdefault(key, []).append(node)
        for key in sorted(groups):
            nodes = groups[key]
            labels = [self.labels[n - self.n_inputs] for n in nodes]
            if key[1] == "linear":
                rows, cols, weights, errors, bias, bias_error = [], [], [], [], [], []
                for row, node in enumerate(nodes):
                    _, terms, constant = self.kinds[node - self.n_inputs]
                    for arg, coef in terms:
                        nearest, error = rounded(coef)
                        rows.append(row)
                        cols.append(index[arg])
                        weights.append(nearest)
                        errors.append(error)
                    nearest, error = rounded(constant)
                    bias.append(nearest)
                    bias_error.append(error)
                terms = [(np.array(rows, dtype=np.int64), np.array(cols, dtype=np.int64),
                          np.array(weights, dtype=np.float64), np.array(errors, dtype=np.float64))]
                emitted = builder.linear(terms, np.array(bias), labels, (len(nodes),), bias_error=np.array(bias_error))
            else:
                kind, op, param, _ = self.kinds[nodes[0] - self.n_inputs]
                arity = len(self.kinds[nodes[0] - self.n_inputs][3])
                args = [np.array([index[self.kinds[n - self.n_inputs][3][j]] for n in nodes], dtype=np.int64)
                        for j in range(arity)]
                emitted = builder.elementwise(kind, op, args, labels, param=param)
            for node, new in zip(nodes, emitted.tolist()):
                index[node] = new
        return builder.tape(np.array([index[o] for o in outputs], dtype=np.int64))


class TapeTarget:
    """What the walker's results become for the tape: exact constants (``Number``) or ``Affine`` forms."""

    def __init__(self, emitter: Emitter):
        self.emitter = emitter

    # leaves
    def variable(self, index: int) -> Affine:
        return Affine({index: Fraction(1)}, Fraction(0))

    def node(self, value: Affine, label) -> int:
        """The emitted node of an affine form (one linear node; a plain variable or node is itself)."""
        if value.node is None:
            if len(value.terms) == 1 and value.bias == 0:
                (arg, coef), = value.terms.items()
                if is_fraction(coef) and coef == 1:
                    value.node = arg
                    return arg
            value.node = self.emitter.linear(value.terms, value.bias, label)
        return value.node

    def of_node(self, node: int) -> Affine:
        return Affine({node: Fraction(1)}, Fraction(0), node)

    # arithmetic
    def sum(self, items: list, label):
        constant = Fraction(0)
        terms: dict = {}
        for item in items:
            if isinstance(item, Affine):
                constant = add(constant, item.bias)
                for arg, coef in item.terms.items():
                    terms[arg] = add(terms[arg], coef) if arg in terms else coef
            else:
                constant = add(constant, item)
        terms = {arg: coef for arg, coef in terms.items() if not (is_fraction(coef) and coef == 0)}
        return Affine(terms, constant) if terms else constant

    def scale(self, value, factor: Number):
        if not isinstance(value, Affine):
            return multiply(value, factor)
        if is_fraction(factor) and factor == 0:
            return Fraction(0)
        return Affine({a: multiply(c, factor) for a, c in value.terms.items()}, multiply(value.bias, factor))

    def product(self, a, b, label):
        if not isinstance(a, Affine):
            return self.scale(b, a)
        if not isinstance(b, Affine):
            return self.scale(a, b)
        x, y = self.node(a, label), self.node(b, label)
        if x == y:
            return self.of_node(self.emitter.op("unary", "pow_int", (x,), label, 2.0))
        return self.of_node(self.emitter.op("binary", "mul", (x, y), label))

    def divide(self, a, b, label):
        if not isinstance(b, Affine):
            if sign_of(b) == 0:
                raise DomainError(f"division by the constant 0 in {label}")
            return self.scale(a, Fraction(1) / b if is_fraction(b) else simplified(1 / sympy_of(b)))
        inverse = self.of_node(self.emitter.op("unary", "pow_int", (self.node(b, label),), label, -1.0))
        return self.product(a, inverse, label)

    def power(self, base, exponent, label):
        if not isinstance(exponent, Affine):
            return self.constant_power(base, exponent, label)
        if not isinstance(base, Affine):  # c**e = exp(log(c) e), c > 0
            sign = sign_of(base)
            if sign <= 0:
                raise DomainError(f"{label}: a constant base {base} <= 0 with a variable exponent is not defined "
                                  "for every exponent")
            if base == 1:
                return Fraction(1)
            return self.function("exp", self.scale(exponent, self.constant_function("log", base, label)), label)
        log_base = self.function("log", base, label)
        return self.function("exp", self.product(exponent, log_base, label), label)

    def constant_power(self, base, exponent: Number, label):
        n = integer_value(exponent)
        if not isinstance(base, Affine):
            import sympy

            return certified(simplified(sympy_of(base) ** sympy_of(exponent)), str(label))
        if n is not None:
            if abs(n) > MAX_INT_EXPONENT:
                raise UnsupportedOpError(f"the integer exponent {n} in {label} is too large (|n| > 2**31 - 1)")
            if n == 0:
                return Fraction(1)
            if n == 1:
                return base
            return self.of_node(self.emitter.op("unary", "pow_int", (self.node(base, label),), label, float(n)))
        if is_fraction(exponent) and exponent == Fraction(1, 2):
            return self.function("sqrt", base, label)
        nearest, error = rounded(exponent)
        if not (math.isfinite(nearest) and nearest != 0 and error <= abs(nearest) * 2.0**-52):
            raise ModelError(f"the exponent {exponent} in {label} cannot be rounded to a float with a certified "
                             "relative error of 2**-52")
        return self.of_node(self.emitter.op("unary", "pow_real", (self.node(base, label),), label, nearest))

    def constant_function(self, name: str, value: Number, label) -> Number:
        import sympy

        functions = {"exp": sympy.exp, "log": sympy.log, "sin": sympy.sin, "cos": sympy.cos, "tan": sympy.tan,
                     "atan": sympy.atan, "tanh": sympy.tanh, "sqrt": sympy.sqrt, "abs": sympy.Abs,
                     "floor": sympy.floor, "ceil": sympy.ceiling, "log10": lambda v: sympy.log(v) / sympy.log(10),
                     "sinh": sympy.sinh, "cosh": sympy.cosh}
        return certified(simplified(functions[name](sympy_of(value))), str(label))

    def function(self, name: str, value, label):
        if not isinstance(value, Affine):
            return self.constant_function(name, value, label)
        if name == "log10":
            import sympy

            return self.scale(self.function("log", value, label), 1 / sympy.log(10))
        if name in ("sinh", "cosh"):  # (exp(x) -+ exp(-x)) / 2
            up = self.function("exp", value, label)
            down = self.function("exp", self.scale(value, Fraction(-1)), label)
            return self.sum([self.scale(up, Fraction(1, 2)), self.scale(down, Fraction(-1 if name == "sinh" else 1, 2))],
                            label)
        return self.of_node(self.emitter.op("unary", UNARY_OPS[name], (self.node(value, label),), label))

    def extreme(self, items: list, is_max: bool, label):
        """max or min of several values: a balanced tree of ``b + relu(a - b)`` / ``a - relu(a - b)``."""
        while len(items) > 1:
            paired = []
            for i in range(0, len(items) - 1, 2):
                a, b = items[i], items[i + 1]
                if not isinstance(a, Affine) and not isinstance(b, Affine):
                    paired.append(max(a, b, key=float) if is_max else min(a, b, key=float))
                    continue
                if (is_max and not isinstance(a, Affine)) or (not is_max and not isinstance(b, Affine)):
                    a, b = b, a  # the constant where the relu form keeps it exact (as ir.lower does)
                difference = self.sum([a, self.scale(b, Fraction(-1))], label)
                if not isinstance(difference, Affine):  # a - b is a constant: the larger (smaller) one is known
                    a_wins = float(difference) >= 0
                    paired.append(a if a_wins == is_max else b)
                    continue
                r = self.of_node(self.emitter.op("unary", "relu", (self.node(difference, label),), label))
                paired.append(self.sum([b, r], label) if is_max else self.sum([a, self.scale(r, Fraction(-1))], label))
            if len(items) % 2:
                paired.append(items[-1])
            items = paired
        return items[0]


class SympyTarget:
    """The walker's results as exact sympy expressions over given symbols (for certified confirmation)."""

    def __init__(self, symbols):
        import sympy

        self.sympy = sympy
        self.symbols = symbols

    def variable(self, index: int):
        return self.symbols[index]

    def sum(self, items, label):
        return self.sympy.Add(*[sympy_of(i) for i in items])

    def scale(self, value, factor):
        return sympy_of(value) * sympy_of(factor)

    def product(self, a, b, label):
        return sympy_of(a) * sympy_of(b)

    def divide(self, a, b, label):
        return sympy_of(a) / sympy_of(b)

    def power(self, base, exponent, label):
        return sympy_of(base) ** sympy_of(exponent)

    def function(self, name, value, label):
        s = self.sympy
        functions = {"exp": s.exp, "log": s.log, "sin": s.sin, "cos": s.cos, "tan": s.tan, "atan": s.atan,
                     "tanh": s.tanh, "sqrt": s.sqrt, "abs": s.Abs, "floor": s.floor, "ceil": s.ceiling,
                     "log10": lambda v: s.log(v) / s.log(10), "sinh": s.sinh, "cosh": s.cosh}
        return functions[name](sympy_of(value))

    def extreme(self, items, is_max, label):
        return (self.sympy.Max if is_max else self.sympy.Min)(*[sympy_of(i) for i in items])


# --- the walker ---------------------------------------------------------------------------------------
class Walker:
    """Lowers Pyomo expressions through a target (``TapeTarget`` or ``SympyTarget``). Variables map to their
    position in ``index`` (by ``id`` of the variable data); shared subexpressions are lowered once."""

    def __init__(self, target, index: dict[int, int]):
        self.target = target
        self.index = index
        self.memo: dict[int, tuple[Any, Any]] = {}  # id(expr) -> (expr kept alive, result)

    def leaf(self, node, where: str):
        """(is a leaf, its value) for a Pyomo node."""
        if node.__class__ in (int, float, bool) or isinstance(node, (int, float, np.number)):
            return True, exact_number(node, where)
        if not hasattr(node, "is_expression_type"):
            raise ModelError(f"{where}: cannot read {node!r} ({type(node).__name__}) as a number or expression")
        if node.is_expression_type():
            return False, None
        if node.is_variable_type():
            if node.fixed:
                if node.value is None:
                    raise ModelError(f"{where}: the fixed variable {node.name} has no value")
                return True, exact_number(node.value, where)
            if id(node) not in self.index:
                raise ModelError(f"{where}: the variable {node.name} is not one of the model's variables")
            return True, self.target.variable(self.index[id(node)])
        try:  # Params, numeric constants
            value = node.value if hasattr(node, "value") else node()
        except (ValueError, TypeError) as error:
            raise ModelError(f"{where}: the constant {text_of(node)} has no value ({error})") from None
        if value is None:
            raise ModelError(f"{where}: the Param {text_of(node)} has no value")
        return True, exact_number(value, where)

    def lower(self, expr, where: str):
        numeric, _, visitor = pyomo_modules()
        self.refuse(expr, where)
        if id(expr) in self.memo:
            return self.memo[id(expr)][1]
        is_leaf, value = self.leaf(expr, where)
        if is_leaf:
            return value
        walker = self

        class Visitor(visitor.StreamBasedExpressionVisitor):
            def beforeChild(self, node, child, child_idx):
                walker.refuse(child, where)
                key = id(child)
                if key in walker.memo:
                    return False, walker.memo[key][1]
                is_leaf, value = walker.leaf(child, where)
                return (False, value) if is_leaf else (True, None)

            def exitNode(self, node, data):
                result = walker.combine(node, data, where)
                walker.memo[id(node)] = (node, result)
                return result

        return Visitor().walk_expression(expr)

    def refuse(self, node, where: str) -> None:
        """Raise for expressions that cannot be lowered, before their children are walked."""
        numeric, _, _ = pyomo_modules()
        if isinstance(node, numeric.Expr_ifExpression):
            raise UnsupportedOpError(f"{where}: Expr_if (if-then-else) is not supported: {text_of(node)}; "
                                     "write it with max/min or split the model")
        if isinstance(node, numeric.ExternalFunctionExpression):
            raise UnsupportedOpError(f"{where}: external functions cannot be bounded (graphver needs the "
                                     f"expression): {text_of(node)}")

    def combine(self, node, args: list, where: str):
        numeric, relational, _ = pyomo_modules()
        t = self.target
        label = PyomoLabel(where, node)
        if node.is_named_expression_type():
            return args[0]
        if isinstance(node, numeric.MonomialTermExpression):
            return t.product(args[0], args[1], label)
        if isinstance(node, numeric.SumExpression):
            return t.sum(args, label)
        if isinstance(node, numeric.NegationExpression):
            return t.scale(args[0], Fraction(-1))
        if isinstance(node, numeric.DivisionExpression):
            return t.divide(args[0], args[1], label)
        if isinstance(node, numeric.ProductExpression):
            return t.product(args[0], args[1], label)
        if isinstance(node, numeric.PowExpression):
            return t.power(args[0], args[1], label)
        if isinstance(node, (numeric.MaxExpression, numeric.MinExpression)):
            return t.extreme(list(args), isinstance(node, numeric.MaxExpression), label)
        if isinstance(node, numeric.UnaryFunctionExpression):  # AbsExpression included (name "abs")
            name = node.getname()
            if name in UNARY_OPS or name in REWRITTEN:
                return t.function(name, args[0], label)
            raise UnsupportedOpError(f"unsupported function {name!r} in {where}: {text_of(node)}. graphver has no "
                                     f"sound relaxation for it. Supported: {SUPPORTED_TEXT}.")
        if isinstance(node, relational.RelationalExpression):  # Expr_if and external functions: refuse()
            raise UnsupportedOpError(f"{where}: a relation inside an expression is not supported: {text_of(node)}")
        raise UnsupportedOpError(f"{where}: unsupported Pyomo expression {type(node).__name__}: {text_of(node)}. "
                                 f"Supported: {SUPPORTED_TEXT}.")


# --- the imported problem -----------------------------------------------------------------------------
@dataclass(frozen=True)
class ImportedConstraint:
    """One active Pyomo constraint: ``lower <= body <= upper`` (either side may be absent); ``rows`` are the
    tape rows ``<= 0`` it gives (upper side: body - upper; lower side: lower - body)."""

    name: str
    kind: str  # "eq", "le" (body <= upper), "ge" (lower <= body), "range"
    text: str
    rows: tuple  # tape output indices


@dataclass
class PyomoImport:
    """A Pyomo block read for graphver: the tape (the rows first, then the constraint rows), the box, the
    variables (Pyomo's own objects, so that a witness can be loaded), the objective's sense."""

    tape: Tape
    lower: list  # floats, the variables' bounds rounded outward (or derived, see ``derived``)
    upper: list
    variables: list  # Pyomo VarData, in tape input order
    names: list
    n_rows: int
    sense: str | None  # of the objective ("min" / "max"); None for the margin rows of a property
    texts: list  # the objective, or the property's relations, as text
    constraints: list  # ImportedConstraint
    constraint_limits: tuple  # (rows, lower, upper) for a local solver
    derived: dict  # variable name -> (lower, upper) derived from the constraints (derive_bounds)
    strict: tuple  # per row (verify)
    combine: str  # "all" or "any" (verify)
    row_pairs: tuple  # per tape output: (a, b), the row is a - b (Pyomo expressions or numbers)
    wheres: tuple  # per tape output: the component it comes from, for messages

    @property
    def constraint_rows(self) -> list[int]:
        return list(range(self.n_rows, self.tape.n_outputs))

    def load(self, point) -> None:
        """Write a point (a dict keyed by the variables' names, or a sequence in input order) into the Pyomo
        variables."""
        values = [point[n] for n in self.names] if isinstance(point, dict) else list(point)
        for var, value in zip(self.variables, values):
            var.set_value(float(value), skip_validation=True)


def bounds_of(var, where: str) -> tuple[float | None, float | None]:
    """A variable's bounds as floats rounded outward (None where absent or infinite)."""
    lb, ub = var.lb, var.ub
    low = None if lb is None or lb == -math.inf else lb
    high = None if ub is None or ub == math.inf else ub
    if low is not None:
        low = float_down(exact_number(low, where))
    if high is not None:
        high = float_up(exact_number(high, where))
    return low, high


def variables_of(block, expressions: list) -> list:
    """The unfixed variables the expressions use: first those declared in the block (in declaration
    order), then any others (declared elsewhere), in order of first use."""
    from pyomo.core.base.var import Var
    from pyomo.core.expr.visitor import identify_variables

    used, order = {}, []
    for expr in expressions:
        for var in identify_variables(expr, include_fixed=False):
            if id(var) not in used:
                used[id(var)] = var
                order.append(var)
    declared = [v for v in block.component_data_objects(Var, descend_into=True) if id(v) in used]
    seen = {id(v) for v in declared}
    return declared + [v for v in order if id(v) not in seen]


def active_objectives(block) -> list:
    from pyomo.core.base.objective import Objective

    return list(block.component_data_objects(Objective, active=True, descend_into=True))


def active_constraints(block) -> list:
    from pyomo.core.base.constraint import Constraint

    return list(block.component_data_objects(Constraint, active=True, descend_into=True))


def check_continuous(var) -> None:
    if not var.is_continuous():
        raise ModelError(f"variable {var.name} is {var.domain.name if hasattr(var.domain, 'name') else var.domain}: "
                         "graphver handles continuous variables only (relax it, fix it, or use a MINLP solver)")


def check_block(block) -> None:
    if not hasattr(block, "component_data_objects"):
        raise ModelError(f"from_pyomo needs a Pyomo ConcreteModel or block, got {type(block).__name__}")
    from pyomo.core.base.block import BlockData

    if not isinstance(block, BlockData):
        if getattr(block, "is_indexed", lambda: False)():
            raise ModelError(f"{block.name} is an indexed block: pass one of its elements, e.g. {block.name}[i]")
        raise ModelError(f"from_pyomo needs a Pyomo ConcreteModel or block, got {type(block).__name__}")
    for kind in ("LogicalConstraint", "Disjunct", "Disjunction", "Complementarity"):
        found = [c for c in block.component_objects(descend_into=True, active=True) if type(c).__name__.startswith(kind)
                 or type(c).__name__.startswith("Scalar" + kind) or type(c).__name__.startswith("Indexed" + kind)]
        if found:
            raise UnsupportedOpError(f"{found[0].name} is a {kind}: logical and disjunctive constraints are not "
                                     "supported (reformulate them, e.g. with pyomo.gdp's big-M transformation)")
    for sos in block.component_objects(descend_into=True, active=True):
        if type(sos).__name__.endswith("SOSConstraint"):
            raise UnsupportedOpError(f"{sos.name} is an SOS constraint: not supported (it needs integer variables)")


def model_name(block) -> str:
    """A block's name for messages (Pyomo names an unnamed ConcreteModel "unknown")."""
    name = str(block.name)
    return "the Pyomo model" if name == "unknown" else f"the Pyomo model {name!r}"


def relation_parts(relation, where: str) -> list[tuple]:
    """A Pyomo relation as (margin expression pieces) for verify: [(lhs, rhs, strict)] meaning lhs <= rhs."""
    _, relational, _ = pyomo_modules()
    if isinstance(relation, relational.EqualityExpression):
        raise ModelError(f"{where}: cannot verify the equality {text_of(relation)}; equalities are constraints "
                         "(verify relations <=, >=, <, >)")
    if isinstance(relation, relational.RangedExpression):
        lo, body, hi = relation.args
        strict = relation.strict if isinstance(relation.strict, tuple) else (relation.strict, relation.strict)
        return [(lo, body, bool(strict[0])), (body, hi, bool(strict[1]))]
    if isinstance(relation, relational.InequalityExpression):
        lhs, rhs = relation.args
        return [(lhs, rhs, bool(relation.strict))]
    if isinstance(relation, bool):
        raise ModelError(f"{where}: the property is {relation} (Pyomo already evaluated the relation)")
    raise ModelError(f"{where}: cannot verify {text_of(relation)!s} ({type(relation).__name__}): give a Pyomo "
                     "relation such as m.x + m.y <= 3, or a list of them")


def from_pyomo(block, prop=None, combine: str = "all", derive_bounds: bool = True) -> PyomoImport:
    """Read a Pyomo ``ConcreteModel`` (or block) for graphver; see the module docstring.

    Without ``prop``: the one active objective is row 0 (``-f`` for a maximisation) and ``sense`` says
    which. With ``prop`` (a Pyomo relation ``lhs <= rhs`` / ``>=`` / ``<`` / ``>`` / ranged, or a list of
    them): one margin row ``rhs - lhs`` (>= 0 where it holds) per relation, for ``verify``; the objective is
    then ignored. Every row is a difference ``a - b`` of two Pyomo expressions or numbers (``row_pairs``),
    lowered once for the tape and again, exactly, for confirmation. derive_bounds: a variable without finite
    bounds gets the bounds the constraints imply (FBBT, outward-rounded; recorded in ``derived``), when they
    are finite; otherwise it is an error naming the variables."""
    check_block(block)
    if combine not in ("all", "any"):
        raise ModelError(f"combine must be 'all' or 'any', got {combine!r}")
    pairs, texts, strict, sense = [], [], [], None
    if prop is None:
        objectives = active_objectives(block)
        if not objectives:
            raise ModelError(f"{model_name(block)} has no active Objective: bound needs one (or pass a property to "
                             "verify)")
        if len(objectives) > 1:
            names = ", ".join(o.name for o in objectives[:5])
            raise ModelError(f"{model_name(block)} has {len(objectives)} active objectives ({names}): deactivate all but one")
        objective = objectives[0]
        sense = "max" if int(objective.sense) == -1 else "min"
        pairs.append((objective.expr, 0) if sense == "min" else (0, objective.expr))
        texts.append(text_of(objective.expr, 10**6))
        wheres = [f"objective {objective.name}"]
    else:
        items = list(prop) if isinstance(prop, (list, tuple)) else [prop]
        if not items:
            raise ModelError("verify needs at least one relation")
        relations = [part for i, r in enumerate(items) for part in relation_parts(r, f"property {i + 1}")]
        for lhs, rhs, is_strict in relations:
            pairs.append((rhs, lhs))
            texts.append(f"{text_of(lhs)} {'<' if is_strict else '<='} {text_of(rhs)}")
            strict.append(is_strict)
        wheres = [f"property row {i + 1}" for i in range(len(pairs))]
    n_rows = len(pairs)
    constraints = active_constraints(block)
    imported, limits = [], ([], [], [])
    for constraint in constraints:
        low = constraint.lower if constraint.has_lb() else None
        high = constraint.upper if constraint.has_ub() else None
        if low is None and high is None:
            continue  # no bound: no constraint
        first = len(pairs)
        if constraint.equality:
            kind = "eq"
            pairs += [(constraint.body, high), (high, constraint.body)]
            add_limit(limits, first, 0.0, 0.0)
        else:
            kind = "range" if low is not None and high is not None else "le" if high is not None else "ge"
            if high is not None:
                add_limit(limits, len(pairs), -math.inf, 0.0)
                pairs.append((constraint.body, high))
            if low is not None:
                add_limit(limits, len(pairs), -math.inf, 0.0)
                pairs.append((low, constraint.body))
        wheres += [f"constraint {constraint.name}"] * (len(pairs) - first)
        imported.append(ImportedConstraint(constraint.name, kind, constraint_text(constraint),
                                           tuple(range(first, len(pairs)))))

    variables = variables_of(block, [e for pair in pairs for e in pair if hasattr(e, "is_expression_type")])
    for var in variables:
        check_continuous(var)
    names = [v.name for v in variables]
    if len(set(names)) != len(names):  # variables of different blocks with the same local name
        names = [v.getname(fully_qualified=True) for v in variables]
    emitter = Emitter(len(variables), names)
    target = TapeTarget(emitter)
    walker = Walker(target, {id(v): i for i, v in enumerate(variables)})
    outputs = []
    for (a, b), where in zip(pairs, wheres):
        row = target.sum([walker.lower(a, where), target.scale(walker.lower(b, where), Fraction(-1))], where)
        outputs.append(target_row(target, row, where))
    tape = emitter.tape(outputs)

    lower, upper, missing = [], [], []
    for var in variables:
        low, high = bounds_of(var, f"variable {var.name}")
        if low is not None and high is not None and low > high:
            raise ModelError(f"variable {var.name} has lower bound {var.lb} > upper bound {var.ub}")
        lower.append(-math.inf if low is None else low)
        upper.append(math.inf if high is None else high)
        if low is None or high is None:
            missing.append(var)
    start = [var.value for var in variables] if sense is not None else None  # for the objective cutoff
    derived = derive_missing(tape, lower, upper, n_rows, names, derive_bounds, start, limits) if missing else {}
    return PyomoImport(tape, lower, upper, variables, names, n_rows, sense, texts, imported, limits, derived,
                       tuple(strict) or (False,) * n_rows, combine, tuple(pairs), tuple(wheres))


CUTOFF_MARGIN = 1e-6  # how far IPOPT's point keeps inside each inequality, so that it certifies as feasible
CUTOFF_SECONDS = 5.0  # IPOPT's time for a feasible point


def feasible_points(tape: Tape, lower, upper, start: list, limits: tuple):
    """Candidate feasible points: the start (a variable without a value at 0), clamped into the box; then,
    if cyipopt is installed, IPOPT's local minimum from it with every inequality row tightened to
    ``<= -CUTOFF_MARGIN`` (equalities as they are), so that it lies strictly inside them."""
    import numpy as np

    x0 = np.clip(np.array([0.0 if v is None else float(v) for v in start]), lower[0].numpy(), upper[0].numpy())
    yield x0
    from graphver.search.ipopt import IPOPT_INF, TapeNLP, ipopt_available

    if not ipopt_available():
        return
    rows, row_low, row_high = (np.asarray(v, dtype=np.float64) for v in limits)
    tightened = np.where(row_low == row_high, row_high, row_high - CUTOFF_MARGIN)
    nlp = TapeNLP(tape, 0, rows=rows.astype(int), row_lower=np.clip(row_low, -IPOPT_INF, IPOPT_INF),
                  row_upper=tightened)
    bound = lambda v: np.clip(v[0].numpy(), -IPOPT_INF, IPOPT_INF)  # noqa: E731
    run = nlp.solve(x0, bound(lower), bound(upper), max_iter=500, max_wall_time=CUTOFF_SECONDS)
    yield run.x


def objective_cutoff(tape: Tape, lower, upper, n_rows: int, point) -> float | None:
    """The certified upper end of the objective row at ``point`` (clamped into the box) when every
    constraint row is certified at most 0 there, else None."""
    import torch

    from graphver.bounds.ibp import DomainMarks, forward_bounds

    point = torch.as_tensor(point, dtype=torch.float64).reshape(1, -1)
    point = torch.minimum(torch.maximum(point, lower), upper)
    if not bool(torch.isfinite(point).all()):
        return None
    marks = DomainMarks(1, point.device)
    with torch.no_grad():
        _, hi = forward_bounds(tape, point, point, marks=marks)
    hi = hi[0, tape.outputs]
    if bool(marks.bad.any()) or not bool(torch.isfinite(hi).all()) or bool((hi[n_rows:] > 0).any()):
        return None
    return float(hi[0])


def add_limit(limits: tuple, row: int, low: float, high: float) -> None:
    """One constraint row for a local solver: its tape row and the limits of its value."""
    limits[0].append(row)
    limits[1].append(low)
    limits[2].append(high)


def sympy_rows(imported: PyomoImport, symbols) -> list:
    """The rows of an import as exact sympy expressions over ``symbols`` (for certified confirmation)."""
    walker = Walker(SympyTarget(symbols), {id(v): i for i, v in enumerate(imported.variables)})
    return [sympy_of(walker.lower(a, where)) - sympy_of(walker.lower(b, where))
            for (a, b), where in zip(imported.row_pairs, imported.wheres)]


def target_row(target: TapeTarget, value, where: str) -> int:
    """The emitted node of a row (a constant row gets a constant node)."""
    if isinstance(value, Affine):
        return target.node(value, where)
    return target.emitter.linear({}, value, f"constant row of {where}")


def constraint_text(constraint) -> str:
    try:
        return text_of(constraint.expr, 300)
    except Exception:  # noqa: BLE001
        return constraint.name


DERIVE_ROUNDS = 20  # FBBT rounds when deriving the bounds of unbounded variables from the constraints


def derive_missing(tape: Tape, lower: list, upper: list, n_rows: int, names: list, derive: bool,
                   start: list | None = None, limits: tuple = ((), (), ())) -> dict:
    """Finite bounds for the variables with an infinite end implied by the constraint rows (FBBT over the box with
    infinite ends, outward-rounded like every FBBT bound), written into ``lower``/``upper`` and returned by
    name; an error naming the variables that stay unbounded. An end that FBBT cannot compute (NaN, from
    inf - inf) carries no information.

    In objective mode (``start``: the variables' Pyomo values), a feasible point gives the objective row
    the cutoff ``f <= U``, U the certified upper end of f there: the minimum lies in that set, so the box
    it implies still holds every minimiser (not every feasible point: such a box serves ``bound``, which
    the objective mode is for). The point is the start, or else IPOPT's solution of the problem with its
    inequalities tightened (``feasible_points``); it counts only when certified feasible (interval
    evaluation at the point: every constraint row at most 0)."""
    objective_mode = start is not None and n_rows == 1
    ends = {i: (lower[i], upper[i]) for i in range(len(names)) if math.isinf(lower[i]) or math.isinf(upper[i])}
    cutoff = None
    if derive and (tape.n_outputs > n_rows or objective_mode):
        import torch

        from graphver.bounds.fbbt import fbbt

        low = torch.tensor([lower], dtype=torch.float64)
        high = torch.tensor([upper], dtype=torch.float64)
        rows = torch.arange(n_rows, tape.n_outputs)
        caps = torch.zeros(len(rows), dtype=torch.float64)
        if objective_mode:
            for point in feasible_points(tape, low, high, start, limits):
                cutoff = objective_cutoff(tape, low, high, n_rows, point)
                if cutoff is not None:
                    break
        if cutoff is not None:
            rows, caps = torch.cat([torch.tensor([0]), rows]), torch.cat([torch.tensor([cutoff]), caps])
        new_low, new_high, infeasible = fbbt(tape, low, high, rows, rounds=DERIVE_ROUNDS, caps=caps)
        if bool(infeasible.any()):
            if cutoff is not None:  # cannot be: the box holds a certified feasible point below the cutoff
                raise AssertionError("bound tightening with the objective cutoff emptied a box holding a certified "
                                     "feasible point")
            raise ModelError("the constraints cannot all hold (certified by bound tightening over the variables' "
                             "bounds): the model is infeasible")
        new_low = torch.nan_to_num(new_low, nan=-math.inf, posinf=math.inf, neginf=-math.inf)
        new_high = torch.nan_to_num(new_high, nan=math.inf, posinf=math.inf, neginf=-math.inf)
        ends = {i: (max(lo, float(new_low[0, i])), min(hi, float(new_high[0, i]))) for i, (lo, hi) in ends.items()}
        if all(math.isfinite(lo) and math.isfinite(hi) for lo, hi in ends.values()):
            for i, (lo, hi) in ends.items():
                lower[i], upper[i] = lo, hi
            return {names[i]: bounds for i, bounds in ends.items()}
    still = [(i, lo, hi) for i, (lo, hi) in ends.items() if not (math.isfinite(lo) and math.isfinite(hi))]
    which = lambda lo, hi: "lower" if math.isfinite(hi) else "upper" if math.isfinite(lo) else "lower and upper"  # noqa: E731
    shown = ", ".join(f"{names[i]} (no finite {which(lo, hi)} bound)" for i, lo, hi in still[:10])
    more = f" and {len(still) - 10} more" if len(still) > 10 else ""
    implied = ""
    if derive:
        implied = ("; neither the constraints nor the objective's cutoff at a feasible point imply finite bounds for "
                   "them" if cutoff is not None else "; the constraints do not imply finite bounds for them")
    raise ModelError(f"variables without finite bounds: {shown}{more}{implied}. graphver needs a finite box: give "
                     "each one bounds, e.g. m.x.setlb(0); m.x.setub(100), or Var(bounds=(0, 100))")
