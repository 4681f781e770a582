"""Frozen option dataclasses, with did-you-mean errors for unknown names."""

from __future__ import annotations

import dataclasses
import difflib
from typing import Any, TypeVar

from graphver.errors import OptionError

T = TypeVar("T")


def make_options(cls: type[T], given: dict[str, Any] | None = None, **overrides: Any) -> T:
    """Build the frozen dataclass ``cls`` from keyword options, rejecting unknown names with a suggestion."""
    values = dict(given or {})
    values.update(overrides)
    names = [f.name for f in dataclasses.fields(cls)]
    for key in values:
        if key not in names:
            close = difflib.get_close_matches(key, names, n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise OptionError(f"unknown option {key!r} for {cls.__name__}.{hint} Known options: {', '.join(names)}.")
    return cls(**values)


@dataclasses.dataclass(frozen=True)
class BoundOptions:
    """Options of the bounding methods (``Model.interval`` and the bounds back end).

    alpha_iterations, alpha_lr: Adam steps and learning rate of the "alpha" method.
    crown_intermediate: refine intermediate bounds with CROWN (intersected with IBP); False keeps IBP only.
    max_chunk_elements: memory cap of one backward pass (batch x queries x nodes), split into chunks above it.
    """

    alpha_iterations: int = 40
    alpha_lr: float = 0.1
    crown_intermediate: bool = True
    max_chunk_elements: int = 2**24

    def __post_init__(self) -> None:
        if self.alpha_iterations < 0:
            raise OptionError(f"alpha_iterations must be >= 0, got {self.alpha_iterations}")
        if not self.alpha_lr > 0:
            raise OptionError(f"alpha_lr must be > 0, got {self.alpha_lr}")
        if self.max_chunk_elements < 1:
            raise OptionError(f"max_chunk_elements must be >= 1, got {self.max_chunk_elements}")
