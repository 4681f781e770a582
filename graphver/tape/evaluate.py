"""Run a tape on a batch of points."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from graphver.tape.tape import Tape


DENSE_SHARE = 0.05  # a linear instruction with at least this share of nonzeros in its (rows x columns read)
DENSE_ELEMENTS = 2**24  # and at most this many matrix entries is evaluated as a dense matrix product


@dataclass(frozen=True)
class DenseFormKey:
    """Tape-cache key of the dense matrices of dense linear instructions (``dense_forms``)."""

    device: str
    dtype: torch.dtype


def dense_forms(tape: Tape) -> list[tuple[Tensor, Tensor] | None]:
    """Per instruction: (the columns it reads [m], its weights as a dense [size, m] matrix) for dense linear
    instructions (a layer of a network), None for the others (sparse sums: gathered term by term)."""
    forms = []
    for instr in tape.instructions:
        form = None
        if instr.kind == "linear" and instr.cols.numel():
            columns, local = torch.unique(instr.cols, return_inverse=True)
            entries = instr.size * columns.numel()
            if entries <= DENSE_ELEMENTS and instr.cols.numel() >= DENSE_SHARE * entries:
                matrix = torch.zeros(instr.size, columns.numel(), dtype=instr.weights.dtype, device=instr.weights.device)
                matrix.index_put_((instr.rows, local), instr.weights, accumulate=True)
                form = (columns, matrix.T.contiguous())
        forms.append(form)
    return forms


def evaluate_all(tape: Tape, points: Tensor) -> Tensor:
    """Values of every node, shape [B, n_nodes], for points of shape [B, n_inputs]."""
    values = torch.empty(points.shape[0], tape.n_nodes, dtype=points.dtype, device=points.device)
    values[:, : tape.n_inputs] = points
    forms = tape.cache.get(DenseFormKey(str(points.device), points.dtype), lambda: dense_forms(tape.to(dtype=points.dtype)))
    for instr, form in zip(tape.instructions, forms):
        reads = ([form[0]] if form is not None else [instr.cols]) if instr.kind == "linear" else instr.args
        values[:, instr.start : instr.stop] = instruction_values(instr, form, [values[:, r] for r in reads])
    return values


def instruction_values(instr, form: tuple[Tensor, Tensor] | None, reads: list[Tensor]) -> Tensor:
    """An instruction's outputs [B, size] from the values it reads (``reads``: a linear's read columns, as
    ``dense_forms`` or its ``cols`` list them; a nonlinear op's arguments)."""
    if form is not None:
        return torch.addmm(instr.bias.to(reads[0].dtype), reads[0], form[1])
    if instr.kind == "linear":
        batch = reads[0].shape[0]
        return instr.bias.expand(batch, -1).clone().index_add(1, instr.rows, reads[0] * instr.weights)
    return instr.op_object.f(*reads, instr.param)


@dataclass(frozen=True)
class GatherKey:
    """Tape-cache key of the autograd path's gathers (``gather_plan``), per device."""

    device: str


def gather_plan(tape: Tape, forms) -> list[list[tuple[tuple[int, ...], Tensor]]]:
    """For every instruction, for each index tensor it reads (a linear's ``cols``, a nonlinear op's args):
    the segments holding those nodes (0: the inputs, k + 1: instruction k's outputs) and the indices into
    the concatenation of just those segments."""
    starts = [0] + [instr.start for instr in tape.instructions]
    stops = [tape.n_inputs] + [instr.stop for instr in tape.instructions]
    bounds = torch.tensor(starts)
    plans = []
    for instr in tape.instructions:
        form = forms[len(plans)]
        reads = ([form[0]] if form is not None else [instr.cols]) if instr.kind == "linear" else list(instr.args)
        plan = []
        for nodes in reads:
            cpu = nodes.cpu()
            segment = torch.searchsorted(bounds, cpu, right=True) - 1
            used = tuple(int(v) for v in torch.unique(segment))
            offset, local = 0, torch.empty_like(cpu)
            for seg in used:
                mask = segment == seg
                local[mask] = cpu[mask] - starts[seg] + offset
                offset += stops[seg] - starts[seg]
            plan.append((used, local.to(nodes.device)))
        plans.append(plan)
    return plans


def evaluate(tape: Tape, points: Tensor) -> Tensor:
    """Output values, shape [B, n_outputs], for points of shape [B, n_inputs] (autograd-friendly)."""
    if not torch.is_grad_enabled() or not points.requires_grad:
        return evaluate_all(tape, points)[:, tape.outputs]
    # Autograd path: one tensor per segment (inputs, each instruction's outputs), read by gathers that touch
    # only the segments an instruction uses (no buffer written in place, no copies of all earlier values)
    forms = tape.cache.get(DenseFormKey(str(points.device), points.dtype), lambda: dense_forms(tape.to(dtype=points.dtype)))
    plans = tape.cache.get(GatherKey(str(points.device)), lambda: gather_plan(tape, forms))
    segments = [points]

    def read(plan):
        used, local = plan
        if not used:
            return points[:, :0]
        source = segments[used[0]] if len(used) == 1 else torch.cat([segments[k] for k in used], dim=1)
        return source[:, local]

    for instr, plan, form in zip(tape.instructions, plans, forms):
        segments.append(instruction_values(instr, form, [read(p) for p in plan]))
    return torch.cat(segments, dim=1)[:, tape.outputs]
