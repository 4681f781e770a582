"""Deciding VNN-COMP instances (ONNX network + VNN-LIB property) with graphver's branch-and-bound.

``verify_instance`` answers in the competition's words: "unsat" (the property holds: no input of the
box reaches the unsafe set), "sat" (a counterexample, reproduced by onnxruntime), "unknown" (time out)
or "error". The unsafe set is a union of conjunctions of linear output rows ``a . y + b <= 0``; the
property holds when, for every conjunction, at least one of its rows is > 0 everywhere in the box. Each
row's margin ``a . y + b`` is appended to the network's tape as one linear instruction, so branch-and-
bound runs on the network itself:

- when every conjunction has one row (ML4ACOPF), one run proves all rows together ("all": every margin
  > 0); a row proven on a domain stops costing anything there;
- otherwise one run per conjunction ("any": some margin > 0), in order; the first counterexample ends
  the instance.

Every intermediate bound intersects IBP with CROWN (the tape's refine sets), the root is bounded by
alpha-CROWN, sampling and projected gradient search for counterexamples first, and a candidate counts
only after onnxruntime, run on the candidate rounded to the model's input type (inside the box),
reproduces the violation. The property's constants are exact rationals (graphver/io/vnnlib.py): the margin
rows carry the rounding error of their coefficients as ``weight_error`` and their constants rounded down,
so a proof covers the exact unsafe set; a candidate must lie in the exact box (``inner_boxes``) and reach
the exact unsafe set (``unsafe`` decides in rationals).

``run_instances`` runs a benchmark's ``instances.csv`` (onnx, vnnlib, timeout per row), writes one CSV
row per instance and resumes after an interruption (instances already in the output file are skipped;
Ctrl-C stops the run without recording the interrupted instance).
"""

from __future__ import annotations

import csv
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

import graphver as gv
from graphver.bab import Confirmation, Engine, Problem, VerifyGoal
from graphver.io.onnx import OnnxNetwork, import_onnx
from graphver.io.vnnlib import VnnlibSpec, read_vnnlib
from graphver.options import BabOptions, make_options

RESULT_FIELDS = ["onnx", "vnnlib", "verdict", "seconds", "domains", "decided_by", "message", "proven_margin",
                 "closest_margin"]


@dataclass
class InstanceResult:
    """The verdict of one instance; ``counterexample`` holds the input (in the model's input type) and
    onnxruntime's outputs for "sat".

    ``proven_margin``: a certified lower bound of the property's margin over the box (the smallest over
    its conjunctions; > 0 proves it, for "unknown" it says how far the proof got; -inf where a
    conjunction was not bounded at all). ``closest_margin``: the smallest margin found at a point (the
    graph evaluated in float64; < 0 would be a candidate counterexample). The property is proven when
    the first is > 0 and falsified when onnxruntime reproduces a point where the second is <= 0; an
    "unknown" lies between them.
"""

    onnx: str
    vnnlib: str
    verdict: str
    seconds: float
    domains: int = 0
    decided_by: str = ""
    message: str = ""
    counterexample: dict | None = field(default=None, repr=False)
    proven_margin: float = -math.inf
    closest_margin: float = math.inf
    closest_point: list | None = field(default=None, repr=False)  # where closest_margin was found (float64)

    def row(self) -> dict:
        data = asdict(self)
        data.pop("counterexample")
        data.pop("closest_point")
        data["seconds"] = f"{self.seconds:.3f}"
        data["proven_margin"], data["closest_margin"] = f"{self.proven_margin:.6g}", f"{self.closest_margin:.6g}"
        return data

    def margins_text(self) -> str:
        """``proven margin >= P, closest point's margin C`` for a run left undecided."""
        closest = f"{self.closest_margin:.6g}" if math.isfinite(self.closest_margin) else "none kept"
        return f"proven margin >= {self.proven_margin:.6g}, closest point's margin {closest}"

    def to_json(self) -> str:
        """Everything, as strict JSON (graphver.report.results.json_text)."""
        from graphver.report.results import json_text

        return json_text(asdict(self))


def inside_box(point: np.ndarray, lower: np.ndarray, upper: np.ndarray, dtype) -> np.ndarray:
    """The point rounded to ``dtype``, each coordinate moved to the nearest value of that type inside
    [lower, upper] when rounding took it outside."""
    x = np.asarray(point, dtype=dtype)
    low, high = np.asarray(lower), np.asarray(upper)
    up = x.astype(np.float64) < low
    x = np.where(up, np.nextafter(x, np.array(np.inf, dtype=dtype)), x)
    down = x.astype(np.float64) > high
    x = np.where(down, np.nextafter(x, np.array(-np.inf, dtype=dtype)), x)
    return x


def unsafe(spec: VnnlibSpec, y: np.ndarray) -> tuple[bool, list[float]]:
    """Whether outputs ``y`` lie in the unsafe set, decided exactly (the property's exact rationals against
    the floats ``y``), and each conjunction's largest row value in float (<= 0 for a satisfied conjunction
    of non-strict rows)."""
    y = np.asarray(y, dtype=np.float64)
    hit, worst = False, []
    for conj in spec.disjuncts:
        values = conj.coef @ y + conj.offset
        worst.append(float(values.max()))
        if hit:
            continue
        # float screen with a generous slack (offset is rounded down, coefficients carry coef_error),
        # then the exact decision; outputs that are not finite are decided in float
        error = conj.coef_error if conj.coef_error is not None else np.zeros_like(conj.coef)
        with np.errstate(invalid="ignore", over="ignore"):
            scale = np.abs(conj.coef) @ np.abs(y) + np.abs(conj.offset)
            slack = 1e-9 * scale + error @ np.abs(y) + 1e-300
            if not bool(np.all(values <= slack)):
                continue
        if np.isfinite(y).all() and np.isfinite(values).all():
            hit = conj.exact_hit(y)
        else:
            hit = bool(np.where(conj.strict, values < 0, values <= 0).all())
    return hit, worst


def margin_network(network: OnnxNetwork, rows: np.ndarray, offsets: np.ndarray, errors: np.ndarray | None = None):
    """The network's tape with outputs ``rows @ y + offsets`` (one linear instruction); ``errors`` bound
    the distance of ``rows`` from the exact coefficients (the instruction's ``weight_error``)."""
    builder = network.builder
    r, c = np.nonzero(rows)
    cols = network.output_nodes[c]
    nodes = builder.linear([(r, cols, rows[r, c], None if errors is None else errors[r, c])], offsets, "margin",
                           (rows.shape[0],))
    return builder.tape(nodes)


def verify_instance(onnx_path, vnnlib_path, timeout: float = 60.0, progress: bool = False, **options) -> InstanceResult:
    start = time.perf_counter()
    deadline = start + timeout
    name_onnx, name_vnnlib = str(onnx_path), str(vnnlib_path)
    network = import_onnx(onnx_path)
    spec = read_vnnlib(vnnlib_path, network.n_inputs, network.n_outputs)
    domains, methods = 0, []
    proven, closest, closest_point = math.inf, math.inf, None  # over the conjunctions (groups) bounded so far
    # the search runs on the box rounded outward; a counterexample must lie in the exact box: its floats
    # are the inner box (inner_boxes; a spec built by hand without them: the box itself)
    inner_boxes = spec.inner_boxes if len(spec.inner_boxes) == len(spec.boxes) else spec.boxes
    for (lower, upper), (inner_lower, inner_upper) in zip(spec.boxes, inner_boxes):
        found: dict = {}

        def confirm(point, lower=inner_lower, upper=inner_upper, found=found):
            x = inside_box(point.detach().cpu().numpy(), lower, upper, network.input_dtype)
            if not ((x >= lower) & (x <= upper)).all():  # no value of the input type there: not reportable
                return Confirmation(False)
            y = network.run_onnxruntime(x[None])[0]
            hit, worst = unsafe(spec, y)
            if hit:
                found["x"], found["y"] = x, y
            return Confirmation(hit, tuple(str(w) for w in worst))

        single = all(conj.coef.shape[0] == 1 for conj in spec.disjuncts)
        groups = [list(range(len(spec.disjuncts)))] if single else [[k] for k in range(len(spec.disjuncts))]
        undecided = False
        for group in groups:
            left = deadline - time.perf_counter()
            if left <= 0:
                undecided, proven = True, -math.inf  # this conjunction was never bounded
                break
            conjs = [spec.disjuncts[k] for k in group]
            rows = np.concatenate([c.coef for c in conjs])
            offsets = np.concatenate([c.offset for c in conjs])
            errors = np.concatenate([c.coef_error if c.coef_error is not None else np.zeros_like(c.coef)
                                     for c in conjs])
            # unsafe: row <= 0 (row < 0 when strict); safe: margin = row > 0 (>= 0 when strict)
            strict = tuple(bool(not s) for c in conjs for s in c.strict)
            tape = margin_network(network, rows, offsets, errors)
            settings = dict(progress=progress, timeout=left)
            settings.update(options)
            combine = "all" if single else "any"
            problem = Problem(tape, lower, upper, rows.shape[0], combine, strict, confirm=confirm,
                              names=tuple(f"X_{i}" for i in range(network.n_inputs)), label=Path(name_vnnlib).stem)
            outcome = Engine(problem, VerifyGoal(combine, strict), make_options(BabOptions, settings)).run(deadline)
            domains += outcome.stats.domains_explored
            proven = min(proven, outcome.lower)
            if outcome.best_value < closest and outcome.best_point is not None:
                closest, closest_point = outcome.best_value, outcome.best_point.tolist()
            if outcome.status == "falsified":
                cex = {"x": found["x"].astype(np.float64).tolist(), "y": found["y"].tolist()}
                return InstanceResult(name_onnx, name_vnnlib, "sat", time.perf_counter() - start, domains,
                                      f"search ({outcome.stats.incumbent_from})", "counterexample reproduced by onnxruntime",
                                      cex, proven, closest, closest_point)
            if outcome.stats.stop_reason.startswith("interrupted"):
                return InstanceResult(name_onnx, name_vnnlib, "unknown", time.perf_counter() - start, domains, "",
                                      "interrupted", None, proven, closest, closest_point)
            if outcome.status == "proven":
                methods.append(outcome.stats.proved_by)
            else:
                undecided = True
        if undecided:
            return InstanceResult(name_onnx, name_vnnlib, "unknown", time.perf_counter() - start, domains, "",
                                  "timeout" if time.perf_counter() >= deadline else "not proven", None, proven, closest,
                                  closest_point)
    decided = "bab" if "bab" in methods else (methods[0] if methods else "")
    return InstanceResult(name_onnx, name_vnnlib, "unsat", time.perf_counter() - start, domains, decided, "", None,
                          proven, closest, closest_point)


def write_counterexample(result: InstanceResult, path) -> None:
    """The competition's format: ``sat`` then ``((X_0 v) ... (Y_0 v) ...)``."""
    lines = ["sat", "("]
    lines += [f"(X_{i} {v!r})" for i, v in enumerate(result.counterexample["x"])]
    lines += [f"(Y_{j} {v!r})" for j, v in enumerate(result.counterexample["y"])]
    lines.append(")")
    Path(path).write_text("\n".join(lines) + "\n", encoding="utf-8")


def read_instances(csv_path) -> list[tuple[Path, Path, float]]:
    """(onnx, vnnlib, timeout) rows of a VNN-COMP ``instances.csv``, paths relative to its folder."""
    folder = Path(csv_path).parent
    rows = []
    with open(csv_path, newline="", encoding="utf-8") as handle:
        for number, row in enumerate(csv.reader(handle), start=1):
            if not row or not "".join(row).strip():
                continue
            if len(row) != 3:
                raise gv.ModelError(f"{csv_path}, line {number}: expected onnx,vnnlib,timeout, got {row}")
            try:
                limit = float(row[2])
            except ValueError as error:
                raise gv.ModelError(f"{csv_path}, line {number}: timeout {row[2]!r} is not a number") from error
            rows.append((folder / row[0].strip(), folder / row[1].strip(), limit))
    return rows


def instance_task(onnx_path, vnnlib_path, limit: float, options: dict) -> InstanceResult:
    """One instance in a batch worker's process (graphver.batch): its verdict, or "error" with the reason
    for an input error (the other failures are the batch runner's to record)."""
    import torch

    torch.set_num_threads(1)
    try:
        return verify_instance(onnx_path, vnnlib_path, limit, progress=False, **options)
    except gv.GraphverError as error:
        return InstanceResult(str(onnx_path), str(vnnlib_path), "error", 0.0, message=str(error))


def run_instances(csv_path, out_path, timeout: float | None = None, progress: bool = True, on_result=None,
                  workers: int = 1, address: str | None = None, memory_mb: float | None = None,
                  **options) -> list[InstanceResult]:
    """Run every instance of ``csv_path``; append one row per instance to ``out_path`` (CSV). Instances
    already in ``out_path`` are skipped (resume); ``timeout`` overrides the file's per-instance limits.
    With ``workers`` > 1 (or an ``address``) the instances run on Ray, each in its own process
    (graphver.batch): rows are written as instances finish, a crashed instance is retried once, then
    recorded as "error" with the reason, like one that exceeds ``memory_mb``."""
    instances = read_instances(csv_path)
    out_path = Path(out_path)
    done = set()
    if out_path.exists():
        with open(out_path, newline="", encoding="utf-8") as handle:
            done = {(r["onnx"], r["vnnlib"]) for r in csv.DictReader(handle)}
    results = []
    new_file = not out_path.exists() or out_path.stat().st_size == 0
    with open(out_path, "a", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=RESULT_FIELDS)
        if new_file:
            writer.writeheader()
        todo = [(o, v, timeout if timeout is not None else limit) for o, v, limit in instances
                if (str(o), str(v)) not in done]
        if workers > 1 or address is not None:
            from graphver.batch import Task, run_tasks

            def record(task_result):
                onnx_path, vnnlib_path = task_result.key
                result = task_result.value if task_result.ok else InstanceResult(
                    str(onnx_path), str(vnnlib_path), "error", task_result.seconds, message=task_result.error)
                writer.writerow(result.row())
                handle.flush()
                results.append(result)
                if on_result is not None:
                    on_result(result)

            tasks = [Task((str(o), str(v)), instance_task, (o, v, limit, options), limit) for o, v, limit in todo]
            try:
                run_tasks(tasks, workers, address, memory_mb, on_result=record)
            except KeyboardInterrupt:  # the rows written so far stay; the rest reruns on resume
                pass
            return results
        for onnx_path, vnnlib_path, limit in todo:
            try:
                result = verify_instance(onnx_path, vnnlib_path, limit, progress=False, **options)
            except gv.GraphverError as error:
                result = InstanceResult(str(onnx_path), str(vnnlib_path), "error", 0.0, message=str(error))
            if result.message == "interrupted":  # Ctrl-C: stop here; this instance reruns on resume
                break
            writer.writerow(result.row())
            handle.flush()
            results.append(result)
            if on_result is not None:
                on_result(result)
    return results


__all__ = ["InstanceResult", "read_instances", "run_instances", "verify_instance", "write_counterexample"]
