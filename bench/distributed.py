"""Ray on this machine: the same conclusions with 2 workers as with one process, and batch speed-up.

    python bench/distributed.py                  # both tables (about 10 minutes on 2 cores)
    python bench/distributed.py --only batch     # or: --only conclusions

Table 1 (conclusions): every optimisation problem of the zoo (models/optimization.py) and the bundled
ACOPF cases, bounded once in this process (workers=1) and once with 2 Ray workers (a local Ray instance
with 2 CPUs, started for the run): status, certified lower bound, seconds, domains and rounds of each;
"same" when the statuses agree and the lower bounds are within the tolerance (rel_tol of the run times
the value). Each run has 1 torch thread per process, so that 2 workers use the 2 cores.

Table 2 (batch): the ML4ACOPF 14-bus instances (../shared/data/ml4acopf/instances.csv) as a batch
through graphver.batch.run_tasks, every instance in a fresh process: with 1 worker and with 2, wall
seconds of the whole batch (Ray's start included) and the speed-up; plus the same instances one after the
other in this process (no Ray, no process start) for reference.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

REL_TOL = 1e-6
ACOPF_CASES = ("case3_lmbd", "case5_pjm", "case14_ieee")
ACOPF_GAP = 0.01
DATA = ROOT.parent / "shared" / "data" / "ml4acopf"


def same(a, b, value: float, tol: float) -> bool:
    return a.status == b.status and abs(a.lower - b.lower) <= tol * max(1.0, abs(value))


def conclusions(timeout: float) -> None:
    import acopf
    from models.optimization import OPT_PROBLEMS

    print(f"Table 1: certified conclusions, 1 process vs 2 Ray workers (timeout {timeout:g} s each)")
    header = f"{'problem':26s} {'status 1':>9s} {'lower 1':>18s} {'s':>6s} {'status 2':>9s} {'lower 2':>18s} {'s':>6s} " \
             f"{'domains 1/2':>13s} {'same':>5s}"
    print(header)
    agree = total = 0
    for name, build in OPT_PROBLEMS.items():
        problem = build()
        runs = []
        for workers in (1, 2):
            start = time.perf_counter()
            result = problem.model.bound(problem.expr, sense=problem.sense, timeout=timeout, rel_tol=REL_TOL,
                                         workers=workers, progress=False)
            runs.append((result, time.perf_counter() - start))
        (one, t1), (two, t2) = runs
        ok = same(one, two, problem.known_value, 10 * REL_TOL) or (one.status == two.status == "unknown")
        agree += ok
        total += 1
        print(f"{name:26s} {one.status:>9s} {one.lower:18.10g} {t1:6.1f} {two.status:>9s} {two.lower:18.10g} {t2:6.1f} "
              f"{one.stats.domains_explored:>6d}/{two.stats.domains_explored:<6d} {'yes' if ok else 'NO':>5s}")
    for case in ACOPF_CASES:
        runs = []
        for workers in (1, 2):
            start = time.perf_counter()
            report = acopf.bound(acopf.load(case), timeout=4 * timeout, gap=ACOPF_GAP, progress=False,
                                 **({} if workers == 1 else {"workers": 2}))
            runs.append((report, time.perf_counter() - start))
        (one, t1), (two, t2) = runs
        ok = one.status == two.status and (one.status != "solved" or max(one.gap, two.gap) <= ACOPF_GAP)
        agree += ok
        total += 1
        print(f"{case:26s} {one.status:>9s} {one.lower:18.10g} {t1:6.1f} {two.status:>9s} {two.lower:18.10g} {t2:6.1f} "
              f"{one.domains:>6d}/{two.domains:<6d} {'yes' if ok else 'NO':>5s}")
    print(f"\nsame conclusion: {agree}/{total}")


def batch_speedup() -> None:
    from graphver.batch import Task, run_tasks
    from graphver.io.vnncomp import instance_task, read_instances, verify_instance

    csv_path = DATA / "instances.csv"
    if not csv_path.is_file():
        print(f"Table 2 skipped: {csv_path} is not present")
        return
    instances = read_instances(csv_path)
    limit = 60.0
    print(f"\nTable 2: batch of the {len(instances)} ML4ACOPF 14-bus instances ({limit:g} s limit each)")
    start = time.perf_counter()
    verdicts = [verify_instance(o, v, limit).verdict for o, v, _ in instances]
    in_process = time.perf_counter() - start
    print(f"{'run':38s} {'wall s':>8s} {'decided':>8s} {'speed-up':>9s}")
    print(f"{'one after the other in this process':38s} {in_process:8.1f} {sum(v != 'unknown' for v in verdicts):>8d} "
          f"{'-':>9s}")
    walls = {}
    for workers in (1, 2):
        tasks = [Task((str(o), str(v)), instance_task, (o, v, limit, {}), limit) for o, v, _ in instances]
        start = time.perf_counter()
        results = run_tasks(tasks, workers=workers)
        walls[workers] = time.perf_counter() - start
        decided = sum(r.ok and r.value.verdict in ("sat", "unsat") for r in results)
        ratio = walls[1] / walls[workers]
        print(f"{f'Ray, {workers} worker(s), a process per task':38s} {walls[workers]:8.1f} {decided:>8d} {ratio:9.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", choices=["conclusions", "batch"])
    parser.add_argument("--timeout", type=float, default=60.0)
    args = parser.parse_args()
    torch.set_num_threads(1)
    import ray

    if args.only != "batch":
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
        conclusions(args.timeout)
        ray.shutdown()
    if args.only != "conclusions":
        batch_speedup()
    if not math.isfinite(args.timeout):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
