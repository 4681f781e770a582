"""The branch-and-bound loop (GenBaB for general graphs).

The engine minimises an aggregated value over the box: ``v(x) = min_r row_r(x)`` ("all") or
``max_r row_r(x)`` ("any"). ``verify`` uses margin rows (>= 0 where the property holds) and asks whether
v >= 0 everywhere; ``bound`` uses one objective row and asks for min v. Each round:

1. pop up to ``batch_size`` open domains, best-first (smallest certified bound);
2. split each: on an input at the midpoint, or on a branchable node at its consumer's branching point
   (``auto``: both are bounded and the split whose worse child improves more is kept);
3. bound all children in one batched pass (intermediate bounds recomputed, node splits applied);
4. evaluate the children's centres (and, every few rounds, projected gradient from the worst ones and
   IPOPT inside the best ones) as candidate points: a violation ends ``verify`` (after a float64 and a
   30-digit re-check), a better value becomes ``bound``'s incumbent;
5. prune children that are proven (verify: margin >= 0), cannot beat the incumbent (bound), or are
   empty; push the rest.

The proven lower bound is the minimum over open, pruned and unsplittable domains and, until the root has
been bounded and filed, the best bound proven for the whole box so far (-inf before any): stopping at any
time (timeout, domain cap, Ctrl-C, in any phase) returns a valid result, never the minimum over an empty
store that nothing was filed into.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from fractions import Fraction

import sympy
import torch
from torch import Tensor

from graphver.bab.bounding import BatchBounds, bound_batch, domain_taint
from graphver.bab.branching import NODE_HEURISTICS, BranchContext, Candidates, InputWidthScore, lp_branching, nonlinear_support
from graphver.bab.domains import Domains, DomainStore
from graphver.bab.obbt import obbt
from graphver.bab.progress import Progress
from graphver.bounds.fbbt import fbbt
from graphver.bounds.ibp import DomainMarks, NodeSplits, argument_bounds, domain_error_text, forward_bounds
from graphver.bounds.lagrangian import lagrangian_lower, lp_multipliers
from graphver.bounds.lp import lp_lower, point_variant, relaxation_variants
from graphver.bounds.plan import plan_for
from graphver.errors import ModelError
from graphver.exact import enclosure
from graphver.options import BabOptions
from graphver.report.results import BabStats
from graphver.search.ipopt import ValueSearch, ipopt_available
from graphver.search.local import corners, projected_gradient, random_points
from graphver.tape import compile_expressions
from graphver.tape.evaluate import evaluate, evaluate_all


NODE_MIN_GAIN = 1e-4  # relative margin by which a node split must beat the input split (strong branching)
OBBT_ITERATIONS = 40  # Adam steps of the multipliers of each OBBT bound (2n of them, batched)
PENALTY = 100.0  # weight of constraint violations in the value that projected gradient minimises
UNDEFINED_CHECK_BOXES = 128  # boxes per bound call whose points are checked for an undefined, feasible point


@dataclass
class Outcome:
    lower: float  # proven lower bound of v over the whole box
    best_value: float  # smallest v found at a point
    best_point: Tensor | None  # [n]
    status: str  # "proven", "violated", "solved", "unknown"
    stats: BabStats = field(default_factory=BabStats)


class Engine:
    """One branch-and-bound run over ``rows`` (sympy expressions) on the model's box."""

    def __init__(self, model, rows, combine: str, mode: str, options: BabOptions, strict=None, label: str = "",
                 starts: Tensor | None = None, tape=None, confirm=None):
        """``tape``: a prebuilt tape whose outputs are the rows (importers such as ONNX; ``rows`` are then
        only their labels and the model must have no constraints). ``confirm(point) -> (bool, margins)``
        replaces the 30-digit sympy re-check of a candidate counterexample (e.g. by onnxruntime)."""
        self.model = model
        self.rows = list(rows)
        self.combine = combine
        self.mode = mode  # "verify" or "bound"
        self.options = options
        self.strict = tuple(strict) if strict is not None else (False,) * len(self.rows)
        self.label = label
        self.dtype = torch.float64 if options.dtype == "float64" else torch.float32
        device = options.device
        if device is not None and str(device).startswith("cuda") and not torch.cuda.is_available():
            from graphver.errors import SolverUnavailableError

            raise SolverUnavailableError(f"device {device!r} requested but CUDA is not available; use device='cpu'")
        # outputs: the rows (margins or objective), then the constraint rows c_k(x) <= 0
        self.n_rows = len(self.rows)
        self.constraint_rows = list(model.constraint_rows)
        if tape is not None:
            if self.constraint_rows or tape.n_outputs != self.n_rows:
                raise ValueError("a prebuilt tape needs a model without constraints and one output per row")
            self.tape = tape.to(device, self.dtype)
        else:
            self.tape = compile_expressions(model.variables, self.rows + self.constraint_rows).to(device, self.dtype)
        self.confirm = confirm
        self.constraint_index = torch.arange(self.n_rows, self.tape.n_outputs, device=self.tape.device)
        self.exact_tape = self.tape.to(dtype=torch.float64)
        self.device = self.tape.device
        self.candidates = Candidates.of(self.tape)
        self.candidates_device = self.candidates.nodes.to(self.device)
        self.plan = None
        self.input_heuristic = InputWidthScore()
        self.node_heuristic = NODE_HEURISTICS[options.node_heuristic](options.branch_points)
        self.generator = torch.Generator().manual_seed(options.seed)
        self.stats = BabStats()
        self.best_value = math.inf
        self.best_point: Tensor | None = None
        self.pruned_min = math.inf
        self.stuck_min = math.inf
        # proven bound of the part of the box not yet filed (store, pruned_min, stuck_min): the whole box until
        # the root is filed; -inf until some bound of the root is known (+inf once the root is filed)
        self.unfiled_lower = -math.inf
        self.node_win_rate = 1.0  # recent share of trial node splits that beat the input split
        self.confirmed_margins: list[str] | None = None  # 30-digit margins of the confirmed counterexample
        self.deadline = math.inf
        self.starts = starts  # the caller's points [S, n], evaluated first (e.g. a known good solution)
        self.multipliers: Tensor | None = None  # Lagrangian multipliers of the root's LP [rows, constraint rows]
        self.multiplier_scale: Tensor | None = None
        self.support: Tensor | None = None  # [outputs, inputs]: inputs that enter each row nonlinearly
        self.root_width: Tensor | None = None
        self.ipopt = self.make_ipopt()
        self.ipopt_interval = options.ipopt_every  # rounds between periodic IPOPT searches (backs off)
        self.ipopt_next = options.ipopt_every

    def make_ipopt(self) -> ValueSearch | None:
        """IPOPT for the search, per the ``ipopt`` option (a missing cyipopt only fails when it is "on")."""
        opts = self.options
        if opts.ipopt == "off" or opts.ipopt_starts == 0:
            self.stats.ipopt = "off"
            return None
        if not ipopt_available():
            if opts.ipopt == "on":
                from graphver.search.ipopt import import_cyipopt

                import_cyipopt()  # raises SolverUnavailableError with the install command
            self.stats.ipopt = "IPOPT unavailable (pip install cyipopt-wheels): searched without it"
            self.stats.messages.append(self.stats.ipopt)
            return None
        self.stats.ipopt = "used"
        return ValueSearch(self.exact_tape, self.combine, opts.ipopt_max_iter, opts.ipopt_time, n_rows=self.n_rows,
                           constraints=self.model.constraint_limits(first_row=self.n_rows))

    # --- values at points -------------------------------------------------------------------------
    def aggregate(self, rows: Tensor) -> Tensor:
        """min ("all") or max ("any") over the rows (constraint outputs, if present, are ignored)."""
        rows = rows[..., : self.n_rows]
        return rows.amin(dim=-1) if self.combine == "all" else rows.amax(dim=-1)

    def value(self, points: Tensor) -> Tensor:
        """The aggregated value v at points [P, n] (differentiable), plus a penalty on constraint violations
        that steers projected gradient towards the feasible set (feasibility itself is checked by consider)."""
        out = evaluate(self.tape, points)
        value = self.aggregate(out)
        if self.constraint_rows:
            value = value + PENALTY * out[:, self.n_rows :].clamp(min=0).sum(dim=1)
        return value

    def violated(self, value: Tensor) -> Tensor:
        """verify: points where the property fails (strict rows also fail at margin 0)."""
        return value <= 0 if any(self.strict) else value < 0

    def consider(self, points: Tensor, source: str) -> None:
        """Evaluate candidate points; keep the best (smallest v) as the incumbent, noting its ``source``."""
        if points.numel() == 0:
            return
        with torch.no_grad():
            out = evaluate(self.exact_tape, points.to(torch.float64))
        values = self.aggregate(out)
        # a point where the expression is undefined or overflows (nan, +-inf) is no candidate, nor is one
        # that violates a constraint by more than the feasibility tolerance
        ok = torch.isfinite(values)
        if self.constraint_rows:
            ok = ok & (out[:, self.n_rows :] <= self.options.feasibility_tol).all(dim=1)
        values = torch.where(ok, values, torch.full_like(values, math.inf))
        self.stats.candidates_evaluated += int(points.shape[0])
        best = int(torch.argmin(values))
        if float(values[best]) < self.best_value:
            self.best_value = float(values[best])
            self.best_point = points[best].detach().to(torch.float64).cpu()
            self.stats.incumbent_from = source

    def confirmed(self, point: Tensor) -> bool:
        """Re-check a candidate counterexample with certified enclosures of its margins; only confirmed ones count.

        The point's coordinates enter as exact rationals (a float64 is a dyadic rational) and every margin
        is enclosed by ``graphver.exact.enclosure`` (interval arithmetic, 256 then 1024 bits): the point is
        a counterexample only if the enclosures prove it (a margin like (x + 1e-17)**2 - x**2 - 2e-17 x,
        exactly 1e-34, keeps its sign; a margin that is exactly 0 but not provably so is never confirmed
        as negative). Constraints must hold within ``feasibility_tol``, certainly."""
        if self.confirm is not None:
            violated, margins = self.confirm(point)
            if violated:
                self.confirmed_margins = [str(m) for m in margins]
            return bool(violated)
        subs = {s: sympy.Rational(float(v)) for s, v in zip(self.model.variables, point.tolist())}
        try:  # certified enclosures (sympy.N cannot tell an exact 0 from noise such as -1e-160)
            margins = [enclosure(r.subs(subs)) for r in self.rows]
            tol = Fraction(self.options.feasibility_tol)
            for row in self.constraint_rows:  # the point must be feasible within the tolerance, certainly
                if enclosure(row.subs(subs))[1] > tol:
                    return False
        except ModelError:  # a margin or constraint that is undefined or cannot be certified at the point
            return False
        # a row is certainly violated when its whole enclosure is below 0 (at or below 0 for a strict row)
        violated = [(hi <= 0) if strict else (hi < 0) for (_, hi), strict in zip(margins, self.strict)]
        confirmed = any(violated) if self.combine == "all" else all(violated)
        if confirmed:
            self.confirmed_margins = [str(sympy.N(sympy.Rational(lo.numerator, lo.denominator) / 2
                                                  + sympy.Rational(hi.numerator, hi.denominator) / 2, 30))
                                      for lo, hi in margins]
        return confirmed

    # --- bounding and branching -------------------------------------------------------------------
    def bound(self, lower: Tensor, upper: Tensor, split_lo: Tensor, split_hi: Tensor, depth: Tensor,
              alphas: Tensor | None, method: str) -> Domains:
        """Bound a batch of domains (warm-starting alpha from ``alphas``) and decide each one's next split."""
        start = time.perf_counter()
        empty = torch.zeros(lower.shape[0], dtype=torch.bool, device=lower.device)
        if self.constraint_rows and self.options.fbbt_rounds:
            before = (upper - lower).sum()
            lower, upper, empty = fbbt(self.tape, lower, upper, self.constraint_index,
                                       NodeSplits(self.candidates_device, split_lo, split_hi), self.options.fbbt_rounds)
            self.stats.fbbt_infeasible += int(empty.sum())
            self.stats.fbbt_shrink += float(before - (upper - lower).sum())
        splits = NodeSplits(self.candidates_device, split_lo.clone(), split_hi.clone())
        result = bound_batch(self.tape, lower, upper, splits, method, self.options.bound_options,
                             alphas if method == "alpha" else None)
        self.stats.time_bound += time.perf_counter() - start
        self.stats.domains_explored += lower.shape[0]
        if bool((result.domain_error & ~empty).any()):
            bad = torch.nonzero(result.domain_error & ~empty).flatten()[:UNDEFINED_CHECK_BOXES]
            self.check_defined(lower[bad], upper[bad])
        if result.domain_message and self.stats.domain_errors == 0:
            self.stats.messages.append("a domain left an op's domain (split further): " + result.domain_message)
        self.stats.domain_errors += int(result.domain_error.sum())
        rows = result.rows_lower[:, : self.n_rows]
        if self.constraint_rows and self.options.lagrangian_iterations and "offset" in result.record:
            start_lagrangian = time.perf_counter()
            q = self.tape.n_outputs  # the pass also bounds the negated outputs (rows q..2q-1): not used here
            coef, offset = result.record["input_coef"][:, :q], result.record["offset"][:, :q]
            if self.multipliers is None:  # the root: optimal multipliers of its linear relaxation, by an LP
                found = lp_multipliers(coef[0], offset[0], lower[0], upper[0], self.n_rows)
                self.multipliers = found if found is not None else torch.zeros(self.n_rows, q - self.n_rows,
                                                                                 dtype=coef.dtype, device=coef.device)
                self.multiplier_scale = self.multipliers.abs() + self.multipliers.abs().mean() + 1.0
            # two starts per domain, the root's multipliers and zero (the plain bound), optimised in one batch
            b = lower.shape[0]
            start_mu = torch.cat([self.multipliers.expand(b, -1, -1), torch.zeros_like(self.multipliers).expand(b, -1, -1)])
            both, _ = lagrangian_lower(coef.repeat(2, 1, 1), offset.repeat(2, 1), lower.repeat(2, 1), upper.repeat(2, 1),
                                       self.n_rows, self.options.lagrangian_iterations, start=start_mu,
                                       scale=self.multiplier_scale)
            lagrangian = torch.maximum(both[:b], both[b:])
            # a box that left an op's domain has meaningless linear bounds for some rows: no Lagrangian bound
            lagrangian = torch.where(result.domain_error[:, None], torch.full_like(lagrangian, -math.inf), lagrangian)
            self.stats.lagrangian_improved += int((lagrangian > rows).any(dim=1).sum())
            rows = torch.maximum(rows, lagrangian)
            self.stats.time_lagrangian += time.perf_counter() - start_lagrangian
        lp_choice = None
        if self.constraint_rows and self.options.lp_bounds and "offset" in result.record:
            start_lp = time.perf_counter()
            lp_rows, lp_choice = self.lp_bound(result, lower, upper)
            lp_rows = torch.where(result.domain_error[:, None], torch.full_like(lp_rows, -math.inf), lp_rows)
            self.stats.lp_improved += int((lp_rows > rows).any(dim=1).sum())
            rows = torch.maximum(rows, lp_rows)
            self.stats.time_lp += time.perf_counter() - start_lp
        # a constraint row certified > 0 on the whole domain: no feasible point in it
        infeasible = empty | (result.rows_lower[:, self.n_rows :] > 0).any(dim=1)
        if self.constraint_rows:
            self.stats.constraint_infeasible += int(infeasible.sum())
        rows = torch.where(infeasible[:, None], torch.full_like(rows, math.inf), rows)
        if self.mode == "verify":
            proven_rows = torch.where(torch.tensor(self.strict, device=rows.device), rows > 0, rows >= 0)
            proven = proven_rows.all(dim=1) if self.combine == "all" else proven_rows.any(dim=1)
        else:
            proven = torch.zeros(rows.shape[0], dtype=torch.bool, device=rows.device)
        lower_bound = self.aggregate(rows)
        lower_bound = torch.where(torch.isnan(lower_bound), torch.full_like(lower_bound, -math.inf), lower_bound)
        lower_bound = torch.where(proven & (lower_bound < 0), torch.zeros_like(lower_bound), lower_bound)
        row = rows.argmin(dim=1) if self.combine == "all" else rows.argmax(dim=1)
        start = time.perf_counter()
        choice = self.decide(result, lower, upper, row)
        if lp_choice is not None:  # spatial branching on the LP's worst relaxation error, where it has one
            has = lp_choice[0] >= 0
            choice = (torch.where(has, lp_choice[0], choice[0]), torch.where(has, lp_choice[1], choice[1]),
                      torch.where(has, torch.full_like(choice[2], -1), choice[2]), choice[3])
        self.stats.time_branch += time.perf_counter() - start
        kept = result.alphas if result.alphas is not None else torch.zeros(lower.shape[0], 0, dtype=lower.dtype,
                                                                                    device=lower.device)
        if kept.shape[0] != lower.shape[0]:
            kept = torch.zeros(lower.shape[0], 0, dtype=lower.dtype, device=lower.device)
        return Domains(lower, upper, split_lo, split_hi, lower_bound, depth, row, *choice, kept.to(lower.device))

    def check_defined(self, lower: Tensor, upper: Tensor) -> None:
        """Raise ``DomainError`` when an op of the rows is undefined at a point of one of the boxes (its centre
        or a corner) that satisfies every constraint: no split and no constraint can exclude that point, so
        branch-and-bound would split the region forever. Both facts are certified on the point box in float64
        (IBP): the op's argument interval there lies outside its domain at every corner, as the op checks its
        domain (``domain_taint``), and every constraint row is defined there with an upper bound <= 0 (no
        tolerance). A region that the constraints exclude (``log(x)`` with ``x >= 0.5``) never raises: its
        points violate a constraint; nor does a box whose interval leaves a domain only through IBP's
        overestimate (its points are all defined). Those boxes are split further."""
        tape = self.exact_tape
        points = torch.cat([lower + (upper - lower) / 2, lower, upper]).to(device=tape.device, dtype=torch.float64)
        marks = DomainMarks(points.shape[0], points.device)
        with torch.no_grad():
            lo, hi = forward_bounds(tape, points, points, None, None, marks)
        if not bool(marks.bad.any()):
            return
        tainted, witnessed = domain_taint(tape, lo, hi)
        found = witnessed.any(dim=1)
        if self.constraint_rows:
            rows = tape.outputs[self.n_rows :]
            found &= (~tainted[:, rows] & (hi[:, rows] <= 0)).all(dim=1)
        if not bool(found.any()):
            return
        from graphver.errors import DomainError
        from graphver.report.results import format_point

        p = int(torch.nonzero(found)[0])
        node = int(torch.nonzero(witnessed[p])[0])
        instr = tape.instructions[tape.instruction_of(node)]
        bounds = argument_bounds(instr, lo[p : p + 1], hi[p : p + 1])
        bad = torch.zeros(1, instr.size, dtype=torch.bool, device=points.device)
        bad[0, node - instr.start] = True
        names = getattr(self.model, "names", None) or [f"x_{i}" for i in range(points.shape[1])]
        where = format_point(dict(zip(names, points[p].tolist())))
        feasible = " that satisfies every constraint" if self.constraint_rows else ""
        raise DomainError(f"undefined at {where}, a point of the box{feasible}: "
                          f"{domain_error_text(tape, instr, bounds, bad)} (Or add a constraint that excludes such "
                          f"points.)")

    def output_plan(self):
        """The backward plan of the final pass (all outputs)."""
        if self.plan is None:
            targets = self.tape.outputs
            self.plan = plan_for(self.tape, targets, max(self.tape.instruction_of(int(t)) for t in targets))
        return self.plan

    def lp_bound(self, result: BatchBounds, lower: Tensor, upper: Tensor) -> tuple[Tensor, tuple | None]:
        """LP bounds of every row over each domain (``graphver.bounds.lp``) from the pass's linear bounds and
        their variants, each LP point a candidate; and the split each LP suggests (``lp_branching``)."""
        q = self.tape.n_outputs
        variants = [(result.record["input_coef"][:, :q], result.record["offset"][:, :q])]
        variants += relaxation_variants(self.tape, self.output_plan(), result.lo, result.hi)
        best = None
        for cut_round in range(1 + self.options.lp_cut_rounds):
            con_coef = torch.cat([c[:, self.n_rows :] for c, _ in variants], 1)
            con_offset = torch.cat([o[:, self.n_rows :] for _, o in variants], 1)
            bounds, points = [], None
            for r in range(self.n_rows):
                obj_coef = torch.stack([c[:, r] for c, _ in variants], 1)
                obj_offset = torch.stack([o[:, r] for _, o in variants], 1)
                bound, found, mu = lp_lower(obj_coef, obj_offset, con_coef, con_offset, lower, upper, self.deadline)
                bounds.append(bound)
                if r == 0:
                    points, multipliers = found, mu
            self.stats.lp_solved += lower.shape[0] * self.n_rows
            best = torch.stack(bounds, 1) if best is None else torch.maximum(best, torch.stack(bounds, 1))
            if cut_round == self.options.lp_cut_rounds or time.perf_counter() > self.deadline:
                break
            # cuts: the relaxation lines tightest at the LP point (box centre where there is none)
            at = torch.where(torch.isnan(points), lower + (upper - lower) / 2, points)
            at = torch.minimum(torch.maximum(at, lower), upper)
            with torch.no_grad():
                values = evaluate_all(self.tape, at)
            values = torch.minimum(torch.maximum(values, result.lo), result.hi)
            variants.append(point_variant(self.tape, self.output_plan(), result.lo, result.hi, values))
        has_point = ~torch.isnan(points).any(dim=1)
        if bool(has_point.any()):
            inside = torch.minimum(torch.maximum(points[has_point], lower[has_point]), upper[has_point])
            self.consider(inside, "lp")
        choice = None
        if self.mode == "bound":
            choice = lp_branching(self.tape, self.lp_support(), points, multipliers.view(lower.shape[0], len(variants), -1).sum(1),
                                  lower, upper, self.root_width, self.n_rows)
        return best, choice

    def lp_support(self) -> Tensor:
        if self.support is None:
            self.support = nonlinear_support(self.tape).to(self.device)
        return self.support

    def decide(self, result: BatchBounds, lower, upper, row):
        """Each domain's best input split and best node split (scores from its own bound pass)."""
        self.output_plan()
        bad = result.domain_error
        width = upper - lower
        if "input_coef" in result.record:
            ctx = BranchContext(self.tape, self.plan, result.record, result.lo, result.hi, lower, upper, row)
            input_scores, input_points = self.input_heuristic.scores(ctx)
            input_scores = torch.where(bad[:, None], width, input_scores)
        else:
            ctx = None
            input_scores, input_points = width.clone(), lower + width / 2
        input_scores = torch.where(width > 0, torch.nan_to_num(input_scores, nan=0.0), torch.full_like(width, -1.0))
        input_choice = input_scores.argmax(dim=1)
        take = torch.arange(lower.shape[0], device=lower.device)
        input_point = input_points[take, input_choice]
        node_choice = torch.full_like(input_choice, -1)
        node_point = torch.zeros_like(input_point)
        if (ctx is not None and self.options.branching != "input" and self.candidates.nodes.numel()
                and "step_coef" in result.record):  # the dense pass records no per-step coefficients
            scores, points = self.node_heuristic.scores(ctx)
            node_lo, node_hi = result.lo[:, self.candidates_device], result.hi[:, self.candidates_device]
            # inputs are split by the input rule (midpoint); node candidates are intermediate nodes only
            not_input = (self.candidates_device >= self.tape.n_inputs)[None, :]
            inside = (points > node_lo) & (points < node_hi) & (scores > 0) & not_input
            scores = torch.where(inside & ~bad[:, None], scores, torch.full_like(scores, -1.0))
            best = scores.argmax(dim=1)
            usable = scores[take, best] > 0
            node_choice = torch.where(usable, best, node_choice)
            node_point = points[take, best]
        return input_choice, input_point, node_choice, node_point

    def children(self, parents: Domains, use_node: Tensor) -> tuple[Tensor, ...]:
        """Boxes and split intervals of the two children of each parent ([2P, ...], children interleaved)."""
        p = len(parents)
        lower = parents.lower.repeat_interleave(2, 0).clone()
        upper = parents.upper.repeat_interleave(2, 0).clone()
        split_lo = parents.split_lo.repeat_interleave(2, 0).clone()
        split_hi = parents.split_hi.repeat_interleave(2, 0).clone()
        left = torch.arange(p, device=lower.device) * 2
        right = left + 1
        nodes = self.candidates_device
        node_index = parents.node_choice.clamp(min=0)
        node_global = nodes[node_index] if nodes.numel() else node_index
        node_is_input = use_node & (node_global < self.tape.n_inputs)
        # input splits (also node choices that are inputs)
        var = torch.where(node_is_input, node_global, parents.input_choice)
        point = torch.where(use_node, parents.node_point, parents.input_point)
        by_input = ~use_node | node_is_input
        rows_in = torch.nonzero(by_input).flatten()
        upper[left[rows_in], var[rows_in]] = point[rows_in]
        lower[right[rows_in], var[rows_in]] = point[rows_in]
        rows_node = torch.nonzero(~by_input).flatten()
        k = node_index[rows_node]
        split_hi[left[rows_node], k] = torch.minimum(split_hi[left[rows_node], k], point[rows_node])
        split_lo[right[rows_node], k] = torch.maximum(split_lo[right[rows_node], k], point[rows_node])
        depth = parents.depth.repeat_interleave(2, 0) + 1
        return lower, upper, split_lo, split_hi, depth, parents.alphas.repeat_interleave(2, 0)

    def strong_branching(self, parents: Domains, has_node: Tensor, method: str) -> tuple[Tensor, Domains]:
        """Bound the input split of every parent and the node split of a trial subset, keep the better.

        The trial subset is adaptive: every parent with a node candidate while node splits keep winning,
        down to a tenth of them (chosen by the seeded generator) when they rarely do, so that a graph where
        node splits do not help costs little more than input branching alone."""
        p = len(parents)
        rate = max(0.1, min(1.0, 4.0 * self.node_win_rate))
        draw = torch.rand(p, generator=self.generator).to(has_node.device) < rate
        trial = torch.nonzero(has_node & draw).flatten()
        by_input = self.children(parents, torch.zeros_like(has_node))
        if trial.numel() == 0:
            return torch.zeros_like(has_node), self.bound(*by_input, method)
        tried = parents.select(trial)
        by_node = self.children(tried, torch.ones(trial.numel(), dtype=torch.bool, device=has_node.device))
        bounded = self.bound(*[torch.cat([a, b]) for a, b in zip(by_input, by_node)], method)
        t = trial.numel()
        worse_input = bounded.lower_bound[: 2 * p].view(p, 2).amin(dim=1)
        worse_node = bounded.lower_bound[2 * p :].view(t, 2).amin(dim=1)
        # Compare children as they will be kept (a child inherits its parent's bound when that is better).
        # The node split must beat the input split and improve on the parent by a clear margin: a child whose
        # node constraint is unsatisfiable but not yet detected, or a split of a variable that is already
        # narrow, gains a little forever and starves the splits that matter.
        parent_bound = tried.lower_bound
        gain = (torch.maximum(worse_node, parent_bound) - torch.maximum(worse_input[trial], parent_bound))
        wins = gain.nan_to_num(nan=-1.0) > NODE_MIN_GAIN * (1.0 + parent_bound.abs())
        self.node_win_rate = 0.8 * self.node_win_rate + 0.2 * float(wins.float().mean())
        use_node = torch.zeros_like(has_node)
        use_node[trial[wins]] = True
        rows = torch.stack([2 * torch.arange(p, device=has_node.device), 2 * torch.arange(p, device=has_node.device) + 1], 1)
        node_rows = 2 * p + torch.stack([2 * torch.arange(t, device=has_node.device), 2 * torch.arange(t, device=has_node.device) + 1], 1)
        rows[trial[wins]] = node_rows[wins]
        return use_node, bounded.select(rows.flatten())

    def split(self, parents: Domains) -> Domains:
        """Children of every parent; with ``auto`` branching, strong branching between the best input split and
        the best node split decides per parent (see ``strong_branching``)."""
        method = self.options.method
        has_node = parents.node_choice >= 0
        if self.options.branching == "input" or not bool(has_node.any()):
            use_node = torch.zeros_like(has_node)
            children = self.bound(*self.children(parents, use_node), method)
        elif self.options.branching == "node":
            use_node = has_node
            children = self.bound(*self.children(parents, use_node), method)
        else:
            use_node, children = self.strong_branching(parents, has_node, method)
        # a child is a subset of its parent: the parent's bound holds for it too
        children.lower_bound = torch.maximum(children.lower_bound, parents.lower_bound.repeat_interleave(2, 0))
        node_global = self.candidates_device[parents.node_choice.clamp(min=0)] if self.candidates.nodes.numel() else None
        on_nodes = use_node if node_global is None else use_node & (node_global >= self.tape.n_inputs)
        self.stats.node_splits += int(on_nodes.sum())
        self.stats.input_splits += len(parents) - int(on_nodes.sum())
        return children

    # --- the loop ----------------------------------------------------------------------------------
    def search_root(self, lower: Tensor, upper: Tensor) -> None:
        start = time.perf_counter()
        opts = self.options
        points = [lower + (upper - lower) / 2, lower, upper]
        if opts.samples:
            points.append(random_points(lower.cpu(), upper.cpu(), opts.samples, self.generator).to(self.device))
            points.append(corners(lower.cpu(), upper.cpu(), min(opts.samples, 64), self.generator).to(self.device))
        candidates = torch.cat(points).to(self.dtype)
        if self.starts is not None:
            given = torch.minimum(torch.maximum(self.starts.to(lower), lower), upper)
            self.consider(given, "given start")
        self.consider(candidates, "sampling")
        found = self.pgd(candidates, lower.expand_as(candidates), upper.expand_as(candidates), keep=opts.pgd_domains)
        self.polish(lower, upper)
        if self.ipopt is not None:
            # starts: the box centre, the incumbent, then the best other samples and projected-gradient points
            pool = torch.cat([candidates[:1], self.best_point.to(candidates)[None] if self.best_point is not None
                              else candidates[:1], candidates[1:], found])
            with torch.no_grad():
                values = torch.nan_to_num(self.value(pool), nan=math.inf)
            values[:2] = -math.inf  # always start from the centre and the incumbent
            order = torch.argsort(values)
            starts = unique_rows(pool[order])[: opts.ipopt_starts]
            self.local_search(starts, lower.expand_as(starts), upper.expand_as(starts), self.deadline)
        self.stats.time_search += time.perf_counter() - start

    def tighten_root(self, lower: Tensor, upper: Tensor) -> tuple[Tensor | None, Tensor | None]:
        """OBBT on the root box (``bound``: with the incumbent as objective cut-off). Returns the tightened
        box, or (None, None) when nothing of the box can be feasible (and better than the incumbent)."""
        start = time.perf_counter()
        cutoff = self.best_value if self.mode == "bound" and math.isfinite(self.best_value) else None
        rows = list(range(self.n_rows, self.tape.n_outputs))
        new_lower, new_upper, kept, empty = obbt(self.tape, lower, upper, rows, 0 if cutoff is not None else None,
                                                 cutoff, self.options.bound_options, self.options.obbt_rounds,
                                                 OBBT_ITERATIONS, self.deadline)
        self.stats.obbt_kept = kept
        if cutoff is not None:
            # the removed points have f > cutoff: the cut-off stays a candidate lower bound (see bab/obbt.py)
            self.pruned_min = min(self.pruned_min, cutoff)
        self.stats.time_bound += time.perf_counter() - start
        if empty:
            self.stats.constraint_infeasible += 1
            return None, None
        return new_lower, new_upper

    def pgd(self, starts: Tensor, lower: Tensor, upper: Tensor, keep: int) -> Tensor:
        if self.options.pgd_steps <= 0 or starts.numel() == 0:
            return starts[:0]
        with torch.no_grad():
            values = torch.nan_to_num(self.value(starts), nan=math.inf)
        order = torch.argsort(values)[:keep]
        found = projected_gradient(self.value, starts[order], lower[order], upper[order], self.options.pgd_steps)
        self.consider(found, "projected gradient")
        return found

    def local_search(self, starts: Tensor, lower: Tensor, upper: Tensor, deadline: float) -> None:
        """IPOPT from each start inside its box; every final point is a candidate (converged or not)."""
        start = time.perf_counter()
        as_numpy = lambda t: t.detach().to("cpu", torch.float64).numpy()
        runs = self.ipopt.run(as_numpy(starts), as_numpy(lower), as_numpy(upper), deadline)
        for run in runs:
            before = self.best_value
            self.consider(torch.as_tensor(run.x, device=self.device)[None], "ipopt")
            self.stats.ipopt_calls += 1
            self.stats.ipopt_failures += int(not run.success)
            self.stats.ipopt_improved += int(self.best_value < before)
            self.stats.ipopt_status[run.status] = self.stats.ipopt_status.get(run.status, 0) + 1
        self.stats.time_ipopt += time.perf_counter() - start

    def polish(self, lower: Tensor, upper: Tensor) -> None:
        """Projected gradient in shrinking boxes around the incumbent: a cheap local refinement that makes
        ``bound``'s incumbent (and so its pruning) much better than the best sampled point."""
        if self.best_point is None or self.options.pgd_steps <= 0:
            return
        point = self.best_point.to(device=self.device, dtype=self.dtype)[None]
        for radius in (1e-1, 1e-2, 1e-3, 1e-4):
            half = (upper - lower) * radius
            box_low = torch.maximum(point - half, lower)
            box_high = torch.minimum(point + half, upper)
            found = projected_gradient(self.value, point, box_low, box_high, self.options.pgd_steps)
            self.consider(found, "projected gradient")
            point = self.best_point.to(device=self.device, dtype=self.dtype)[None]

    def ipopt_due(self) -> bool:
        """Periodic IPOPT searches back off: the interval doubles after each search that did not improve
        the best point and returns to ``ipopt_every`` after one that did (rounds, not seconds, so that runs
        stay deterministic for a fixed seed)."""
        return self.ipopt is not None and self.options.ipopt_every > 0 and self.stats.rounds >= self.ipopt_next

    def periodic_search(self, children: Domains) -> None:
        best = children.select(torch.argsort(children.lower_bound)[: self.options.ipopt_starts])
        centres = best.lower + (best.upper - best.lower) / 2
        before = self.best_value
        self.local_search(centres, best.lower, best.upper, self.deadline)
        self.ipopt_interval = self.options.ipopt_every if self.best_value < before else 2 * self.ipopt_interval
        self.ipopt_next = self.stats.rounds + self.ipopt_interval

    def done(self, store: DomainStore) -> str | None:
        if self.mode == "verify":
            if self.best_point is not None and bool(self.violated(torch.tensor(self.best_value))):
                if self.confirmed(self.best_point):
                    return "falsified"
                if self.stats.candidates_unconfirmed == 0:
                    self.stats.messages.append(f"candidate with margin {self.best_value:.3g} not confirmed at 30 digits")
                self.stats.candidates_unconfirmed += 1
                self.best_value = math.inf  # discard it and go on
            if len(store) == 0:
                return "proven"
        else:
            lower = self.proven_lower(store)
            if self.within_tolerance(lower):
                return "solved"
            if len(store) == 0:
                return "solved" if self.within_tolerance(lower) else "exhausted"
        return None

    def tolerance(self) -> float:
        return max(self.options.abs_tol, self.options.rel_tol * abs(self.best_value)) if math.isfinite(self.best_value) else 0.0

    def within_tolerance(self, lower: float) -> bool:
        return math.isfinite(self.best_value) and self.best_value - lower <= self.tolerance()

    def prune_mask(self, domains: Domains) -> Tensor:
        if self.mode == "verify":
            return domains.lower_bound >= 0 if not any(self.strict) else domains.lower_bound > 0
        if not math.isfinite(self.best_value):
            return torch.zeros(len(domains), dtype=torch.bool, device=domains.lower_bound.device)
        return domains.lower_bound >= self.best_value - self.tolerance()

    def file(self, store: DomainStore, domains: Domains) -> None:
        """Prune proven / empty children, set aside unsplittable ones, push the rest."""
        if len(domains) == 0:
            return
        empty = torch.isinf(domains.lower_bound) & (domains.lower_bound > 0)
        self.stats.pruned_infeasible += int(empty.sum())
        pruned = self.prune_mask(domains) | empty
        finite_pruned = domains.lower_bound[pruned & ~empty]
        if finite_pruned.numel():
            self.pruned_min = min(self.pruned_min, float(finite_pruned.min()))
        self.stats.pruned_bound += int((pruned & ~empty).sum())
        width = (domains.upper - domains.lower).amax(dim=1)
        stuck = ~pruned & ((domains.depth >= self.options.max_depth) | ((width <= 0) & (domains.node_choice < 0)))
        if bool(stuck.any()):
            self.stuck_min = min(self.stuck_min, float(domains.lower_bound[stuck].min()))
            self.consider(domains.lower[stuck] + (domains.upper[stuck] - domains.lower[stuck]) / 2, "domain centre")
        keep = torch.nonzero(~pruned & ~stuck).flatten()
        store.push(domains.select(keep))
        self.stats.max_depth = max(self.stats.max_depth, int(domains.depth.max()))

    def proven_lower(self, store: DomainStore) -> float:
        """The proven lower bound of v over the box: the minimum over open, pruned and set-aside domains and
        the part not filed yet (-inf before the root is bounded). NaN anywhere gives -inf."""
        parts = (store.min_bound(), self.pruned_min, self.stuck_min, self.unfiled_lower)
        return -math.inf if any(math.isnan(p) for p in parts) else min(parts)

    def root_bounded(self, root: Domains) -> None:
        """The root's bound is proven for the whole box (the part that OBBT removed is in pruned_min)."""
        if len(root):
            bound = float(root.lower_bound.min())
            self.unfiled_lower = max(self.unfiled_lower, -math.inf if math.isnan(bound) else bound)

    def run(self) -> Outcome:
        opts = self.options
        start = time.perf_counter()
        deadline = start + opts.timeout
        self.deadline = deadline
        lower, upper = self.model.boxes_tensor(None, None, self.dtype, self.device)
        self.root_width = (upper - lower)[0]
        k = self.candidates.nodes.numel()
        split_lo = torch.full((1, k), -math.inf, dtype=self.dtype, device=self.device)
        split_hi = torch.full((1, k), math.inf, dtype=self.dtype, device=self.device)
        store = DomainStore(opts.max_domains)
        progress = Progress(opts.progress, self.mode, self.label)
        status = None
        # the store's domains before the round's pop: restored if Ctrl-C cuts the round short (every popped
        # domain's bound must still count); the domains are never modified in place, so this is a reference
        snapshot = None
        try:
            self.check_defined(lower, upper)  # an op undefined at the box's centre or a corner: fail at once
            if self.quick_proof(store, lower, upper, split_lo, split_hi):
                return self.finish(self.done(store), store, start)
            self.search_root(lower, upper)
            if self.constraint_rows and opts.obbt_rounds:
                lower, upper = self.tighten_root(lower, upper)
            root = self.bound(*(self.model.boxes_tensor(None, None, self.dtype, self.device) if lower is None
                                else (lower, upper)), split_lo, split_hi, torch.zeros(1, dtype=torch.long, device=self.device),
                              None, opts.root_method)
            self.root_bounded(root)
            self.stats.proved_by = opts.root_method
            if lower is None:  # the relaxed feasible set is empty: nothing to bound
                root = root.select(torch.zeros(0, dtype=torch.long, device=self.device))
            self.file(store, root)
            self.unfiled_lower = math.inf  # the whole box is in the store, pruned or set aside
            self.stats.history.append((time.perf_counter() - start, self.proven_lower(store), self.best_value))
            status = self.done(store)
            while status is None:
                if time.perf_counter() > deadline:
                    status = "timeout"
                    break
                if opts.max_explored is not None and self.stats.domains_explored >= opts.max_explored:
                    status = "domain cap"
                    break
                if len(store) == 0:
                    break
                self.stats.proved_by = "bab"
                snapshot = store.domains
                parents = store.pop(self.round_size())
                children = self.split(parents)
                search_start = time.perf_counter()
                self.consider(children.lower + (children.upper - children.lower) / 2, "domain centre")
                self.stats.rounds += 1
                if opts.pgd_every and self.stats.rounds % opts.pgd_every == 0:
                    worst = children.select(torch.argsort(children.lower_bound)[: opts.pgd_domains])
                    centres = worst.lower + (worst.upper - worst.lower) / 2
                    self.pgd(centres, worst.lower, worst.upper, keep=opts.pgd_domains)
                    self.polish(lower, upper)
                if self.ipopt_due():
                    self.periodic_search(children)
                self.stats.time_search += time.perf_counter() - search_start
                self.file(store, children)
                snapshot = None
                status = self.done(store)
                elapsed = time.perf_counter() - start
                self.stats.history.append((elapsed, self.proven_lower(store), self.best_value))
                progress.update(elapsed, len(store), self.proven_lower(store), self.best_value, self.stats)
        except KeyboardInterrupt:
            status = "interrupted"
            if snapshot is not None:  # the popped domains' bounds must still count
                store.domains = snapshot
        finally:
            progress.close()
        return self.finish(status, store, start)

    def round_size(self) -> int:
        """Domains split per round: ``batch_size``, or ``lp_batch_size`` when every domain gets LPs (each
        costs milliseconds: smaller rounds keep to the timeout and stay closer to best-first)."""
        if self.constraint_rows and self.options.lp_bounds:
            return min(self.options.batch_size, self.options.lp_batch_size)
        return self.options.batch_size

    def quick_proof(self, store: DomainStore, lower: Tensor, upper: Tensor, split_lo: Tensor, split_hi: Tensor) -> bool:
        """``verify`` without constraints: one CROWN pass over the root box before any search; when it
        proves every row, that is the answer (``stats.proved_by`` "crown") and the search is skipped."""
        if self.mode != "verify" or self.constraint_rows or self.options.root_method == "ibp":
            return False
        depth = torch.zeros(1, dtype=torch.long, device=self.device)
        root = self.bound(lower, upper, split_lo, split_hi, depth, None, "crown")
        self.root_bounded(root)  # a bound of the whole box: what Ctrl-C during the search reports
        if not bool(self.prune_mask(root).all()):
            self.stats.domains_explored -= 1  # the root is bounded again (and counted) after the search
            return False
        self.stats.proved_by = "crown"
        self.file(store, root)
        self.unfiled_lower = math.inf
        self.stats.history.append((0.0, self.proven_lower(store), self.best_value))
        return True

    def finish(self, status, store: DomainStore, start: float) -> Outcome:
        opts = self.options
        self.stats.time_total = time.perf_counter() - start
        self.stats.domains_left = len(store)
        self.stats.stop_reason = {
            "proven": "no domain left: every domain proven",
            "falsified": "counterexample found and confirmed",
            "solved": "gap within tolerance",
            "exhausted": "no domain left",
            "timeout": f"timeout after {opts.timeout:g} s",
            "domain cap": f"domain cap of {opts.max_explored} reached",
            "interrupted": "interrupted (Ctrl-C): best proven result so far",
            None: "stopped",
        }[status]
        lower_bound = self.proven_lower(store)
        if (self.constraint_rows and len(store) == 0 and status in ("proven", "exhausted", "solved")
                and math.isinf(lower_bound) and lower_bound > 0 and not math.isfinite(self.best_value)):
            status = "infeasible"  # every domain was pruned as infeasible: no point of the box is feasible
            self.stats.stop_reason = "every domain pruned as infeasible: the constraints have no solution in the box"
        if self.mode == "bound" and lower_bound == math.inf and math.isfinite(self.best_value):
            # every domain pruned as infeasible, yet a point within feasibility_tol was found: the exact feasible
            # set is empty, so any number bounds it; the incumbent's value keeps lower <= upper
            lower_bound = self.best_value
            self.stats.messages.append("every domain was pruned as infeasible, but a point within feasibility_tol "
                                       "was found: the lower bound reported is its value")
        if status == "proven" or (self.mode == "verify" and status is None and len(store) == 0):
            if self.stuck_min < 0 or (any(self.strict) and self.stuck_min <= 0):
                status = "unknown"
                self.stats.stop_reason = "domains at the depth limit could not be proven"
        return Outcome(lower_bound, self.best_value, self.best_point, status or "unknown", self.stats)


def unique_rows(points: Tensor) -> Tensor:
    """The rows of ``points`` without exact repeats, first occurrences in their order."""
    keep, seen = [], set()
    for i, row in enumerate(points.tolist()):
        key = tuple(row)
        if key not in seen:
            seen.add(key)
            keep.append(i)
    return points[keep]


def options_dict(options: BabOptions) -> dict:
    return asdict(options)
