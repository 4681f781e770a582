"""The one op registry: name -> op object. Each family file registers its ops on import."""

from __future__ import annotations

from graphver.errors import InternalError
from graphver.ops.base import BinaryOp, UnaryOp

REGISTRY: dict[str, UnaryOp | BinaryOp] = {}


def register(op_class):
    """Class decorator: instantiate the op and add it to the registry under ``op_class.name``."""
    op = op_class()
    if not op.name or op.name in REGISTRY:
        raise InternalError(f"op name {op.name!r} is empty or registered twice")
    REGISTRY[op.name] = op
    return op_class


def get_op(name: str) -> UnaryOp | BinaryOp:
    return REGISTRY[name]


def unary_ops() -> dict[str, UnaryOp]:
    return {name: op for name, op in REGISTRY.items() if isinstance(op, UnaryOp)}


def binary_ops() -> dict[str, BinaryOp]:
    return {name: op for name, op in REGISTRY.items() if isinstance(op, BinaryOp)}
