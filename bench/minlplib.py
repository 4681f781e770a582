"""MINLPLib continuous problems: graphver next to SCIP and MAiNGO, side by side, same machine and limit.

For every problem of ``../shared/data/minlplib/solutions.csv`` (MINLPLib's own Pyomo files), each tool runs
in its own process with the same time limit and one thread:

- graphver: ``gv.from_pyomo(m).bound(timeout=LIMIT)``: a certified bound and a feasible point;
  (seconds: reading the file and solving; the imports of Pyomo, torch and graphver are not timed)
- SCIP (pyscipopt): Pyomo writes the model as ``.nl``, SCIP reads it (gap 1e-4, one thread);
- MAiNGO (maingopy, a McCormick-based deterministic global solver) through Pyomo's appsi interface.

Per problem and tool: status, the dual (proven) bound, the primal value, the relative gap, seconds, and
whether the answer brackets the known optimum: a proven bound on the wrong side of a proven optimum (or a
"solved" whose interval misses it) is a wrong answer, counted in the summary. "closed" means a relative gap
<= 1e-4. A tool that is not installed gets "n/a" rows. Results stream to a JSON lines file (resume skips
problems already there) and the table is printed at the end:

    python bench/minlplib.py --limit 60 --out bench/minlplib_run.jsonl
    python bench/minlplib.py --limit 10 --only ex2_1_1 ex14_1_1 --tools graphver scip
    python bench/minlplib.py --set needs_bounds --limit 60 --out bench/minlplib_needs_bounds_run.jsonl

``--set needs_bounds`` runs ``needs_bounds/``, whose files leave some variables unbounded: graphver first
derives finite bounds from the constraints (FBBT, outward-rounded) and records how many variables got
them ("box" column: derived, or the error when the constraints imply none); SCIP and MAiNGO take the
files as they are.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import multiprocessing
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "data" / "minlplib"
TOOLS = ("graphver", "scip", "maingo")
CLOSED = 1e-4  # relative gap that counts as closed
SLACK = 1e-6  # relative slack on the file's optimum (printed to 7-10 digits)


SETS = {"dev": DATA, "needs_bounds": DATA / "needs_bounds"}
FOLDER = DATA  # the set being run (set by main, passed to the child processes)


def load(name: str):
    import runpy

    return runpy.run_path(str(FOLDER.resolve() / f"{name}.py"))["m"]


def run_graphver(name: str, limit: float) -> dict:
    import graphver as gv

    from graphver.errors import ModelError

    m = load(name)
    try:
        imported = gv.from_pyomo(m)
        derived = imported.derived_bounds  # missing bounds derived from the constraints and the objective
    except ModelError as error:
        if "without finite bounds" not in str(error):
            raise
        return {"status": "no finite box", "box": "none implied"}
    result = imported.bound(timeout=limit, rel_tol=CLOSED)
    sense = result.sense
    dual = result.lower if sense == "min" else result.upper
    primal = result.upper if sense == "min" else result.lower
    box = f"derived {len(derived)}" if derived else "given"
    return {"status": result.status, "dual": dual, "primal": primal, "box": box}


def run_scip(name: str, limit: float) -> dict:
    import tempfile

    try:
        from pyscipopt import Model
    except ImportError:
        return {"status": "n/a"}
    m = load(name)
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, f"{name}.nl")
        m.write(path, format="nl")
        scip = Model()
        scip.hideOutput()
        scip.readProblem(path)
    scip.setParam("limits/time", limit)
    scip.setParam("limits/gap", CLOSED)
    scip.setParam("parallel/maxnthreads", 1)
    scip.optimize()
    sense = "max" if scip.getObjectiveSense() == "maximize" else "min"
    primal = scip.getPrimalbound() if scip.getNSols() else (math.inf if sense == "min" else -math.inf)
    return {"status": scip.getStatus(), "dual": scip.getDualbound(), "primal": primal}


def run_maingo(name: str, limit: float) -> dict:
    try:
        from pyomo.contrib.appsi.solvers import MAiNGO
    except ImportError:
        return {"status": "n/a"}
    import tempfile

    os.chdir(tempfile.mkdtemp(prefix="maingo-"))  # MAiNGO writes its result files into the working folder
    solver = MAiNGO()
    if not solver.available():
        return {"status": "n/a"}
    solver.config.time_limit = limit
    solver.config.mip_gap = CLOSED
    solver.config.load_solution = False
    m = load(name)
    results = solver.solve(m)
    return {"status": str(results.termination_condition).split(".")[-1], "dual": results.best_objective_bound,
            "primal": results.best_feasible_objective if results.best_feasible_objective is not None else math.nan}


RUNNERS = {"graphver": run_graphver, "scip": run_scip, "maingo": run_maingo}


def warm_up() -> None:
    """graphver imports its modules where they are first used: bound a one-variable model first, so that
    the timed run does not pay for imports (as SCIP's and MAiNGO's are not timed either)."""
    import pyomo.environ as pyo

    import graphver as gv

    m = pyo.ConcreteModel()
    m.x = pyo.Var(bounds=(-1, 1))
    m.c = pyo.Constraint(expr=m.x ** 2 <= 0.5)
    m.o = pyo.Objective(expr=m.x ** 3)
    gv.from_pyomo(m).bound(timeout=5)


def child(tool: str, name: str, limit: float, folder: str, queue) -> None:
    global FOLDER
    FOLDER = Path(folder)
    os.environ["OMP_NUM_THREADS"] = "1"
    import pyomo.environ  # noqa: F401  (imports are not timed: seconds are the tools' own work)

    if tool == "graphver":
        import torch

        torch.set_num_threads(1)
        warm_up()
    start = time.perf_counter()
    try:
        found = RUNNERS[tool](name, limit)
    except Exception as error:  # noqa: BLE001  (a tool's failure is a result of the benchmark)
        found = {"status": f"error: {type(error).__name__}: {str(error)[:120]}"}
    found["seconds"] = time.perf_counter() - start
    queue.put(found)


def run_isolated(tool: str, name: str, limit: float) -> dict:
    """One tool on one problem in its own process, killed at twice the limit plus 30 s."""
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=child, args=(tool, name, limit, str(FOLDER), queue))
    start = time.perf_counter()
    process.start()
    process.join(2 * limit + 30)
    if process.is_alive():
        process.kill()
        process.join()
        return {"status": "killed", "seconds": time.perf_counter() - start}
    try:
        return queue.get(timeout=5)
    except Exception:  # noqa: BLE001
        return {"status": f"crashed (exit {process.exitcode})", "seconds": time.perf_counter() - start}


def judged(found: dict, sense: str, optimum: float, proven: bool) -> dict:
    """Gap, closed, and whether the answer is wrong against the known optimum."""
    dual, primal = found.get("dual", math.nan), found.get("primal", math.nan)
    found = dict(found)
    if not (isinstance(dual, (int, float)) and isinstance(primal, (int, float))):
        found.update(gap=math.nan, closed=False, wrong=False)
        return found
    gap = abs(primal - dual) / max(1.0, abs(primal)) if math.isfinite(primal) and math.isfinite(dual) else math.inf
    slack = SLACK * max(1.0, abs(optimum))
    # the dual bound must not pass a proven optimum; a feasible value must not beat any known optimum by more
    wrong_dual = proven and math.isfinite(dual) and (dual > optimum + slack if sense == "min" else dual < optimum - slack)
    found.update(gap=gap, closed=gap <= CLOSED, wrong=bool(wrong_dual))
    return found


def problems(only: list[str] | None) -> list[dict]:
    with (FOLDER / "solutions.csv").open() as f:
        rows = list(csv.DictReader(f))
    return [r for r in rows if not only or r["name"] in only]


def table(records: list[dict], tools: list[str]) -> str:
    head = f"{'problem':<14}{'optimum':>14}" + "".join(f"{t + ' status':>22}{'gap':>10}{'s':>7}" for t in tools)
    lines = [head]
    by_name: dict[str, dict] = {}
    for r in records:
        by_name.setdefault(r["problem"], {"optimum": r["optimum"]})[r["tool"]] = r
    for name, row in by_name.items():
        line = f"{name:<14}{row['optimum']:>14.7g}"
        for t in tools:
            r = row.get(t, {})
            mark = " WRONG" if r.get("wrong") else ""
            line += f"{(str(r.get('status', '-'))[:15] + mark):>22}{r.get('gap', math.nan):>10.2g}{r.get('seconds', math.nan):>7.1f}"
        lines.append(line)
    lines.append("")
    for t in tools:
        mine = [r for r in records if r["tool"] == t and r["status"] != "n/a"]
        closed = sum(bool(r.get("closed")) for r in mine)
        wrong = sum(bool(r.get("wrong")) for r in mine)
        lines.append(f"{t}: {len(mine)} run, {closed} closed to {CLOSED:g}, {wrong} wrong answers")
    derived = [r for r in records if r["tool"] == "graphver" and str(r.get("box", "")).startswith("derived")]
    if derived:
        none = sum(r.get("box") == "none implied" for r in records if r["tool"] == "graphver")
        lines.append(f"graphver boxes: {len(derived)} derived (constraints, objective cutoff), {none} not implied; "
                     f"of the derived, {sum(bool(r.get('closed')) for r in derived)} closed")
    if "graphver" in tools and "scip" in tools:
        faster = 0
        both = 0
        for name, row in by_name.items():
            g, s = row.get("graphver"), row.get("scip")
            if g and s and g.get("closed") and s.get("closed"):
                both += 1
                faster += g["seconds"] <= s["seconds"]
        lines.append(f"closed by both: {both}; graphver no slower than SCIP on {faster}")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--limit", type=float, default=60.0, help="seconds per problem and tool")
    parser.add_argument("--only", nargs="*", help="problem names")
    parser.add_argument("--tools", nargs="*", default=list(TOOLS), choices=TOOLS)
    parser.add_argument("--set", choices=sorted(SETS), default="dev", help="dev (every variable bounded) or "
                        "needs_bounds (graphver derives the missing bounds)")
    parser.add_argument("--out", type=Path, help="JSON lines (default bench/minlplib[_needs_bounds]_run.jsonl)")
    args = parser.parse_args()
    global FOLDER
    FOLDER = SETS[args.set]
    if args.out is None:
        args.out = ROOT / "bench" / ("minlplib_run.jsonl" if args.set == "dev" else f"minlplib_{args.set}_run.jsonl")
    if not FOLDER.is_dir():
        print(f"{FOLDER} is not present", file=sys.stderr)
        return 2
    done = []
    if args.out.is_file():
        done = [json.loads(line) for line in args.out.read_text().splitlines() if line.strip()]
    seen = {(r["problem"], r["tool"], r["limit"]) for r in done}
    records = [r for r in done if r["limit"] == args.limit and r["tool"] in args.tools
               and (not args.only or r["problem"] in args.only)]
    with args.out.open("a") as out:
        for row in problems(args.only):
            for tool in args.tools:
                if (row["name"], tool, args.limit) in seen:
                    continue
                found = run_isolated(tool, row["name"], args.limit)
                record = judged(found, row["sense"], float(row["optimal_value"]), row["proven"] == "yes")
                record.update(problem=row["name"], tool=tool, limit=args.limit, optimum=float(row["optimal_value"]))
                out.write(json.dumps(record) + "\n")
                out.flush()
                records.append(record)
                print(f"{row['name']:<14}{tool:<9}{str(record['status'])[:40]:<42}gap {record.get('gap', math.nan):.2g}"
                      f"  {record['seconds']:.1f} s" + ("  WRONG" if record.get("wrong") else ""), flush=True)
    print(table(records, args.tools))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
