"""Full-batch L-BFGS for C independent problems at once: one head each, one batched evaluation per try.

Each problem keeps its own history, step size, line search and stopping test, so a problem solved
among others follows the same iterates as when solved alone (up to float rounding in the batched
evaluation): what couples them is only that their objectives are evaluated together. The solver's
own state is numpy float64 (small vectors: numpy's per-call cost is a fraction of torch's).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

# fun(theta (A, P) float32, idx (A,) int64) -> (f (A,), grad (A, P)): the objectives of problems idx at theta
Objective = Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


@dataclass
class LbfgsResult:
    theta: torch.Tensor
    """(C, P) float32, the last accepted iterate of each problem."""
    f: np.ndarray
    """(C,) its objective."""
    iterations: list[int]
    """Accepted iterations per problem."""
    converged: list[bool]
    """Whether the gradient fell under its tolerance (else it ran out of iterations or its line
    search failed)."""
    history: list[list[float]]
    """Objective after each accepted iteration, per problem (the first entry is the start)."""


def minimize(fun: Objective, theta0: torch.Tensor, max_iter: int = 200, memory: int = 10, tol_grad: float = 1e-5,
             max_backtracks: int = 30,
             on_iter: Callable[[int], None] | None = None) -> LbfgsResult:
    """Minimise C objectives f_c(θ_c) from ``theta0`` (C, P) with L-BFGS and Armijo backtracking.

    Direction d = −H g by the two-loop recursion over the last ``memory`` pairs (s, y) with
    s·y > 1e-10 (others are kept with ρ = 0, i.e. ignored), H₀ = (s·y / y·y)·I of the newest such pair
    (the first step is scaled to min(1, 1/‖g‖₁)). Step t: the largest of 1, ½, ¼, … with
    f(θ + t d) ≤ f(θ) + 1e-4 · t · g·d, or, for a decrease lost in rounding, f(θ + t d) ≤ f(θ) +
    1e-6 · |f(θ)| with a smaller ‖g‖_∞ (a non-finite value fails both). A problem stops when
    ‖g‖_∞ ≤ ``tol_grad`` (converged), when its line search fails, or after ``max_iter`` iterations
    (a change in f is no test: in float32 it can vanish far from the optimum). ``on_iter(it)`` runs after every iteration (e.g. a Ctrl-C check).
    A problem whose objective is not finite at ``theta0`` is not moved.
    """
    C, P = theta0.shape

    def evaluate(x: np.ndarray, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        f, g = fun(torch.from_numpy(x.astype(np.float32)), torch.from_numpy(idx))
        return f.detach().double().numpy(), g.detach().double().numpy()

    x = theta0.detach().double().numpy().copy()
    f, g = evaluate(x, np.arange(C))
    history = [[float(v)] for v in f]
    active = np.isfinite(f) & (np.abs(g).max(1) > tol_grad)
    converged = (np.isfinite(f) & ~active).tolist()
    S, Y = np.zeros((C, memory, P)), np.zeros((C, memory, P))
    rho, gamma = np.zeros((C, memory)), np.ones(C)
    has_pair = np.zeros(C, dtype=bool)
    iters = [0] * C
    for it in range(max_iter):
        a = np.flatnonzero(active)
        if len(a) == 0:
            break
        ga = g[a]
        q = ga.copy()
        slots = [(it - 1 - j) % memory for j in range(min(it, memory))]  # newest first
        alphas = []
        for j in slots:
            al = rho[a, j] * np.einsum("ap,ap->a", S[a, j], q)
            q -= al[:, None] * Y[a, j]
            alphas.append(al)
        r = gamma[a][:, None] * q
        for j, al in zip(reversed(slots), reversed(alphas)):
            be = rho[a, j] * np.einsum("ap,ap->a", Y[a, j], r)
            r += S[a, j] * (al - be)[:, None]
        d = -r
        gtd = np.einsum("ap,ap->a", ga, d)
        bad = ~(gtd < 0)  # not a descent direction (or NaN): steepest descent
        if bad.any():
            d[bad] = -ga[bad]
            gtd = np.einsum("ap,ap->a", ga, d)
        t = np.where(has_pair[a], 1.0, np.minimum(1.0, 1.0 / np.abs(ga).sum(1)))
        fa = f[a]
        new_x, new_f, new_g = x[a].copy(), fa.copy(), ga.copy()
        done = np.zeros(len(a), dtype=bool)
        for _ in range(max_backtracks):
            p = np.flatnonzero(~done)
            if len(p) == 0:
                break
            xt = x[a[p]] + t[p, None] * d[p]
            ft, gt = evaluate(xt, a[p])
            with np.errstate(invalid="ignore"):
                armijo = ft <= fa[p] + 1e-4 * t[p] * gtd[p]
                # near the optimum a decrease may sit below the evaluation's rounding (float32): accept
                # a step that keeps f within 1e-6·|f| of where it was and shrinks the gradient
                flat = (ft <= fa[p] + 1e-6 * np.abs(fa[p])) & (np.abs(gt).max(1) < np.abs(ga[p]).max(1))
                ok = np.isfinite(ft) & (armijo | flat)
            k = p[ok]
            new_x[k], new_f[k], new_g[k] = xt[ok], ft[ok], gt[ok]
            done[k] = True
            t[p[~ok]] *= 0.5
        s, y = new_x - x[a], new_g - ga
        sy = np.einsum("ap,ap->a", s, y)
        valid = done & (sy > 1e-10)
        slot = it % memory
        S[a, slot], Y[a, slot] = s, y
        rho[a, slot] = np.where(valid, 1.0 / np.where(valid, sy, 1.0), 0.0)
        yy = np.einsum("ap,ap->a", y, y)
        gamma[a] = np.where(valid, sy / np.where(valid, yy, 1.0), gamma[a])
        has_pair[a] |= valid
        x[a], f[a], g[a] = new_x, new_f, new_g
        small = np.abs(new_g).max(1) <= tol_grad
        for i, c in enumerate(a.tolist()):
            if not done[i]:  # the line search failed: no better point along d
                active[c] = False
                continue
            iters[c] += 1
            history[c].append(float(new_f[i]))
            if small[i]:
                active[c] = False
                converged[c] = True
        if on_iter is not None:
            on_iter(it)
    return LbfgsResult(torch.from_numpy(x.astype(np.float32)), f, iters, [bool(v) for v in converged], history)
