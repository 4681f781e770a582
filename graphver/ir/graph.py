"""The intermediate representation: a networkx DAG of scalar nodes.

Node kinds and their attributes (all nodes carry ``kind`` and ``label``, a readable expression used in
error messages):

- ``input``:  ``index`` (position of the variable in the model)
- ``const``:  ``value`` (an exact sympy number)
- ``linear``: ``terms`` (tuple of ``(arg, coefficient)``), ``bias``; a sum with constant weights. Coefficients
  and biases are exact sympy numbers; the tape rounds them once (see ``tape.compile.round_exact``).
- ``unary``:  ``op``, ``param``, ``args`` (one node); a registered UnaryOp
- ``binary``: ``op``, ``param``, ``args`` (two nodes, ordered); a registered BinaryOp

An edge ``a -> n`` exists for every argument a of n. ``outputs`` lists the nodes the user asked for.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import networkx as nx

KINDS = ("input", "const", "linear", "unary", "binary")


@dataclass
class IRGraph:
    graph: nx.DiGraph = field(default_factory=nx.DiGraph)
    inputs: list[int] = field(default_factory=list)  # node id of variable i
    outputs: list[int] = field(default_factory=list)
    input_names: list[str] = field(default_factory=list)
    next_id: int = 0
    finite_checked: dict = field(default_factory=dict, repr=False)  # validate's record (ir/validate.py)

    def add(self, kind: str, label: str, **attrs) -> int:
        node = self.next_id
        self.next_id += 1
        self.graph.add_node(node, kind=kind, label=label, **attrs)
        for arg in node_args(self.graph.nodes[node]):
            self.graph.add_edge(arg, node)
        return node

    def attrs(self, node: int) -> dict:
        return self.graph.nodes[node]

    def consumers(self, node: int) -> list[int]:
        return list(self.graph.successors(node))

    def replace_uses(self, old: int, new: int) -> None:
        """Make every consumer of ``old`` (and the outputs) refer to ``new`` instead."""
        for consumer in list(self.graph.successors(old)):
            data = self.graph.nodes[consumer]
            if data["kind"] == "linear":
                merged: dict = {}
                for arg, coef in data["terms"]:
                    key = new if arg == old else arg
                    merged[key] = merged.get(key, 0) + coef
                data["terms"] = tuple(merged.items())
            else:
                data["args"] = tuple(new if a == old else a for a in data["args"])
            self.graph.remove_edge(old, consumer)
            self.graph.add_edge(new, consumer)
        self.outputs = [new if o == old else o for o in self.outputs]

    def set_terms(self, node: int, terms, bias) -> None:
        """Replace a linear node's terms, keeping the edges in step."""
        data = self.graph.nodes[node]
        for arg in list(self.graph.predecessors(node)):
            self.graph.remove_edge(arg, node)
        data["terms"] = tuple((a, c) for a, c in terms if c != 0)
        data["bias"] = bias
        for arg, _ in data["terms"]:
            self.graph.add_edge(arg, node)

    def topological_order(self) -> list[int]:
        """The nodes in the lexicographically smallest topological order. Nodes are numbered as they are
        created, after their arguments, so the sorted ids usually are that order already (checked edge by
        edge: then the smallest node left is always ready); a pass that rewired a node to a later one
        falls back to networkx's sort."""
        order = sorted(self.graph.nodes)
        if all(arg < node for arg, node in self.graph.edges):
            return order
        return list(nx.lexicographical_topological_sort(self.graph))

    def stats(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for _, data in self.graph.nodes(data=True):
            key = data["kind"] if data["kind"] in ("input", "const", "linear") else data["op"]
            counts[key] = counts.get(key, 0) + 1
        return counts


def node_args(data: dict) -> tuple[int, ...]:
    """The argument nodes of a node, in order (for linear nodes: the term nodes)."""
    kind = data["kind"]
    if kind == "linear":
        return tuple(arg for arg, _ in data["terms"])
    if kind in ("unary", "binary"):
        return tuple(data["args"])
    return ()
