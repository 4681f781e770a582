"""``Interval``: a certified enclosure [lower, upper] of an expression over a box (or a batch of boxes)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch


@dataclass(frozen=True)
class Interval:
    """Certified bounds: for every point of the box, ``lower <= value <= upper``.

    ``lower`` and ``upper`` are floats for a single box, or tensors of shape [B] for a batch of boxes.
    ``method`` says which bounding method proved them.
    """

    lower: Any
    upper: Any
    method: str = ""

    @property
    def width(self):
        return self.upper - self.lower

    def contains(self, value) -> bool:
        """True if every given value lies inside (elementwise for batches)."""
        value = torch.as_tensor(value, dtype=torch.float64)
        low = torch.as_tensor(self.lower, dtype=torch.float64)
        high = torch.as_tensor(self.upper, dtype=torch.float64)
        return bool(((low <= value) & (value <= high)).all())

    def __iter__(self):
        yield self.lower
        yield self.upper

    def to_dict(self) -> dict:
        def plain(v):
            return v.tolist() if isinstance(v, torch.Tensor) else float(v)

        return {"lower": plain(self.lower), "upper": plain(self.upper), "method": self.method}

    def to_json(self) -> str:
        from graphver.report.results import json_text  # results imports this module

        return json_text(self.to_dict(), indent=None)

    def __str__(self) -> str:
        if isinstance(self.lower, torch.Tensor):
            return f"Interval(batch of {self.lower.numel()}, method={self.method})"
        return f"[{self.lower:.10g}, {self.upper:.10g}]"
