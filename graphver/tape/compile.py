"""The compiler: sympy -> IR -> named passes (validated after each) -> frozen tape.

``compile_expressions`` reads as the list of stages. Set ``debug=True`` (or the environment variable
``GRAPHVER_DEBUG=1``) to print the IR statistics after every pass and the final tape.
"""

from __future__ import annotations

import os
from collections import defaultdict

import numpy as np
import sympy

from graphver.exact import certified_float
from graphver.ir import PASSES, IRGraph, lower_sympy, validate
from graphver.ir.graph import node_args
from graphver.tape.builder import TapeBuilder
from graphver.tape.tape import Tape


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


def levels(ir: IRGraph, order: list[int] | None = None) -> dict[int, int]:
    """Depth of each node: inputs 0, every other node 1 + the deepest argument (``order``: a topological
    order of the graph, if already known)."""
    depth: dict[int, int] = {}
    for node in ir.topological_order() if order is None else order:
        args = node_args(ir.graph.nodes[node])
        depth[node] = 1 + max((depth[a] for a in args), default=0) if ir.graph.nodes[node]["kind"] != "input" else 0
    return depth


def freeze(ir: IRGraph) -> Tape:
    """Group nodes by (level, kind, op, param) into instructions and emit them through ``TapeBuilder``, which
    assigns global indices, derives the refine sets and the accumulation bound, and validates the tape.

    Each exact coefficient and bias is rounded once (``round_exact``); its error bound goes with it."""
    g = ir.graph
    order = ir.topological_order()
    depth = levels(ir, order)
    builder = TapeBuilder(list(ir.input_names))  # an input's label is its name
    index: dict[int, int] = {node: i for i, node in enumerate(ir.inputs)}

    groups: dict[tuple, list[int]] = defaultdict(list)
    for node in order:
        data = g.nodes[node]
        if data["kind"] == "input":
            continue
        kind = "linear" if data["kind"] == "const" else data["kind"]
        key = (depth[node], kind, data.get("op") or "", data.get("param") if data.get("param") is not None else 0.0)
        groups[key].append(node)

    for key in sorted(groups):
        _, kind, op, _ = key
        nodes = groups[key]
        labels = [g.nodes[n]["label"] for n in nodes]
        if kind == "linear":
            rows, cols, weights, weight_error, bias, bias_error = [], [], [], [], [], []
            for row, node in enumerate(nodes):
                data = g.nodes[node]
                for arg, coef in data.get("terms", ()):
                    rows.append(row)
                    cols.append(index[arg])
                    nearest, error = round_exact(coef)
                    weights.append(nearest)
                    weight_error.append(error)
                nearest, error = round_exact(data["bias"] if data["kind"] == "linear" else data["value"])
                bias.append(nearest)
                bias_error.append(error)
            terms = [(np.array(rows, dtype=np.int64), np.array(cols, dtype=np.int64),
                      np.array(weights, dtype=np.float64), np.array(weight_error, dtype=np.float64))]
            emitted = builder.linear(terms, np.array(bias, dtype=np.float64), labels, (len(nodes),),
                                     bias_error=np.array(bias_error, dtype=np.float64))
        else:
            arity = 1 if kind == "unary" else 2
            args = [np.array([index[g.nodes[n]["args"][j]] for n in nodes], dtype=np.int64) for j in range(arity)]
            emitted = builder.elementwise(kind, op, args, labels, param=g.nodes[nodes[0]].get("param"))
        index.update(zip(nodes, emitted.tolist()))
    return builder.tape(np.array([index[o] for o in ir.outputs], dtype=np.int64))
