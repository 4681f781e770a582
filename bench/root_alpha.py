"""Root bounds with and without alpha on ML4ACOPF instances: is alpha at least as tight as CROWN?

    python bench/root_alpha.py                                # every instance of both shared sets, 120 s cap each
    python bench/root_alpha.py --cap 600 --only 118_ --out bench/root_alpha_run.md

Issue 13: "the root bound with alpha is at least as tight as without on every shared ML4ACOPF instance"
(the dense storage has alpha since then). Per instance (one ONNX network with the margin rows of every
conjunction of its VNN-LIB property, first box): the smallest margin lower bound of one CROWN pass and of
one alpha pass (CROWN's intermediate bounds, then 20 Adam steps on the final pass's relaxation parameters,
the engine's root setting), their seconds, and whether alpha >= CROWN on every row. A pass that does not
finish within --cap seconds (the deadline is checked inside the pass) is reported as "> cap".
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from graphver.bab.bounding import bound_batch  # noqa: E402
from graphver.bounds.ibp import NodeSplits  # noqa: E402
from graphver.clock import DeadlineReached  # noqa: E402
from graphver.io.onnx import import_onnx  # noqa: E402
from graphver.io.vnncomp import margin_network, read_instances  # noqa: E402
from graphver.io.vnnlib import read_vnnlib  # noqa: E402
from graphver.options import BoundOptions  # noqa: E402

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
SETS = [SHARED / "ml4acopf" / "instances.csv", SHARED / "ml4acopf_2024" / "instances.csv"]


def root_rows(tape, lower, upper, method: str, cap: float):
    """Row lower bounds [rows] of one pass, and its seconds; None when the pass hits the cap."""
    empty = torch.zeros(1, 0, dtype=torch.float64)
    splits = NodeSplits(torch.zeros(0, dtype=torch.long), empty, empty.clone())
    start = time.perf_counter()
    try:
        result = bound_batch(tape, lower, upper, splits, method, BoundOptions(alpha_iterations=20),
                             deadline=start + cap)
    except DeadlineReached:
        return None, time.perf_counter() - start
    return result.rows_lower[0], time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cap", type=float, default=120.0, help="seconds per pass")
    parser.add_argument("--only", nargs="*", default=None, help="keep instances whose path contains one of these")
    parser.add_argument("--out", type=Path, default=None, help="also write the table as markdown")
    parser.add_argument("--threads", type=int, default=2, help="torch threads")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    lines = ["| instance | crown root | s | alpha root | s | alpha >= crown |", "|---|---|---|---|---|---|"]
    print(lines[0])
    failures = 0
    seen = set()
    for csv_path in SETS:
        if not csv_path.exists():
            continue
        for onnx_path, vnnlib_path, _ in read_instances(csv_path):
            name = f"{onnx_path.stem}/{vnnlib_path.stem}"
            if name in seen or (args.only and not any(s in str(onnx_path) + str(vnnlib_path) for s in args.only)):
                continue
            seen.add(name)
            network = import_onnx(onnx_path)
            spec = read_vnnlib(vnnlib_path, network.n_inputs, network.n_outputs)
            rows = np.concatenate([c.coef for c in spec.disjuncts])
            offsets = np.concatenate([c.offset for c in spec.disjuncts])
            tape = margin_network(network, rows, offsets)
            lower, upper = (torch.as_tensor(np.asarray(b, dtype=np.float64))[None] for b in spec.boxes[0])
            crown, crown_s = root_rows(tape, lower, upper, "crown", args.cap)
            alpha, alpha_s = root_rows(tape, lower, upper, "alpha", args.cap) if crown is not None else (None, 0.0)
            text = lambda r: f"> {args.cap:g} s" if r is None else f"{float(r.min()):.6g}"  # noqa: E731
            if crown is None or alpha is None:
                verdict = "not measured"
            else:
                ok = bool((alpha >= crown).all())
                failures += not ok
                verdict = "yes" if ok else f"NO (worst row {float((alpha - crown).min()):.3g})"
            line = f"| {name} | {text(crown)} | {crown_s:.1f} | {text(alpha)} | {alpha_s:.1f} | {verdict} |"
            lines.append(line)
            print(line, flush=True)
    summary = f"{len(seen)} instances; alpha looser than CROWN on {failures}"
    print(summary)
    if args.out is not None:
        args.out.write_text("\n".join(lines + ["", summary]) + "\n", encoding="utf-8")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
