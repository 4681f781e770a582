"""Six-hump camel function: certified global minimum.

    graphver bound models/examples/camel.py

The minimum over x in [-3, 3], y in [-2, 2] is -1.0316284534898774, attained at
(0.0898420131, -0.7126564030) and at its mirror image (-0.0898420131, 0.7126564030).
"""

import sympy

import graphver as gv

model = gv.Model("camel")
x = model.var("x", -3, 3)
y = model.var("y", -2, 2)

objective = (4 - sympy.Rational(21, 10) * x**2 + x**4 / 3) * x**2 + x * y + (-4 + 4 * y**2) * y**2
sense = "min"

if __name__ == "__main__":  # also runs as a plain script: python models/examples/camel.py
    print(model.bound(objective, sense=sense))
