"""ONNX import: an ONNX graph becomes tape instructions directly, at tensor level (``graphver.io.builder``).

Every ONNX value is either a constant (a numpy array: initializers, Constant nodes, and every node whose
inputs are all constant, folded with numpy) or symbolic (a numpy array of node indices). Shape and
indexing ops (Reshape, Flatten, Squeeze, Unsqueeze, Transpose, Slice, Gather, Concat, Expand, Where with a
constant condition) move indices and emit nothing; arithmetic emits one instruction per op. MatMul follows
numpy (N-D operands, broadcast batch dimensions, a 1-D operand on either side) with one constant operand, as
one linear instruction; Floor, Ceil and Round become the step ops of ``graphver.ops.step``. The model's
floats (float32 here) are the exact real numbers the network denotes; bounds are certified for the
network evaluated in exact arithmetic on them, which agrees with onnxruntime's float32 evaluation within
float32 rounding.

    network = import_onnx("model.onnx")
    network.tape          # inputs: the flattened graph input; outputs: the flattened graph output
    network.evaluate(x)   # float64 evaluation of the tape, [B, n_outputs]
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from graphver.errors import ModelError, UnsupportedOpError
from graphver.ops.power import MAX_INT_EXPONENT
from graphver.tape.builder import TapeBuilder, computed_weight

UNARY = {"Relu": "relu", "Sigmoid": "sigmoid", "Sin": "sin", "Cos": "cos", "Tanh": "tanh", "Exp": "exp",
         "Log": "log", "Sqrt": "sqrt", "Abs": "abs", "Atan": "atan", "Tan": "tan", "Erf": "erf", "Floor": "floor",
         "Ceil": "ceil", "Round": "round"}
SUPPORTED = sorted(set(UNARY) | {"Constant", "ConstantOfShape", "Identity", "Mul", "Add", "Sub", "Neg", "Div", "Pow",
                                 "MatMul", "Gemm", "Transpose", "Slice", "Gather", "Concat", "Reshape", "Flatten",
                                 "Unsqueeze", "Squeeze", "Expand", "Equal", "Where", "ReduceSum", "Shape",
                                 "Cast"})


class Sym:
    """A symbolic tensor: global node indices with the tensor's shape."""

    def __init__(self, nodes: np.ndarray):
        self.nodes = np.asarray(nodes, dtype=np.int64)

    @property
    def shape(self):
        return self.nodes.shape


@dataclass
class OnnxNetwork:
    """An imported ONNX graph: its ``tape`` (inputs: the flattened graph input, outputs: the flattened
    graph output), the names and shapes of both, and the file it came from."""

    tape: object
    input_name: str
    input_shape: tuple
    output_name: str
    output_shape: tuple
    path: str
    input_dtype: np.dtype
    builder: TapeBuilder
    output_nodes: np.ndarray

    @property
    def n_inputs(self) -> int:
        return int(np.prod(self.input_shape))

    @property
    def n_outputs(self) -> int:
        return int(np.prod(self.output_shape))

    def evaluate(self, points) -> np.ndarray:
        """The tape's float64 outputs at points [B, n_inputs]."""
        from graphver.tape.evaluate import evaluate

        with torch.no_grad():
            return evaluate(self.tape, torch.as_tensor(np.asarray(points, dtype=np.float64))).numpy()

    def run_onnxruntime(self, points) -> np.ndarray:
        """onnxruntime's outputs at points [B, n_inputs] (one run per point, in the model's input dtype)."""
        import onnxruntime

        session = onnxruntime.InferenceSession(self.path, providers=["CPUExecutionProvider"])
        out = []
        for point in np.atleast_2d(points):
            feed = {self.input_name: np.asarray(point, dtype=self.input_dtype).reshape(self.input_shape)}
            out.append(np.asarray(session.run(None, feed)[0], dtype=np.float64).reshape(-1))
        return np.stack(out)


def attributes(node) -> dict:
    from onnx import helper

    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def import_onnx(path) -> OnnxNetwork:
    """Read an ONNX file with one input and one output into an ``OnnxNetwork``."""
    try:
        import onnx
        from onnx import numpy_helper
    except ImportError as error:  # pragma: no cover - depends on the environment
        from graphver.errors import SolverUnavailableError

        raise SolverUnavailableError("ONNX import needs the onnx package: pip install onnx") from error
    path = str(path)
    if not Path(path).is_file():
        raise ModelError(f"{path}: no such ONNX file")
    try:
        model = onnx.load(path)
    except Exception as error:  # onnx raises DecodeError and others for a damaged file
        raise ModelError(f"{path}: not a readable ONNX model ({type(error).__name__}: {error})") from error
    graph = model.graph
    initializers = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    inputs = [i for i in graph.input if i.name not in initializers]
    if len(inputs) != 1 or len(graph.output) != 1:
        raise UnsupportedOpError(f"{path}: graphver imports graphs with one input and one output "
                                 f"(found {len(inputs)} inputs, {len(graph.output)} outputs)")
    graph_input = inputs[0]
    dims = graph_input.type.tensor_type.shape.dim
    shape = tuple(d.dim_value if d.dim_value > 0 else 1 for d in dims)  # a free batch dimension is 1
    input_dtype = onnx.helper.tensor_dtype_to_np_dtype(graph_input.type.tensor_type.elem_type)
    builder = TapeBuilder([f"X_{i}" for i in range(int(np.prod(shape)))])
    values: dict[str, object] = dict(initializers)
    values[graph_input.name] = Sym(builder.inputs(shape))
    importer = Importer(builder, path)
    for node in graph.node:
        args = []
        for name in node.input:
            if name == "":
                args.append(None)
                continue
            if name not in values:
                raise ModelError(f"{path}: node {node.name or node.op_type!r} reads {name!r}, which no earlier node "
                                 "produces (the graph is not topologically sorted)")
            args.append(values[name])
        results = importer.run(node, args)
        for name, value in zip(node.output, results):
            values[name] = value
    out = values[graph.output[0].name]
    if not isinstance(out, Sym):  # a constant output still needs nodes
        out = Sym(builder.constant(np.asarray(out, dtype=np.float64), "output"))
    tape = builder.tape(out.nodes.reshape(-1))
    return OnnxNetwork(tape, graph_input.name, shape, graph.output[0].name, out.shape, path, input_dtype, builder,
                       out.nodes.reshape(-1))


class Importer:
    """The per-op rules; ``run(node, args)`` returns the node's output values."""

    def __init__(self, builder: TapeBuilder, path: str):
        self.b = builder
        self.path = path

    def fail(self, node, what: str):
        raise UnsupportedOpError(f"{self.path}: node {node.name or '?'} ({node.op_type}): {what}")

    def run(self, node, args) -> list:
        op = node.op_type
        attrs = attributes(node)
        if op not in SUPPORTED:
            raise UnsupportedOpError(f"{self.path}: unsupported ONNX op {op!r} (node {node.name or '?'}); "
                                     f"supported: {', '.join(SUPPORTED)}")
        if op == "Constant":
            return [self.constant_attribute(node, attrs)]
        if all(a is None or not isinstance(a, Sym) for a in args):
            return [self.fold(node, op, attrs, args)]
        method = getattr(self, "op_" + op, None)
        if method is None:
            self.fail(node, "not supported on values that depend on the input (only on constants)")
        return [method(node, attrs, *args)]

    # --- constants ---------------------------------------------------------------------------------
    def constant_attribute(self, node, attrs):
        from onnx import numpy_helper

        if "value" in attrs:
            return numpy_helper.to_array(attrs["value"])
        for key, dtype in (("value_float", np.float32), ("value_int", np.int64)):
            if key in attrs:
                return np.array(attrs[key], dtype=dtype)
        for key, dtype in (("value_floats", np.float32), ("value_ints", np.int64)):
            if key in attrs:
                return np.array(attrs[key], dtype=dtype)
        self.fail(node, f"Constant with attributes {sorted(attrs)}")

    def fold(self, node, op, attrs, args):
        """Evaluate an op on constants with numpy."""
        from onnx import numpy_helper

        a = args[0] if args else None
        if op == "ConstantOfShape":
            fill = numpy_helper.to_array(attrs["value"]).reshape(-1)[0] if "value" in attrs else np.float32(0)
            return np.full(tuple(int(v) for v in a), fill)
        if op == "Shape":
            return np.array(a.shape, dtype=np.int64)
        if op == "Cast":
            from onnx import helper

            return a.astype(helper.tensor_dtype_to_np_dtype(attrs["to"]))
        if op in UNARY:
            functions = {"Relu": lambda v: np.maximum(v, 0), "Sigmoid": lambda v: 1 / (1 + np.exp(-v)),
                         "Erf": _erf, "Tan": np.tan, "Atan": np.arctan}
            return functions.get(op, getattr(np, op.lower(), None))(a)
        simple = {"Mul": np.multiply, "Add": np.add, "Sub": np.subtract, "Neg": np.negative, "MatMul": np.matmul,
                  "Equal": np.equal, "Where": np.where, "Identity": lambda v: v}
        if op in simple:
            return simple[op](*args)
        if op == "Div":
            return np.floor_divide(*args) if np.issubdtype(np.asarray(args[0]).dtype, np.integer) else np.divide(*args)
        if op == "Pow":
            return np.power(args[0], args[1])
        if op == "Gemm":
            return self.gemm_constant(attrs, *args)
        # the index ops work on constants exactly as on index arrays
        return getattr(self, "op_" + op)(node, attrs, *args, constant=True)

    def gemm_constant(self, attrs, a, b, c=None):
        a = a.T if attrs.get("transA") else a
        b = b.T if attrs.get("transB") else b
        out = attrs.get("alpha", 1.0) * (a @ b)
        return out + attrs.get("beta", 1.0) * c if c is not None else out

    def nodes(self, value, label: str) -> np.ndarray:
        """Index array of a value (a constant gets nodes of its own)."""
        if isinstance(value, Sym):
            return value.nodes
        return self.b.constant(np.asarray(value, dtype=np.float64), label)

    # --- index ops (on Sym index arrays, or on constants with constant=True) -------------------------
    def _wrap(self, value, constant):
        return value if constant else Sym(value)

    def _data(self, value):
        return value.nodes if isinstance(value, Sym) else np.asarray(value)

    def op_Identity(self, node, attrs, x, constant=False):
        return x

    def op_Transpose(self, node, attrs, x, constant=False):
        return self._wrap(np.transpose(self._data(x), attrs.get("perm")), constant)

    def op_Reshape(self, node, attrs, x, shape, constant=False):
        data = self._data(x)
        target = [int(s) for s in np.asarray(shape).reshape(-1)]
        target = [data.shape[i] if s == 0 and not attrs.get("allowzero") else s for i, s in enumerate(target)]
        return self._wrap(data.reshape(target), constant)

    def op_Flatten(self, node, attrs, x, constant=False):
        data = self._data(x)
        axis = attrs.get("axis", 1) % (data.ndim or 1) if data.ndim else 0
        return self._wrap(data.reshape(int(np.prod(data.shape[:axis])), -1), constant)

    def op_Unsqueeze(self, node, attrs, x, axes=None, constant=False):
        data = self._data(x)
        axes = attrs.get("axes") if axes is None else [int(v) for v in np.asarray(axes).reshape(-1)]
        rank = data.ndim + len(axes)
        for axis in sorted(a % rank for a in axes):
            data = np.expand_dims(data, axis)
        return self._wrap(data, constant)

    def op_Squeeze(self, node, attrs, x, axes=None, constant=False):
        data = self._data(x)
        axes = attrs.get("axes") if axes is None else [int(v) for v in np.asarray(axes).reshape(-1)]
        data = np.squeeze(data) if axes is None else np.squeeze(data, axis=tuple(a % data.ndim for a in axes))
        return self._wrap(data, constant)

    def op_Slice(self, node, attrs, x, starts=None, ends=None, axes=None, steps=None, constant=False):
        data = self._data(x)
        if starts is None:  # opset < 10: attributes
            starts, ends, axes = attrs["starts"], attrs["ends"], attrs.get("axes")
        starts = [int(v) for v in np.asarray(starts).reshape(-1)]
        ends = [int(v) for v in np.asarray(ends).reshape(-1)]
        axes = list(range(len(starts))) if axes is None else [int(v) for v in np.asarray(axes).reshape(-1)]
        steps = [1] * len(starts) if steps is None else [int(v) for v in np.asarray(steps).reshape(-1)]
        index = [slice(None)] * data.ndim
        for start, end, axis, step in zip(starts, ends, axes, steps):
            size = data.shape[axis % data.ndim]
            end = max(min(end, size), -size - 1)  # INT64_MAX and friends mean "to the end"
            start = max(min(start, size), -size - 1)
            index[axis % data.ndim] = slice(start, end if end >= -size else None, step)
        return self._wrap(data[tuple(index)], constant)

    def op_Gather(self, node, attrs, x, indices, constant=False):
        if isinstance(indices, Sym):
            self.fail(node, "Gather with input-dependent indices")
        return self._wrap(np.take(self._data(x), np.asarray(indices, dtype=np.int64), axis=attrs.get("axis", 0)),
                          constant)

    def op_Concat(self, node, attrs, *parts, constant=False):
        axis = attrs["axis"]
        if constant:
            return np.concatenate([np.asarray(p) for p in parts], axis=axis)
        return Sym(np.concatenate([self.nodes(p, f"{node.name} constant part") for p in parts], axis=axis))

    def op_Expand(self, node, attrs, x, shape, constant=False):
        data = self._data(x)
        target = np.broadcast_shapes(data.shape, tuple(int(v) for v in np.asarray(shape).reshape(-1)))
        return self._wrap(np.broadcast_to(data, target).copy(), constant)

    def op_Where(self, node, attrs, condition, a, b, constant=False):
        if isinstance(condition, Sym):
            self.fail(node, "Where with an input-dependent condition")
        label = node.name or "where"
        return Sym(np.where(np.asarray(condition, dtype=bool), self.nodes(a, label), self.nodes(b, label)))

    # --- arithmetic ---------------------------------------------------------------------------------
    def affine(self, node, parts: list[tuple[object, np.ndarray]], bias, shape):
        """sum coef_k * x_k + bias, elementwise with broadcasting: parts are (Sym, coefficient array)."""
        count = int(np.prod(shape, dtype=np.int64))
        rows = np.arange(count, dtype=np.int64)
        terms = []
        for sym, coef in parts:
            cols = np.broadcast_to(sym.nodes, shape).reshape(-1)
            weights = np.broadcast_to(np.asarray(coef[0], dtype=np.float64), shape).reshape(-1)
            errors = None if coef[1] is None else np.broadcast_to(coef[1], shape).reshape(-1)
            terms.append((rows, cols, weights, errors))
        bias = np.broadcast_to(np.asarray(bias, dtype=np.float64), shape).reshape(-1)
        return Sym(self.b.linear(terms, bias, node.name or node.op_type, shape))

    def binary_shape(self, a, b):
        return np.broadcast_shapes(np.shape(self._data(a)), np.shape(self._data(b)))

    def op_Add(self, node, attrs, a, b):
        return self.add(node, a, b, 1.0)

    def op_Sub(self, node, attrs, a, b):
        return self.add(node, a, b, -1.0)

    def add(self, node, a, b, sign):
        shape = self.binary_shape(a, b)
        parts, bias = [], 0.0
        for value, s in ((a, 1.0), (b, sign)):
            if isinstance(value, Sym):
                parts.append((value, (np.array(s), None)))
            else:
                bias = bias + s * np.asarray(value, dtype=np.float64)
        return self.affine(node, parts, bias, shape)

    def op_Neg(self, node, attrs, a):
        return self.affine(node, [(a, (np.array(-1.0), None))], 0.0, a.shape)

    def op_Mul(self, node, attrs, a, b):
        shape = self.binary_shape(a, b)
        if isinstance(a, Sym) and isinstance(b, Sym):
            left, right = (np.broadcast_to(v.nodes, shape) for v in (a, b))
            return Sym(self.b.elementwise("binary", "mul", [left, right], node.name or "mul"))
        sym, coef = (a, b) if isinstance(a, Sym) else (b, a)
        return self.affine(node, [(sym, (np.asarray(coef, dtype=np.float64), None))], 0.0, shape)

    def op_Div(self, node, attrs, a, b):
        shape = self.binary_shape(a, b)
        if not isinstance(b, Sym):
            weight, error = computed_weight(1.0 / np.asarray(b, dtype=np.float64))
            exact = np.asarray(b, dtype=np.float64)
            # powers of two (and their reciprocals) divide exactly
            error = np.where(np.frexp(exact)[0] == 0.5, 0.0, error)
            return self.affine(node, [(a, (weight, error))], 0.0, shape)
        inverse = Sym(self.b.elementwise("unary", "pow_int", [b.nodes], f"{node.name} 1/x", param=-1.0))
        return self.op_Mul(node, attrs, a, inverse)

    def op_Pow(self, node, attrs, a, exponent):
        if isinstance(exponent, Sym):
            self.fail(node, "Pow with an input-dependent exponent")
        values = np.unique(np.asarray(exponent, dtype=np.float64))
        if values.size != 1:
            self.fail(node, "Pow with different exponents per element")
        p = float(values[0])
        label = node.name or "pow"
        if p == 1.0:
            return a
        if p == 0.0:  # x**0 = 1 (ONNX: 0**0 = 1 too)
            return Sym(self.b.constant(np.ones(a.nodes.shape), label))
        if p == 0.5:
            return Sym(self.b.elementwise("unary", "sqrt", [a.nodes], label))
        if p.is_integer():
            if abs(p) > MAX_INT_EXPONENT:
                self.fail(node, f"Pow with the integer exponent {p:g} (|n| > 2**31 - 1; x**n overflows or underflows "
                                "except within 1e-9 of |x| = 1)")
            return Sym(self.b.elementwise("unary", "pow_int", [a.nodes], label, param=p))
        return Sym(self.b.elementwise("unary", "pow_real", [a.nodes], label, param=p))

    def unary(self, node, a):
        return Sym(self.b.elementwise("unary", UNARY[node.op_type], [a.nodes], node.name or node.op_type))

    def op_MatMul(self, node, attrs, a, b):
        """numpy's matmul with one constant operand: N-D operands with broadcast batch dimensions; a 1-D
        operand is promoted (a row on the left, a column on the right) and that dimension removed after."""
        if isinstance(a, Sym) and isinstance(b, Sym):
            self.fail(node, "MatMul of two input-dependent operands")
        left, right = self._data(a), self._data(b)
        if left.ndim == 0 or right.ndim == 0:
            self.fail(node, f"MatMul of shapes {left.shape} and {right.shape} (a scalar operand)")
        row, column = left.ndim == 1, right.ndim == 1
        left = left[None, :] if row else left
        right = right[:, None] if column else right
        if left.shape[-1] != right.shape[-2]:
            self.fail(node, f"MatMul shapes {np.shape(self._data(a))} and {np.shape(self._data(b))} do not match")
        try:
            np.broadcast_shapes(left.shape[:-2], right.shape[:-2])
        except ValueError:
            self.fail(node, f"MatMul batch dimensions of {left.shape} and {right.shape} do not broadcast")
        if isinstance(b, Sym):  # C @ X = (X^T @ C^T)^T
            out = self.matmul_constant_right(node, np.swapaxes(right, -1, -2), np.swapaxes(left, -1, -2), None)
            out = np.swapaxes(out.nodes, -1, -2)
        else:
            out = self.matmul_constant_right(node, left, right, None).nodes
        out = out[..., 0] if column else out
        out = out[..., 0, :] if row else out
        return Sym(out)

    def op_Gemm(self, node, attrs, a, b, c=None):
        if isinstance(b, Sym) or isinstance(c, Sym):
            self.fail(node, "Gemm with input-dependent weights or bias")
        x = Sym(a.nodes.T) if attrs.get("transA") else a
        weight = np.asarray(b, dtype=np.float64)
        weight = weight.T if attrs.get("transB") else weight
        alpha, beta = float(attrs.get("alpha", 1.0)), float(attrs.get("beta", 1.0))
        bias = None if c is None else beta * np.asarray(c, dtype=np.float64)
        return self.matmul_constant_right(node, x, alpha * weight, bias)

    def matmul_constant_right(self, node, x, weight: np.ndarray, bias):
        """X [..., r, k] @ W [..., k, m] (+ bias broadcast to [r, m] for a 2-D W): X an index array (or Sym),
        W a constant; batch dimensions broadcast as in numpy. A 2-D W is shared by every leading index of X
        (X [..., k] flattened to rows); a W with batch dimensions gives each batch its own terms."""
        data = x.nodes if isinstance(x, Sym) else np.asarray(x)
        weight = np.asarray(weight)
        if weight.ndim < 2 or data.ndim < 1 or (weight.ndim > 2 and data.ndim < 2):
            self.fail(node, f"MatMul of shapes {data.shape} and {weight.shape}")
        k = data.shape[-1]
        if weight.shape[-2] != k:
            self.fail(node, f"MatMul shapes {data.shape} and {weight.shape} do not match")
        m = weight.shape[-1]
        if weight.ndim == 2:
            out_shape = (*data.shape[:-1], m)
            flat = data.reshape(1, -1, k)
            stacked = weight.reshape(1, k, m)
        else:
            batch = np.broadcast_shapes(data.shape[:-2], weight.shape[:-2])
            out_shape = (*batch, data.shape[-2], m)
            flat = np.broadcast_to(data, (*batch, *data.shape[-2:])).reshape(-1, *data.shape[-2:])
            stacked = np.broadcast_to(weight, (*batch, k, m)).reshape(-1, k, m)
        r = flat.shape[1]
        # out[b, i, j] += W[b, kk, j] * X[b, i, kk] over the non-zero weights (b, kk, j)
        where_b, where_k, where_j = np.nonzero(stacked)
        i = np.arange(r)[:, None]
        rows = ((where_b[None, :] * r + i) * m + where_j[None, :]).reshape(-1)
        cols = flat[where_b[None, :], i, where_k[None, :]].reshape(-1)
        weights = np.broadcast_to(stacked[where_b, where_k, where_j], (r, where_b.size)).reshape(-1)
        size = int(np.prod(out_shape, dtype=np.int64))
        if bias is None:
            bias_values = np.zeros(size)
        else:
            bias_values = np.broadcast_to(np.asarray(bias, dtype=np.float64), (r, m)).reshape(-1)
        return Sym(self.b.linear([(rows, cols, weights, None)], bias_values, node.name or node.op_type, out_shape))

    def op_ReduceSum(self, node, attrs, x, axes=None):
        data = x.nodes
        axes = attrs.get("axes") if axes is None else [int(v) for v in np.asarray(axes).reshape(-1)]
        if axes is None or len(axes) == 0:
            if attrs.get("noop_with_empty_axes"):
                return x
            axes = list(range(data.ndim))
        axes = tuple(sorted(a % data.ndim for a in axes))
        keep = bool(attrs.get("keepdims", 1))
        moved = np.moveaxis(data, axes, range(data.ndim - len(axes), data.ndim))
        out_shape = moved.shape[: data.ndim - len(axes)]
        groups = moved.reshape(int(np.prod(out_shape, dtype=np.int64)), -1)
        rows = np.repeat(np.arange(groups.shape[0]), groups.shape[1])
        out = self.b.linear([(rows, groups.reshape(-1), np.ones(groups.size), None)], np.zeros(groups.shape[0]),
                            node.name or "ReduceSum", out_shape)
        if keep:
            out = out.reshape([1 if i in axes else s for i, s in enumerate(data.shape)])
        return Sym(out)


for _name in UNARY:
    setattr(Importer, "op_" + _name, lambda self, node, attrs, a: self.unary(node, a))


def _erf(values):
    import math

    return np.vectorize(math.erf)(values)
