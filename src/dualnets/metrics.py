"""The one place that computes every reported number from the returned weights.

Nothing here reads what a solver says about itself, except its status word, which is reported
beside the certificate and never decides ``certified``.
"""

from __future__ import annotations

import numpy as np

from .certificate import GAP_TOL, VIOLATION_TOL, capped_dual_value, certify, dual_point, \
    is_certified, relative_gap
from .gated import gated_certificate
from .lifting import Lifting
from .network import ParallelNet, nc_objective, norm_violation
from .pricing import price_all, try_pricing_set
from .problem import Problem
from .rebuild import block_norms, prune_blocks, rebuild_network
from .result import Result


def sign_accuracy(yhat: np.ndarray, y: np.ndarray) -> float:
    """Fraction of sign(yhat) equal to y (labels +1/-1, 0 counts as +1); NaN for regression."""
    if not np.all(np.abs(y) == 1.0):
        return float("nan")
    return float(np.mean(np.where(yhat >= 0, 1.0, -1.0) == y))


def accuracy(net: ParallelNet, X: np.ndarray, y: np.ndarray) -> float:
    """Fraction of sign(f(X)) equal to y (labels +1/-1); NaN for regression targets."""
    return sign_accuracy(net.predict(X), y)


def network_metrics(problem: Problem, net: ParallelNet) -> dict:
    """NC objective (on the problem's loss), norm feasibility and accuracies (of sign(f),
    for +-1 labels) of a network on the problem."""
    out = {
        "network_objective": nc_objective(net, problem.X, problem.y, problem.beta, problem.loss),
        "norm_violation": norm_violation(net),
        "active_subnetworks": int(np.count_nonzero(np.abs(net.w3) * np.abs(net.w2).sum(axis=1))),
        "train_accuracy": accuracy(net, problem.X, problem.y),
        "test_accuracy": float("nan"),
    }
    if problem.X_test is not None:
        out["test_accuracy"] = accuracy(net, problem.X_test, problem.y_test)
    return out


def evaluate(problem: Problem, result: Result, gap_tol: float = GAP_TOL,
             violation_tol: float = VIOLATION_TOL, prune: bool = True) -> dict:
    """Certificate, rebuilt-network objective and accuracy of one result, as a flat dict."""
    row = {
        "solver": result.solver, "model": result.model, "status": result.status,
        "n_patterns": problem.n_patterns, "n": problem.n, "d": problem.d, "m1": problem.m1,
        "depth": problem.depth, "beta": problem.beta, "loss": problem.loss,
        "setup_seconds": result.setup_seconds, "solve_seconds": result.solve_seconds,
        "warmup_seconds": result.warmup_seconds, "iterations": result.iterations,
        "message": result.message,
    }
    if result.Z is not None and result.model == "relu":
        lift = Lifting.from_problem(problem)
        cert = certify(lift, problem.y, problem.beta, result.Z, result.lam_inner,
                       result.lam_outer, gap_tol, violation_tol, problem.loss)
        row.update(cert.as_dict())
        Z = prune_blocks(lift, problem.y, problem.beta, result.Z, problem.loss) if prune \
            else result.Z
        row["nonzero_blocks"] = int(np.count_nonzero(block_norms(lift, result.Z) > 0))
        row["pruned_blocks"] = int(np.count_nonzero(block_norms(lift, Z) > 0))
        row.update(network_metrics(problem, rebuild_network(lift, Z)))
    elif result.Z is not None and result.model == "gated":
        # the gated relaxation is another model: its own objective and group-lasso gap (the
        # solver's objective_kind says so)
        lift = Lifting.from_problem(problem)
        row.update(gated_certificate(lift, problem.y, problem.beta, result.Z, gap_tol).as_dict())
        row["nonzero_blocks"] = int(np.count_nonzero(block_norms(lift, result.Z) > 0))
        # its masks are fixed on the training rows: held-out rows have no masks, so no test
        # accuracy (the patterns do not keep the gate vectors that made them)
        row["train_accuracy"] = sign_accuracy(lift.predict(result.Z), problem.y)
        row["test_accuracy"] = float("nan")
    elif result.network is not None:
        row.update(network_metrics(problem, result.network))
        row["objective"] = row["network_objective"]
    return row


GLOBAL_KEYS = ("global_lower_bound", "global_gap", "globally_certified")


def global_certificate(problem: Problem, result: Result, network_objective: float,
                       norm_violation: float = 0.0, gap_tol: float = GAP_TOL) -> dict:
    """Global lower bound on the NC objective of every network, where the pricing is exact.

    With the dual point ``v = grad L(A z)`` of ``result`` and ``p*`` bounded above by pricing
    every realizable block (:func:`dualnets.pricing.price_all`), ``LB = D(t v)`` at the best
    ``t <= min(1, beta / p*)`` (and in the domain of ``L*``; docs/design.md section 10); ``global_gap = (network_objective -
    LB) / network_objective``; ``globally_certified`` when it is <= ``gap_tol`` (and the network
    is norm-feasible).  All three are None when the enumeration is refused (pricing would be
    heuristic) or there is no convex solution.
    """
    pset, _ = try_pricing_set(problem)
    if pset is None or result.Z is None or result.model != "relu":
        return dict.fromkeys(GLOBAL_KEYS)
    v = dual_point(Lifting.from_problem(problem).predict(result.Z), problem.y, problem.loss)
    upper = price_all(pset, v, problem.beta, 1).upper
    bound = capped_dual_value(v, problem.y, problem.beta, upper, problem.loss)
    gap = relative_gap(network_objective, bound)
    return {"global_lower_bound": bound, "global_gap": gap,
            "globally_certified": is_certified(gap, norm_violation, gap_tol)}
