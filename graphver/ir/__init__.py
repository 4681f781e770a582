"""sympy -> IR graph (networkx), with named passes and a validator."""

from graphver.ir.graph import IRGraph
from graphver.ir.lower import lower_sympy
from graphver.ir.passes import PASSES
from graphver.ir.validate import validate

__all__ = ["IRGraph", "PASSES", "lower_sympy", "validate"]
