"""A false property with a narrow violation: a Gaussian dip of width 0.001 near x = 0.7.

    graphver verify models/examples/spike.py       # exit code 1: falsified, with a counterexample

f(x) = 1 - 1.5 exp(-((x - 0.7) / 0.001)^2) is >= 0 everywhere on [-2, 2] except on about
|x - 0.7| < 0.00064, where it dips to -0.5. Random samples almost never land there; branch-and-bound
narrows the box down to it.
"""

import sympy

import graphver as gv

model = gv.Model("spike")
x = model.var("x", -2, 2)

width = sympy.Rational(1, 1000)
centre = sympy.Rational(7, 10)
prop = 1 - sympy.Rational(3, 2) * gv.exp(-(((x - centre) / width) ** 2)) >= 0
