"""VNN-LIB properties: the input box and the unsafe output set, as VNN-COMP writes them.

A file declares ``X_i`` (inputs) and ``Y_j`` (outputs) with ``(declare-const NAME Real)`` and asserts
formulas built from ``(<= a b)``, ``(>= a b)``, ``(< a b)``, ``(> a b)``, ``(and ...)`` and ``(or ...)``,
whose terms are numbers, variables and ``(+ ...)``, ``(- ...)``, ``(* c term)`` linear expressions. The
assertions on inputs alone make the box; the rest, conjoined, make the unsafe set, normalised to a
disjunction of conjunctions of linear rows ``a . Y + b <= 0`` (DNF). "unsat" (the property holds) means:
no input of the box maps to an output in the unsafe set. Non-strict and strict comparisons are kept
apart (``strict``): a boundary point of a non-strict unsafe row is unsafe.

    spec = read_vnnlib("prop.vnnlib")
    spec.boxes          # [(lower [n], upper [n])]: usually one; a disjunction over inputs gives several
    spec.disjuncts      # [Conjunction(coef [m, n_out], offset [m], strict [m])]

Parsing is one regular-expression tokenizer pass and an explicit stack, so 100k-line files take well under
a second; an error names the line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from graphver.errors import ModelError

TOKEN = re.compile(r"\(|\)|;[^\n]*|[^\s();]+")
VARIABLE = re.compile(r"^([XY])_(\d+)$")


class VnnlibError(ModelError):
    """A malformed VNN-LIB file (the message names the file and line)."""


@dataclass
class Conjunction:
    """Rows ``coef @ Y + offset <= 0`` (``< 0`` where ``strict``) that must all hold."""

    coef: np.ndarray  # [m, n_outputs]
    offset: np.ndarray  # [m]
    strict: np.ndarray  # [m] bool


@dataclass
class VnnlibSpec:
    n_inputs: int
    n_outputs: int
    boxes: list = field(default_factory=list)  # [(lower, upper)]
    disjuncts: list = field(default_factory=list)  # [Conjunction]: the unsafe set is their union
    path: str = ""


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

    def linear(self, item) -> tuple[dict, float]:
        """A term as (coefficients {name: c}, constant)."""
        value, offset = item
        if isinstance(value, str):
            if value in self.declared:
                return {value: 1.0}, 0.0
            if VARIABLE.match(value):
                self.error(offset, f"{value} is used but never declared")
            try:
                return {}, float(value)
            except ValueError:
                self.error(offset, f"expected a number or a declared variable, got {value!r}")
        if not value:
            self.error(offset, "empty expression ()")
        head, head_offset = value[0]
        args = [self.linear(a) for a in value[1:]]
        if head == "+":
            return combine(args, [1.0] * len(args))
        if head == "-":
            if len(args) == 1:
                return combine(args, [-1.0])
            return combine(args, [1.0] + [-1.0] * (len(args) - 1))
        if head == "*":
            constants = [a for a in args if not a[0]]
            terms = [a for a in args if a[0]]
            if len(terms) > 1:
                self.error(head_offset, "product of two variables: VNN-LIB properties must be linear")
            factor = float(np.prod([c for _, c in constants])) if constants else 1.0
            if not terms:
                return {}, factor
            coefficients, constant = terms[0]
            return {k: factor * v for k, v in coefficients.items()}, factor * constant
        self.error(head_offset, f"unknown function {head!r} in a term (expected +, -, *)")

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
            coefficients, constant = combine([left, right], [1.0, -1.0])
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


def combine(parts, signs) -> tuple[dict, float]:
    coefficients: dict[str, float] = {}
    constant = 0.0
    for (c, k), s in zip(parts, signs):
        for name, v in c.items():
            coefficients[name] = coefficients.get(name, 0.0) + s * v
        constant += s * k
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
    # input-only assertions (single-row conjunctions on X) make the box; the rest the unsafe set
    lower, upper = np.full(n_in, -np.inf), np.full(n_in, np.inf)
    input_dnf: list[list] = [[]]
    output_dnf: list[list] = [[]]
    for dnf, offset in asserted:
        names = {name for conj in dnf for coefficients, _, _ in conj for name in coefficients}
        if names and all(n.startswith("X_") for n in names) and len(dnf) == 1 and all(
                len(c) == 1 for c, _, _ in dnf[0]):
            for coefficients, constant, _ in dnf[0]:  # c x + k <= 0 with one variable: a bound
                (name, c), = coefficients.items()
                i = reader.declared[name]
                if c > 0:
                    upper[i] = min(upper[i], -constant / c)
                elif c < 0:
                    lower[i] = max(lower[i], -constant / c)
            continue
        if any(n.startswith("X_") for n in names):  # other input constraints: rejected below
            input_dnf = [a + b for a in input_dnf for b in dnf]
            continue
        output_dnf = [a + b for a in output_dnf for b in dnf]
    spec = VnnlibSpec(n_in, n_out, path=source)
    if input_dnf != [[]]:
        raise VnnlibError(f"{source}: input constraints other than bounds on single variables (or mixed input/"
                          "output disjunctions) are not supported")
    if not (np.isfinite(lower).all() and np.isfinite(upper).all()):
        missing = [f"X_{i}" for i in range(n_in) if not (np.isfinite(lower[i]) and np.isfinite(upper[i]))]
        raise VnnlibError(f"{source}: no finite lower and upper bound for {', '.join(missing[:5])}"
                          f"{' ...' if len(missing) > 5 else ''}")
    if (lower > upper).any():
        i = int(np.argmax(lower > upper))
        raise VnnlibError(f"{source}: empty input box: X_{i} >= {lower[i]} and <= {upper[i]}")
    spec.boxes.append((lower, upper))
    if output_dnf == [[]]:
        raise VnnlibError(f"{source}: no output property (no assertion on Y)")
    for conj in output_dnf:
        coef = np.zeros((len(conj), n_out))
        offset = np.zeros(len(conj))
        strict = np.zeros(len(conj), dtype=bool)
        for r, (coefficients, constant, is_strict) in enumerate(conj):
            for name, c in coefficients.items():
                if name.startswith("X_"):
                    raise VnnlibError(f"{source}: output constraints that mention inputs are not supported")
                coef[r, reader.declared[name]] += c
            offset[r], strict[r] = constant, is_strict
        spec.disjuncts.append(Conjunction(coef, offset, strict))
    return spec
