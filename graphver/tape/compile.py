"""The compiler: sympy -> IR -> named passes (validated after each) -> frozen tape.

``compile_expressions`` reads as the list of stages. Set ``debug=True`` (or the environment variable
``GRAPHVER_DEBUG=1``) to print the IR statistics after every pass and the final tape.
"""

from __future__ import annotations

import os
from collections import defaultdict

import sympy
import torch

from graphver.exact import certified_float
from graphver.ir import PASSES, IRGraph, lower_sympy, validate
from graphver.ir.graph import node_args
from graphver.tape.tape import Instruction, Tape


def compile_expressions(symbols: list[sympy.Symbol], outputs: list, debug: bool | None = None) -> Tape:
    """Compile sympy ``outputs`` over the variables ``symbols`` to a tape."""
    debug = os.environ.get("GRAPHVER_DEBUG") == "1" if debug is None else debug
    ir = lower_sympy(symbols, outputs)
    validate(ir, after="lower_sympy")
    if debug:
        print(f"[graphver] lower_sympy: {ir.stats()}")
    for name, run_pass in PASSES:
        ir = run_pass(ir)
        validate(ir, after=name)
        if debug:
            print(f"[graphver] {name}: {ir.stats()}")
    tape = freeze(ir)
    if debug:
        print(tape.summary())
    return tape


def round_exact(value) -> tuple[float, float]:
    """The float nearest an exact sympy number, and an upper bound on the rounding error.

    Rationals (every float constant of a model is one) are rounded once, correctly, with the exact error.
    Other numbers (sqrt(2), pi, sin(1), sin(1)**2 + cos(1)**2 - 1) are enclosed in interval arithmetic
    (``graphver.exact.certified_float``): the error bound always covers the exact value, also for a
    constant that cancels to 0 (it is never trusted to digits its evaluation did not reach).
    """
    return certified_float(value)


def levels(ir: IRGraph) -> dict[int, int]:
    """Depth of each node: inputs 0, every other node 1 + the deepest argument."""
    depth: dict[int, int] = {}
    for node in ir.topological_order():
        args = node_args(ir.graph.nodes[node])
        depth[node] = 1 + max((depth[a] for a in args), default=0) if ir.graph.nodes[node]["kind"] != "input" else 0
    return depth


def exactness(ir: IRGraph, order: list[int]) -> dict[int, frozenset | None]:
    """Input support of nodes whose IBP interval is exact (None where it may overestimate).

    Exact: inputs; a linear node or a product whose arguments are exact with disjoint supports; a unary
    op of an exact argument. CROWN cannot tighten such a node, so it is never refined.
    """
    support: dict[int, frozenset | None] = {}
    for node in order:
        data = ir.graph.nodes[node]
        kind = data["kind"]
        if kind == "input":
            support[node] = frozenset([data["index"]])
        elif kind == "const":
            support[node] = frozenset()
        else:
            parts = [support[a] for a in node_args(data)]
            if any(p is None for p in parts):
                support[node] = None
                continue
            total = sum(len(p) for p in parts)
            union = frozenset().union(*parts)
            support[node] = union if len(union) == total else None
    return support


def freeze(ir: IRGraph) -> Tape:
    """Group nodes by (level, kind, op, param) into instructions and assign global indices."""
    g = ir.graph
    order = ir.topological_order()
    depth = levels(ir)
    support = exactness(ir, order)
    index: dict[int, int] = {node: i for i, node in enumerate(ir.inputs)}
    labels = [g.nodes[n]["label"] for n in ir.inputs]

    groups: dict[tuple, list[int]] = defaultdict(list)
    for node in order:
        data = g.nodes[node]
        if data["kind"] == "input":
            continue
        kind = "linear" if data["kind"] == "const" else data["kind"]
        key = (depth[node], kind, data.get("op") or "", data.get("param") if data.get("param") is not None else 0.0)
        groups[key].append(node)

    nonlinear_args = set()
    for node in order:
        if g.nodes[node]["kind"] in ("unary", "binary"):
            nonlinear_args.update(node_args(g.nodes[node]))

    instructions = []
    position = len(ir.inputs)
    for key in sorted(groups):
        level, kind, op, _ = key
        nodes = groups[key]
        start = position
        for node in nodes:
            index[node] = position
            labels.append(g.nodes[node]["label"])
            position += 1
        refine = [i for i, n in enumerate(nodes) if n in nonlinear_args and support[n] is None]
        common = dict(kind=kind, start=start, stop=position, level=level,
                      refine=torch.tensor(refine, dtype=torch.long))
        if kind == "linear":
            rows, cols, weights, weight_error, bias, bias_error, fan_in = [], [], [], [], [], [], 0
            for row, node in enumerate(nodes):
                data = g.nodes[node]
                terms = data.get("terms", ())
                fan_in = max(fan_in, len(terms))
                for arg, coef in terms:
                    rows.append(row)
                    cols.append(index[arg])
                    nearest, error = round_exact(coef)
                    weights.append(nearest)
                    weight_error.append(error)
                nearest, error = round_exact(data["bias"] if data["kind"] == "linear" else data["value"])
                bias.append(nearest)
                bias_error.append(error)
            instructions.append(Instruction(
                **common,
                rows=torch.tensor(rows, dtype=torch.long),
                cols=torch.tensor(cols, dtype=torch.long),
                weights=torch.tensor(weights, dtype=torch.float64),
                bias=torch.tensor(bias, dtype=torch.float64),
                weight_error=torch.tensor(weight_error, dtype=torch.float64),
                bias_error=torch.tensor(bias_error, dtype=torch.float64),
                fan_in=fan_in,
            ))
        else:
            arity = 1 if kind == "unary" else 2
            args = tuple(
                torch.tensor([index[g.nodes[n]["args"][j]] for n in nodes], dtype=torch.long) for j in range(arity)
            )
            instructions.append(Instruction(**common, op=op, param=g.nodes[nodes[0]].get("param"), args=args))

    fan_out = max((g.out_degree(n) for n in g.nodes), default=0) + 1
    fan_in = max((i.fan_in for i in instructions), default=0)
    width = max((i.size for i in instructions), default=0)
    accumulation = fan_out + fan_in + width + len(ir.inputs) + len(instructions) + 4
    return Tape(
        n_inputs=len(ir.inputs),
        n_nodes=position,
        instructions=tuple(instructions),
        outputs=torch.tensor([index[o] for o in ir.outputs], dtype=torch.long),
        labels=tuple(labels),
        input_names=tuple(ir.input_names),
        accumulation_terms=accumulation,
    )
