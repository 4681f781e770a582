"""Named IR passes. ``compile`` runs them in the order of ``PASSES``, validating after each one."""

from __future__ import annotations

import sympy

from graphver.errors import DomainError, ModelError
from graphver.exact import enclosure
from graphver.ir.graph import IRGraph, node_args
from graphver.ir.lower import label_text, sympy_function_of


def fold_constants(ir: IRGraph) -> IRGraph:
    """Fold constant terms into linear biases and evaluate ops whose arguments are all constant (exactly)."""
    g = ir.graph
    for node in ir.topological_order():
        data = g.nodes[node]
        if data["kind"] == "linear":
            terms, bias = [], data["bias"]
            for arg, coef in data["terms"]:
                if g.nodes[arg]["kind"] == "const":
                    bias += coef * g.nodes[arg]["value"]
                else:
                    terms.append((arg, coef))
            ir.set_terms(node, terms, bias)
            if not terms:
                fold_to_const(ir, node, bias)
        elif data["kind"] in ("unary", "binary"):
            args = node_args(data)
            if all(g.nodes[a]["kind"] == "const" for a in args):
                function = sympy_function_of(data["op"])
                values = [g.nodes[a]["value"] for a in args]
                param = data.get("exact_param", data.get("param"))
                value = function(*values, param) if param is not None else function(*values)
                try:  # certified (sympy.N cannot tell an exact 0 from noise, e.g. sqrt(sin(1)**2 + cos(1)**2 - 1))
                    lo, hi = enclosure(value)
                except ModelError as error:
                    raise DomainError(
                        f"node {label_text(data['label'])!r}: constant argument leaves the domain of {data['op']} "
                        f"(or cannot be certified inside it): {error}"
                    ) from None
                fold_to_const(ir, node, sympy.Rational(lo.numerator, lo.denominator) if lo == hi else value)
    return ir


def fold_to_const(ir: IRGraph, node: int, value: float) -> None:
    data = ir.graph.nodes[node]
    for arg in list(ir.graph.predecessors(node)):
        ir.graph.remove_edge(arg, node)
    label = data["label"]
    data.clear()
    data.update(kind="const", label=label, value=value)


def fuse_linear(ir: IRGraph) -> IRGraph:
    """Substitute a linear node into a linear consumer when it has no other use (fewer, wider instructions)."""
    g = ir.graph
    outputs = set(ir.outputs)
    for node in ir.topological_order():
        data = g.nodes[node]
        if data["kind"] != "linear":
            continue
        changed = True
        while changed:
            changed = False
            terms, bias = [], data["bias"]
            for arg, coef in data["terms"]:
                inner = g.nodes[arg]
                if inner["kind"] == "linear" and g.out_degree(arg) == 1 and arg not in outputs:
                    terms.extend((a, coef * c) for a, c in inner["terms"])
                    bias += coef * inner["bias"]
                    changed = True
                else:
                    terms.append((arg, coef))
            if changed:
                merged: dict = {}
                for a, c in terms:
                    merged[a] = merged.get(a, 0) + c
                ir.set_terms(node, merged.items(), bias)
    return prune(ir)


def signature(data: dict) -> tuple:
    kind = data["kind"]
    if kind == "linear":
        return ("linear", tuple(sorted(data["terms"], key=lambda t: t[0])), data["bias"])
    if kind in ("unary", "binary"):
        return (kind, data["op"], data.get("param"), tuple(data["args"]))
    if kind == "const":
        return ("const", data["value"])
    return ("input", data["index"])


def cse(ir: IRGraph) -> IRGraph:
    """Merge structurally identical nodes (common subexpression elimination)."""
    seen: dict[tuple, int] = {}
    for node in ir.topological_order():
        key = signature(ir.graph.nodes[node])
        if key in seen:
            ir.replace_uses(node, seen[key])
        else:
            seen[key] = node
    return prune(ir)


def prune(ir: IRGraph) -> IRGraph:
    """Remove nodes that no output depends on (inputs always stay)."""
    keep = set(ir.outputs) | set(ir.inputs)
    stack = list(ir.outputs)
    while stack:
        node = stack.pop()
        for arg in ir.graph.predecessors(node):
            if arg not in keep:
                keep.add(arg)
                stack.append(arg)
    ir.graph.remove_nodes_from([n for n in list(ir.graph.nodes) if n not in keep])
    return ir


PASSES = [
    ("fold_constants", fold_constants),
    ("cse", cse),
    ("fuse_linear", fuse_linear),
    ("cse_after_fusion", cse),
]
