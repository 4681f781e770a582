"""alpha-CROWN: optimise the relaxation parameters of every nonlinear node jointly, by Adam.

Every coefficient of a nonlinear step of the backward pass, that is every (query row, node) pair, gets a
parameter pair (lower and upper line), so each query row has its own set: [2, B, entries] per step on the
sparse storage, [2, B, rows, size] on the dense one. Every value is sound (the ops clamp it into [0, 1]
and build a valid line from it), so the best bound seen over the iterations is a certified bound. Rows
are independent (a row's bound depends on its own parameters only), so the dense storage optimises its
chunks of rows one after the other under the same memory cap as its passes. Intermediate bounds stay
those of CROWN (IBP intersected), computed once.
"""

from __future__ import annotations

import math
import time
import warnings

import torch
from torch import Tensor

from graphver.bounds.adam import Adam
from graphver.bounds.backward import Alphas, LinearBounds, backward_pass, choose_storage, run_pass, storage_chunks, with_lower
from graphver.bounds.ibp import argument_bounds
from graphver.clock import DeadlineReached, passed
from graphver.tape.tape import Tape


ALPHA_PASS_COST = 3.0  # one iteration (a pass with parameters and its gradient), in CROWN passes of its rows
ALPHA_TIME_SHARE = 0.25  # of the time left to the deadline, what the iterations of one call may use


def nonlinear_steps(tape: Tape, storage, lo: Tensor, hi: Tensor):
    """(step, instruction, flat argument bounds [l, u, ...] per output node, each [B, size]) of every
    nonlinear step of a storage: what a choice of relaxation parameters is made from."""
    for step in storage.steps():
        instr = tape.instructions[step.instruction]
        if instr.kind == "linear":
            continue
        yield step, instr, [t for pair in argument_bounds(instr, lo, hi) for t in pair]


def per_coefficient(storage, step, values: Tensor) -> Tensor:
    """Values per output node [B, size] repeated for every coefficient of the step (the parameter layout)."""
    return storage.as_parameters(step, storage.per_entry(step, values))


def initial_alphas(tape: Tape, storage, lo: Tensor, hi: Tensor) -> Alphas:
    """CROWN's default parameters (chord slopes, McCormick weight 1/2), one pair per coefficient."""
    alphas = {}
    for step, instr, flat in nonlinear_steps(tape, storage, lo, hi):
        start = per_coefficient(storage, step, instr.op_object.default_alpha(*flat, instr.param))
        alphas[step.instruction] = torch.stack([start, start]).clone().requires_grad_(True)
    return alphas


def constant_alphas(tape: Tape, storage, lo: Tensor, value: float) -> Alphas:
    """Every parameter at ``value`` (0 and 1: the extreme lines, e.g. both McCormick planes)."""
    batch = lo.shape[0]
    return {step.instruction: torch.full((2, *storage.parameter_shape(step, batch)), value, dtype=lo.dtype, device=lo.device)
            for step in storage.steps() if tape.instructions[step.instruction].kind != "linear"}


def placed(parts: list[tuple[Tensor, Tensor]], shape) -> Tensor:
    """Dense parameters [2, B, rows of a chunk, size] of chunks of rows (each with its row indices) as the
    parameters [2, B, rows, size] of all rows (``shape[2]``; zero on rows of chunks that do not reach the
    instruction, which do not use them)."""
    first = parts[0][1]
    out = first.new_zeros(first.shape[0], first.shape[1], shape[2], shape[3])
    for index, values in parts:
        out[:, :, index.to(out.device)] = values
    return out


def flatten_alphas(alphas: Alphas) -> Tensor:
    """Parameters of all steps as one [B, A] tensor (instructions in increasing order), e.g. to store per
    domain."""
    if not alphas:
        return torch.zeros(0, 0)
    parts = [alphas[k].detach().transpose(0, 1).reshape(alphas[k].shape[1], -1) for k in sorted(alphas)]
    return torch.cat(parts, dim=1)


def unflatten_alphas(flat: Tensor, template: Alphas) -> Alphas | None:
    """Inverse of ``flatten_alphas`` given tensors of the right shapes [2, B, ...] (the defaults for this
    batch); None when ``flat`` does not have their size (parameters of another pass)."""
    counts = {k: template[k][0, 0].numel() * 2 for k in template}
    batch = next(iter(template.values())).shape[1]
    if flat.dim() != 2 or flat.shape != (batch, sum(counts.values())):
        return None
    out, offset = {}, 0
    for k in sorted(template):
        shape = template[k].shape
        part = flat[:, offset : offset + counts[k]].to(template[k])
        out[k] = part.reshape(batch, 2, *shape[2:]).transpose(0, 1).contiguous()
        offset += counts[k]
    return out


def optimise(tape: Tape, storage, lo: Tensor, hi: Tensor, alphas: Alphas, best: Tensor, iterations: int, lr: float,
             warm: bool, deadline: float | None, seconds: float = 0.0) -> tuple[Tensor, bool]:
    """Adam on one storage's parameters (in place); returns the best bounds of its rows and whether to stop
    (Ctrl-C). ``seconds``: the expected seconds of one iteration (then those the last one took); an
    iteration starts only while it fits before ``deadline``, a pass without gradient while half of one
    does (on a 118-bus network an iteration takes seconds, and the passes check the deadline per step
    only). Stops early with the best bound so far."""

    def run():
        return run_pass(tape, storage, lo, hi, alphas, deadline=deadline).lower

    def fits(cost: float) -> bool:
        return deadline is None or time.perf_counter() + cost <= deadline

    try:
        if warm and fits(seconds / 2):
            with torch.no_grad():
                best = torch.maximum(best, run())
        optimizer = Adam(list(alphas.values()), lr=lr)
        for _ in range(iterations):
            if passed(deadline) or not fits(seconds):
                return best, False
            began = time.perf_counter()
            result = run()
            best = torch.maximum(best, result.detach())
            finite = torch.isfinite(result)
            if not bool(finite.any()):
                break
            loss = -result[finite].sum()
            optimizer.zero_grad()
            loss.backward()
            for value in alphas.values():  # a NaN partial (0 * inf inside a line's formula) would poison Adam's moments
                if value.grad is not None:
                    value.grad.nan_to_num_(nan=0.0, posinf=0.0, neginf=0.0)
            optimizer.step()
            with torch.no_grad():
                for value in alphas.values():
                    value.clamp_(0.0, 1.0)
            seconds = time.perf_counter() - began
        if fits(seconds / 2):
            with torch.no_grad():
                best = torch.maximum(best, run())
    except DeadlineReached:
        pass
    except KeyboardInterrupt:
        warnings.warn("alpha optimisation interrupted: returning the best bound proven so far", stacklevel=3)
        return best, True
    return best, False


def alpha_bounds(
    tape: Tape,
    lo: Tensor,
    hi: Tensor,
    targets: Tensor,
    upto: int,
    iterations: int,
    lr: float,
    backward: str = "auto",
    start: Tensor | None = None,
    keep: bool = False,
    max_elements: int = 2**24,
    deadline: float | None = None,
) -> LinearBounds:
    """Best lower bounds of ``+z_t`` and ``-z_t`` over Adam iterations (``.lower``, [B, 2Q]).

    ``start``: optional flattened parameters [B, A] to begin from (a parent domain's, in branch-and-bound;
    ignored when they belong to a pass of another shape). The result's ``alphas`` are the flattened
    parameters after the last step; with ``keep`` its linear bounds and per-step coefficients are those of
    the CROWN pass (``backward_pass``), which also gives the starting bound. The CROWN pass raises
    ``DeadlineReached`` past ``deadline``; the iterations use at most ``ALPHA_TIME_SHARE`` of the time left
    to it and stop with the best bound so far."""
    began = time.perf_counter()
    with torch.no_grad():
        crown = backward_pass(tape, lo, hi, targets, upto, backward, keep=keep, max_elements=max_elements,
                              deadline=deadline)
    crown_seconds = time.perf_counter() - began
    if deadline is not None and math.isfinite(deadline):
        # the iterations improve a bound that is already proven: they may use a share of the time left,
        # so that on a large network the root's alpha does not leave branch-and-bound no time at all
        deadline = time.perf_counter() + ALPHA_TIME_SHARE * max(0.0, deadline - time.perf_counter())
    if iterations == 0 or upto < 0:
        return crown
    storage = choose_storage(tape, backward)
    batch = lo.shape[0]
    chunks = storage_chunks(tape, targets, upto, storage, batch, max_elements if storage == "dense" else None, whole=True)
    best = crown.lower.clone()
    found: list[tuple[Tensor, Alphas]] = []
    # the parameter layout of one pass over all rows (what the result's ``alphas`` and ``start`` hold)
    whole = chunks[0][1] if len(chunks) == 1 else storage_chunks(tape, targets, upto, storage, batch, None, whole=True)[0][1]
    full = None
    if start is not None and start.numel():
        template = {k: v.detach() for k, v in constant_alphas(tape, whole, lo, 0.0).items()}
        full = unflatten_alphas(start, template) if template else None
    stop = False
    for rows, part in chunks:
        alphas = initial_alphas(tape, part, lo, hi)
        if not alphas:
            continue
        if full is not None:
            alphas = {k: (full[k].index_select(2, rows) if storage == "dense" else full[k]).detach().clone().requires_grad_(True)
                      for k in alphas}
        if not stop:
            expected = ALPHA_PASS_COST * crown_seconds * len(rows) / (2 * targets.numel())
            chunk_best, stop = optimise(tape, part, lo, hi, alphas, best[:, rows], iterations, lr, full is not None,
                                        deadline, expected)
            best[:, rows] = chunk_best
        found.append((rows, alphas))
    if not found:
        return crown
    if storage == "dense":
        shapes = {step.instruction: (2, *whole.parameter_shape(step, batch)) for step in whole.steps()
                  if tape.instructions[step.instruction].kind != "linear"}
        joined = {k: placed([(rows, alphas[k].detach()) for rows, alphas in found if k in alphas], shape)
                  for k, shape in shapes.items()}
    else:
        joined = {k: v.detach() for k, v in found[0][1].items()}
    return with_lower(crown, best, flatten_alphas(joined))
