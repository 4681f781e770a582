"""Live progress of a branch-and-bound run: domains left, best lower/upper, gap, elapsed time.

Shown with Rich when stdout is a terminal (or when asked); quiet otherwise, so logs and CI stay clean.
"""

from __future__ import annotations

import math
import sys
import time


class Progress:
    def __init__(self, enabled: bool | None, mode: str, label: str = "", rel_tol: float = 0.0):
        self.rel_tol = rel_tol  # bound: the target relative gap; the line shows the gap in its unit (percent)
        self.enabled = sys.stdout.isatty() if enabled is None else enabled
        self.mode = mode
        self.label = label
        self.live = None
        self.last = 0.0
        if self.enabled:
            try:
                from rich.live import Live
                from rich.text import Text

                self.Text = Text
                self.live = Live(Text(f"graphver {mode}: starting"), refresh_per_second=4, transient=False)
                self.live.start()
            except ImportError:  # rich is a dependency, but keep working without it
                self.live = None

    def line(self, elapsed: float, left: int, lower: float, upper: float, stats) -> str:
        if self.mode == "verify":
            best = "none" if not math.isfinite(upper) else f"{upper:.6g}"
            return (f"verify {self.label} | {elapsed:6.1f} s | domains left {left:>7} | explored "
                    f"{stats.domains_explored:>8} | proven margin >= {lower:.6g} | worst margin seen {best}")
        return (f"bound {self.label} | {elapsed:6.1f} s | domains left {left:>7} | explored {stats.domains_explored:>8} "
                f"| lower {lower:.8g} | upper {upper:.8g} | gap {gap_text(lower, upper, self.rel_tol)}")

    def phase(self, name: str) -> None:
        """Name the phase the run is in (before branch-and-bound starts: checks, search, OBBT, root bound)."""
        if not self.enabled:
            return
        text = f"graphver {self.mode} {self.label}: {name}"
        if self.live is not None:
            self.live.update(self.Text(text))
        else:
            print("\r" + text, end="", file=sys.stdout, flush=True)

    def update(self, elapsed, left, lower, upper, stats) -> None:
        if not self.enabled:
            return
        now = time.perf_counter()
        if now - self.last < 0.25:
            return
        self.last = now
        text = self.line(elapsed, left, lower, upper, stats)
        if self.live is not None:
            self.live.update(self.Text(text))
        else:
            print("\r" + text, end="", file=sys.stdout, flush=True)

    def close(self) -> None:
        if self.live is not None:
            self.live.stop()
            self.live = None


def gap_text(lower: float, upper: float, rel_tol: float) -> str:
    """The gap upper - lower, and with a relative target also in its unit: "12.3 = 0.0702 % (target 0.1 %)"."""
    if not (math.isfinite(upper) and math.isfinite(lower)):
        return "inf"
    gap = upper - lower
    if rel_tol <= 0:
        return f"{gap:.3g}"
    scale = abs(upper)
    relative = f"{100 * gap / scale:.3g} %" if scale > 0 else ("0 %" if gap == 0 else "inf %")
    return f"{gap:.3g} = {relative} (target {100 * rel_tol:g} %)"
