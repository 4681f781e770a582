"""A constrained problem: the point of the hyperbola x y = 1 closest to (3, 3).

    graphver bound models/examples/hyperbola.py     # certified minimum 7, at x = (3 + sqrt 5)/2

With y = 1/x and u = x + 1/x the squared distance is u^2 - 6u + 16, smallest at u = 3: the value 7.
The symmetric point (1, 1) is only a local minimum (8). Constraints are declared on the model with
``model.constrain``; ``gv.Eq`` writes an equality (Python's ``==`` compares sympy expressions).
"""

import graphver as gv

model = gv.Model("hyperbola")
x, y = model.var("x", 0.1, 5), model.var("y", 0.1, 5)
model.constrain(gv.Eq(x * y, 1))
objective = (x - 3) ** 2 + (y - 3) ** 2
