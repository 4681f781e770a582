"""VNN-LIB properties: the input box and the unsafe output set, as VNN-COMP writes them.

A file declares ``X_i`` (inputs) and ``Y_j`` (outputs) with ``(declare-const NAME Real)`` and asserts
formulas built from ``(<= a b)``, ``(>= a b)``, ``(< a b)``, ``(> a b)``, ``(and ...)`` and ``(or ...)``,
whose terms are numbers, variables and ``(+ ...)``, ``(- ...)``, ``(* c term)`` linear expressions. The
assertions on inputs alone make the box; the rest, conjoined, make the unsafe set, normalised to a
disjunction of conjunctions of linear rows ``a . Y + b <= 0`` (DNF). "unsat" (the property holds) means:
no input of the box maps to an output in the unsafe set. Non-strict and strict comparisons are kept
apart (``strict``): a boundary point of a non-strict unsafe row is unsafe.

Numbers are read exactly (``Fraction``: ``0.07`` is 7/100) and combined exactly, so a threshold written as
3000 copies of 0.07 is exactly 210. Rounding to floats happens once, at the end, in the direction that
only enlarges what is checked: the box outward (``boxes``: lower ends down, upper ends up), each unsafe
row's coefficients to the nearest float with a bound on the error (``coef_error``, carried into the
tape's ``weight_error``) and its constant down (``offset`` <= the exact constant, so the rounded row
``coef . y + offset <= 0`` holds on a superset of the exact unsafe set). The exact values stay available
(``exact_boxes``, ``Conjunction.exact``) so that a counterexample is confirmed against the exact property:
``inner_boxes`` holds the floats inside the exact box (lower ends up, upper ends down, strict bounds
excluded).

    spec = read_vnnlib("prop.vnnlib")
    spec.boxes          # [(lower [n], upper [n])] floats containing the exact box (usually one box)
    spec.disjuncts      # [Conjunction(coef [m, n_out], offset [m], strict [m], coef_error, exact)]

Parsing is one regular-expression tokenizer pass and an explicit stack, so 100k-line files take well under
a second; an error names the line.
"""

from __future__ import annotations

import gc
import math
import re
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import numpy as np

from graphver.errors import ModelError

TOKEN = re.compile(r"\(|\)|;[^\n]*|[^\s();]+")
VARIABLE = re.compile(r"^([XY])_(\d+)$")


class VnnlibError(ModelError):
    """A malformed VNN-LIB file (the message names the file and line)."""


@dataclass
class Conjunction:
    """Rows ``coef @ Y + offset <= 0`` (``< 0`` where ``strict``) that must all hold.

    ``coef`` is the nearest float of each exact coefficient, ``coef_error`` bounds the difference;
    ``offset`` is the exact constant rounded down. ``exact`` holds every row exactly:
    ``({output index: Fraction}, Fraction constant)``."""

    coef: np.ndarray  # [m, n_outputs]
    offset: np.ndarray  # [m]
    strict: np.ndarray  # [m] bool
    coef_error: np.ndarray | None = None  # [m, n_outputs], >= |exact coefficient - coef|
    exact: list | None = None  # [m] of ({j: Fraction}, Fraction)

    def exact_hit(self, y) -> bool:
        """Whether finite outputs ``y`` satisfy every row, evaluated exactly (``y`` taken as its floats)."""
        rows = self.exact if self.exact is not None else [
            ({j: Fraction(float(c)) for j, c in enumerate(row) if c}, Fraction(float(k)))
            for row, k in zip(self.coef, self.offset)]
        for (coefficients, constant), is_strict in zip(rows, self.strict):
            value = constant + sum(c * Fraction(float(y[j])) for j, c in coefficients.items())
            if not (value < 0 if is_strict else value <= 0):
                return False
        return True


@dataclass
class VnnlibSpec:
    n_inputs: int
    n_outputs: int
    boxes: list = field(default_factory=list)  # [(lower, upper)] floats, rounded outward from the exact box
    disjuncts: list = field(default_factory=list)  # [Conjunction]: the unsafe set is their union
    path: str = ""
    exact_boxes: list = field(default_factory=list)  # [(lower, upper)] lists of Fraction
    inner_boxes: list = field(default_factory=list)  # [(lower, upper)] floats inside the exact box


def nearest(value: Fraction) -> float:
    """The float nearest an exact rational (correctly rounded); +-inf beyond the float range."""
    try:
        return float(value)
    except OverflowError:
        return math.inf if value > 0 else -math.inf


def is_float(value: Fraction) -> bool:
    """Whether a rational is exactly a (normal or subnormal) float64: the fast path of the roundings."""
    d = value.denominator
    return d & (d - 1) == 0 and abs(value.numerator).bit_length() <= 53 and d.bit_length() <= 1075


def round_down(value: Fraction, strict: bool = False) -> float:
    """The largest float <= ``value`` (< ``value`` when ``strict``)."""
    if not strict and is_float(value):
        return float(value)
    f = nearest(value)
    if f == math.inf:
        return float(np.finfo(np.float64).max)
    if f == -math.inf:
        return f
    if Fraction(f) > value or (strict and Fraction(f) == value):
        f = math.nextafter(f, -math.inf)
    return f


def round_up(value: Fraction, strict: bool = False) -> float:
    """The smallest float >= ``value`` (> ``value`` when ``strict``)."""
    return -round_down(-value, strict)


def nearest_with_error(value: Fraction) -> tuple[float, float]:
    """The float nearest ``value`` and a float >= the rounding error; never 0 for a nonzero value (a
    coefficient that underflows to 0 would be dropped from the tape together with its error)."""
    if is_float(value):
        return float(value), 0.0
    f = nearest(value)
    if f == 0.0 and value != 0:
        f = math.copysign(5e-324, value)
    if not math.isfinite(f):
        return f, math.inf
    error = abs(value - Fraction(f))
    return f, 0.0 if error == 0 else math.nextafter(float(error), math.inf)


def tokens(text: str):
    """(token, offset) pairs; comments dropped."""
    for match in TOKEN.finditer(text):
        token = match.group()
        if token[0] != ";":
            yield token, match.start()


def parse_sexpressions(text: str, source: str) -> list:
    """Top-level S-expressions as nested lists of (token, offset) leaves."""
    stack: list[list] = [[]]
    opened: list[int] = []
    for token, offset in tokens(text):
        if token == "(":
            stack.append([])
            opened.append(offset)
        elif token == ")":
            if len(stack) == 1:
                raise VnnlibError(f"{source}, line {line_of(text, offset)}: unbalanced ')'")
            done = stack.pop()
            opened.pop()
            stack[-1].append((done, offset))
        else:
            stack[-1].append((token, offset))
    if len(stack) != 1:
        raise VnnlibError(f"{source}, line {line_of(text, opened[-1])}: '(' is never closed")
    return stack[0]


def line_of(text: str, offset: int) -> int:
    return text.count("\n", 0, offset) + 1


class Reader:
    def __init__(self, text: str, source: str):
        self.text, self.source = text, source
        self.declared: dict[str, int] = {}
        self.n_inputs = 0
        self.n_outputs = 0

    def error(self, offset: int, message: str):
        raise VnnlibError(f"{self.source}, line {line_of(self.text, offset)}: {message}")

    def linear(self, item) -> tuple[dict, Fraction]:
        """A term as (coefficients {name: c}, constant), exact rationals."""
        value, offset = item
        if isinstance(value, str):
            if value in self.declared:
                return {value: ONE}, ZERO
            if VARIABLE.match(value):
                self.error(offset, f"{value} is used but never declared")
            return {}, self.number(value, offset)
        if not value:
            self.error(offset, "empty expression ()")
        head, head_offset = value[0]
        args = [self.linear(a) for a in value[1:]]
        if head == "+":
            return combine(args, [1] * len(args))
        if head == "-":
            if len(args) == 1:
                return combine(args, [-1])
            return combine(args, [1] + [-1] * (len(args) - 1))
        if head == "*":
            constants = [a for a in args if not a[0]]
            terms = [a for a in args if a[0]]
            if len(terms) > 1:
                self.error(head_offset, "product of two variables: VNN-LIB properties must be linear")
            factor = ONE
            for _, c in constants:
                factor *= c
            if not terms:
                return {}, factor
            coefficients, constant = terms[0]
            return {k: factor * v for k, v in coefficients.items()}, factor * constant
        self.error(head_offset, f"unknown function {head!r} in a term (expected +, -, *)")

    def number(self, token: str, offset: int) -> Fraction:
        """A numeral read exactly: ``0.07`` is 7/100, ``1e-3`` is 1/1000 (SMT-LIB decimals and Python's
        float syntax); infinities and NaN are rejected."""
        try:
            return Fraction(token)
        except (ValueError, ZeroDivisionError):
            pass
        try:
            value = float(token)
        except ValueError:
            self.error(offset, f"expected a number or a declared variable, got {token!r}")
        if not math.isfinite(value):
            self.error(offset, f"{token!r} is not a finite number")
        return Fraction(value)  # other float spellings (1_000, hexadecimal-free): the float's exact value

    def formula(self, item) -> list[list[tuple]]:
        """A formula as DNF: a list of conjunctions, each a list of (coefficients, constant, strict) rows
        meaning sum c_v v + constant <= 0 (< 0 when strict)."""
        value, offset = item
        if isinstance(value, str) or not value:
            self.error(offset, f"expected a formula, got {value!r}")
        head, head_offset = value[0]
        args = value[1:]
        if head in ("<=", ">=", "<", ">"):
            if len(args) != 2:
                self.error(head_offset, f"({head} ...) needs two arguments, got {len(args)}")
            (ca, ka), (cb, kb) = self.linear(args[0]), self.linear(args[1])
            left, right = ((ca, ka), (cb, kb)) if head in ("<=", "<") else ((cb, kb), (ca, ka))
            coefficients, constant = combine([left, right], [1, -1])
            return [[(coefficients, constant, head in ("<", ">"))]]
        if head == "and":
            result: list[list] = [[]]
            for arg in args:
                part = self.formula(arg)
                result = [a + b for a in result for b in part]
            return result
        if head == "or":
            return [conj for arg in args for conj in self.formula(arg)]
        self.error(head_offset, f"unknown formula head {head!r} (expected <=, >=, <, >, and, or)")

    def declare(self, item) -> None:
        value, offset = item
        if len(value) != 3 or not all(isinstance(v, str) for v, _ in value):
            self.error(offset, "expected (declare-const NAME Real)")
        name, sort = value[1][0], value[2][0]
        if sort != "Real":
            self.error(value[2][1], f"{name}: only Real constants are supported, got {sort}")
        match = VARIABLE.match(name)
        if not match:
            self.error(value[1][1], f"{name}: variables must be named X_i (inputs) or Y_j (outputs)")
        kind, index = match.group(1), int(match.group(2))
        self.declared[name] = index
        if kind == "X":
            self.n_inputs = max(self.n_inputs, index + 1)
        else:
            self.n_outputs = max(self.n_outputs, index + 1)


ZERO, ONE = Fraction(0), Fraction(1)


def combine(parts, signs) -> tuple[dict, Fraction]:
    """sum of s * part, exactly (signs are +1 or -1)."""
    coefficients: dict[str, Fraction] = {}
    constant = ZERO
    for (c, k), s in zip(parts, signs):
        for name, v in c.items():
            v = v if s > 0 else -v
            old = coefficients.get(name)
            coefficients[name] = v if old is None else old + v
        if k:
            constant = (k if s > 0 else -k) if not constant else (constant + k if s > 0 else constant - k)
    return coefficients, constant


def read_vnnlib(path, n_inputs: int | None = None, n_outputs: int | None = None) -> VnnlibSpec:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise VnnlibError(f"{path}: cannot read the VNN-LIB file ({error})") from error
    return parse_vnnlib(text, str(path), n_inputs, n_outputs)


def parse_vnnlib(text: str, source: str = "<vnnlib>", n_inputs: int | None = None,
                 n_outputs: int | None = None) -> VnnlibSpec:
    # the parse allocates millions of small objects and frees none of them: the cyclic garbage collector
    # would only rescan them (half the time of a 100k-line file)
    collecting = gc.isenabled()
    gc.disable()
    try:
        return parse(text, source, n_inputs, n_outputs)
    finally:
        if collecting:
            gc.enable()


def parse(text: str, source: str, n_inputs: int | None, n_outputs: int | None) -> VnnlibSpec:
    reader = Reader(text, source)
    asserted = []
    for item in parse_sexpressions(text, source):
        value, offset = item
        if isinstance(value, str) or not value or not isinstance(value[0][0], str):
            reader.error(offset, f"expected (declare-const ...) or (assert ...), got {value!r}")
        head = value[0][0]
        if head == "declare-const":
            reader.declare(item)
        elif head == "assert":
            if len(value) != 2:
                reader.error(offset, "(assert ...) takes one formula")
            asserted.append((reader.formula(value[1]), offset))
        else:
            reader.error(offset, f"unknown command {head!r} (expected declare-const or assert)")
    n_in = n_inputs if n_inputs is not None else reader.n_inputs
    n_out = n_outputs if n_outputs is not None else reader.n_outputs
    if reader.n_inputs > n_in or reader.n_outputs > n_out:
        raise VnnlibError(f"{source}: declares {reader.n_inputs} inputs and {reader.n_outputs} outputs, the network "
                          f"has {n_in} and {n_out}")
    # input-only assertions (single-row conjunctions on X) make the box; the rest the unsafe set. The
    # bounds are exact (Fraction, with whether they are strict); None: unbounded
    lower: list = [None] * n_in
    upper: list = [None] * n_in
    input_dnf: list[list] = [[]]
    output_dnf: list[list] = [[]]
    for dnf, offset in asserted:
        names = {name for conj in dnf for coefficients, _, _ in conj for name in coefficients}
        if names and all(n.startswith("X_") for n in names) and len(dnf) == 1 and all(
                len(c) == 1 for c, _, _ in dnf[0]):
            for coefficients, constant, is_strict in dnf[0]:  # c x + k <= 0 with one variable: a bound
                (name, c), = coefficients.items()
                i = reader.declared[name]
                if c > 0:
                    upper[i] = tighter(upper[i], (-constant / c, is_strict), -1)
                elif c < 0:
                    lower[i] = tighter(lower[i], (-constant / c, is_strict), 1)
            continue
        if any(n.startswith("X_") for n in names):  # other input constraints: rejected below
            input_dnf = [a + b for a in input_dnf for b in dnf]
            continue
        output_dnf = [a + b for a in output_dnf for b in dnf]
    spec = VnnlibSpec(n_in, n_out, path=source)
    if input_dnf != [[]]:
        raise VnnlibError(f"{source}: input constraints other than bounds on single variables (or mixed input/"
                          "output disjunctions) are not supported")
    outer_lower = np.array([-np.inf if b is None else round_down(b[0]) for b in lower], dtype=np.float64)
    outer_upper = np.array([np.inf if b is None else round_up(b[0]) for b in upper], dtype=np.float64)
    if not (np.isfinite(outer_lower).all() and np.isfinite(outer_upper).all()):
        missing = [f"X_{i}" for i in range(n_in) if not (np.isfinite(outer_lower[i]) and np.isfinite(outer_upper[i]))]
        raise VnnlibError(f"{source}: no finite lower and upper bound for {', '.join(missing[:5])}"
                          f"{' ...' if len(missing) > 5 else ''}")
    empty = [i for i in range(n_in) if lower[i][0] > upper[i][0]
             or (lower[i][0] == upper[i][0] and (lower[i][1] or upper[i][1]))]
    if empty:
        i = empty[0]
        raise VnnlibError(f"{source}: empty input box: X_{i} >= {float(lower[i][0])!r} and <= {float(upper[i][0])!r}")
    spec.boxes.append((outer_lower, outer_upper))
    spec.exact_boxes.append(([b[0] for b in lower], [b[0] for b in upper]))
    spec.inner_boxes.append((np.array([round_up(b[0], b[1]) for b in lower], dtype=np.float64),
                             np.array([round_down(b[0], b[1]) for b in upper], dtype=np.float64)))
    if output_dnf == [[]]:
        raise VnnlibError(f"{source}: no output property (no assertion on Y)")
    finite = True
    for conj in output_dnf:
        coef = np.zeros((len(conj), n_out))
        coef_error = np.zeros((len(conj), n_out))
        offset = np.zeros(len(conj))
        strict = np.zeros(len(conj), dtype=bool)
        exact = []
        for r, (coefficients, constant, is_strict) in enumerate(conj):
            row = {}
            for name, c in coefficients.items():
                if name.startswith("X_"):
                    raise VnnlibError(f"{source}: output constraints that mention inputs are not supported")
                if c != 0:
                    row[reader.declared[name]] = c
            for j, c in row.items():
                coef[r, j], coef_error[r, j] = nearest_with_error(c)
                finite = finite and math.isfinite(coef[r, j])
            # the constant rounded down: coef . y + offset <= 0 on a superset of the exact unsafe row
            offset[r], strict[r] = round_down(constant), is_strict
            finite = finite and math.isfinite(offset[r])
            exact.append((row, constant))
        if not finite:
            raise VnnlibError(f"{source}: a coefficient or constant of the output property is beyond the float range")
        spec.disjuncts.append(Conjunction(coef, offset, strict, coef_error, exact))
    return spec


def tighter(bound, candidate, direction: int):
    """The tighter of two exact bounds (value, strict): the larger for a lower bound (``direction`` 1), the
    smaller for an upper bound (-1); at equal values a strict bound wins. ``bound`` None: unbounded."""
    if bound is None:
        return candidate
    if candidate[0] == bound[0]:
        return (bound[0], bound[1] or candidate[1])
    return candidate if (candidate[0] - bound[0]) * direction > 0 else bound
