"""Sparse coefficient storage of the backward pass: one coefficient per entry of a ``BackwardPlan``.

A plan (bounds/plan.py) lists the entries ``(query row, node)`` a pass can make non-zero, sorted by node,
so the coefficients of all rows on one instruction's outputs are the contiguous range ``begin:end`` of a
``[B, entries]`` tensor, each entry carrying its row (``query``) and output (``local``). A linear instruction
moves its entries term by term (``term_source`` times ``term_weight`` to ``term_target``); a nonlinear one
moves each entry to the entries of its arguments (``arg_entries``). Ideal for the sparse graphs of equations,
where a row reaches a few dozen of thousands of nodes. The pass itself is ``graphver.bounds.backward``.
"""

from __future__ import annotations

import torch
from torch import Tensor

from graphver.bounds.plan import BackwardPlan, PlanStep
from graphver.rounding import magnitude, may_underflow, term_slack
from graphver.tape.tape import Tape


def per_row(values: Tensor, rows: Tensor, n_rows: int) -> Tensor:
    """Sum [B, m] values into [B, n_rows] by their row index."""
    out = torch.zeros(values.shape[0], n_rows, dtype=values.dtype, device=values.device)
    return out.index_add(1, rows, values)




class SparseStorage:
    """Coefficients ``[B, entries]`` on the entries of one plan (the storage interface of the backward pass:
    see ``graphver.bounds.backward.CoefficientStorage``)."""

    kind = "sparse"

    def __init__(self, tape: Tape, plan: BackwardPlan):
        self.tape, self.plan = tape, plan
        self.rows = plan.rows

    def steps(self):
        return self.plan.steps

    def start(self, lo: Tensor, size: Tensor, floor: float) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        lam = torch.zeros(lo.shape[0], self.plan.entries, dtype=lo.dtype, device=lo.device)
        lam[:, self.plan.start_entries] = self.plan.start_values.to(lo.dtype)
        zero = torch.zeros(lo.shape[0], self.rows, dtype=lo.dtype, device=lo.device)
        return lam, zero, zero.clone(), zero.clone()

    def outputs(self, lam: Tensor, step: PlanStep) -> Tensor:
        return lam[:, step.begin : step.end].clone()

    def at_outputs(self, step: PlanStep, values: Tensor) -> Tensor:
        return values.index_select(-1, step.local)

    def per_entry(self, step: PlanStep, values: Tensor) -> Tensor:
        return values.index_select(1, step.local)

    def as_parameters(self, step: PlanStep, flat: Tensor) -> Tensor:
        return flat

    def from_entries(self, step: PlanStep, flat: Tensor) -> Tensor:
        return flat

    def parameter_shape(self, step: PlanStep, batch: int) -> tuple[int, ...]:
        return (batch, step.end - step.begin)

    def row_sum(self, step: PlanStep, values: Tensor) -> Tensor:
        return per_row(values, step.query, self.rows)

    def to_argument(self, lam: Tensor, step: PlanStep, slot: int, moved: Tensor) -> None:
        lam.index_add_(1, step.arg_entries[slot], moved)

    def argument_values(self, step: PlanStep, slot: int, values: Tensor) -> Tensor:
        return values[:, self.tape.instructions[step.instruction].args[slot][step.local]]

    def through_weights(self, lam: Tensor, step: PlanStep, coef: Tensor, size: Tensor, floor: float):
        """Move the coefficients on a linear instruction's outputs to its arguments, term by term; returns the
        rounding slack of the formed terms and the error of the stored weights, per row."""
        instr = self.tape.instructions[step.instruction]
        source = coef[:, step.term_source]
        weights = instr.weights[step.term_weight]
        moved = source * weights
        lam.index_add_(1, step.term_target, moved)
        term_size = size[:, step.term_node]
        underflowed = may_underflow(moved, source, weights)
        slack = per_row(term_slack(moved, term_size, underflowed, floor), step.term_query, self.rows)
        errors = per_row(magnitude(source * instr.weight_error[step.term_weight], term_size), step.term_query, self.rows)
        return slack, errors

    def inputs(self, lam: Tensor, lo: Tensor, hi: Tensor, size: Tensor):
        nodes = self.plan.input_node
        return lam[:, : self.plan.input_end], lo[:, nodes], hi[:, nodes], size[:, nodes]

    def input_row_sum(self, values: Tensor) -> Tensor:
        return per_row(values, self.plan.input_query, self.rows)

    def input_matrix(self, coef: Tensor) -> Tensor:
        dense = torch.zeros(coef.shape[0], self.rows, self.tape.n_inputs, dtype=coef.dtype, device=coef.device)
        dense[:, self.plan.input_query, self.plan.input_node] = coef
        return dense

    def kept_steps(self, kept: dict[int, Tensor]) -> "SparseSteps":
        return SparseSteps(self.tape, {s.instruction: s for s in self.plan.steps if s.instruction in kept}, kept)


class SparseSteps:
    """Per-step coefficients of a sparse pass: ``coefs[instruction]`` [B, entries of its plan step]."""

    def __init__(self, tape: Tape, steps: dict[int, PlanStep], coefs: dict[int, Tensor]):
        self.tape, self.steps, self.coefs = tape, steps, coefs

    def instructions(self) -> tuple[int, ...]:
        return tuple(self.coefs)

    def at_row(self, instruction: int, row: Tensor) -> Tensor:
        """[B, size]: each domain's coefficient of row ``row[b]`` on the instruction's outputs (0 off the plan;
        a plan holds each (row, node) once, so the sum below adds zeros only)."""
        step, coef = self.steps[instruction], self.coefs[instruction]
        chosen = torch.where(step.query[None, :] == row[:, None], coef, torch.zeros_like(coef))
        size = self.tape.instructions[instruction].size
        out = torch.zeros(coef.shape[0], size, dtype=coef.dtype, device=coef.device)
        return out.index_add(1, step.local, chosen)
