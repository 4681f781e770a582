"""Modeling: ``Model`` and the supported functions.

``Model`` is imported on first use (PEP 562): graphver.ir reads graphver.dsl.functions while graphver.tape
is being imported, and graphver.dsl.model itself imports graphver.tape."""

from graphver.dsl.functions import quad_over_lin, relu, sigmoid


def __getattr__(name: str):
    if name == "Model":
        from graphver.dsl.model import Model

        return Model
    raise AttributeError(f"module 'graphver.dsl' has no attribute {name!r}")


__all__ = ["Model", "quad_over_lin", "relu", "sigmoid"]
