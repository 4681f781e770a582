"""ML4ACOPF 2024 (the "linear" variants: piecewise-linear sigmoid, sin and cos with batched MatMuls of 1-D
constants and range reduction by Div and Floor): every network imports and agrees with onnxruntime on random
points of its VNN-LIB box; numpy's MatMul semantics on small generated models. The networks are skipped when
../shared/data/ml4acopf_2024 is absent."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
onnxruntime = pytest.importorskip("onnxruntime")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from graphver.io.onnx import import_onnx  # noqa: E402
from graphver.io.vnncomp import inside_box  # noqa: E402
from graphver.io.vnnlib import read_vnnlib  # noqa: E402

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "ml4acopf_2024"
NETWORKS = sorted(p.name for p in (DATA / "onnx").glob("*.onnx")) if (DATA / "onnx").is_dir() else []
needs_data = pytest.mark.skipif(not NETWORKS, reason="../shared/data/ml4acopf_2024 is not present")


def first_property(network: str) -> Path:
    """The first VNN-LIB file instances.csv pairs with a network."""
    with open(DATA / "instances.csv") as handle:
        for row in csv.reader(handle):
            if row and Path(row[0]).name == network:
                return DATA / row[1]
    raise AssertionError(f"no instance of {network}")


def in_double(model):
    """The same graph with every float32 tensor (initializers, Constant nodes, inputs, outputs, value infos)
    in float64: float32 constants convert exactly, so onnxruntime then evaluates the same real network as
    graphver's float64 tape, up to float64 rounding."""
    model = onnx.ModelProto.FromString(model.SerializeToString())
    graph = model.graph
    for tensor in graph.initializer:
        if tensor.data_type == TensorProto.FLOAT:
            tensor.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(tensor).astype(np.float64), tensor.name))
    for node in graph.node:
        for attribute in node.attribute:
            if attribute.type == onnx.AttributeProto.TENSOR and attribute.t.data_type == TensorProto.FLOAT:
                attribute.t.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(attribute.t).astype(np.float64)))
            if node.op_type == "Cast" and attribute.name == "to" and attribute.i == TensorProto.FLOAT:
                attribute.i = TensorProto.DOUBLE
    for info in list(graph.input) + list(graph.output) + list(graph.value_info):
        if info.type.tensor_type.elem_type == TensorProto.FLOAT:
            info.type.tensor_type.elem_type = TensorProto.DOUBLE
    return model


def box_points(network, path: Path, count: int, seed: int = 0) -> np.ndarray:
    """Random float32 points inside the property's first input box (as float64)."""
    spec = read_vnnlib(path, network.n_inputs, network.n_outputs)
    lower, upper = spec.boxes[0]
    rng = np.random.default_rng(seed)
    raw = lower + (upper - lower) * rng.random((count, network.n_inputs))
    return np.stack([inside_box(p, lower, upper, np.float32) for p in raw]).astype(np.float64)


@needs_data
@pytest.mark.parametrize("name", NETWORKS)
def test_network_imports_and_agrees_with_onnxruntime(name):
    """float64 onnxruntime on the float64 copy agrees to float64 rounding (the import is the network, op for
    op); the float32 original agrees within float32 rounding of its sums (outputs are residuals of terms up to
    1e4, so the tolerance is relative to the largest output)."""
    path = DATA / "onnx" / name
    network = import_onnx(path)
    points = box_points(network, first_property(name), 24)
    ours = network.evaluate(points)

    session = onnxruntime.InferenceSession(in_double(onnx.load(str(path))).SerializeToString(),
                                           providers=["CPUExecutionProvider"])
    double = np.stack([session.run(None, {network.input_name: p.reshape(network.input_shape)})[0].reshape(-1)
                       for p in points])
    scale = float(np.abs(double).max())
    # a Floor whose argument lies within rounding of an integer could jump: compare where neither run is there
    close = np.isclose(ours, double, rtol=1e-9, atol=1e-11 * scale)
    assert close.mean() > 0.999, f"{name}: {int((~close).sum())} of {close.size} outputs differ in float64"

    theirs = network.run_onnxruntime(points)
    np.testing.assert_allclose(ours, theirs, rtol=1e-3, atol=1e-5 * scale)


@needs_data
def test_residual_networks_use_floor_on_input_dependent_values():
    """The residual variants reduce angles with Floor: the tape holds floor instructions."""
    network = import_onnx(DATA / "onnx" / "14_ieee_ml4acopf-linear-residual.onnx")
    ops = {i.op for i in network.tape.instructions if i.kind != "linear"}
    assert {"floor", "relu", "mul"} <= ops


# --- MatMul with numpy's semantics on generated models -------------------------------------------------------
def save(tmp_path, nodes, in_shape, out_shape, initializers, name):
    graph = helper.make_graph(nodes, name, [helper.make_tensor_value_info("x", TensorProto.DOUBLE, list(in_shape))],
                              [helper.make_tensor_value_info("y", TensorProto.DOUBLE, list(out_shape))],
                              [numpy_helper.from_array(np.asarray(v, dtype=np.float64), k) for k, v in initializers.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)])
    model.ir_version = 7
    path = tmp_path / f"{name}.onnx"
    onnx.save(model, str(path))
    return path


RNG = np.random.default_rng(3)
# name -> (x shape, constant shape, constant on the left)
MATMULS = {
    "3d_by_1d": ((1, 5, 4), (4,), False),
    "1d_by_2d": ((4,), (4, 3), False),
    "1d_left_by_2d": ((3, 2), (3,), True),
    "batched_by_2d": ((2, 3, 4), (4, 5), False),
    "batched_by_batched": ((2, 3, 4), (2, 4, 2), False),
    "broadcast_batch": ((3, 4), (2, 4, 2), False),
    "constant_batched_left": ((2, 4, 3), (2, 5, 4), True),
    "constant_1d_left": ((2, 4, 3), (4,), True),
    "zeros_in_weights": ((1, 6), (6, 3), False),
}


@pytest.mark.parametrize("name", sorted(MATMULS))
def test_matmul_follows_numpy(tmp_path, name):
    x_shape, c_shape, left = MATMULS[name]
    weight = RNG.normal(size=c_shape)
    if name == "zeros_in_weights":
        weight[1:4] = 0.0
    args = ["c", "x"] if left else ["x", "c"]
    out_shape = np.matmul(*(np.zeros(s) for s in ((c_shape, x_shape) if left else (x_shape, c_shape)))).shape
    path = save(tmp_path, [helper.make_node("MatMul", args, ["y"])], x_shape, out_shape, {"c": weight}, name)
    network = import_onnx(path)
    assert network.output_shape == out_shape
    rng = np.random.default_rng(1)
    points = rng.normal(size=(5, network.n_inputs))
    expected = np.stack([(np.matmul(weight, p.reshape(x_shape)) if left else np.matmul(p.reshape(x_shape), weight)).reshape(-1)
                         for p in points])
    np.testing.assert_allclose(network.evaluate(points), expected, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(network.run_onnxruntime(points), expected, rtol=1e-12, atol=1e-12)


def test_floor_ceil_round_import(tmp_path):
    """Floor, Ceil and Round (ties to even) of an input-dependent value, against onnxruntime, at ties too."""
    nodes = [helper.make_node("Div", ["x", "k"], ["d"]), helper.make_node("Floor", ["d"], ["f"]),
             helper.make_node("Ceil", ["d"], ["c"]), helper.make_node("Round", ["d"], ["r"]),
             helper.make_node("Concat", ["f", "c", "r"], ["y"], axis=1)]
    path = save(tmp_path, nodes, (1, 4), (1, 12), {"k": np.array(0.5)}, "steps")
    network = import_onnx(path)
    points = np.array([[0.25, 0.75, -0.25, -1.25], [1.0, -1.0, 0.1, 2.3], [-0.75, 0.0, 1.25, 7.75]])
    np.testing.assert_array_equal(network.evaluate(points), network.run_onnxruntime(points))
    ops = {i.op for i in network.tape.instructions if i.kind != "linear"}
    assert ops == {"floor", "ceil", "round"}
