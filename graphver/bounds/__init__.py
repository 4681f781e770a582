"""Bounds without branching: IBP, CROWN (intermediate bounds = IBP intersected with CROWN) and alpha.

The backward pass (``graphver.bounds.backward``) runs on sparse or dense coefficient storage, chosen by
``BoundOptions.backward``.

``output_bounds(tape, lower, upper, method)`` is the one entry point: boxes [B, n_inputs] in, certified
output intervals [B, n_outputs] out.
"""

from __future__ import annotations

import difflib

import torch
from torch import Tensor

from graphver.bounds.alpha import alpha_bounds
from graphver.bounds.backward import LinearBounds, backward_pass, refine_hook
from graphver.bounds.ibp import forward_bounds
from graphver.errors import OptionError
from graphver.options import BoundOptions
from graphver.tape.tape import Tape

METHODS = ("ibp", "crown", "alpha")


def node_bounds(tape: Tape, lower: Tensor, upper: Tensor, method: str, options: BoundOptions,
                deadline: float | None = None) -> tuple[Tensor, Tensor]:
    """Intervals of every node ([B, n_nodes] each): IBP, or IBP refined by CROWN where it can help."""
    refine = None
    if method != "ibp" and options.crown_intermediate:
        refine = refine_hook(tape, options.max_chunk_elements, options.backward, deadline)
    with torch.no_grad():
        return forward_bounds(tape, lower, upper, refine, deadline=deadline)


def output_bounds(
    tape: Tape, lower: Tensor, upper: Tensor, method: str = "crown", options: BoundOptions | None = None
) -> tuple[Tensor, Tensor]:
    """Certified bounds of every output over each box: (low, high), each [B, n_outputs].

    The final CROWN/alpha bound is intersected with IBP, so it is never looser than IBP.
    """
    if method not in METHODS:
        close = difflib.get_close_matches(str(method), METHODS, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise OptionError(f"unknown bound method {method!r}; choose one of {', '.join(METHODS)}.{hint}")
    options = options or BoundOptions()
    lo, hi = node_bounds(tape, lower, upper, method, options)
    targets = tape.outputs
    low, high = lo[:, targets], hi[:, targets]
    if method == "ibp" or targets.numel() == 0:
        return low, high
    upto = max(tape.instruction_of(int(t)) for t in targets)
    q = targets.numel()
    if method == "crown":
        with torch.no_grad():
            result = backward_pass(tape, lo, hi, targets, upto, options.backward, max_elements=options.max_chunk_elements)
    else:
        result = alpha_bounds(tape, lo, hi, targets, upto, options.alpha_iterations, options.alpha_lr,
                              options.backward, max_elements=options.max_chunk_elements)
    return torch.maximum(low, result.lower[:, :q]), torch.minimum(high, -result.lower[:, q:])


__all__ = ["METHODS", "LinearBounds", "backward_pass", "node_bounds", "output_bounds"]
