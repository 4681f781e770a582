"""Convergence plots: the proven bound and the best value found versus time, and the gap between them.

One drawing routine (``plot_series``) for every command: ``graphver verify | bound --plot`` read a
result's history (``plot_history``), ``graphver acopf bound --plot`` passes its own series. A run with
fewer than two finite points of a series (decided at the root, falsified before any bound, infeasible)
gets a figure that says so in words instead of empty axes. matplotlib is imported when a plot is drawn.
"""

from __future__ import annotations

import math
from pathlib import Path

from graphver.report.render import fmt, worst_seen


def finite(values) -> list[float]:
    return [v if math.isfinite(v) else math.nan for v in values]


def plot_series(path: Path, title: str, times: list[float], proven: list[float], best: list[float],
                proven_label: str, best_label: str, ylabel: str, zero_line: bool = False) -> None:
    """PNG at ``path``: ``proven`` and ``best`` versus ``times`` (steps), their gap below on a log scale.
    With fewer than two finite values in both series there is no curve to draw: the figure states the
    values instead."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    proven, best = finite(proven), finite(best)
    drawable = max(sum(math.isfinite(v) for v in proven), sum(math.isfinite(v) for v in best)) >= 2
    if not drawable:
        figure = Figure(figsize=(8, 3), layout="constrained")
        FigureCanvasAgg(figure)
        axis = figure.subplots()
        axis.set_axis_off()
        last = lambda values: next((v for v in reversed(values) if math.isfinite(v)), None)  # noqa: E731
        lines = ["No convergence curve: the run ended with fewer than two finite points",
                 f"(decided at the root, or no bound / no point at all) after {fmt(times[-1] if times else 0.0, 3)} s.",
                 f"{proven_label}: {fmt(last(proven))}", f"{best_label}: {fmt(last(best))}"]
        axis.text(0.02, 0.5, "\n".join(lines), va="center", ha="left", fontsize=11, transform=axis.transAxes)
        figure.suptitle(title)
        figure.savefig(path, format="png", dpi=100)
        return
    gaps = [abs(b - p) if math.isfinite(b) and math.isfinite(p) and b != p else math.nan for p, b in zip(proven, best)]
    figure = Figure(figsize=(8, 6), layout="constrained")
    FigureCanvasAgg(figure)
    top, bottom = figure.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": (2, 1)})  # matplotlib 3.5
    top.step(times, proven, where="post", label=proven_label, color="tab:blue")
    top.step(times, best, where="post", label=best_label, color="tab:orange")
    if zero_line:
        top.axhline(0.0, color="gray", linewidth=0.8, linestyle="--", label="0 (the property holds above)")
    top.set_ylabel(ylabel)
    top.legend(loc="best")
    top.grid(alpha=0.3)
    bottom.step(times, gaps, where="post", color="tab:green")
    if any(g > 0 for g in gaps if math.isfinite(g)):
        bottom.set_yscale("log")
    bottom.set_ylabel("gap")
    bottom.set_xlabel("time (s)")
    bottom.grid(alpha=0.3)
    figure.suptitle(title)
    figure.savefig(path, format="png", dpi=100)


def history_series(result, mode: str) -> tuple[list[float], list[float], list[float], str, str]:
    """(times, proven, best, proven label, best label) in the user's terms (a max bound is mirrored back)."""
    history = list(result.stats.history)
    if mode == "verify":
        final = (result.stats.time_total, result.margin_lower, worst_seen(result) or math.inf)
    else:
        # engine terms: the engine minimised the objective (sense "min") or its negation (sense "max")
        low, high = (result.lower, result.upper) if result.sense == "min" else (-result.upper, -result.lower)
        final = (result.stats.time_total, low, high)
    history.append(final)
    times = [entry[0] for entry in history]
    proven = [entry[1] for entry in history]
    best = [entry[2] for entry in history]
    if mode == "verify":
        return times, proven, best, "proven lower bound on the worst margin", "worst margin seen"
    if result.sense == "max":  # the engine minimised -expr: mirror back
        return times, [-v for v in proven], [-v for v in best], "proven upper bound", "best value found (incumbent)"
    return times, proven, best, "proven lower bound", "best value found (incumbent)"


def plot_history(result, path: Path, title: str, mode: str) -> None:
    """The convergence plot of a graphver ``VerifyResult`` (mode "verify") or ``BoundResult`` ("bound")."""
    times, proven, best, proven_label, best_label = history_series(result, mode)
    ylabel = "margin" if mode == "verify" else f"{result.sense} of the objective"
    plot_series(path, f"{title}: {result.status.upper()}", times, proven, best, proven_label, best_label, ylabel,
                zero_line=mode == "verify")
