"""Branch-and-bound ablation on ONNX + VNN-LIB instances: input-only, node-only and auto branching.

    python bench/bab_dense.py                                  # the 118-bus ML4ACOPF 2024 instances, 60 s per run
    python bench/bab_dense.py --timeout 180 --only prop2 prop3 --json out.json
    python bench/bab_dense.py --csv ../shared/data/ml4acopf/instances.csv --buses 14 --timeout 3
    python bench/bab_dense.py --device cuda                    # the same table on the GPU

The bench/bab_compare.py ablation for the VNN-COMP networks (issue 13: "the BaB ablation runs input-only,
node-only and auto on the 118-bus instances; record domains per second"). Every run goes through
`graphver.io.vnncomp.verify_instance`, the entry point of `graphver vnncomp`, with one option changed:

  input  branching="input"   input splits only
  node   branching="node"    node splits only (inputs where no node split helps)
  auto   branching="auto"    the default: input or node split per domain by strong branching

Columns: verdict (unsat: the property holds, sat: a counterexample reproduced by onnxruntime, unknown),
seconds of the run (ONNX import, VNN-LIB parsing and the root phase included), domains bounded, domains
per second (domains / seconds), and the root bound: the smallest margin lower bound of one CROWN pass
(IBP intersected with CROWN on every intermediate node) over the root box, the same for every mode (> 0
proves the property at the root).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from graphver.errors import GraphverError  # noqa: E402
from graphver.io.vnncomp import read_instances, verify_instance  # noqa: E402

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "ml4acopf_2024"
MODES = {"input": {"branching": "input"}, "node": {"branching": "node"}, "auto": {"branching": "auto"}}


def root_bound(onnx_path: Path, vnnlib_path: Path, device: str) -> float:
    """The smallest lower bound of the margin rows (all conjunctions, first box) after one CROWN pass."""
    from graphver.bab.bounding import bound_batch  # engine internals: update here when they move
    from graphver.bounds.ibp import NodeSplits
    from graphver.io.onnx import import_onnx
    from graphver.io.vnncomp import margin_network
    from graphver.io.vnnlib import read_vnnlib
    from graphver.options import BoundOptions

    network = import_onnx(onnx_path)
    spec = read_vnnlib(vnnlib_path, network.n_inputs, network.n_outputs)
    rows = np.concatenate([c.coef for c in spec.disjuncts])
    offsets = np.concatenate([c.offset for c in spec.disjuncts])
    tape = margin_network(network, rows, offsets)
    lower, upper = (torch.as_tensor(np.asarray(b, dtype=np.float64), device=device)[None] for b in spec.boxes[0])
    empty = torch.zeros(1, 0, dtype=torch.float64, device=device)
    splits = NodeSplits(torch.zeros(0, dtype=torch.long, device=device), empty, empty.clone())
    return float(bound_batch(tape, lower, upper, splits, "crown", BoundOptions()).rows_lower.min())


def option(text: str) -> tuple[str, object]:
    """KEY=VALUE with VALUE read as JSON (numbers, true/false, null) or else kept as a string."""
    key, _, value = text.partition("=")
    try:
        return key, json.loads(value)
    except json.JSONDecodeError:
        return key, value


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--csv", type=Path, default=DATA / "instances.csv", help="a VNN-COMP instances.csv")
    parser.add_argument("--buses", default="118", help="networks to run (file name prefixes, comma-separated)")
    parser.add_argument("--only", nargs="*", help="keep instances whose network/property name contains one of these")
    parser.add_argument("--modes", nargs="*", default=list(MODES), choices=list(MODES))
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds per run")
    parser.add_argument("--device", default=None, help="where domains are bounded (default: the engine's choice)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads")
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                        help="more engine options for every run, e.g. batch_size=256 method=ibp")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    buses = set(args.buses.split(","))
    todo = [(o, v) for o, v, _ in read_instances(args.csv) if o.name.split("_")[0] in buses]
    todo = [(o, v) for o, v in todo if not args.only or any(p in f"{o.stem}/{v.stem}" for p in args.only)]
    extra = dict(option(text) for text in args.set)
    if args.device:
        extra["device"] = args.device
    print(f"branch-and-bound ablation, {args.timeout:g} s per run, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads, device {args.device or 'default'}; {len(todo)} instances"
          + (f"; options {extra}" if extra else ""))
    print(f"{'instance':<48}{'mode':>6}{'verdict':>9}{'s':>8}{'domains':>9}{'domains/s':>11}{'root bound':>13}"
          "  decided by / message")
    rows = []
    try:
        for onnx_path, vnnlib_path in todo:
            name = f"{onnx_path.stem.replace('_ieee_ml4acopf', '')}/{vnnlib_path.stem}"
            try:
                root = root_bound(onnx_path, vnnlib_path, args.device or "cpu")
            except ImportError as missing:  # the engine moved: the table without the root column
                print(f"root bound unavailable ({missing})", file=sys.stderr)
                root = float("nan")
            except GraphverError as error:  # an instance graphver cannot read (an unsupported op, say)
                print(f"{name:<48}{'':>6}{'error':>9}  {type(error).__name__}: {error}", flush=True)
                continue
            for mode in args.modes:
                start = time.perf_counter()
                result = verify_instance(onnx_path, vnnlib_path, args.timeout, **MODES[mode], **extra)
                seconds = time.perf_counter() - start
                rate = result.domains / seconds if seconds > 0 else 0.0
                rows.append({"instance": name, "mode": mode, "verdict": result.verdict, "seconds": seconds,
                             "domains": result.domains, "domains_per_s": rate, "root_bound": root,
                             "message": result.message})
                print(f"{name:<48}{mode:>6}{result.verdict:>9}{seconds:>8.2f}{result.domains:>9}{rate:>11.3g}"
                      f"{root:>13.4g}  {result.decided_by or result.message}", flush=True)
                if result.message == "interrupted":
                    raise KeyboardInterrupt
    except KeyboardInterrupt:
        print("interrupted: rows so far above")
    for mode in args.modes:
        done = [r for r in rows if r["mode"] == mode]
        if done:
            domains, seconds = sum(r["domains"] for r in done), sum(r["seconds"] for r in done)
            decided = sum(r["verdict"] in ("sat", "unsat") for r in done)
            print(f"{mode}: {decided}/{len(done)} decided, {domains} domains in {seconds:.1f} s, "
                  f"{domains / max(seconds, 1e-9):.3g} domains/s")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
