"""The op registry. Importing this package registers every op family."""

from graphver.ops import activation, explog, piecewise, power, product, step, trig  # noqa: F401  (registration)
from graphver.ops.base import BinaryOp, Lines, PlaneRelaxation, UnaryOp
from graphver.ops.registry import REGISTRY, binary_ops, get_op, unary_ops

__all__ = ["REGISTRY", "BinaryOp", "Lines", "PlaneRelaxation", "UnaryOp", "binary_ops", "get_op", "unary_ops"]
