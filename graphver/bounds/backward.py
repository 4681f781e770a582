"""The backward linear bound pass (CROWN), written once over two coefficient storages.

For queries ``+z_t`` and ``-z_t`` of target nodes t (R = 2Q rows: ``+z`` rows first), the pass keeps a
coefficient of every row on every node it can reach. At an instruction z = f(h) with relaxation
``aL*h + bL <= f(h) <= aU*h + bU``, the coefficient on z moves to h as ``lam+ * aL + lam- * aU`` and the
bias gains ``lam+ * bL + lam- * bU``; linear instructions pass coefficients through their weights and add
``lam * bias``. At the inputs, ``sum(lam+ * l + lam- * u) + bias`` is a lower bound of the row.

Where the coefficients live is the storage's business (``CoefficientStorage``): ``SparseStorage``
(bounds/sparse.py) keeps one per entry of a sparse plan (bounds/plan.py), for graphs of equations;
``DenseStorage`` (bounds/dense.py) one per (row, node) in a [B, rows, nodes] tensor, for dense layers.
``BoundOptions.backward`` chooses ("auto": dense when the tape has a linear instruction of fan-in >= 32).
Everything else is here, once: the relaxation lines (CROWN's or alpha's), the rounding slack, and the
ending ``rounding.concretised_lower``.

Rounding (docs/developer.md, "CROWN"): every product and sum of the pass rounds. The effect on the final
value is bounded by ``gamma_n * slack`` where ``slack`` sums ``|term| * max(|l|, |u|)`` of every coefficient
term formed (plus ``coefficient_floor`` times the size where it may have underflowed) and ``|term|`` of
every bias term, and n bounds the length of any accumulated sum (``Tape.accumulation_terms``). The stored
linear constants differ from the model's exact ones by at most their recorded errors, which adds
``sum(|coefficient| * error * magnitude)`` exactly (not scaled by gamma).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Protocol

import torch
from torch import Tensor

from graphver.bounds.dense import DenseSteps, DenseStorage, dense_chunks, prefers_dense
from graphver.bounds.ibp import argument_bounds
from graphver.bounds.plan import plan_for
from graphver.bounds.sparse import SparseStorage
from graphver.clock import check
from graphver.errors import OptionError
from graphver.rounding import coefficient_floor, concretised_lower, magnitude, may_underflow, term_slack
from graphver.tape.tape import Tape

STORAGES = ("auto", "sparse", "dense")

# Relaxation parameters of a pass: per nonlinear instruction, [2, *parameter_shape] (lower and upper line).
Alphas = dict[int, Tensor]


class CoefficientStorage(Protocol):
    """Where a backward pass keeps its coefficients. A coefficient tensor ``coef`` of one step has the
    storage's layout ([B, entries] sparse, [B, rows, size] dense); node values [B, size] of the step's
    outputs are brought into it by ``at_outputs`` (broadcast) or ``per_entry`` (one value per coefficient,
    2-D for the ops; ``from_entries`` reshapes back)."""

    kind: str
    rows: int

    def steps(self) -> list: ...  # handles with ``.instruction``, in backward order
    # the coefficients at the start (query rows) and the rows' bias, slack and constant error so far
    def start(self, lo: Tensor, size: Tensor, floor: float) -> tuple[Tensor, Tensor, Tensor, Tensor]: ...
    def outputs(self, lam: Tensor, step) -> Tensor | None: ...  # gather the coefficients on the outputs
    def at_outputs(self, step, values: Tensor) -> Tensor: ...
    def per_entry(self, step, values: Tensor) -> Tensor: ...
    def as_parameters(self, step, flat: Tensor) -> Tensor: ...  # per-entry values -> parameter layout
    def from_entries(self, step, flat: Tensor) -> Tensor: ...  # per-entry values -> coefficient layout
    def parameter_shape(self, step, batch: int) -> tuple[int, ...]: ...
    def row_sum(self, step, values: Tensor) -> Tensor: ...  # layout -> [B, rows]
    def through_weights(self, lam: Tensor, step, coef: Tensor, size: Tensor, floor: float) -> tuple[Tensor, Tensor]: ...
    def to_argument(self, lam: Tensor, step, slot: int, moved: Tensor) -> None: ...
    def argument_values(self, step, slot: int, values: Tensor) -> Tensor: ...
    def inputs(self, lam: Tensor, lo: Tensor, hi: Tensor, size: Tensor) -> tuple: ...  # concretise at the inputs
    def input_row_sum(self, values: Tensor) -> Tensor: ...
    def input_matrix(self, coef: Tensor) -> Tensor: ...  # -> [B, rows, n_inputs]
    def kept_steps(self, kept: dict[int, Tensor]): ...


@dataclass
class LinearBounds:
    """What a backward pass over R query rows proves, for each of B boxes.

    ``lower`` [B, R]: certified lower bounds of the rows. ``input_coef`` [B, R, n_inputs] and ``offset``
    [B, R] (None unless kept): every row satisfies ``row(x) >= input_coef . x + offset`` on the whole box
    (alpha: these are the coefficients of the CROWN pass, ``lower`` the best bound of the iterations).
    ``steps``: the coefficients the pass put on the outputs of every nonlinear instruction it visited,
    read through ``step_coef`` whatever the storage. ``alphas`` [B, A]: the relaxation parameters after
    alpha's last iteration (None for CROWN), to warm-start a later pass of the same shape.
    """

    lower: Tensor
    input_coef: Tensor | None = None
    offset: Tensor | None = None
    steps: object | None = None  # SparseSteps or DenseSteps
    storage: str = "sparse"
    alphas: Tensor | None = None
    tape: Tape | None = None

    def step_instructions(self) -> tuple[int, ...]:
        """The nonlinear instructions with kept coefficients, in backward order."""
        return self.steps.instructions() if self.steps is not None else ()

    def step_coef(self, instruction: int, row: Tensor) -> Tensor:
        """[B, size]: the coefficient of each domain's row ``row[b]`` on each output node of the nonlinear
        instruction ``instruction`` (0 where the row does not reach it)."""
        if self.steps is not None and instruction in self.steps.instructions():
            return self.steps.at_row(instruction, row)
        size = self.tape.instructions[instruction].size
        return torch.zeros(self.lower.shape[0], size, dtype=self.lower.dtype, device=self.lower.device)


def choose_storage(tape: Tape, backward: str) -> str:
    """"sparse" or "dense" for ``BoundOptions.backward`` ("auto": dense on tapes with dense layers)."""
    if backward == "auto":
        return "dense" if prefers_dense(tape) else "sparse"
    if backward not in STORAGES:
        raise OptionError(f"backward must be 'auto', 'sparse' or 'dense', got {backward!r}")
    return backward


def storage_chunks(tape: Tape, targets: Tensor, upto: int, storage: str, batch: int, max_elements: int | None,
                   whole: bool = False) -> list[tuple[Tensor, CoefficientStorage]]:
    """The storages of one pass from ``targets`` at ``upto`` and the query rows (indices into the 2Q rows)
    each covers. Dense: chunks of targets (rows ``+z`` and ``-z`` of each), ``batch x rows x columns <=
    max_elements`` each (``dense_chunks``). Sparse: one plan, or
    plans of chunks of the targets above ``batch x entries > max_elements`` unless ``whole`` (one plan keeps
    one layout of per-step coefficients and relaxation parameters)."""
    q = targets.numel()
    device = tape.device
    if storage == "dense":
        parts = []
        for part in dense_chunks(tape, targets, upto, batch, max_elements):
            part = part.to(device)
            nodes = targets.to(device)[part]
            signs = torch.cat([torch.ones(len(part), dtype=tape.dtype), -torch.ones(len(part), dtype=tape.dtype)])
            parts.append((torch.cat([part, part + q]), DenseStorage(tape, torch.cat([nodes, nodes]), signs.to(device), upto)))
        return parts
    plan = plan_for(tape, targets, upto)
    chunks = 1 if whole or max_elements is None else max(1, math.ceil(batch * plan.entries / max_elements))
    if chunks == 1:
        return [(torch.arange(2 * q, device=device), SparseStorage(tape, plan))]
    step = max(1, math.ceil(q / chunks))
    parts = []
    for begin in range(0, q, step):
        part = torch.arange(begin, min(q, begin + step), device=device)
        rows = torch.cat([part, part + q])
        parts.append((rows, SparseStorage(tape, plan_for(tape, targets[begin : begin + step], upto))))
    return parts


def relaxation_lines(tape: Tape, storage: CoefficientStorage, step, lo: Tensor, hi: Tensor, alpha: Tensor | None):
    """Relaxation coefficients of a nonlinear step in the storage's layout: [(lower slope, upper slope)] per
    argument, lower bias, upper bias. Without ``alpha`` the lines are computed once per node (CROWN's
    defaults); with it ([2, *parameter_shape]) once per coefficient."""
    instr = tape.instructions[step.instruction]
    op = instr.op_object
    flat = [t for pair in argument_bounds(instr, lo, hi) for t in pair]
    if alpha is None:
        relaxation = op.relax(*flat, instr.param)
        pick = lambda t: storage.at_outputs(step, t)  # noqa: E731
    else:
        batch = lo.shape[0]
        entries = [storage.per_entry(step, t) for t in flat]
        relaxation = op.relax(*entries, instr.param, alpha[0].reshape(batch, -1), alpha[1].reshape(batch, -1))
        pick = lambda t: storage.from_entries(step, t)  # noqa: E731
    if instr.kind == "unary":
        slopes = [(pick(relaxation.lower_slope), pick(relaxation.upper_slope))]
    else:
        slopes = [(pick(relaxation.lower_x), pick(relaxation.upper_x)), (pick(relaxation.lower_y), pick(relaxation.upper_y))]
    return slopes, pick(relaxation.lower_bias), pick(relaxation.upper_bias)


def weighted(coef: Tensor, value: Tensor) -> Tensor:
    """coef * value, with 0 * inf taken as 0 (a zero coefficient does not use the value)."""
    return torch.where(coef == 0, torch.zeros_like(coef), coef * value)


def run_pass(tape: Tape, storage: CoefficientStorage, lo: Tensor, hi: Tensor, alphas: Alphas | None = None,
             keep: bool = False, deadline: float | None = None) -> LinearBounds:
    """One backward pass over one storage: certified lower bounds of its rows, [B, rows]; with ``keep``
    also the linear bounds at the inputs and the per-step coefficients. ``check(deadline)`` runs before
    every step (``DeadlineReached``)."""
    batch = lo.shape[0]
    size = torch.maximum(lo.abs(), hi.abs())
    floor = coefficient_floor(tape.accumulation_terms, lo)
    # constant_error: the errors that are not roundings of this pass (stored constants)
    lam, bias, slack, constant_error = storage.start(lo, size, floor)
    kept: dict[int, Tensor] = {}
    for step in storage.steps():
        check(deadline)
        instr = tape.instructions[step.instruction]
        coef = storage.outputs(lam, step)
        if coef is None:
            continue
        if instr.kind == "linear":
            term_slack_rows, weight_error = storage.through_weights(lam, step, coef, size, floor)
            slack = slack + term_slack_rows
            bias_terms = weighted(coef, storage.at_outputs(step, instr.bias))
            bias_error = storage.row_sum(step, magnitude(coef, storage.at_outputs(step, instr.bias_error)))
            constant_error = constant_error + weight_error + bias_error
        else:
            if keep:
                kept[step.instruction] = coef
            alpha = alphas.get(step.instruction) if alphas else None
            slopes, lower_bias, upper_bias = relaxation_lines(tape, storage, step, lo, hi, alpha)
            pos, neg = coef.clamp(min=0), coef.clamp(max=0)
            for slot, (slope_lower, slope_upper) in enumerate(slopes):
                moved = pos * slope_lower + neg * slope_upper
                storage.to_argument(lam, step, slot, moved)
                underflowed = may_underflow(moved, coef, torch.where(coef > 0, slope_lower, slope_upper))
                receiving = storage.argument_values(step, slot, size)
                slack = slack + storage.row_sum(step, term_slack(moved, receiving, underflowed, floor))
            bias_terms = weighted(pos, lower_bias) + weighted(neg, upper_bias)
        bias = bias + storage.row_sum(step, bias_terms)
        slack = slack + storage.row_sum(step, torch.nan_to_num(bias_terms.abs(), nan=0.0))

    coef, lower_in, upper_in, size_in = storage.inputs(lam, lo, hi, size)
    values = weighted(coef.clamp(min=0), lower_in) + weighted(coef.clamp(max=0), upper_in)
    value = storage.input_row_sum(values) + bias
    slack = slack + storage.input_row_sum(magnitude(coef, size_in)) + bias.abs()
    slack = slack + constant_error
    lower = concretised_lower(value, slack, constant_error, tape.accumulation_terms)
    if not keep:
        return LinearBounds(lower, storage=storage.kind, tape=tape)
    # the linear lower bound of each row: row(x) >= input_coef . x + offset for every x of the box
    # (the rounding slack covers the pass and the concretisation over the box)
    offset = concretised_lower(bias, slack, constant_error, tape.accumulation_terms)
    return LinearBounds(lower, storage.input_matrix(coef), offset, storage.kept_steps(kept), storage.kind, tape=tape)


def joined(parts: list[tuple[Tensor, LinearBounds]], rows: int) -> LinearBounds:
    """The results of the chunks of one pass, each on its rows (indices into ``rows``), as one."""
    if len(parts) == 1:
        return parts[0][1]
    first = parts[0][1]
    batch = first.lower.shape[0]

    def place(field: str, *shape):
        pieces = [getattr(part, field) for _, part in parts]
        if pieces[0] is None:
            return None
        out = pieces[0].new_zeros(batch, rows, *shape)
        for (index, _), piece in zip(parts, pieces):
            out[:, index] = piece
        return out

    n_inputs = () if first.input_coef is None else (first.input_coef.shape[2],)
    steps = None
    if first.steps is not None:
        assert first.storage == "dense", "a sparse pass that keeps its steps runs on one plan"
        steps = DenseSteps.joined([part.steps for _, part in parts], [index for index, _ in parts], rows, first.tape)
    return LinearBounds(place("lower"), place("input_coef", *n_inputs), place("offset"), steps, first.storage,
                        tape=first.tape)


def backward_pass(
    tape: Tape,
    lo: Tensor,
    hi: Tensor,
    targets: Tensor,
    upto: int,
    backward: str = "auto",
    alphas: Alphas | None = None,
    keep: bool = False,
    max_elements: int | None = 2**24,
    deadline: float | None = None,
) -> LinearBounds:
    """Lower bounds of ``+z_t`` and ``-z_t`` for the global nodes ``targets`` ([Q]) over each box: rows
    [B, 2Q] in ``.lower``, and with ``keep`` the linear bounds at the inputs and the per-step coefficients.

    ``lo``/``hi`` [B, n_nodes]: the node intervals the relaxations are built on. ``upto``: index of the last
    instruction the pass starts from (every target lies at or before it; -1 when all targets are inputs).
    ``backward``: the storage ("auto", "sparse", "dense"). ``alphas``: relaxation parameters per nonlinear
    instruction, in the layout of the one storage of the pass (``graphver.bounds.alpha``); absent ones use
    CROWN's defaults. ``max_elements`` caps the memory of one chunk of rows (see ``storage_chunks``; a pass
    that keeps its coefficients or takes parameters runs sparse plans whole). ``check(deadline)`` runs
    before every step."""
    storage = choose_storage(tape, backward)
    whole = keep or alphas is not None
    if alphas is not None and storage == "dense":
        max_elements = None  # parameters come in the layout of all rows at once
    chunks = storage_chunks(tape, targets, upto, storage, lo.shape[0], max_elements, whole)
    parts = [(rows, run_pass(tape, part, lo, hi, alphas, keep, deadline)) for rows, part in chunks]
    return joined(parts, 2 * targets.numel())


def backward_lower(tape: Tape, lo: Tensor, hi: Tensor, targets: Tensor, upto: int, backward: str = "auto",
                   max_elements: int | None = 2**24, deadline: float | None = None) -> Tensor:
    """``backward_pass(...).lower``: lower bounds of ``+z_t`` and ``-z_t``, [B, 2Q]."""
    return backward_pass(tape, lo, hi, targets, upto, backward, max_elements=max_elements, deadline=deadline).lower


def refine_hook(tape: Tape, max_elements: int, backward: str = "auto", deadline: float | None = None):
    """A forward_bounds hook that tightens the marked outputs of an instruction with CROWN, in place
    (intersected with their IBP intervals). Passes above ``max_elements`` run in chunks of rows."""

    def refine(index, instr, lo, hi):
        targets = instr.start + instr.refine.to(lo.device)
        result = backward_lower(tape, lo, hi, targets, index, backward, max_elements, deadline)
        q = targets.numel()
        lo[:, targets] = torch.maximum(lo[:, targets], result[:, :q])
        hi[:, targets] = torch.minimum(hi[:, targets], -result[:, q:])

    return refine


def with_lower(bounds: LinearBounds, lower: Tensor, alphas: Tensor | None = None) -> LinearBounds:
    """The same linear bounds with better row bounds ``lower`` (and the parameters that reached them)."""
    return replace(bounds, lower=lower, alphas=alphas)
