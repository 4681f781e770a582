"""IR validator: run after every pass, so a broken pass is caught where it happens."""

from __future__ import annotations

import functools
import math

import networkx as nx
import sympy

from graphver.errors import InternalError, ModelError
from graphver.exact import enclosure
from graphver.ir.graph import KINDS, IRGraph, node_args
from graphver.errors import label_text
from graphver.ops.base import BinaryOp, UnaryOp
from graphver.ops.registry import REGISTRY


def finite_number(value) -> bool:
    """Whether a constant is a finite real, by a certified enclosure (``float(value)`` may be noise); cached,
    since every pass's validation meets the same constants again (a 500-bus model has 2 * 10**5)."""
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, sympy.Rational) and max(abs(value.p), value.q).bit_length() < 1000:
        return True  # p / q well inside the floats' range
    try:
        return cached_finite(value)
    except TypeError:  # unhashable: not a number
        return False


@functools.lru_cache(maxsize=2**16)
def cached_finite(value) -> bool:
    try:
        enclosure(value)
    except (ModelError, TypeError, ValueError):
        return False
    return True


def validate(ir: IRGraph, after: str = "") -> None:
    """Check arity, argument existence, edges, op registration, acyclicity and finite constants."""
    where = f" after pass {after!r}" if after else ""

    def fail(message: str) -> None:
        raise InternalError(f"invalid IR{where}: {message}")

    g = ir.graph
    # constants certified finite by an earlier validation, by identity (sympy numbers and the terms tuples
    # are immutable: a pass that changes a node's constants stores new objects, which are checked again)
    checked = ir.finite_checked
    # every edge going to a later node proves the graph acyclic (the usual case, see topological_order)
    if not all(arg < node for arg, node in g.edges) and not nx.is_directed_acyclic_graph(g):
        fail("the graph has a cycle")
    for node, data in g.nodes(data=True):
        kind = data.get("kind")
        if kind not in KINDS:
            fail(f"node {node} has unknown kind {kind!r}")
        args = node_args(data)
        for arg in args:
            if arg not in g:
                fail(f"node {node} ({label_text(data['label'])}) refers to missing node {arg}")
            if not g.has_edge(arg, node):
                fail(f"edge {arg} -> {node} missing")
        if set(g.predecessors(node)) != set(args):
            fail(f"node {node} has edges that are not arguments")
        if kind == "const" and checked.get(node) is not data["value"]:
            if not finite_number(data["value"]):
                fail(f"constant node {node} is not finite")
            checked[node] = data["value"]
        if kind == "linear":
            last = checked.get(node)
            if last is None or last[0] is not data["terms"] or last[1] is not data["bias"]:
                if not all(finite_number(c) for _, c in data["terms"]) or not finite_number(data["bias"]):
                    fail(f"linear node {node} ({label_text(data['label'])}) has a non-finite coefficient")
                checked[node] = (data["terms"], data["bias"])
        if kind in ("unary", "binary"):
            op = REGISTRY.get(data["op"])
            expected = UnaryOp if kind == "unary" else BinaryOp
            if not isinstance(op, expected):
                fail(f"node {node} uses {data['op']!r}, not a registered {kind} op")
            if len(args) != (1 if kind == "unary" else 2):
                fail(f"node {node} ({label_text(data['label'])}) has {len(args)} arguments")
            if op.has_param != (data.get("param") is not None):
                fail(f"node {node} ({label_text(data['label'])}): parameter mismatch for op {data['op']}")
            # an op of constants only is folded; a binary op may keep one constant argument
            # (quad_over_lin(2, y): the constant becomes a bias-only linear instruction on the tape)
            if args and all(g.nodes[arg]["kind"] == "const" for arg in args):
                fail(f"node {node} ({label_text(data['label'])}) has only constant arguments (should have been folded)")
    for out in ir.outputs:
        if out not in g:
            fail(f"output node {out} is missing")
    for i, node in enumerate(ir.inputs):
        if g.nodes[node].get("kind") != "input" or g.nodes[node]["index"] != i:
            fail(f"input {i} is not an input node")
