"""Do runs keep to their time limit and to memory? One process per (instance, limit), timed from outside.

    python bench/timeouts.py                                  # 60 s and 180 s on every instance (over an hour)
    python bench/timeouts.py --limits 5,10 --only prop3 acopf:pglib_opf_case5_pjm
    python bench/timeouts.py --buses 14 --limits 3 --out /tmp/timeouts.md
    python bench/timeouts.py --only acopf: --extra "--formulation polar"

Instances: the 118- and 300-bus rows of ../shared/data/ml4acopf_2024/instances.csv, each run as
`graphver vnncomp MODEL PROP --timeout LIMIT --quiet`, and every case of acopf/cases/, each run as
`graphver acopf bound CASE --timeout LIMIT --quiet`. Every process gets the same thread count (OMP, MKL,
OpenBLAS; torch reads OMP_NUM_THREADS) and its own session, so that it does not see Ctrl-C.

Per row: the wall seconds of the whole process (interpreter start-up included, as a competition measures
it), the seconds over the limit and the allowed overrun max(2 s, 2 % of the limit), the process's peak
resident memory (os.wait4's rusage of that child: its own peak, or that of a child it waited for when
larger), and the verdict (the last line of its output) with the exit code. A row fails when it ran past
the allowed overrun, peaked at 8 GiB or more, or exited with anything but a verdict (vnncomp 0 unsat,
1 sat, 3 unknown; acopf 0 gap reached, 3 stopped). A process still running at limit + 120 s is killed
(its whole process group) and fails. Exit status 1 when any row failed; Ctrl-C kills the running process
and prints and writes the rows so far. Acceptance: issue 13 ("every run with --timeout 60 and with
--timeout 180 stops within max(2 s, 2 %) of its limit, and peak memory stays under 8 GB").
"""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "ml4acopf_2024"
CASES = ROOT / "acopf" / "cases"
MEMORY_LIMIT_MB = 8 * 1024
KILL_AFTER = 120.0  # seconds past the limit before a process counts as hung
VERDICT_EXIT_CODES = {"vnncomp": {0, 1, 3}, "acopf": {0, 3}}


@dataclass
class Instance:
    name: str  # "vnncomp:118-residual/118_ieee_prop3" or "acopf:pglib_opf_case5_pjm"
    kind: str  # "vnncomp" or "acopf"
    args: list[str]  # the graphver arguments before --timeout


@dataclass
class Run:
    instance: str
    limit: float
    wall: float
    peak_mb: float
    exit_code: int
    verdict: str
    killed: bool
    verdict_ok: bool  # the exit code is one of a verdict (not an input error, a crash or a kill)

    @property
    def allowed(self) -> float:
        return max(2.0, 0.02 * self.limit)

    @property
    def over(self) -> float:
        return self.wall - self.limit

    @property
    def time_ok(self) -> bool:
        return not self.killed and self.over <= self.allowed

    @property
    def memory_ok(self) -> bool:
        return self.peak_mb < MEMORY_LIMIT_MB

    @property
    def ok(self) -> bool:
        return self.time_ok and self.memory_ok and self.verdict_ok


def instances(csv_path: Path, buses: set[str], only: list[str] | None) -> list[Instance]:
    """The ML4ACOPF rows whose network has one of ``buses`` (the file name's prefix), then the bundled
    ACOPF cases; with ``only``, those whose name contains one of its substrings."""
    from graphver.io.vnncomp import read_instances

    found = []
    if csv_path.is_file():
        for onnx_path, vnnlib_path, _ in read_instances(csv_path):
            if onnx_path.name.split("_")[0] not in buses:
                continue
            network = onnx_path.stem.replace("_ieee_ml4acopf-linear", "").replace("_ieee_ml4acopf", "")
            found.append(Instance(f"vnncomp:{network}/{vnnlib_path.stem}", "vnncomp",
                                  ["vnncomp", str(onnx_path), str(vnnlib_path)]))
    else:
        print(f"{csv_path} is not present: no vnncomp instances", file=sys.stderr)
    for case in sorted(CASES.glob("*.m")):
        found.append(Instance(f"acopf:{case.stem}", "acopf", ["acopf", "bound", str(case)]))
    if only:
        found = [i for i in found if any(part in i.name for part in only)]
    return found


def child_environment(threads: int) -> dict:
    env = dict(os.environ)
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
        env[name] = str(threads)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, [env.get("PYTHONPATH")])])
    return env


def startup_seconds(env: dict) -> float:
    """Wall seconds of a process that only imports what `graphver vnncomp` needs (interpreter, torch, onnx)."""
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import graphver.io.vnncomp, onnxruntime"], env=env, cwd=ROOT, check=False,
                   capture_output=True)
    return time.perf_counter() - start


def run_one(instance: Instance, limit: float, env: dict, extra: list[str]) -> Run:
    """One process: wall seconds from start to reaping, peak RSS from its rusage, killed at limit + 120 s."""
    command = [sys.executable, "-m", "graphver", *instance.args, "--timeout", f"{limit:g}", "--quiet", *extra]
    killed = threading.Event()
    with tempfile.TemporaryFile("w+") as output:
        start = time.perf_counter()
        process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT, env=env, cwd=ROOT,
                                   start_new_session=True)

        def kill():
            killed.set()
            with_group(process.pid, signal.SIGKILL)

        timer = threading.Timer(limit + KILL_AFTER, kill)
        try:
            timer.start()
            _, status, usage = os.wait4(process.pid, 0)
            wall = time.perf_counter() - start
        except KeyboardInterrupt:  # kill and reap the child, then let the caller print the rows so far
            with_group(process.pid, signal.SIGKILL)
            os.wait4(process.pid, 0)
            raise
        finally:
            timer.cancel()
            process.returncode = -signal.SIGKILL  # reaped here: Popen must not wait for it again
        code = os.waitstatus_to_exitcode(status)
        output.seek(0)
        lines = [line.strip() for line in output.read().splitlines() if line.strip()]
    verdict = lines[-1] if lines else ""
    for arg in instance.args[1:]:  # file names instead of full paths in error messages
        verdict = verdict.replace(arg, Path(arg).name)
    if killed.is_set():
        verdict = f"killed at limit + {KILL_AFTER:.0f} s"
    return Run(instance.name, limit, wall, usage.ru_maxrss / 1024, code, verdict[:160], killed.is_set(),
               code in VERDICT_EXIT_CODES[instance.kind])


def with_group(pid: int, sig: int) -> None:
    """Send ``sig`` to the process group the child leads (its own children included)."""
    try:
        os.killpg(pid, sig)
    except ProcessLookupError:
        pass


COLUMNS = ("instance", "limit s", "wall s", "over s", "allowed s", "time ok", "peak MB", "mem ok", "exit", "verdict")


def cells(run: Run) -> list[str]:
    return [run.instance, f"{run.limit:g}", f"{run.wall:.2f}", f"{run.over:+.2f}", f"{run.allowed:.1f}",
            "yes" if run.time_ok else "NO", f"{run.peak_mb:.0f}", "yes" if run.memory_ok else "NO",
            str(run.exit_code) + ("" if run.verdict_ok else " (!)"), run.verdict]


def text_row(values) -> str:
    """Instance left-aligned, numbers right-aligned, the verdict last."""
    widths = (44, 8, 8, 8, 10, 8, 8, 7, 8)
    middle = "".join(f"{v:>{w}}" for v, w in zip(values[1:-1], widths[1:]))
    return f"{values[0]:<{widths[0]}}{middle}  {values[-1]}"


def summary(runs: list[Run], planned: int) -> str:
    if not runs:
        return "no runs"
    worst = max(runs, key=lambda r: r.over - r.allowed)
    heaviest = max(runs, key=lambda r: r.peak_mb)
    failed = sum(not r.ok for r in runs)
    return (f"{len(runs)} of {planned} runs; " + ("all within limit and memory" if not failed else f"{failed} FAILED")
            + f"; max overrun {worst.over:+.2f} s ({worst.instance}, limit {worst.limit:g} s, allowed "
            f"{worst.allowed:.1f} s); max peak {heaviest.peak_mb:.0f} MB ({heaviest.instance})")


def markdown(runs: list[Run], planned: int, header: str) -> str:
    lines = [f"# Time limits and memory ({header})", "",
             "| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(c.replace("|", "/") for c in cells(r)) + " |" for r in runs]
    return "\n".join(lines + ["", summary(runs, planned), ""])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--limits", default="60,180", help="comma-separated time limits in seconds")
    parser.add_argument("--only", nargs="*", help="keep instances whose name contains one of these")
    parser.add_argument("--buses", default="118,300", help="ML4ACOPF networks to run (file name prefixes)")
    parser.add_argument("--csv", type=Path, default=DATA / "instances.csv", help="the VNN-COMP instances.csv")
    parser.add_argument("--threads", type=int, default=2, help="OMP/MKL/torch threads of every run")
    parser.add_argument("--extra", default="", help="arguments appended to every command (quote them)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "timeouts_run.md", help="markdown table")
    args = parser.parse_args()
    limits = [float(x) for x in args.limits.split(",") if x.strip()]
    todo = instances(args.csv, set(args.buses.split(",")), args.only)
    planned = len(todo) * len(limits)
    env = child_environment(args.threads)
    extra = shlex.split(args.extra)
    header = (f"{platform.node()}, {os.cpu_count()} cores, {args.threads} threads per run, "
              f"{time.strftime('%Y-%m-%d %H:%M')}, start-up (imports only) {startup_seconds(env):.1f} s"
              + (f", extra: {args.extra}" if extra else ""))
    print(f"{planned} runs ({len(todo)} instances x limits {', '.join(f'{x:g}' for x in limits)} s); {header}")
    print(text_row(COLUMNS))
    runs: list[Run] = []
    interrupted = False
    try:
        for limit in limits:
            for instance in todo:
                run = run_one(instance, limit, env, extra)
                runs.append(run)
                print(text_row(cells(run)), flush=True)
                args.out.write_text(markdown(runs, planned, header + ", in progress"), encoding="utf-8")
    except KeyboardInterrupt:
        interrupted = True
        print("\ninterrupted: the running process was killed")
    print(summary(runs, planned))
    args.out.write_text(markdown(runs, planned, header + (", interrupted" if interrupted else "")), encoding="utf-8")
    print(f"table written to {args.out}")
    if interrupted:
        return 130
    return 0 if all(r.ok for r in runs) else 1


if __name__ == "__main__":
    raise SystemExit(main())
