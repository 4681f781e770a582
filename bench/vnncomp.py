"""VNN-COMP ML4ACOPF benchmark: graphver on the 14-bus instances next to alpha-beta-CROWN, scaling on
synthetic networks shaped like the 118- and 300-bus versions, and any benchmark's instances.csv next to the
competition's results.

    python bench/vnncomp.py                 # the 14 instances (in-process and per-process) and the scaling table
    python bench/vnncomp.py --no-process    # skip the per-process timings (one `graphver vnncomp` per instance)
    python bench/vnncomp.py --scaling-only
    python bench/vnncomp.py --instances ../shared/data/ml4acopf_2024/instances.csv --results run.csv
                                            # every instance in its own `graphver vnncomp` process, at the CSV's
                                            # time limits (or --timeout), next to the reference results

Suite (--instances): one `graphver vnncomp MODEL PROP --timeout T` process per instance (2 torch threads
unless --threads), its wall time measured around the process (start-up included, as the competition
measures), its verdict from the exit code, a "sat" re-checked here: the counterexample file is read back,
the input checked against the box and onnxruntime's outputs against the unsafe set. The reference
columns come from the README next to the CSV (its table of VNN-COMP 2025 results: alpha-beta-CROWN and
PyRAT per instance; the 14-bus rule "prop1 sat, the rest unsat" as the README states it). "correct": the
verdict agrees with every reference verdict that is sat or unsat; "wrong" is a decided verdict against one.
The limit held: wall <= limit + max(2 s, 2 %). --results appends one CSV row per instance and resumes.
An undecided instance gets a second line: the proven margin and the closest point's margin (from the
process's --json); where a reference says sat, a third: onnxruntime's margin at graphver's closest point
and whether a counterexample file claiming a violation there would pass VNN-COMP's 2023-2025 check (it
compares the file's outputs with onnxruntime's to a relative 1e-3 and tests the property on the file's
outputs, so "sat" can be accepted where onnxruntime itself reaches no violation).

Table 1: every instance of ../shared/data/ml4acopf/instances.csv: graphver's verdict, seconds inside the
verifier (ONNX import and VNN-LIB parsing included, one warm-up instance first so that one-time imports
do not count), domains, what decided it, and the seconds of a whole `graphver vnncomp` process
(interpreter and torch start-up included). alpha-beta-CROWN's numbers on this project's machines (quiet
machine, 2 threads, CPU) are from the data folder's README: all 14 verified, 3.1-5.2 s each inside the
verifier (50 s in total), 6.5-8.7 s per process (103 s in total). The ratio columns divide
alpha-beta-CROWN's fastest per-instance time by graphver's (above 1: graphver is faster even against
alpha-beta-CROWN's best instance).

Table 2: synthetic networks with the shapes of the larger ML4ACOPF versions (inputs 2 x loads, ReLU
layers, outputs through sigmoid limits, then the power-flow equations with sin/cos of angle differences,
products, squares and incidence matrices): nodes and instructions of the tape, import seconds, and the
seconds and peak memory of one CROWN pass (IBP intersected with CROWN on every intermediate node) over a
box of +-5 % around a random load.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "ml4acopf"
ABCROWN_SECONDS = (3.1, 5.2)  # per instance inside the verifier, this project's machines
ABCROWN_PROCESS = (6.5, 8.7)  # per process, start-up included
ABCROWN_TOTAL = 50.0


def instances_table(process: bool) -> None:
    from graphver.io.vnncomp import read_instances, verify_instance

    rows = read_instances(DATA / "instances.csv")
    verify_instance(*rows[0][:2], timeout=60)  # warm-up: first imports and allocations
    print("ML4ACOPF 14-bus (2-core CPU); alpha-beta-CROWN: all 14 verified, 3.1-5.2 s each in the verifier, "
          "6.5-8.7 s per process")
    print(f"{'instance':<24}{'verdict':>8}{'s':>8}{'domains':>9}  {'decided by':<12}{'x ab-CROWN':>11}"
          f"{'process s':>11}{'x ab-CROWN':>11}")
    total, total_process = 0.0, 0.0
    for onnx_path, vnnlib_path, limit in sorted(rows, key=lambda r: int(r[1].stem.split("prop")[1])):
        result = verify_instance(onnx_path, vnnlib_path, timeout=limit)
        total += result.seconds
        cells = f"{Path(vnnlib_path).stem:<24}{result.verdict:>8}{result.seconds:>8.2f}{result.domains:>9}  " \
                f"{result.decided_by:<12}{ABCROWN_SECONDS[0] / result.seconds:>11.1f}"
        if process:
            with tempfile.TemporaryDirectory() as folder:
                start = time.perf_counter()
                subprocess.run([sys.executable, "-m", "graphver", "vnncomp", str(onnx_path), str(vnnlib_path),
                                "--quiet", "--out", str(Path(folder) / "result.txt")], check=False,
                               capture_output=True)
                seconds = time.perf_counter() - start
            total_process += seconds
            cells += f"{seconds:>11.2f}{ABCROWN_PROCESS[0] / seconds:>11.1f}"
        print(cells, flush=True)
    line = f"total in the verifier {total:.1f} s (alpha-beta-CROWN {ABCROWN_TOTAL:.0f} s)"
    if process:
        line += f"; per process {total_process:.1f} s (alpha-beta-CROWN 103 s)"
    print(line)


def synthetic_network(path: Path, n_bus: int, n_branch: int, n_gen: int, hidden: list[int], seed: int = 0) -> None:
    """An ML4ACOPF-shaped ONNX network (float32): loads -> ReLU MLP -> sigmoid limits -> power flow."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    n_in = 2 * n_bus
    n_pred = 2 * n_gen + 2 * n_bus  # pg, qg, vm, va
    sizes = [n_in, *hidden, n_pred]
    nodes, inits = [], []

    def init(name, value):
        inits.append(numpy_helper.from_array(np.asarray(value, dtype=np.float32), name))
        return name

    def index(name, value):
        inits.append(numpy_helper.from_array(np.asarray(value, dtype=np.int64), name))
        return name

    current = "x"
    for k in range(len(sizes) - 1):
        w = init(f"W{k}", rng.normal(size=(sizes[k + 1], sizes[k])) / np.sqrt(sizes[k]))
        b = init(f"b{k}", rng.normal(size=sizes[k + 1]) * 0.1)
        nodes.append(helper.make_node("Gemm", [current, w, b], [f"h{k}"], transB=1))
        current = f"h{k}"
        if k < len(sizes) - 2:
            nodes.append(helper.make_node("Relu", [current], [f"r{k}"]))
            current = f"r{k}"
    n_limited = 2 * n_gen + n_bus
    nodes += [helper.make_node("Slice", [current, index("z0", [0]), index("zl", [n_limited]), index("ax", [1])], ["lim"]),
              helper.make_node("Slice", [current, index("zl2", [n_limited]), index("zend", [n_pred]), "ax"], ["va"]),
              helper.make_node("Sigmoid", ["lim"], ["sig"]),
              helper.make_node("Mul", ["sig", init("range", rng.uniform(0.1, 1.0, n_limited))], ["scaled"]),
              helper.make_node("Add", ["scaled", init("low", rng.uniform(0.0, 0.9, n_limited))], ["bounded"]),
              helper.make_node("Slice", ["bounded", index("v0", [2 * n_gen]), index("v1", [n_limited]), "ax"], ["vm"])]
    f_bus = rng.integers(0, n_bus, n_branch)
    t_bus = (f_bus + rng.integers(1, n_bus, n_branch)) % n_bus
    nodes += [helper.make_node("Gather", ["vm", index("fb", f_bus)], ["vf"], axis=1),
              helper.make_node("Gather", ["vm", index("tb", t_bus)], ["vt"], axis=1),
              helper.make_node("Gather", ["va", "fb"], ["af"], axis=1),
              helper.make_node("Gather", ["va", "tb"], ["at"], axis=1),
              helper.make_node("Sub", ["af", "at"], ["d"]),
              helper.make_node("Cos", ["d"], ["c"]), helper.make_node("Sin", ["d"], ["s"]),
              helper.make_node("Mul", ["vf", "vt"], ["vv"]),
              helper.make_node("Mul", ["vv", "c"], ["wr"]), helper.make_node("Mul", ["vv", "s"], ["wi"]),
              helper.make_node("Pow", ["vf", init("two", 2.0)], ["wf"]),
              helper.make_node("Pow", ["vt", "two"], ["wt"])]
    flows = []
    for name in ("pf", "qf", "pt", "qt"):
        g, b, w = init(f"g{name}", rng.normal(size=n_branch)), init(f"b{name}", rng.normal(size=n_branch)), ("wf" if name[1] == "f" else "wt")
        nodes += [helper.make_node("Mul", [w, g], [f"{name}a"]), helper.make_node("Mul", ["wr", b], [f"{name}b"]),
                  helper.make_node("Mul", ["wi", init(f"c{name}", rng.normal(size=n_branch))], [f"{name}c"]),
                  helper.make_node("Add", [f"{name}a", f"{name}b"], [f"{name}d"]),
                  helper.make_node("Add", [f"{name}d", f"{name}c"], [name])]
        flows.append(name)
    nodes += [helper.make_node("Pow", ["pf", "two"], ["pf2"]), helper.make_node("Pow", ["qf", "two"], ["qf2"]),
              helper.make_node("Add", ["pf2", "qf2"], ["sf"]),
              helper.make_node("Sub", ["sf", init("smax", rng.uniform(1, 4, n_branch))], ["thermal"])]
    incidence_f = np.zeros((n_bus, n_branch), dtype=np.float32)
    incidence_f[f_bus, np.arange(n_branch)] = 1
    incidence_t = np.zeros((n_bus, n_branch), dtype=np.float32)
    incidence_t[t_bus, np.arange(n_branch)] = 1
    nodes += [helper.make_node("Transpose", ["pf"], ["pfT"], perm=[1, 0]),
              helper.make_node("Transpose", ["pt"], ["ptT"], perm=[1, 0]),
              helper.make_node("MatMul", [init("If", incidence_f), "pfT"], ["inj_f"]),
              helper.make_node("MatMul", [init("It", incidence_t), "ptT"], ["inj_t"]),
              helper.make_node("Add", ["inj_f", "inj_t"], ["injT"]),
              helper.make_node("Transpose", ["injT"], ["inj"], perm=[1, 0]),
              helper.make_node("Slice", ["x", index("p0", [0]), index("p1", [n_bus]), "ax"], ["pd"]),
              helper.make_node("Sub", ["inj", "pd"], ["balance"]),
              helper.make_node("Concat", ["bounded", "va", *flows, "thermal", "balance"], ["y"], axis=1)]
    n_out = n_limited + n_bus + 4 * n_branch + n_branch + n_bus
    graph = helper.make_graph(nodes, "synthetic_ml4acopf", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, n_in])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, n_out])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)])
    model.ir_version = 7
    onnx.save(model, str(path))


def scaling_table() -> None:
    import torch

    from graphver.bab.bounding import bound_batch
    from graphver.bounds.ibp import NodeSplits
    from graphver.io.onnx import import_onnx
    from graphver.options import BoundOptions

    print()
    print("Synthetic ML4ACOPF-shaped networks: one CROWN pass (IBP intersected with CROWN on every intermediate node)")
    print(f"{'shape':<34}{'inputs':>7}{'outputs':>8}{'nodes':>8}{'instr':>6}{'import s':>9}{'CROWN s':>9}{'peak MB':>9}")
    shapes = [("118-bus (198 in, 3 x 128)", 99, 186, 54, [128, 128, 128]),
              ("118-bus (198 in, 3 x 256)", 99, 186, 54, [256, 256, 256]),
              ("300-bus (402 in, 3 x 512)", 201, 411, 69, [512, 512, 512])]
    for label, n_bus, n_branch, n_gen, hidden in shapes:
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "net.onnx"
            synthetic_network(path, n_bus, n_branch, n_gen, hidden)
            start = time.perf_counter()
            network = import_onnx(path)
            imported = time.perf_counter() - start
        tape = network.tape
        centre = np.random.default_rng(1).uniform(0.1, 1.0, network.n_inputs)
        lower = torch.as_tensor(centre * 0.95)[None]
        upper = torch.as_tensor(centre * 1.05)[None]
        empty = torch.zeros(1, 0, dtype=torch.float64)
        splits = NodeSplits(torch.zeros(0, dtype=torch.long), empty, empty.clone())
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        start = time.perf_counter()
        bound_batch(tape, lower, upper, splits, "crown", BoundOptions())
        seconds = time.perf_counter() - start
        peak = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
        print(f"{label:<34}{network.n_inputs:>7}{network.n_outputs:>8}{tape.n_nodes:>8}{tape.n_instructions:>6}"
              f"{imported:>9.2f}{seconds:>9.2f}{peak:>9.0f}", flush=True)
    print("peak MB: growth of the process's peak resident memory during the pass (0 when it stayed below an "
          "earlier peak)")


REFERENCE_ROW = re.compile(r"^\|\s*(\d+)-linear-(residual|nonresidual)\s*\|\s*(prop\d+)\s*\|(.*)\|(.*)\|\s*$")


def references(readme: Path) -> tuple[list[str], dict]:
    """(tool names, {(network, property): [(verdict, seconds) per tool]}) from the README's results table;
    the 14-bus instances by the README's rule (prop1 sat, the others unsat, for both tools)."""
    tools, table = ["alpha-beta-CROWN", "PyRAT"], {}
    if not readme.is_file():
        return tools, table
    for line in readme.read_text(encoding="utf-8").splitlines():
        match = REFERENCE_ROW.match(line.strip())
        if not match:
            continue
        size, kind, prop, *cells = match.groups()
        parsed = []
        for cell in cells:
            words = cell.split()
            seconds = float(words[1]) if len(words) > 1 else math.nan
            parsed.append((words[0] if words else "", seconds))
        table[(f"{size}_ieee_ml4acopf-linear-{kind}", f"{size}_ieee_{prop}")] = parsed
    return tools, table


def reference_of(table: dict, onnx_path: Path, vnnlib_path: Path) -> list[tuple[str, float]]:
    key = (onnx_path.stem, vnnlib_path.stem)
    if key in table:
        return table[key]
    if onnx_path.stem.startswith("14_ieee"):  # README: all 28 decided by both tools, prop1 sat, the rest unsat
        verdict = "sat" if vnnlib_path.stem.endswith("_prop1") else "unsat"
        return [(verdict, math.nan), (verdict, math.nan)]
    return []


def recheck_sat(onnx_path: Path, vnnlib_path: Path, result_file: Path) -> bool:
    """The counterexample file read back: inside the box, and onnxruntime's outputs in the unsafe set."""
    from graphver.io.onnx import import_onnx
    from graphver.io.vnncomp import unsafe
    from graphver.io.vnnlib import read_vnnlib

    lines = result_file.read_text(encoding="utf-8").splitlines()
    values = {}
    for line in lines[1:]:
        line = line.strip().strip("()")
        if line.startswith("X_"):
            name, value = line.split()
            values[int(name[2:])] = float(value)
    network = import_onnx(onnx_path)
    spec = read_vnnlib(vnnlib_path, network.n_inputs, network.n_outputs)
    x = np.array([values[i] for i in range(network.n_inputs)], dtype=network.input_dtype)
    inside = any(((x >= lo) & (x <= hi)).all() for lo, hi in spec.boxes)
    y = network.run_onnxruntime(x[None])[0]
    return bool(inside and unsafe(spec, y)[0])


SUITE_FIELDS = ["onnx", "vnnlib", "limit", "verdict", "seconds", "rechecked", "proven_margin", "closest_margin",
                "closest_point"]
VNNCOMP_RTOL = 1e-3  # VNN-COMP 2023-2025 scoring: a file's outputs may differ from onnxruntime's by this (relative L-inf)
VNNCOMP_ATOL = 1e-4  # ... and the spec is checked on the file's outputs with this slack


def tolerance_check(onnx_path: Path, vnnlib_path: Path, point: list) -> str:
    """How close the closest point comes to a counterexample as VNN-COMP's scripts (2023-2025) accept one.

    Those scripts compare the outputs written in the counterexample file with onnxruntime's (relative
    L-inf difference <= 1e-3 of the file's largest output) and then check the property on the file's
    outputs (with 1e-4 slack), so a file may claim outputs that onnxruntime does not produce. Returns
    onnxruntime's margin at the point and the relative change of outputs a file would need to claim a
    violation (single-row conjunctions: the row's margin spread over its coefficients)."""
    from graphver.io.onnx import import_onnx
    from graphver.io.vnncomp import inside_box
    from graphver.io.vnnlib import read_vnnlib

    network = import_onnx(onnx_path)
    spec = read_vnnlib(vnnlib_path, network.n_inputs, network.n_outputs)
    (lower, upper), = spec.inner_boxes[:1] or spec.boxes[:1]
    x = inside_box(np.asarray(point), lower, upper, network.input_dtype)
    y = network.run_onnxruntime(x[None])[0].astype(np.float64)
    needed = []
    for conj in spec.disjuncts:
        values = conj.coef @ y + conj.offset  # unsafe when every row <= 0
        if conj.coef.shape[0] != 1:
            return f"onnxruntime margin {float(values.max()):.6g} (multi-row conjunction: no tolerance check)"
        shift = max(float(values[0]) - VNNCOMP_ATOL, 0.0) / float(np.abs(conj.coef[0]).sum())
        needed.append((float(values[0]), shift))
    margin, shift = min(needed, key=lambda pair: pair[1])
    relative = shift / float(np.abs(y).max())
    verdict = "accepted" if relative <= VNNCOMP_RTOL else "rejected"
    return (f"onnxruntime's margin at the closest point {margin:.6g}; a counterexample file claiming outputs "
            f"{shift:.4g} away (relative {relative:.2g}, limit {VNNCOMP_RTOL:g}) would be {verdict} by VNN-COMP's "
            f"2023-2025 check, which tests the property on the file's outputs")


def suite_table(csv_path: Path, timeout: float | None, results: Path | None, threads: int, only: str | None) -> int:
    from graphver.io.vnncomp import read_instances

    rows = read_instances(csv_path)
    if only:
        rows = [r for r in rows if only in f"{r[0].stem} {r[1].stem}"]
    tools, table = references(csv_path.parent / "README.md")
    done = {}
    if results is not None and results.is_file():
        with open(results, newline="", encoding="utf-8") as handle:
            for row in csv.DictReader(handle):
                done[(row["onnx"], row["vnnlib"])] = row
    env = dict(os.environ)
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        env[name] = str(threads)
    print(f"{csv_path} ({len(rows)} instances), {threads} threads per process, one process per instance")
    header = f"{'network':<40}{'property':<18}{'limit':>6}{'graphver':>9}{'s':>8}  " + "".join(f"{t:>22}" for t in tools) \
        + f"{'':>3}{'agrees':>8}"
    print(header)
    summary = []
    for onnx_path, vnnlib_path, limit in rows:
        limit = timeout if timeout is not None else limit
        key = (onnx_path.name, vnnlib_path.name)
        if key in done:
            row = done[key]
            verdict, seconds, rechecked = row["verdict"], float(row["seconds"]), row["rechecked"]
        else:
            with tempfile.TemporaryDirectory() as folder:
                out, report = Path(folder) / "result.txt", Path(folder) / "result.json"
                start = time.perf_counter()
                run = subprocess.run([sys.executable, "-m", "graphver", "vnncomp", str(onnx_path), str(vnnlib_path),
                                      "--timeout", str(limit), "--quiet", "--out", str(out), "--json", str(report)],
                                     env=env, capture_output=True, text=True, check=False)
                seconds = time.perf_counter() - start
                verdict = {0: "unsat", 1: "sat", 3: "unknown"}.get(run.returncode, "error")
                rechecked = ""
                if verdict == "sat":
                    rechecked = "yes" if out.is_file() and recheck_sat(onnx_path, vnnlib_path, out) else "NO"
                if verdict == "error":
                    print(run.stderr.strip()[-400:], file=sys.stderr)
                data = json.loads(report.read_text(encoding="utf-8")) if report.is_file() else {}
            row = dict(onnx=key[0], vnnlib=key[1], limit=limit, verdict=verdict, seconds=f"{seconds:.2f}",
                       rechecked=rechecked, proven_margin=data.get("proven_margin", ""),
                       closest_margin=data.get("closest_margin", ""),
                       closest_point=json.dumps(data.get("closest_point")) if data.get("closest_point") else "")
            if results is not None:
                new = not results.is_file()
                with open(results, "a", newline="", encoding="utf-8") as handle:
                    writer = csv.DictWriter(handle, SUITE_FIELDS)
                    if new:
                        writer.writeheader()
                    writer.writerow(row)
        reference = reference_of(table, onnx_path, vnnlib_path)
        decided_refs = {v for v, _ in reference if v in ("sat", "unsat")}
        decided = verdict in ("sat", "unsat") and rechecked != "NO"
        wrong = decided and bool(decided_refs) and decided_refs != {verdict}
        agrees = "-" if not decided else ("WRONG" if wrong else ("yes" if decided_refs else "no ref"))
        held = seconds <= float(limit) + max(2.0, 0.02 * float(limit))
        summary.append((onnx_path.stem, decided, wrong, seconds, held))
        cells = "".join(f"{(v + ' ' + (f'{t:.0f} s' if t == t else '')).strip():>22}" for v, t in reference) \
            if reference else f"{'-':>22}" * len(tools)
        print(f"{onnx_path.stem:<40}{vnnlib_path.stem:<18}{float(limit):>6.0f}{verdict:>9}{seconds:>8.1f}  {cells}"
              f"{'':>3}{agrees:>8}{'' if held else '  OVER LIMIT'}", flush=True)
        if verdict == "unknown" and row.get("proven_margin", "") != "":
            print(f"{'':>8}undecided: proven margin >= {float(row['proven_margin']):.6g}, closest point's margin "
                  f"{float(row['closest_margin']):.6g}", flush=True)
            if "sat" in decided_refs and row.get("closest_point"):
                print(f"{'':>8}{tolerance_check(onnx_path, vnnlib_path, json.loads(row['closest_point']))}",
                      flush=True)
    if not summary:
        return 0
    print()
    groups = [("all", summary), ("118- and 300-bus", [s for s in summary if not s[0].startswith("14_")])]
    for label, part in groups:
        if not part:
            continue
        times = sorted(s[3] for s in part)
        print(f"{label}: {sum(s[1] for s in part)}/{len(part)} decided, {sum(s[2] for s in part)} wrong, "
              f"median {statistics.median(times):.1f} s, max {times[-1]:.1f} s, "
              f"time limit held {sum(s[4] for s in part)}/{len(part)}")
    return 1 if any(s[2] for s in summary) else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--no-process", action="store_true", help="skip the per-process timings")
    parser.add_argument("--scaling-only", action="store_true")
    parser.add_argument("--instances", type=Path, help="run this instances.csv, one process per instance")
    parser.add_argument("--timeout", type=float, help="--instances: seconds per instance (default: the CSV's)")
    parser.add_argument("--results", type=Path, help="--instances: CSV of the results (appended; resumes)")
    parser.add_argument("--threads", type=int, default=2, help="--instances: torch threads per process")
    parser.add_argument("--only", help="--instances: only instances whose 'onnx-stem vnnlib-stem' contains this")
    args = parser.parse_args()
    if args.instances is not None:
        return suite_table(args.instances, args.timeout, args.results, args.threads, args.only)
    if not args.scaling_only:
        if not (DATA / "instances.csv").is_file():
            print(f"{DATA} is not present: skipping the instances")
        else:
            instances_table(not args.no_process)
    scaling_table()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
