"""How tight is each bounding method on the problems of ``models/`` (exact ranges known)?

    python bench/tightness.py                       # table on stdout
    python bench/tightness.py --json tightness.json # also write the numbers
    python bench/tightness.py --only rosenbrock trig_sum --repeat 5

For every problem: the exact width of the range, the certified width of IBP, CROWN and alpha, the
ratios CROWN/IBP and alpha/IBP (1 = no gain over IBP; the best possible is exact/IBP), the time of one
call per method (median of ``--repeat`` warm calls; compilation is excluded, it is cached by the model)
and whether each certified interval contains the exact range ("ok"; anything else is a soundness bug).
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout: find models/

import torch  # noqa: E402

import graphver as gv  # noqa: E402
from models import PROBLEMS  # noqa: E402

METHODS = ("ibp", "crown", "alpha")


def measure(name: str, repeat: int) -> dict:
    """Certified intervals and warm timings of every method on one problem."""
    problem = PROBLEMS[name]()
    row = {
        "problem": name,
        "description": problem.description,
        "exact_lower": problem.exact_lower,
        "exact_upper": problem.exact_upper,
        "exact_width": problem.exact_width,
    }
    for method in METHODS:
        interval = problem.model.interval(problem.expr, method=method)  # warm-up: compiles the tape
        times = []
        for _ in range(repeat):
            start = time.perf_counter()
            interval = problem.model.interval(problem.expr, method=method)
            times.append(time.perf_counter() - start)
        row[method] = {
            "lower": interval.lower,
            "upper": interval.upper,
            "width": interval.width,
            "seconds": statistics.median(times),
            "sound": interval.lower <= problem.exact_lower and interval.upper >= problem.exact_upper,
        }
    ibp_width = row["ibp"]["width"]
    for method in ("crown", "alpha"):
        row[f"{method}_over_ibp"] = row[method]["width"] / ibp_width if ibp_width > 0 else math.nan
    row["exact_over_ibp"] = problem.exact_width / ibp_width if ibp_width > 0 else math.nan
    return row


def render(rows: list[dict]) -> str:
    """A plain-text table, one line per problem."""
    header = (
        "problem", "exact w", "IBP w", "CROWN w", "alpha w", "CROWN/IBP", "alpha/IBP", "exact/IBP",
        "IBP ms", "CROWN ms", "alpha ms", "sound",
    )
    lines = []
    for row in rows:
        sound = "ok" if all(row[m]["sound"] for m in METHODS) else "UNSOUND:" + ",".join(
            m for m in METHODS if not row[m]["sound"]
        )
        lines.append((
            row["problem"],
            f"{row['exact_width']:.6g}",
            f"{row['ibp']['width']:.6g}",
            f"{row['crown']['width']:.6g}",
            f"{row['alpha']['width']:.6g}",
            f"{row['crown_over_ibp']:.4f}",
            f"{row['alpha_over_ibp']:.4f}",
            f"{row['exact_over_ibp']:.4f}",
            *(f"{1e3 * row[m]['seconds']:.2f}" for m in METHODS),
            sound,
        ))
    widths = [max(len(header[i]), *(len(line[i]) for line in lines)) for i in range(len(header))]

    def fmt(cells):
        first = cells[0].ljust(widths[0])
        rest = (cell.rjust(width) for cell, width in zip(cells[1:], widths[1:]))
        return "  ".join([first, *rest])

    rule = "-" * len(fmt(header))
    return "\n".join([fmt(header), rule, *(fmt(line) for line in lines)])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", metavar="PATH", help="also write the numbers as JSON to PATH")
    parser.add_argument("--repeat", type=int, default=3, help="warm calls timed per method (median reported)")
    parser.add_argument("--only", nargs="+", metavar="NAME", choices=sorted(PROBLEMS), help="problems to run")
    args = parser.parse_args(argv)

    names = args.only or list(PROBLEMS)
    rows = [measure(name, max(1, args.repeat)) for name in names]
    print(render(rows))
    print(f"\ngraphver {gv.__version__}, torch {torch.__version__}, python {platform.python_version()}, "
          f"{platform.machine()}, {torch.get_num_threads()} threads; times: median of {args.repeat} warm calls")
    unsound = [row["problem"] for row in rows if not all(row[m]["sound"] for m in METHODS)]
    if args.json:
        meta = {
            "graphver": gv.__version__,
            "torch": torch.__version__,
            "python": platform.python_version(),
            "machine": platform.machine(),
            "threads": torch.get_num_threads(),
            "repeat": args.repeat,
        }
        Path(args.json).write_text(json.dumps({"meta": meta, "rows": rows}, indent=2) + "\n")
    if unsound:
        print(f"UNSOUND certified intervals on: {', '.join(unsound)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
