"""Branch-and-bound: verify properties and bound expressions over boxes (GenBaB for general graphs)."""

from graphver.bab.engine import Engine, Outcome
from graphver.bab.properties import All, Any, Property, normalise

__all__ = ["All", "Any", "Engine", "Outcome", "Property", "normalise"]
