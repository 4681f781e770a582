"""Modeling: ``Model`` and the supported functions."""

from graphver.dsl.functions import relu, sigmoid
from graphver.dsl.model import Model

__all__ = ["Model", "relu", "sigmoid"]
