"""VNN-COMP ML4ACOPF benchmark: graphver on the 14-bus instances next to alpha-beta-CROWN, and scaling on
synthetic networks shaped like the 118- and 300-bus versions.

    python bench/vnncomp.py                 # the 14 instances (in-process and per-process) and the scaling table
    python bench/vnncomp.py --no-process    # skip the per-process timings (one `graphver vnncomp` per instance)
    python bench/vnncomp.py --scaling-only

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
import resource
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--no-process", action="store_true", help="skip the per-process timings")
    parser.add_argument("--scaling-only", action="store_true")
    args = parser.parse_args()
    if not args.scaling_only:
        if not (DATA / "instances.csv").is_file():
            print(f"{DATA} is not present: skipping the instances")
        else:
            instances_table(not args.no_process)
    scaling_table()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
