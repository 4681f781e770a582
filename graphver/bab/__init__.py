"""Branch-and-bound: verify properties and bound expressions over boxes (GenBaB for general graphs).

``Problem`` and a goal (``VerifyGoal``, ``BoundGoal``) are all the engine sees; see docs/developer.md for the
modules (problem, engine, rounds, bounder, bounding, splitting, branching, incumbent, point_search).
"""

from graphver.bab.engine import Engine, Outcome
from graphver.bab.problem import BoundGoal, Confirmation, Goal, Problem, VerifyGoal
from graphver.bab.properties import All, Any, Property, normalise

__all__ = ["All", "Any", "BoundGoal", "Confirmation", "Engine", "Goal", "Outcome", "Problem", "Property", "VerifyGoal",
           "normalise"]
