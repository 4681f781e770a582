"""A true property: x * exp(-x) stays below 0.36788 on [0, 5].

    graphver verify models/examples/peak.py        # exit code 0: verified

The maximum is exp(-1) = 0.36787944117..., at x = 1, so the margin is only about 5.9e-7 there.
"""

import graphver as gv

model = gv.Model("peak")
x = model.var("x", 0, 5)

prop = x * gv.exp(-x) <= 0.36788
