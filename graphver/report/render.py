"""How results look on a terminal: numbers, status colours, the summary panel and the tables.

Written once here and used by every command: ``graphver verify | bound | interval | vnncomp`` and the
``acopf`` plugin. Rich is imported inside the functions that draw, so importing this module is cheap.
"""

from __future__ import annotations

import math

from graphver.report.results import joined

SHOWN_CHARS = 160  # longer expressions are shortened in the summary (the JSON keeps them whole)

STATUS_STYLE = {
    "verified": "bold green", "solved": "bold green", "unsat": "bold green",
    "falsified": "bold red", "sat": "bold red",
    "unknown": "bold yellow", "not solved": "bold yellow",
    "infeasible": "bold magenta", "error": "bold magenta",
}


# --- numbers and short texts -------------------------------------------------------------------------
def fmt(value: float | None, digits: int = 10) -> str:
    if value is None:
        return "-"
    if isinstance(value, float) and math.isinf(value):
        return "+inf" if value > 0 else "-inf"
    return f"{value:.{digits}g}"


def percent(gap: float, digits: int = 4) -> str:
    """A relative gap (a fraction) in percent: ``0.00123`` -> ``0.1230 %``; inf and NaN as words."""
    if not math.isfinite(gap):
        return "inf" if gap > 0 else "nan"
    return f"{100 * gap:.{digits}f} %"


def shorten(text: str, limit: int = SHOWN_CHARS) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def point_text(point: dict[str, float] | None) -> str:
    if point is None:
        return "-"
    return shorten(", ".join(f"{name} = {fmt(value)}" for name, value in point.items()), 400)


def styled(status: str, text: str | None = None) -> str:
    """Rich markup: ``text`` (default: the status itself) in the status's colour."""
    style = STATUS_STYLE.get(status, "")
    shown = status if text is None else text
    return f"[{style}]{shown}[/]" if style else shown


# --- drawing ------------------------------------------------------------------------------------------
def console(quiet: bool = False):
    from rich.console import Console

    return Console(highlight=False, quiet=quiet)


def summary_panel(title: str, status: str, rows: list[tuple[str, str]], detail: str = ""):
    """The result's summary: a status line in its colour (and ``detail`` after it, e.g. the stop reason),
    then one line per (name, value) row, in a titled panel."""
    from rich.panel import Panel
    from rich.table import Table
    from rich.text import Text

    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold", no_wrap=True)
    table.add_column(overflow="fold")
    line = Text(status.upper(), style=STATUS_STYLE.get(status, ""))
    if detail:
        line.append(f"  ({detail})")
    table.add_row("status", line)
    for name, value in rows:
        table.add_row(name, Text(value))
    return Panel(table, title=title, title_align="left", expand=False)


def data_table(title: str, columns: list[tuple[str, str]], rows: list[list[str]], caption: str = ""):
    """A table with a title: ``columns`` are (header, "left" | "right"); cells may hold Rich markup."""
    from rich.table import Table

    table = Table(title=title, title_justify="left", caption=caption or None, caption_justify="left")
    for header, justify in columns:
        table.add_column(header, justify=justify, overflow="fold")
    for row in rows:
        table.add_row(*row)
    return table


class TaskProgress:
    """A bar counting the tasks of a batch (instances, cases, properties): ``with TaskProgress(...) as done:``
    then ``done()`` per finished task. Nothing is drawn with ``quiet``."""

    def __init__(self, out, label: str, total: int, quiet: bool = False):
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.total = total
        self.bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                            console=out, disable=quiet)
        self.task = self.bar.add_task(label, total=total)

    def __enter__(self):
        self.bar.__enter__()
        return lambda: self.bar.advance(self.task)

    def __exit__(self, *failure):
        self.bar.update(self.task, completed=self.total)
        return self.bar.__exit__(*failure)


# --- the rows of graphver's results -------------------------------------------------------------------
def stats_rows(stats) -> list[tuple[str, str]]:
    other = max(0.0, stats.time_total - stats.time_bound - stats.time_branch - stats.time_search)
    rows = [
        ("domains", f"{stats.domains_explored} explored, {stats.domains_left} left, max depth {stats.max_depth}, "
                    f"{stats.rounds} rounds ({stats.input_splits} input / {stats.node_splits} node splits)"),
        ("time", f"{stats.time_total:.2f} s total: bound {stats.time_bound:.2f} s, branch {stats.time_branch:.2f} s, "
                 f"search {stats.time_search:.2f} s, other {other:.2f} s"),
        ("proved by", stats.proved_by or "-"),
        ("stop reason", stats.stop_reason or "-"),
    ]
    if stats.incumbent_from:
        rows.insert(2, ("best point from", stats.incumbent_from))
    if stats.ipopt_calls:
        failed = f", {stats.ipopt_failures} not converged" if stats.ipopt_failures else ""
        rows.insert(2, ("ipopt", f"{stats.ipopt_calls} local solves{failed}, {stats.ipopt_improved} improved the "
                                 f"best point, {stats.time_ipopt:.2f} s"))
    for message in dict.fromkeys(stats.messages):  # unique, in order
        rows.append(("note", shorten(str(message), 300)))
    return rows


def verify_rows(result) -> list[tuple[str, str]]:
    joiner = " and " if result.combine == "all" else " or "
    rows = [("property", shorten(joiner.join(result.property))),
            ("proven margin", f">= {fmt(result.margin_lower)}  (>= 0 proves the property)")]
    worst = worst_seen(result)
    if worst is not None:
        rows.append(("worst margin seen", fmt(worst)))
    if result.counterexample is not None:
        rows.append(("counterexample", point_text(result.counterexample)))
        rows.append(("margins there", ", ".join(fmt(v) for v in result.counterexample_margins or [])))
    return rows + constraint_rows(result) + stats_rows(result.stats)


def worst_seen(result) -> float | None:
    """The smallest margin evaluated at a point (the last history entry), if any was finite."""
    if result.counterexample_margins:
        aggregate = min if result.combine == "all" else max
        return aggregate(result.counterexample_margins)
    if result.stats.history and math.isfinite(result.stats.history[-1][2]):
        return result.stats.history[-1][2]
    return None


def bound_rows(result) -> list[tuple[str, str]]:
    proven, attained = ("lower", "upper") if result.sense == "min" else ("upper", "lower")
    scale = abs(result.upper if result.sense == "min" else result.lower)
    relative = f", relative {result.gap / scale:.3g}" if scale > 0 and math.isfinite(result.gap) else ""
    rows = [
        ("objective", f"{result.sense} of {shorten(result.expression)}"),
        (f"proven {proven}", fmt(getattr(result, proven))),
        (f"best value ({attained})", f"{fmt(getattr(result, attained))}  (attained at the witness)"),
        ("gap", f"{fmt(result.gap, 3)}{relative}"),
        ("witness", point_text(result.witness)),
    ]
    return rows + constraint_rows(result) + stats_rows(result.stats)


def constraint_rows(result) -> list[tuple[str, str]]:
    """The constraints and how far the reported point is from satisfying them (nothing without constraints)."""
    if not result.constraints:
        return []
    rows = [("constraints", shorten(f"{len(result.constraints)}: " + joined(result.constraints, 400)))]
    if result.max_violation is not None:
        rows.append(("max violation", f"{fmt(result.max_violation, 3)}  (of the reported point; certified bounds "
                                      "are for the exact constraints)"))
    return rows


def interval_table(title: str, rows: list[tuple]):
    """(label, method, Interval, seconds) rows: one line per method, the label once per expression."""
    seconds = {name: spent for _label, name, _found, spent in rows}  # one call per method covers every expression
    spent = ", ".join(f"{name} {t:.3f} s" for name, t in seconds.items())
    columns = [("expression", "left"), ("method", "left"), ("lower", "right"), ("upper", "right"), ("width", "right")]
    lines, previous = [], None
    for label, name, found, _seconds in rows:
        shown = shorten(label, 60) if label != previous else ""
        lines.append([shown, name, fmt(found.lower), fmt(found.upper), fmt(found.width, 4)])
        previous = label
    return data_table(title, columns, lines, caption=f"time per method (all expressions in one call): {spent}")
