"""Sparse backward plans: which (query, node) coefficients a backward pass can ever make non-zero.

A backward pass from target node t only reaches t's ancestors. On sparse graphs (power flow, most
physical models) a target has a few dozen ancestors among thousands of nodes, so CROWN keeps one
coefficient per *entry* ``(query row, ancestor node)`` instead of a dense [rows, nodes] matrix. The plan,
built once per (targets, start instruction) and cached on the tape, lists for every instruction the
entries on its outputs and, for each, the entries of the arguments the coefficient moves to. Query rows
are ``+z_t`` (rows 0..Q-1) and ``-z_t`` (rows Q..2Q-1), so one pass gives lower and upper bounds.

Entries are sorted by node, so the entries of one instruction's outputs are a contiguous range.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from graphver.tape.reach import reach
from graphver.tape.tape import Tape


@dataclass(frozen=True)
class PlanStep:
    """The entries on one instruction's outputs and where their coefficients go.

    ``begin:end`` is the range of entry ids on the outputs; ``local`` their output index within the
    instruction and ``query`` their row. Nonlinear instructions: ``arg_entries[s]`` is the entry of
    (row, argument s) for each output entry. Linear instructions: each term e of the expansion moves
    ``coefficient[term_source[e]] * weights[term_weight[e]]`` to entry ``term_target[e]``.
    """

    instruction: int
    begin: int
    end: int
    local: Tensor
    query: Tensor
    arg_entries: tuple[Tensor, ...] = ()
    term_source: Tensor | None = None
    term_target: Tensor | None = None
    term_weight: Tensor | None = None
    term_query: Tensor | None = None
    term_node: Tensor | None = None


@dataclass(frozen=True)
class BackwardPlan:
    rows: int  # 2Q
    entries: int
    start_entries: Tensor  # entry of (row, target) for every row
    start_values: Tensor  # +1 for rows < Q, -1 after
    steps: tuple[PlanStep, ...]  # backward order
    input_end: int  # entries [0, input_end) sit on input nodes
    input_node: Tensor
    input_query: Tensor
    entry_node: Tensor

    def to(self, device) -> "BackwardPlan":
        def move(value):
            return value.to(device) if isinstance(value, Tensor) else value

        steps = tuple(
            PlanStep(**{k: (tuple(move(a) for a in v) if isinstance(v, tuple) else move(v)) for k, v in s.__dict__.items()})
            for s in self.steps
        )
        return BackwardPlan(
            self.rows, self.entries, move(self.start_entries), move(self.start_values), steps, self.input_end,
            move(self.input_node), move(self.input_query), move(self.entry_node),
        )


def build_plan(tape: Tape, targets: Tensor, upto: int) -> BackwardPlan:
    targets_np = targets.cpu().numpy().astype(np.int64)
    q = len(targets_np)
    rows = 2 * q
    reached = reach(tape, targets_np, upto).tocoo()
    node = np.concatenate([reached.row, reached.row]).astype(np.int64)
    query = np.concatenate([reached.col, reached.col + q]).astype(np.int64)
    order = np.lexsort((query, node))
    node, query = node[order], query[order]
    keys = node * rows + query

    def entry(nodes: np.ndarray, queries: np.ndarray) -> np.ndarray:
        wanted = nodes.astype(np.int64) * rows + queries
        found = np.searchsorted(keys, wanted)
        assert np.all(keys[np.minimum(found, len(keys) - 1)] == wanted), "plan lookup of an unreached entry"
        return found

    def tensor(values) -> Tensor:
        return torch.as_tensor(np.ascontiguousarray(values), dtype=torch.long)

    steps = []
    for index in range(upto, -1, -1):
        instr = tape.instructions[index]
        begin, end = np.searchsorted(node, [instr.start, instr.stop])
        if begin == end:
            continue
        local = node[begin:end] - instr.start
        queries = query[begin:end]
        if instr.kind == "linear":
            rows_np = instr.rows.cpu().numpy()
            cols_np = instr.cols.cpu().numpy()
            order_rows = np.argsort(rows_np, kind="stable")
            counts = np.bincount(rows_np, minlength=instr.size)
            pointer = np.concatenate([[0], np.cumsum(counts)])
            per_entry = counts[local]
            source = np.repeat(np.arange(end - begin), per_entry)
            offset = np.arange(per_entry.sum()) - np.repeat(np.cumsum(per_entry) - per_entry, per_entry)
            term = order_rows[np.repeat(pointer[local], per_entry) + offset]
            term_query = queries[source]
            steps.append(PlanStep(
                index, int(begin), int(end), tensor(local), tensor(queries),
                term_source=tensor(source), term_target=tensor(entry(cols_np[term], term_query)),
                term_weight=tensor(term), term_query=tensor(term_query), term_node=tensor(cols_np[term]),
            ))
        else:
            arg_entries = tuple(tensor(entry(a.cpu().numpy()[local], queries)) for a in instr.args)
            steps.append(PlanStep(index, int(begin), int(end), tensor(local), tensor(queries), arg_entries=arg_entries))
    input_end = int(np.searchsorted(node, tape.n_inputs))
    start_rows = np.arange(rows)
    start_entries = entry(np.concatenate([targets_np, targets_np]), start_rows)
    start_values = torch.cat([torch.ones(q), -torch.ones(q)]).to(torch.float64)
    return BackwardPlan(
        rows, len(keys), tensor(start_entries), start_values, tuple(steps), input_end,
        tensor(node[:input_end]), tensor(query[:input_end]), tensor(node),
    )


@dataclass(frozen=True)
class PlanKey:
    """Tape cache key of the plan from ``targets`` at instruction ``upto``, with its tensors on ``device``."""

    upto: int
    targets: tuple[int, ...]
    device: str = "cpu"


def plan_for(tape: Tape, targets: Tensor, upto: int) -> BackwardPlan:
    """The (cached) plan of a backward pass from ``targets`` starting at instruction ``upto``."""
    key = PlanKey(upto, tuple(int(t) for t in targets.tolist()))
    plan = tape.cache.get(key, lambda: build_plan(tape, targets, upto))
    if tape.device.type != "cpu":
        return tape.cache.get(PlanKey(upto, key.targets, str(tape.device)), lambda: plan.to(tape.device))
    return plan
