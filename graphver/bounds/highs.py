"""HiGHS through highspy: the LPs of the LP bounds and of the Lagrangian multipliers.

Every LP here has the form ``min c . x  s.t.  A x <= b,  lower <= x <= upper`` (dense ``A``, small to a
few thousand rows). One ``Highs`` object per process is reused (``clearModel`` then ``passModel``):
building one costs more than solving a small LP, and scipy's ``linprog`` wrapper around the same
solver spent about three times the solve in checking and converting its arguments.

Nothing here is trusted: callers turn the duals into certified bounds themselves (``lagrangian``), so a
wrong or inexact answer costs tightness, never soundness.
"""

from __future__ import annotations

import math
import os
import sys
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np

_SOLVER = None  # the process's Highs object, made on first use
PRESOLVE_ROWS = 2000  # LPs with fewer rows skip presolve: on the bounding LPs of case5_pjm (86-688 rows)
#                       it cost more than it saved (3.4 -> 2.2 ms per LP, same answers)
MIN_LP_SECONDS = 0.05  # the least time limit an LP gets (it starts only before the deadline)


@dataclass
class LpAnswer:
    status: str  # "optimal", "infeasible" or "failed" (unbounded, a solver error, a limit)
    x: np.ndarray | None  # the primal point when optimal
    duals: np.ndarray | None  # per row: d objective / d b, <= 0 for a binding row (HiGHS's sign) when optimal


@contextmanager
def quiet_stdout():
    """File descriptor 1 to /dev/null: highspy prints its banner from C when a solver is made."""
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 1)
        yield
    finally:
        os.dup2(saved, 1)
        os.close(saved)


def solver():
    global _SOLVER
    if _SOLVER is None:
        import highspy

        try:
            with quiet_stdout():
                made = highspy.Highs()
        except OSError:  # no file descriptor 1 to redirect: take the banner
            made = highspy.Highs()
        made.setOptionValue("output_flag", False)
        _SOLVER = made
    return _SOLVER


def solve_le(cost: np.ndarray, a_ub: np.ndarray, b_ub: np.ndarray, lower: np.ndarray,
             upper: np.ndarray, deadline: float | None = None) -> LpAnswer:
    """``min cost . x  s.t.  a_ub x <= b_ub,  lower <= x <= upper`` (infinite bounds allowed; HiGHS stops at
    ``deadline``, then "failed")."""
    return solve_le_costs(np.asarray(cost, dtype=np.float64)[None], a_ub, b_ub, lower, upper, deadline)[0]


def solve_le_costs(costs: np.ndarray, a_ub: np.ndarray, b_ub: np.ndarray, lower: np.ndarray,
                   upper: np.ndarray, deadline: float | None = None) -> list[LpAnswer]:
    """``min c . x`` over the same polytope for every row ``c`` of ``costs`` [R, n]: the model is passed
    once and each next objective starts from the last basis (HiGHS keeps it when only costs change), so
    the 2n LPs of OBBT cost a few simplex iterations each instead of a solve from scratch. Past
    ``deadline`` (``time.perf_counter()``, checked before each LP, and HiGHS's time limit within one) the
    remaining answers are "failed"."""
    import time

    import highspy

    costs = np.asarray(costs, dtype=np.float64)
    a = np.asarray(a_ub, dtype=np.float64).reshape(-1, costs.shape[1])
    m, n = a.shape
    lp = highs_lp(highspy, costs[0], a, b_ub, lower, upper)
    highs = solver()
    highs.clearModel()
    try:
        highs.passModel(lp)
    except Exception:  # noqa: BLE001  (a solver error is an answer: no bound from these LPs)
        return [LpAnswer("failed", None, None) for _ in costs]
    presolve = "off" if m < PRESOLVE_ROWS else "choose"
    highs.setOptionValue("presolve", presolve)
    columns_index = np.arange(n, dtype=np.int32)
    answers = []
    for k, cost in enumerate(costs):
        if deadline is not None and time.perf_counter() > deadline:
            answers.append(LpAnswer("failed", None, None))
            continue
        try:
            if k:
                highs.changeColsCost(n, columns_index, cost)
            limit_time(highs, highspy, deadline)
            answers.append(run_one(highs, highspy, presolve))
        except Exception:  # noqa: BLE001
            answers.append(LpAnswer("failed", None, None))
    return answers


def highs_lp(highspy, cost: np.ndarray, a: np.ndarray, b_ub, lower, upper):
    """The ``HighsLp`` of ``min cost . x  s.t.  a x <= b_ub,  lower <= x <= upper`` (column-wise storage of
    the nonzeros of ``a``; infinite ends as HiGHS's infinity)."""
    inf = highspy.kHighsInf
    m, n = a.shape
    lp = highspy.HighsLp()
    lp.num_col_, lp.num_row_ = n, m
    lp.col_cost_ = np.asarray(cost, dtype=np.float64)
    lp.col_lower_ = np.clip(np.asarray(lower, dtype=np.float64), -inf, inf)
    lp.col_upper_ = np.clip(np.asarray(upper, dtype=np.float64), -inf, inf)
    lp.row_lower_ = np.full(m, -inf)
    lp.row_upper_ = np.clip(np.asarray(b_ub, dtype=np.float64), -inf, inf)
    columns = a.T  # column-wise storage: the nonzeros of each column in row order
    nonzero = columns != 0
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    lp.a_matrix_.start_ = np.concatenate([[0], np.cumsum(nonzero.sum(axis=1))]).astype(np.int32)
    lp.a_matrix_.index_ = np.nonzero(nonzero)[1].astype(np.int32)
    lp.a_matrix_.value_ = columns[nonzero]
    return lp


def limit_time(highs, highspy, deadline: float | None) -> None:
    """HiGHS's time limit: the seconds left to ``deadline`` (a solve stopped there is "failed", no bound),
    none without one. HiGHS compares the limit with the run time its object has accumulated over all its
    solves, so the limit is that run time plus the seconds left."""
    import time

    if deadline is None or not math.isfinite(deadline):
        highs.setOptionValue("time_limit", highspy.kHighsInf)
        return
    left = max(MIN_LP_SECONDS, deadline - time.perf_counter())
    highs.setOptionValue("time_limit", float(highs.getRunTime() + left))


def run_one(highs, highspy, presolve: str) -> LpAnswer:
    """Solve the passed model; its answer (presolve retried off when it could not tell infeasible from
    unbounded)."""
    highs.run()
    status = highs.getModelStatus()
    if status == highspy.HighsModelStatus.kUnboundedOrInfeasible and presolve != "off":
        highs.setOptionValue("presolve", "off")
        highs.run()
        highs.setOptionValue("presolve", presolve)
        status = highs.getModelStatus()
    if status == highspy.HighsModelStatus.kOptimal:
        solution = highs.getSolution()
        return LpAnswer("optimal", np.array(solution.col_value), np.array(solution.row_dual))
    if status == highspy.HighsModelStatus.kInfeasible:
        return LpAnswer("infeasible", None, None)
    return LpAnswer("failed", None, None)


class GrowingLp:
    """``min cost . x  s.t.  A x <= b,  lower <= x <= upper`` whose rows come in batches: the first batch
    passes the model, each later one is added to it (``addRows``) and the solve starts from the last
    basis (the new rows enter basic; dual simplex repairs them). The LP bound's cut rounds each add one
    set of relaxation lines to the same LP: on an 89-bus ACOPF root the re-solves took 1,300-6,700
    simplex iterations each from scratch. Rows are numbered in the order they were added."""

    def __init__(self, cost: np.ndarray, lower: np.ndarray, upper: np.ndarray):
        import highspy

        self.highspy = highspy
        try:
            with quiet_stdout():
                self.highs = highspy.Highs()
        except OSError:
            self.highs = highspy.Highs()
        self.highs.setOptionValue("output_flag", False)
        self.cost = np.asarray(cost, dtype=np.float64)
        self.lower, self.upper = lower, upper
        self.rows = 0
        self.broken = False  # a solver error: every later answer is "failed"

    def add(self, a_ub: np.ndarray, b_ub: np.ndarray) -> None:
        if self.broken:
            return
        highspy, inf = self.highspy, self.highspy.kHighsInf
        a = np.asarray(a_ub, dtype=np.float64).reshape(-1, len(self.cost))
        b = np.clip(np.asarray(b_ub, dtype=np.float64), -inf, inf)
        m, n = a.shape
        try:
            if self.rows == 0:
                self.highs.passModel(highs_lp(highspy, self.cost, a, b, self.lower, self.upper))
                self.highs.setOptionValue("presolve", "off")  # a re-solve keeps its basis only without presolve
            elif m:
                nonzero = a != 0
                starts = np.concatenate([[0], np.cumsum(nonzero.sum(axis=1))[:-1]]).astype(np.int32)
                self.highs.addRows(m, np.full(m, -inf), b, int(nonzero.sum()), starts,
                                   np.nonzero(nonzero)[1].astype(np.int32), a[nonzero])
        except Exception:  # noqa: BLE001  (a solver error is an answer: no bound from this LP)
            self.broken = True
        self.rows += m

    def solve(self, deadline: float | None = None) -> LpAnswer:
        """The LP's answer; HiGHS stops at ``deadline`` (then "failed")."""
        if self.broken or self.rows == 0:
            return LpAnswer("failed", None, None)
        try:
            limit_time(self.highs, self.highspy, deadline)
            return run_one(self.highs, self.highspy, "off")
        except Exception:  # noqa: BLE001
            self.broken = True
            return LpAnswer("failed", None, None)
