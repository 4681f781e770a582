"""Result objects."""

from graphver.report.interval import Interval

__all__ = ["Interval"]
