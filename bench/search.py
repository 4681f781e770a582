"""Search benchmark: who finds counterexamples, and how much IPOPT incumbents save branch-and-bound.

    python bench/search.py                  # both tables
    python bench/search.py --only spike_in_bowl trig_system --no-zoo
    python bench/search.py --json out.json

Table 1, falsifiable set: the narrow properties of models/falsifiable.py and the false properties of
models/properties.py (wider violation regions). Each search runs alone on the root box, no branching:
  sampling   uniform random points, at least 100,000 and for at least as long as the IPOPT search took
  pgd        the engine's root search without IPOPT: 256 samples, projected gradient from the best, polish
  ipopt      the engine's root search with IPOPT multi-start (box centre and best of 256 samples) and
             projected gradient off
  bab+ipopt  the full verify (branch-and-bound, IPOPT from the best domains every round), for reference
A cell is "found" only when the point is a confirmed counterexample (float64, and 30 digits in the
engine). Times are wall seconds on this machine, in one run.

Table 2, the models/ optimisation zoo: domains explored and seconds by ``bound`` with IPOPT incumbents
(default) and without (sampling, projected gradient and polish only), same tolerance.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from graphver.bab.properties import normalise  # noqa: E402
from models.falsifiable import FALSIFIABLE  # noqa: E402
from models.optimization import OPT_PROBLEMS  # noqa: E402
from models.properties import PROPERTIES  # noqa: E402

MIN_SAMPLES = 100_000
CHUNK = 20_000


def falsifiable_set() -> dict:
    problems = {name: build for name, build in FALSIFIABLE.items()}
    problems.update({name: build for name, build in PROPERTIES.items() if not build().holds})
    return problems


def sampling(problem, seconds: float, seed: int = 0) -> dict:
    """Uniform samples until both MIN_SAMPLES and ``seconds`` are reached, or a violation is found."""
    prop = normalise(problem.prop)
    low, high = (t[0] for t in problem.model.box())
    tape = problem.model.compile(list(prop.margins))
    from graphver.tape.evaluate import evaluate

    generator = torch.Generator().manual_seed(seed)
    start = time.perf_counter()
    count = 0
    while count < MIN_SAMPLES or time.perf_counter() - start < seconds:
        points = low + (high - low) * torch.rand(CHUNK, low.numel(), generator=generator, dtype=torch.float64)
        margins = evaluate(tape, points)
        value = margins.amin(dim=1) if prop.combine == "all" else margins.amax(dim=1)
        count += CHUNK
        strict = any(prop.strict)
        if bool((value <= 0).any() if strict else (value < 0).any()):
            return {"found": True, "seconds": time.perf_counter() - start, "samples": count}
    return {"found": False, "seconds": time.perf_counter() - start, "samples": count}


def engine_search(problem, **options) -> dict:
    start = time.perf_counter()
    result = problem.model.verify(problem.prop, timeout=60, progress=False, **options)
    return {"found": result.status == "falsified", "seconds": time.perf_counter() - start,
            "domains": result.stats.domains_explored, "from": result.stats.incumbent_from,
            "ipopt_calls": result.stats.ipopt_calls}


def table_falsifiable(names: list[str]) -> list[dict]:
    problems = falsifiable_set()
    names = [n for n in names if n in problems] if names else list(problems)
    print("Falsifiable set: found (Y/n) and seconds per search, root box only (bab+ipopt: full verify)")
    print(f"{'property':<24}{'dims':>5}{'share':>10}{'sampling':>16}{'pgd':>12}{'ipopt':>12}{'bab+ipopt':>18}")
    rows = []
    for name in names:
        problem = problems[name]()
        ipopt = engine_search(problems[name](), ipopt="on", pgd_steps=0, max_explored=1)
        pgd = engine_search(problems[name](), ipopt="off", max_explored=1)
        samples = sampling(problem, ipopt["seconds"])
        full = engine_search(problems[name](), ipopt="on")
        share = getattr(problem, "share", None)
        row = {"property": name, "dims": len(problem.model.names), "share": share, "sampling": samples,
               "pgd": pgd, "ipopt": ipopt, "bab+ipopt": full}
        rows.append(row)
        cell = lambda r: f"{'Y' if r['found'] else 'n'} {r['seconds']:6.2f}"
        share_text = f"{share:.0e}" if share is not None else "-"
        sample_cell = cell(samples) + f" ({samples['samples'] // 1000}k)"
        full_cell = cell(full) + f" {full['domains']:>6}d"
        print(f"{name:<24}{row['dims']:>5}{share_text:>10} {sample_cell:>16}{cell(pgd):>12}{cell(ipopt):>12}{full_cell:>18}",
              flush=True)
    for label, subset in (("narrow", [r for r in rows if r["share"] is not None]), ("all", rows)):
        if subset:
            rate = lambda key: f"{sum(r[key]['found'] for r in subset)}/{len(subset)}"
            print(f"{'find rate, ' + label:<39}{rate('sampling'):>16}{rate('pgd'):>12}{rate('ipopt'):>12}"
                  f"{rate('bab+ipopt'):>18}")
    return rows


def table_zoo(names: list[str], timeout: float) -> list[dict]:
    names = [n for n in names if n in OPT_PROBLEMS] if names else list(OPT_PROBLEMS)
    print()
    print("Optimisation zoo: bound with and without IPOPT incumbents (domains explored / seconds)")
    print(f"{'problem':<22}{'without':>20}{'with ipopt':>20}{'domains ratio':>15}  incumbent from")
    rows = []
    for name in names:
        row = {"problem": name}
        for key, ipopt in (("without", "off"), ("with", "on")):
            problem = OPT_PROBLEMS[name]()
            start = time.perf_counter()
            result = problem.model.bound(problem.expr, sense=problem.sense, timeout=timeout, progress=False,
                                         ipopt=ipopt)
            row[key] = {"domains": result.stats.domains_explored, "seconds": time.perf_counter() - start,
                        "status": result.status, "from": result.stats.incumbent_from,
                        "sound": result.lower <= problem.known_value}
        rows.append(row)
        a, b = row["without"], row["with"]
        flag = lambda r: ("S" if r["status"] == "solved" else "U") + ("" if r["sound"] else "!")
        print(f"{name:<22}{a['domains']:>9} / {a['seconds']:6.2f} {flag(a)}{b['domains']:>9} / {b['seconds']:6.2f} "
              f"{flag(b)}{b['domains'] / max(a['domains'], 1):>15.2f}  {b['from']}", flush=True)
    total = lambda key, field: sum(r[key][field] for r in rows)
    print(f"{'total':<22}{total('without', 'domains'):>9} / {total('without', 'seconds'):6.2f}  "
          f"{total('with', 'domains'):>9} / {total('with', 'seconds'):6.2f}  "
          f"{total('with', 'domains') / max(total('without', 'domains'), 1):>15.2f}")
    fewer = sum(r["with"]["domains"] < r["without"]["domains"] for r in rows)
    more = sum(r["with"]["domains"] > r["without"]["domains"] for r in rows)
    print(f"IPOPT incumbents: fewer domains on {fewer}, more on {more}, equal on {len(rows) - fewer - more} problems")
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", nargs="*", default=[], help="property or problem names")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds per zoo bound")
    parser.add_argument("--no-zoo", action="store_true")
    parser.add_argument("--no-falsifiable", action="store_true")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    record = {}
    if not args.no_falsifiable:
        record["falsifiable"] = table_falsifiable(args.only)
    if not args.no_zoo:
        record["zoo"] = table_zoo(args.only, args.timeout)
    if args.json:
        args.json.write_text(json.dumps(record, indent=2, default=str))
    unsound = [r["problem"] for r in record.get("zoo", []) if not (r["with"]["sound"] and r["without"]["sound"])]
    if unsound:
        print(f"UNSOUND bounds on: {unsound}")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
