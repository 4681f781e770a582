"""ACOPF formulations in graphver's modeling language: ``build(network, name)``."""

from acopf.formulations.common import AcopfModel
from acopf.formulations.polar import build_polar
from acopf.formulations.lifted import build_lifted
from acopf.formulations.rectangular import build_rectangular

FORMULATIONS = {"polar": build_polar, "rectangular": build_rectangular, "lifted": build_lifted}


def build(network, formulation: str = "rectangular") -> AcopfModel:
    """The ACOPF of ``network`` as a graphver model in the named formulation."""
    if formulation not in FORMULATIONS:
        raise ValueError(f"unknown formulation {formulation!r}; available: {', '.join(FORMULATIONS)}")
    return FORMULATIONS[formulation](network)


__all__ = ["AcopfModel", "FORMULATIONS", "build", "build_lifted", "build_polar", "build_rectangular"]
