"""Bad input gets a clear, typed error: unsupported functions, domain violations, bad boxes, bad options."""

from __future__ import annotations

import math

import pytest
import sympy
import torch

import graphver as gv


def model():
    m = gv.Model("errors")
    return m, m.var("x", -1, 2), m.var("y", 0.5, 1)


def test_error_hierarchy():
    for cls in (gv.ModelError, gv.UnsupportedOpError, gv.DomainError, gv.InfeasibleBoxError, gv.OptionError,
                gv.SolverUnavailableError, gv.InternalError):
        assert issubclass(cls, gv.GraphverError)


@pytest.mark.parametrize("expr_of, name", [
    (lambda x: sympy.gamma(x), "gamma"),
    (lambda x: sympy.erfc(x), "erfc"),
    (lambda x: sympy.asinh(x), "asinh"),  # (floor is supported since the step ops)
    (lambda x: sympy.besselj(0, x), "besselj"),
])
def test_unsupported_function_is_named_with_the_supported_list(expr_of, name):
    m, x, _ = model()
    with pytest.raises(gv.UnsupportedOpError) as info:
        m.interval(expr_of(x) + x)
    text = str(info.value)
    assert repr(name) in text and "Supported:" in text and "sin" in text and "sigmoid" in text


def test_unknown_symbol_is_a_model_error():
    m, x, _ = model()
    z = sympy.Symbol("z")
    with pytest.raises(gv.ModelError, match="symbol z is not a variable"):
        m.interval(x + z)


@pytest.mark.parametrize("expr_of, op", [
    (lambda x, y: gv.log(x), "log"),
    (lambda x, y: 1 / x, "x\\*\\*-1"),
    (lambda x, y: gv.sqrt(x - y), "sqrt"),
    (lambda x, y: gv.tan(2 * x), "tan"),
    (lambda x, y: x ** sympy.Rational(1, 3), "x\\*\\*0.333"),
    (lambda x, y: x**-2, "x\\*\\*-2"),
])
@pytest.mark.parametrize("method", ["ibp", "crown", "alpha"])
def test_domain_violation_names_node_and_interval(expr_of, op, method):
    m, x, y = model()
    with pytest.raises(gv.DomainError, match=f"node .*input interval \\[.*\\] leaves the domain of {op}"):
        m.interval(expr_of(x, y) + y, method=method)


def test_domain_error_names_the_box_in_a_batch():
    m, x, y = model()
    lower = torch.tensor([[0.5, 0.5], [-1.0, 0.5]], dtype=torch.float64)
    upper = torch.tensor([[1.0, 1.0], [1.0, 1.0]], dtype=torch.float64)
    with pytest.raises(gv.DomainError, match="box 1 of the batch"):
        m.interval(gv.log(x), lower=lower, upper=upper)


def test_closed_domain_edge_is_fine_but_beyond_it_is_not():
    m = gv.Model("edge")
    x = m.var("x", -1, 2)
    iv = m.interval(gv.sqrt(x + 1))  # argument interval [0, 3] up to rounding
    assert iv.lower <= 0 and iv.upper >= math.sqrt(3)
    m2 = gv.Model("edge2")
    z = m2.var("z", -1e-3, 1)
    with pytest.raises(gv.DomainError, match="sqrt"):
        m2.interval(gv.sqrt(z))
    m3 = gv.Model("edge3")
    w = m3.var("w", 0, 1)
    with pytest.raises(gv.DomainError, match="log"):
        m3.interval(gv.log(w))


def test_constant_domain_violation_at_compile_time():
    m, x, _ = model()
    with pytest.raises((gv.DomainError, gv.ModelError)):
        m.interval(x + sympy.log(sympy.Integer(0)))


@pytest.mark.parametrize("lb, ub, match", [
    (math.nan, 1, "finite"),
    (0, math.inf, "finite"),
    (-math.inf, 0, "finite"),
    (2, 1, "exceeds"),
    ("abc", 1, "real numbers"),
])
def test_bad_variable_boxes_name_the_variable(lb, ub, match):
    m = gv.Model("boxes")
    with pytest.raises(gv.ModelError, match=f"variable 'v'.*{match}"):
        m.var("v", lb, ub)


def test_duplicate_and_bad_names():
    m = gv.Model("names")
    m.var("x", 0, 1)
    with pytest.raises(gv.ModelError, match="declared twice"):
        m.var("x", 0, 1)
    with pytest.raises(gv.ModelError, match="non-empty"):
        m.var("", 0, 1)
    with pytest.raises(gv.ModelError, match="length 3"):
        m.vars("v", 3, [0, 0], 1)


@pytest.mark.parametrize("lower, upper, match", [
    ([[0.0, 0.6]], [[-0.5, 0.9]], "variable 'x'.*inverted"),
    ([[0.0, math.nan]], [[1.0, 0.9]], "variable 'y'.*not finite"),
    ([[0.0, 0.6]], [[1.0, math.inf]], "variable 'y'.*not finite"),
    ([[0.0, 0.6, 1.0]], [[1.0, 0.9, 2.0]], "shape"),
])
def test_bad_query_boxes_are_infeasible_box_errors(lower, upper, match):
    m, x, y = model()
    with pytest.raises(gv.InfeasibleBoxError, match=match):
        m.interval(x * y, lower=lower, upper=upper)


def test_unknown_option_gets_did_you_mean():
    m, x, _ = model()
    with pytest.raises(gv.OptionError, match="Did you mean 'alpha_iterations'"):
        m.interval(x**2, method="alpha", alpha_iteration=5)
    with pytest.raises(gv.OptionError, match="alpha_lr must be > 0"):
        m.interval(x**2, method="alpha", alpha_lr=-1)


def test_unknown_method_lists_the_methods():
    m, x, _ = model()
    with pytest.raises(gv.OptionError, match="ibp, crown, alpha.*Did you mean .crown."):
        m.interval(x**2, method="crow")


def test_evaluate_rejects_bad_points():
    m, x, y = model()
    with pytest.raises(gv.ModelError, match="unknown variable"):
        m.evaluate(x + y, {"x": 1.0, "q": 2.0})
    with pytest.raises(gv.ModelError, match="lack values"):
        m.evaluate(x + y, {"x": 1.0})
    with pytest.raises(gv.ModelError, match="shape"):
        m.evaluate(x + y, [[1.0, 2.0, 3.0]])


def test_non_real_constant_is_rejected():
    m, x, _ = model()
    with pytest.raises(gv.ModelError, match="not a finite real"):
        m.interval(x + sympy.I)
