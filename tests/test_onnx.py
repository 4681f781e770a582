"""ONNX import against onnxruntime (one small generated model per op), VNN-LIB parsing (including malformed
files), and VNN-COMP decisions on the ML4ACOPF 14-bus instances (skipped when ../shared is absent)."""

from __future__ import annotations

import csv
import re
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

onnx = pytest.importorskip("onnx")
onnxruntime = pytest.importorskip("onnxruntime")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

import graphver as gv  # noqa: E402
from graphver import cli  # noqa: E402
from graphver.io.onnx import import_onnx  # noqa: E402
from graphver.io.vnncomp import inside_box, read_instances, run_instances, unsafe, verify_instance  # noqa: E402
from graphver.io.vnnlib import VnnlibError, parse_vnnlib, read_vnnlib  # noqa: E402

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "ml4acopf"
MODEL = DATA / "onnx" / "14_ieee_ml4acopf.onnx"
needs_data = pytest.mark.skipif(not MODEL.is_file(), reason="../shared/data/ml4acopf is not present")


def save_model(tmp_path, nodes, n_in, out_shape, initializers=(), dtype=TensorProto.DOUBLE, name="m"):
    graph = helper.make_graph(nodes, name, [helper.make_tensor_value_info("x", dtype, [1, n_in])],
                              [helper.make_tensor_value_info("y", dtype, list(out_shape))], list(initializers))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)])
    model.ir_version = 7
    path = tmp_path / f"{name}.onnx"
    onnx.save(model, str(path))
    return path


def const(name, value):
    return numpy_helper.from_array(np.asarray(value), name)


def agree(path, low=-1.0, high=1.0, n=16, rtol=1e-9, atol=1e-12, seed=0):
    network = import_onnx(path)
    rng = np.random.default_rng(seed)
    points = low + (high - low) * rng.random((n, network.n_inputs))
    if network.input_dtype == np.float32:
        points = points.astype(np.float32).astype(np.float64)
    ours = network.evaluate(points)
    theirs = network.run_onnxruntime(points)
    np.testing.assert_allclose(ours, theirs, rtol=rtol, atol=atol)
    return network


RNG = np.random.default_rng(5)
W = RNG.normal(size=(4, 3))
B = RNG.normal(size=3)
C = RNG.normal(size=(2, 4))

# op -> (nodes, n inputs, output shape, initializers, input range)
CASES = {
    "Gemm": ([helper.make_node("Gemm", ["x", "W", "B"], ["y"], transB=1, alpha=0.5, beta=2.0)], 4, [1, 3],
             [const("W", W.T), const("B", B)], (-1, 1)),
    "MatMul_right": ([helper.make_node("MatMul", ["x", "W"], ["y"])], 4, [1, 3], [const("W", W)], (-1, 1)),
    "MatMul_left": ([helper.make_node("Transpose", ["x"], ["xt"], perm=[1, 0]),
                     helper.make_node("MatMul", ["C", "xt"], ["z"]),
                     helper.make_node("Transpose", ["z"], ["y"], perm=[1, 0])], 4, [1, 2], [const("C", C)], (-1, 1)),
    "Add_Sub_Neg_broadcast": ([helper.make_node("Add", ["x", "B4"], ["a"]), helper.make_node("Sub", ["a", "x"], ["b"]),
                               helper.make_node("Sub", ["B4", "x"], ["c"]), helper.make_node("Neg", ["c"], ["d"]),
                               helper.make_node("Add", ["b", "d"], ["y"])], 4, [1, 4],
                              [const("B4", RNG.normal(size=4))], (-1, 1)),
    "Mul_Div": ([helper.make_node("Mul", ["x", "x"], ["a"]), helper.make_node("Mul", ["a", "K"], ["b"]),
                 helper.make_node("Div", ["b", "K"], ["c"]), helper.make_node("Div", ["K", "x"], ["d"]),
                 helper.make_node("Div", ["c", "x"], ["e"]), helper.make_node("Add", ["d", "e"], ["y"])], 3, [1, 3],
                [const("K", np.array([0.3, -2.0, 7.0]))], (0.5, 2)),
    "Pow": ([helper.make_node("Pow", ["x", "two"], ["a"]), helper.make_node("Pow", ["x", "three"], ["b"]),
             helper.make_node("Pow", ["x", "half"], ["c"]), helper.make_node("Pow", ["x", "p"], ["d"]),
             helper.make_node("Concat", ["a", "b", "c", "d"], ["y"], axis=1)], 2, [1, 8],
            [const("two", np.array(2.0)), const("three", np.array(3.0)), const("half", np.array(0.5)),
             const("p", np.array(1.7))], (0.2, 2)),
    "activations": ([helper.make_node(op, ["x"], [op]) for op in ("Relu", "Sigmoid", "Sin", "Cos", "Tanh", "Exp", "Abs")]
                    + [helper.make_node("Concat", ["Relu", "Sigmoid", "Sin", "Cos", "Tanh", "Exp", "Abs"], ["y"], axis=1)],
                    3, [1, 21], [], (-2, 2)),
    "Log_Sqrt": ([helper.make_node("Log", ["x"], ["a"]), helper.make_node("Sqrt", ["x"], ["b"]),
                  helper.make_node("Concat", ["a", "b"], ["y"], axis=1)], 3, [1, 6], [], (0.1, 3)),
    "index_ops": ([helper.make_node("Slice", ["x", "s0", "s1", "ax", "st"], ["a"]),
                   helper.make_node("Gather", ["x", "idx"], ["b"], axis=1),
                   helper.make_node("Reshape", ["x", "shape"], ["c"]),
                   helper.make_node("Flatten", ["c"], ["d"], axis=1),
                   helper.make_node("Unsqueeze", ["a", "ax0"], ["e"]),
                   helper.make_node("Squeeze", ["e", "ax0"], ["f"]),
                   helper.make_node("Concat", ["f", "b", "d"], ["y"], axis=1)], 6, [1, 13],
                  [const("s0", np.array([1])), const("s1", np.array([np.iinfo(np.int64).max])), const("ax", np.array([1])),
                   const("st", np.array([2])), const("idx", np.array([5, 0, 0, 3])), const("shape", np.array([1, 2, 3])),
                   const("ax0", np.array([0]))], (-1, 1)),
    "constant_folding_Where_Expand": (
        [helper.make_node("ConstantOfShape", ["shp"], ["ones"], value=helper.make_tensor("v", TensorProto.INT64, [1], [1])),
         helper.make_node("Mul", ["ones", "minus"], ["neg"]),
         helper.make_node("Equal", ["target", "neg"], ["eq"]),
         helper.make_node("Where", ["eq", "ones", "target"], ["shape"]),
         helper.make_node("Expand", ["row", "shape"], ["wide"]),
         helper.make_node("Constant", [], ["mask"], value=numpy_helper.from_array(np.array([[True, False, True]]))),
         helper.make_node("Where", ["mask", "x", "wide"], ["w"]),
         helper.make_node("Mul", ["w", "wide"], ["y"])], 3, [1, 3],
        [const("shp", np.array([2])), const("minus", np.array(-1)), const("target", np.array([1, -1])),
         const("row", np.array([0.5, -1.5, 2.0]))], (-1, 1)),
    "ReduceSum": ([helper.make_node("ReduceSum", ["x2", "axes"], ["y"], keepdims=1),
                   helper.make_node("Reshape", ["x", "shape"], ["x2"])], 6, [1, 1, 3],
                  [const("axes", np.array([1])), const("shape", np.array([1, 2, 3]))], (-1, 1)),
}
CASES["ReduceSum"] = (list(reversed(CASES["ReduceSum"][0])), *CASES["ReduceSum"][1:])


@pytest.mark.parametrize("name", sorted(CASES))
def test_import_matches_onnxruntime_in_float64(tmp_path, name):
    nodes, n_in, out_shape, inits, (low, high) = CASES[name]
    agree(save_model(tmp_path, nodes, n_in, out_shape, inits, name=name), low, high)


def test_float32_model_agrees_within_float32_rounding(tmp_path):
    inits = [numpy_helper.from_array(W.T.astype(np.float32), "W"), numpy_helper.from_array(B.astype(np.float32), "B")]
    nodes = [helper.make_node("Gemm", ["x", "W", "B"], ["h"], transB=1), helper.make_node("Sigmoid", ["h"], ["s"]),
             helper.make_node("Erf", ["s"], ["y"])]
    path = save_model(tmp_path, nodes, 4, [1, 3], inits, dtype=TensorProto.FLOAT)
    agree(path, rtol=1e-5, atol=1e-6)


def test_unsupported_op_and_broken_file_give_clear_errors(tmp_path):
    path = save_model(tmp_path, [helper.make_node("Softmax", ["x"], ["y"], name="probabilities")], 3, [1, 3])
    with pytest.raises(gv.UnsupportedOpError, match=r"unsupported ONNX op 'Softmax' \(node probabilities\)"):
        import_onnx(path)
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"\x08\x07 this is not protobuf")
    with pytest.raises(gv.ModelError, match="not a readable ONNX model"):
        import_onnx(broken)
    with pytest.raises(gv.ModelError, match="no such ONNX file"):
        import_onnx(tmp_path / "missing.onnx")
    both = save_model(tmp_path, [helper.make_node("Mul", ["x", "x"], ["a"]), helper.make_node("MatMul", ["a", "x2"], ["y"]),
                                 helper.make_node("Transpose", ["x"], ["x2"], perm=[1, 0])], 3, [1, 1], name="late")
    with pytest.raises(gv.ModelError, match="not topologically sorted"):
        import_onnx(both)


def test_pow_exponents_zero_and_huge(tmp_path):
    """x**0 is the constant 1; an integer exponent beyond 2**31 - 1 is a clear error, not a crash in torch."""
    zero = save_model(tmp_path, [helper.make_node("Pow", ["x", "zero"], ["y"])], 2, [1, 2],
                      [const("zero", np.array(0.0))], name="zero")
    agree(zero, -2.0, 2.0)
    huge = save_model(tmp_path, [helper.make_node("Pow", ["x", "big"], ["y"], name="power")], 2, [1, 2],
                      [const("big", np.array(4e9))], name="huge")
    with pytest.raises(gv.UnsupportedOpError, match=r"node power \(Pow\): Pow with the integer exponent 4e\+09"):
        import_onnx(huge)


# --- VNN-LIB ---------------------------------------------------------------------------------------
HEADER = "(declare-const X_0 Real)\n(declare-const X_1 Real)\n(declare-const Y_0 Real)\n(declare-const Y_1 Real)\n"
BOX = "(assert (<= X_0 1.5))\n(assert (>= X_0 -1e-1))\n(assert (>= X_1 0))\n(assert (<= X_1 2))\n"


def test_vnnlib_box_and_dnf_of_linear_rows():
    text = HEADER + "; a comment (with parentheses\n" + BOX + """
(assert (or (and (<= Y_0 Y_1) (> (+ Y_0 (* 2 Y_1)) 3.5))
            (and (>= (- Y_1 Y_0) 0.25))))"""
    spec = parse_vnnlib(text)
    (lower, upper), = spec.boxes
    assert lower.tolist() == [-0.1, 0.0] and upper.tolist() == [1.5, 2.0]
    assert len(spec.disjuncts) == 2
    first, second = spec.disjuncts
    np.testing.assert_allclose(first.coef, [[1, -1], [-1, -2]])
    np.testing.assert_allclose(first.offset, [0, 3.5])
    assert first.strict.tolist() == [False, True]
    np.testing.assert_allclose(second.coef, [[1, -1]])
    np.testing.assert_allclose(second.offset, [0.25])
    assert unsafe(spec, np.array([0.0, 2.0]))[0] and not unsafe(spec, np.array([1.0, 0.5]))[0]


def test_vnnlib_and_of_or_distributes():
    spec = parse_vnnlib(HEADER + BOX + "(assert (or (<= Y_0 0) (<= Y_1 0)))\n(assert (or (>= Y_0 5) (>= Y_1 5)))")
    assert len(spec.disjuncts) == 4 and all(c.coef.shape[0] == 2 for c in spec.disjuncts)


@pytest.mark.parametrize("text, message", [
    (HEADER + BOX + "(assert (<= Y_0 1)", r"line 9: '\(' is never closed"),
    (HEADER + BOX + "(assert (<= Y_0 1)))", r"line 9: unbalanced '\)'"),
    (HEADER + BOX + "(assert (<= Y_7 1))", "line 9: Y_7 is used but never declared"),
    (HEADER + BOX + "(assert (== Y_0 1))", "line 9: unknown formula head '=='"),
    (HEADER + BOX + "(assert (<= (* Y_0 Y_1) 1))", "line 9: product of two variables"),
    (HEADER + BOX + "(assert (<= Y_0 abc))", "line 9: expected a number or a declared variable, got 'abc'"),
    (HEADER + "(assert (<= X_0 1))\n(assert (<= Y_0 1))", "no finite lower and upper bound for X_0, X_1"),
    (HEADER + BOX + "(assert (<= X_0 -5))\n(assert (<= Y_0 1))", "empty input box: X_0"),
    (HEADER + BOX, "no output property"),
    (HEADER + BOX + "(declare-const Z_0 Real)", "line 9: Z_0: variables must be named X_i"),
    (HEADER + BOX + "(check-sat)", "line 9: unknown command 'check-sat'"),
])
def test_malformed_vnnlib_names_the_line(text, message):
    with pytest.raises(VnnlibError, match=message):
        parse_vnnlib(text, "prop.vnnlib")


def test_large_vnnlib_parses_quickly(tmp_path):
    import time

    lines = [f"(declare-const X_{i} Real)" for i in range(200)] + [f"(declare-const Y_{i} Real)" for i in range(50)]
    lines += [f"(assert (<= X_{i} 1))\n(assert (>= X_{i} -1))" for i in range(200)]
    lines += ["(assert (or"] + [f"(and (>= Y_{i % 50} {i * 1e-4}))" for i in range(100_000)] + ["))"]
    path = tmp_path / "big.vnnlib"
    path.write_text("\n".join(lines))
    start = time.perf_counter()
    spec = read_vnnlib(path)
    assert len(spec.disjuncts) == 100_000
    assert time.perf_counter() - start < 60  # generous: seconds on this machine; a hang or quadratic parse fails


def test_inside_box_keeps_float32_points_in_the_box():
    lower, upper = np.array([0.1, -0.3]), np.array([0.1 + 1e-7, -0.3 + 1e-7])
    x = inside_box(np.array([0.1, -0.3]), lower, upper, np.float32)
    assert x.dtype == np.float32 and ((x >= lower) & (x <= upper)).all()
    assert float(np.float32(-0.3)) < lower[1]  # plain rounding to float32 would have left the box


# --- ML4ACOPF instances -----------------------------------------------------------------------------
@needs_data
def test_ml4acopf_import_matches_onnxruntime():
    text = (DATA / "vnnlib" / "14_ieee_prop2.vnnlib").read_text()
    spec = parse_vnnlib(text)
    lower, upper = spec.boxes[0]
    agree(MODEL, lower, upper, n=8, rtol=1e-4, atol=2e-5)  # float32 network: float32 rounding


@needs_data
@pytest.mark.parametrize("prop", [2, 5, 9])
def test_ml4acopf_instances_verified_and_not_contradicted_by_sampling(prop):
    vnnlib = DATA / "vnnlib" / f"14_ieee_prop{prop}.vnnlib"
    result = verify_instance(MODEL, vnnlib, timeout=120)
    assert result.verdict == "unsat", result
    spec = read_vnnlib(vnnlib)
    network = import_onnx(MODEL)
    lower, upper = spec.boxes[0]
    points = lower + (upper - lower) * np.random.default_rng(prop).random((2000, network.n_inputs))
    outputs = network.evaluate(points)
    assert not any(unsafe(spec, y)[0] for y in outputs)


@needs_data
def test_ml4acopf_false_property_gives_a_reproduced_counterexample(tmp_path):
    # prop2 with its threshold lowered far below the flows the network produces: every input is unsafe
    text = (DATA / "vnnlib" / "14_ieee_prop2.vnnlib").read_text()
    text = re.sub(r"\(assert \(>= Y_130 [^)]*\)\)", "(assert (>= Y_130 -100.0))", text)
    prop = tmp_path / "false.vnnlib"
    prop.write_text(text)
    out = tmp_path / "result.txt"
    runner = CliRunner()
    result = runner.invoke(cli.main, ["vnncomp", str(MODEL), str(prop), "--out", str(out)])
    assert result.exit_code == 1, result.output  # sat: a counterexample (exit 1, like verify's falsified)
    assert result.output.splitlines()[0] == "sat"
    lines = out.read_text().splitlines()
    assert lines[0] == "sat" and lines[1] == "("
    x = np.array([float(line.split()[1].rstrip(")")) for line in lines if line.startswith("(X_")])
    spec = read_vnnlib(prop)
    lower, upper = spec.boxes[0]
    assert x.shape == (22,) and (x >= lower).all() and (x <= upper).all()
    y = import_onnx(MODEL).run_onnxruntime(x[None])[0]
    assert unsafe(spec, y)[0]


@needs_data
def test_benchmark_runner_writes_rows_and_resumes(tmp_path):
    instances = tmp_path / "instances.csv"
    rows = [f"{MODEL},{DATA / 'vnnlib' / f'14_ieee_prop{p}.vnnlib'},600" for p in (2, 6)]
    instances.write_text("\n".join(rows) + "\n")
    assert len(read_instances(instances)) == 2
    out = tmp_path / "results.csv"
    first = run_instances(instances, out, timeout=120)
    assert [r.verdict for r in first] == ["unsat", "unsat"]
    again = run_instances(instances, out, timeout=120)
    assert again == []  # both already recorded: resumed without rerunning
    with open(out) as handle:
        table = list(csv.DictReader(handle))
    assert [r["verdict"] for r in table] == ["unsat", "unsat"] and all(float(r["seconds"]) > 0 for r in table)
    assert all(0 < float(r["proven_margin"]) <= float(r["closest_margin"]) for r in table)  # proofs: margin > 0
    result = CliRunner().invoke(cli.main, ["vnncomp", "--instances", str(instances), "--out", str(out)])
    assert result.exit_code == 0 and "already in" in result.output


def test_cli_usage_errors(tmp_path):
    runner = CliRunner()
    assert runner.invoke(cli.main, ["vnncomp"]).exit_code == 2
    assert runner.invoke(cli.main, ["vnncomp", str(tmp_path / "a.onnx"), str(tmp_path / "b.vnnlib")]).exit_code == 2


def test_cli_device_option(tmp_path):
    import torch

    runner = CliRunner()
    bad = runner.invoke(cli.main, ["vnncomp", "--device", "tpu", str(tmp_path / "a.onnx"), str(tmp_path / "b.vnnlib")])
    assert bad.exit_code == 2 and "use cpu, cuda or cuda:N" in bad.output
    if not torch.cuda.is_available():
        missing = runner.invoke(cli.main, ["vnncomp", "--device", "cuda", str(tmp_path / "a.onnx"),
                                           str(tmp_path / "b.vnnlib")])
        assert missing.exit_code == 2 and "CUDA is not available" in missing.output


@needs_data
def test_cli_device_cpu_decides_an_instance():
    prop = DATA / "vnnlib" / "14_ieee_prop2.vnnlib"
    result = CliRunner().invoke(cli.main, ["vnncomp", "--device", "cpu", "--quiet", str(MODEL), str(prop)])
    assert result.exit_code == 0 and result.output.splitlines()[0] == "unsat"


def test_dense_pass_agrees_with_the_plan_pass_and_is_sound(tmp_path):
    """Networks with dense layers are bounded with dense coefficient matrices (graphver/bounds/dense.py):
    the same bounds as the plan-based pass up to rounding, and below every sampled output."""
    import sys

    import torch

    from graphver.bab.bounding import bound_batch
    from graphver.bounds.dense import prefers_dense
    from graphver.bounds.ibp import NodeSplits
    from graphver.options import BoundOptions

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
    from vnncomp import synthetic_network

    path = tmp_path / "dense.onnx"
    synthetic_network(path, n_bus=6, n_branch=9, n_gen=2, hidden=[40, 40], seed=3)
    network = import_onnx(path)
    assert prefers_dense(network.tape)
    centre = np.random.default_rng(2).uniform(0.1, 1.0, network.n_inputs)
    lower = torch.as_tensor(np.stack([centre * 0.9, centre * 0.99]))
    upper = torch.as_tensor(np.stack([centre * 1.1, centre * 1.01]))
    empty = torch.zeros(2, 0, dtype=torch.float64)

    def bounds(dense):
        return bound_batch(network.tape, lower, upper, NodeSplits(torch.zeros(0, dtype=torch.long), empty, empty.clone()),
                           "crown", BoundOptions(backward="dense" if dense else "sparse")).rows_lower

    plan, dense = bounds(False), bounds(True)
    assert torch.allclose(plan, dense, rtol=1e-10, atol=1e-12)
    for b in range(2):
        x = lower[b] + (upper[b] - lower[b]) * torch.rand(3000, network.n_inputs, dtype=torch.float64)
        outputs = torch.as_tensor(network.evaluate(x.numpy()))
        assert bool((outputs >= dense[b]).all())


@needs_data
def test_interrupted_run_records_nothing_for_the_instance_and_stops(tmp_path, monkeypatch):
    from graphver.bab import engine as engine_module

    def interrupted(self, *args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(engine_module.Engine, "quick_proof", interrupted)
    instances = tmp_path / "instances.csv"
    instances.write_text("\n".join(f"{MODEL},{DATA / 'vnnlib' / f'14_ieee_prop{p}.vnnlib'},600" for p in (2, 6)) + "\n")
    out = tmp_path / "results.csv"
    assert run_instances(instances, out, timeout=60) == []
    assert out.read_text().strip() == ",".join(["onnx", "vnnlib", "verdict", "seconds", "domains", "decided_by", "message",
                                                "proven_margin", "closest_margin"])  # the header only
