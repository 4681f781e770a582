"""Sparse derivatives for IPOPT (graphver/tape/sparsity.py): the Hessian pattern holds every non-zero,
the colourings are valid, and the compressed Jacobian and Hessian equal the dense ones."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import graphver as gv
from graphver.search.ipopt import TapeNLP
from graphver.tape.evaluate import evaluate
from graphver.tape.sparsity import greedy_colouring, hessian_pattern


def random_model(seed: int, n: int = 9, terms: int = 14):
    """A sum of random nonlinear terms of one to three variables each, and a few constraint rows."""
    rng = np.random.default_rng(seed)
    m = gv.Model(f"sparse{seed}")
    x = m.vars("x", n, -1.5, 1.5)
    unary = [gv.sin, gv.cos, gv.exp, gv.tanh, lambda u: u**2, lambda u: gv.sqrt(u + 3), gv.atan]

    def term():
        picked = rng.choice(n, size=int(rng.integers(1, 4)), replace=False)
        u = sum(float(rng.normal()) * x[int(i)] for i in picked)
        kind = rng.integers(3)
        if kind == 0:
            return unary[int(rng.integers(len(unary)))](u)
        if kind == 1:
            return x[int(picked[0])] * u
        return u / (x[int(picked[-1])] ** 2 + 2)

    objective = sum(term() for _ in range(terms)) + 0.5 * x[0]
    rows = [term() + term() for _ in range(4)] + [x[1] + 2 * x[2]]
    return m, objective, rows


def dense_derivatives(tape, outputs, weights, point):
    """Jacobian of the outputs and Hessian of their weighted sum, one autograd pass per row / column."""
    x = torch.as_tensor(point, dtype=torch.float64)
    jac = torch.autograd.functional.jacobian(lambda p: evaluate(tape, p[None])[0][outputs], x)
    hess = torch.autograd.functional.hessian(lambda p: evaluate(tape, p[None])[0][outputs] @ weights, x)
    return jac.numpy(), hess.numpy()


@pytest.mark.parametrize("seed", range(6))
def test_compressed_derivatives_equal_dense_ones(seed):
    m, objective, rows = random_model(seed)
    tape = m.compile([objective] + rows)
    n_rows = len(rows)
    nlp = TapeNLP(tape, 0, rows=list(range(1, n_rows + 1)), row_lower=[-1e20] * n_rows, row_upper=[0.0] * n_rows)
    rng = np.random.default_rng(100 + seed)
    for _ in range(3):
        point = rng.uniform(-1.4, 1.4, size=tape.n_inputs)
        lagrange = rng.normal(size=n_rows)
        weights = torch.as_tensor(np.concatenate([[1.0], lagrange]))
        jac, hess = dense_derivatives(tape, list(range(n_rows + 1)), weights, point)
        np.testing.assert_allclose(nlp.gradient(point), jac[0], rtol=1e-12, atol=1e-12)
        compressed = np.zeros((n_rows, tape.n_inputs))
        compressed[nlp.jac_rows, nlp.jac_cols] = nlp.jacobian(point)
        np.testing.assert_allclose(compressed, jac[1:], rtol=1e-12, atol=1e-12)
        lower = np.zeros_like(hess)
        lower[nlp.hess_rows, nlp.hess_cols] = nlp.hessian(point, lagrange, 1.0)
        np.testing.assert_allclose(lower, np.tril(hess), rtol=1e-10, atol=1e-10)  # every non-zero is in the pattern
    assert nlp.n_groups < n_rows + 1 or n_rows + 1 <= 2
    assert nlp.n_colours <= tape.n_inputs


def test_hessian_pattern_is_the_structure():
    m = gv.Model("structure")
    x, y, z, w = m.vars("x", 4, -1, 1)
    tape = m.compile([x**2 + y**2 + gv.sin(z) + x * w, x * y, z + w, x / (y + 3)])
    pattern = lambda outputs: hessian_pattern(tape, outputs).toarray().astype(int).tolist()  # noqa: E731
    assert pattern([0]) == [[1, 0, 0, 1], [0, 1, 0, 0], [0, 0, 1, 0], [1, 0, 0, 0]]  # separable + one product
    assert pattern([1]) == [[0, 1, 0, 0], [1, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]]  # x * y: no diagonal
    assert pattern([2]) == [[0] * 4] * 4  # linear: nothing
    assert pattern([3]) == [[0, 1, 0, 0], [1, 1, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]]  # x * (y + 3)**-1


def test_greedy_colouring_separates_every_conflict():
    rng = np.random.default_rng(5)
    for _ in range(20):
        size = int(rng.integers(1, 40))
        dense = rng.random((size, size)) < 0.15
        dense = dense | dense.T
        import scipy.sparse as sp

        colours = greedy_colouring(sp.csr_matrix(dense))
        rows, cols = np.nonzero(dense)
        off = rows != cols
        assert (colours[rows[off]] != colours[cols[off]]).all()
        assert colours.min() >= 0 and colours.max() <= dense.sum(axis=1).max()  # at most max degree + 1 colours


def test_acopf_nlp_is_compressed():
    """A 14-bus ACOPF: far fewer gradient passes than rows, and a Hessian pattern far from dense."""
    from acopf import build, load

    built = build(load("case14_ieee"), "rectangular")
    model = built.model
    tape = model.compile([built.objective] + model.constraint_rows)
    rows, low, high = model.constraint_limits(first_row=1)
    nlp = TapeNLP(tape, 0, rows=rows, row_lower=np.clip(low, -1e20, 1e20), row_upper=high)
    assert nlp.n_groups * 3 < len(rows)
    assert nlp.n_colours * 2 < tape.n_inputs
    assert len(nlp.hess_rows) * 4 < tape.n_inputs * (tape.n_inputs + 1) / 2
