"""Several expressions at once, one pass of each bounding method, no branching.

    graphver interval models/examples/ranges.py

Exact ranges over x in [-1, 2], y in [0.5, 3]: x**2 - x in [-0.25, 2]; x*y + sin(x) - log(y) is
what the README's quick start bounds.
"""

import graphver as gv

model = gv.Model("ranges")
x = model.var("x", -1, 2)
y = model.var("y", 0.5, 3)

expressions = {
    "x**2 - x": x**2 - x,
    "x*y + sin(x) - log(y)": x * y + gv.sin(x) - gv.log(y),
    "tanh(x) * y": gv.tanh(x) * y,
}
objective = x**2 - x  # what `graphver bound` would minimise
