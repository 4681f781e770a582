"""Modeling: ``Model`` and the supported functions."""

from graphver.dsl.functions import quad_over_lin, relu, sigmoid
from graphver.dsl.model import Model

__all__ = ["Model", "quad_over_lin", "relu", "sigmoid"]
