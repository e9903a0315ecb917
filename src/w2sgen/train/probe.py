"""Heads (linear or small MLP) on cached activations: a grid of heads trained together as one batched model.

Every head of a grid minimises the same objective with its own L2 strength λ_c (``probe.weight_decay``):

    J_c(θ_c) = loss(f_c(x), target) + (λ_c / 2) · Σ ‖W‖²   (weights W of θ_c; biases are not penalised)

on the stage's training set, with features standardised by that set's mean and std. The C heads
are one model: weights (C, D, K) (mlp: (C, D, H) and (C, H, K)), logits (C, N, K) from one batched
matmul per step. Heads never share a term of their objectives, so a head trained among others
follows the same iterates as when trained alone (up to float rounding).

Two solvers (``probe.solver``): full-batch L-BFGS (``lbfgs``) for losses that are a fixed mean of
per-example terms (they carry ``full_batch = True``: xent), or minibatch Adam
(``adam``) for losses that depend on the batch or the step (logconf's threshold is per head and per
batch: the loss is applied to each head's (B, K) logits). ``auto`` picks lbfgs where it can.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from ..config import ProbeConfig
from ..errors import W2SError

log = logging.getLogger("w2sgen")

# loss(logits (B, K), target (B, K), step, total_steps) -> scalar
LossFn = Callable[[torch.Tensor, torch.Tensor, int, int], torch.Tensor]
SOLVERS = ("auto", "lbfgs", "adam")


def full_batch(loss_fn: LossFn) -> bool:
    """Whether ``loss_fn`` declares itself a fixed mean of per-example terms (``loss_fn.full_batch``):
    independent of the step, of the batch it sees and of the model's own detached predictions, so
    that one full-batch objective over the whole training set is the same training problem; and a
    function of softmax(logits), i.e. unchanged by adding a constant to an example's logits (what the
    linear heads' K − 1 column parametrisation relies on)."""
    return bool(getattr(loss_fn, "full_batch", False))


class Head(nn.Module):
    """Standardize (fixed mean/std) then a linear layer or a one-hidden-layer MLP: (B, C) -> (B, K)."""

    def __init__(self, dim: int, num_classes: int, kind: str = "linear", hidden: int = 256):
        super().__init__()
        self.register_buffer("mean", torch.zeros(dim))
        self.register_buffer("std", torch.ones(dim))
        if kind == "linear":
            self.net: nn.Module = nn.Linear(dim, num_classes)
        elif kind == "mlp":
            self.net = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, num_classes))
        else:
            raise W2SError(f"config field 'probe.head': {kind!r}; use linear or mlp")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net((x - self.mean) / self.std)


class Heads(nn.Module):
    """C heads of one kind on shared standardised features: x (N, D) -> logits (C, N, K).

    Parameters carry the head as their first dimension: linear ``weight`` (C, D, K), ``bias`` (C, K);
    mlp ``w1`` (C, D, H), ``b1`` (C, H), ``w2`` (C, H, K), ``b2`` (C, K). ``PENALISED`` names the weights.
    """

    def __init__(self, n_heads: int, dim: int, num_classes: int, kind: str = "linear", hidden: int = 256):
        super().__init__()
        if kind not in ("linear", "mlp"):
            raise W2SError(f"config field 'probe.head': {kind!r}; use linear or mlp")
        self.kind, self.dim, self.num_classes, self.hidden = kind, dim, num_classes, hidden
        self.register_buffer("mean", torch.zeros(dim))
        self.register_buffer("std", torch.ones(dim))
        shapes = ({"weight": (dim, num_classes), "bias": (num_classes,)} if kind == "linear" else
                  {"w1": (dim, hidden), "b1": (hidden,), "w2": (hidden, num_classes), "b2": (num_classes,)})
        for name, shape in shapes.items():
            self.register_parameter(name, nn.Parameter(torch.zeros(n_heads, *shape)))

    @property
    def n_heads(self) -> int:
        return next(self.parameters()).shape[0]

    @property
    def penalised(self) -> tuple[str, ...]:
        return ("weight",) if self.kind == "linear" else ("w1", "w2")

    def init_(self, seed: int) -> Heads:
        """Linear heads start at zero; mlp heads at nn.Linear's default draw (U(±1/√fan_in)) from
        ``seed``, the same draw for every head."""
        if self.kind == "mlp":
            g = torch.Generator().manual_seed(seed)
            with torch.no_grad():
                for name, fan_in in (("w1", self.dim), ("b1", self.dim), ("w2", self.hidden), ("b2", self.hidden)):
                    p = getattr(self, name)
                    bound = 1.0 / math.sqrt(fan_in)
                    p.copy_((torch.rand(p.shape[1:], generator=g) * 2 - 1).mul_(bound).expand_as(p))
        return self

    def logits(self, z: torch.Tensor, params: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
        """Logits (A, N, K) of standardised features ``z`` (N, D); ``params`` (each (A, ...)) replace
        the heads' own parameters (a subset of heads, or a trial point of a solver)."""
        p = params if params is not None else dict(self.named_parameters())
        if self.kind == "linear":
            w = p["weight"]  # (A, D, K): one (N, D) @ (D, A·K) matmul for all heads
            out = (z @ w.permute(1, 0, 2).reshape(w.shape[1], -1)).view(len(z), w.shape[0], w.shape[2])
            return out.permute(1, 0, 2) + p["bias"][:, None]
        h = nn.functional.gelu(torch.einsum("nd,adh->anh", z, p["w1"]) + p["b1"][:, None])  # (A, N, H)
        return torch.bmm(h, p["w2"]) + p["b2"][:, None]

    def standardize(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.logits(self.standardize(x))

    def head(self, c: int) -> Head:
        """Head ``c`` alone, as a :class:`Head` (the stored weights' format)."""
        out = Head(self.dim, self.num_classes, self.kind, self.hidden)
        with torch.no_grad():
            out.mean.copy_(self.mean)
            out.std.copy_(self.std)
            if self.kind == "linear":
                out.net.weight.copy_(self.weight[c].T)
                out.net.bias.copy_(self.bias[c])
            else:
                out.net[0].weight.copy_(self.w1[c].T)
                out.net[0].bias.copy_(self.b1[c])
                out.net[2].weight.copy_(self.w2[c].T)
                out.net[2].bias.copy_(self.b2[c])
        return out.eval()


@contextmanager
def one_thread():
    """Run torch (and numpy's BLAS) on one CPU thread inside: a head's ops are small, and waking a
    thread pool for each costs more than the op (several times more on a loaded machine; even the
    preconditioner's (D, D) eigendecomposition ran 100× slower on 2 threads than on 1 under load)."""
    from threadpoolctl import threadpool_limits

    prev = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with threadpool_limits(1, user_api="blas"):
            yield
    finally:
        torch.set_num_threads(prev)


@dataclass
class TrainResult:
    heads: Heads
    weight_decays: list[float]
    """λ of each head."""
    solver: str
    """lbfgs or adam."""
    losses: list[list[float]]
    """Per head: adam, the mean loss of each epoch; lbfgs, the objective J after each iteration."""
    steps: int
    """adam: optimizer steps (the same for every head); lbfgs: the most iterations of any head."""
    skipped: list[int] = field(default_factory=list)
    """Per head, steps skipped for a non-finite loss (adam with ``skip_nonfinite``)."""
    iterations: list[int] = field(default_factory=list)
    """lbfgs: iterations of each head."""
    converged: list[bool] = field(default_factory=list)
    """lbfgs: whether each head met its tolerance."""
    usable: list[bool] = field(default_factory=list)
    """Per head: False where every step was non-finite (the head never trained)."""

    def head(self, c: int = 0) -> Head:
        return self.heads.head(c)


def resolve_solver(cfg: ProbeConfig, loss_fn: LossFn, minibatch: bool = False) -> str:
    """The solver a stage uses: ``cfg.solver``, with auto = lbfgs for linear heads and full-batch losses
    (a convex problem, with one optimum for every solver), else adam;
    ``minibatch``: the caller needs epochs of minibatch training (adam)."""
    if cfg.solver not in SOLVERS:
        raise W2SError(f"config field 'probe.solver': {cfg.solver!r}; use {', '.join(SOLVERS)}")
    if cfg.solver == "lbfgs" and not full_batch(loss_fn):
        raise W2SError("config field 'probe.solver': lbfgs needs a loss that is a fixed mean of per-example "
                       "terms (xent); this stage's loss may depend on the batch or the step: use "
                       "probe.solver=auto or adam")
    if minibatch or cfg.solver == "adam":
        return "adam"
    if cfg.solver == "lbfgs":
        return "lbfgs"
    return "lbfgs" if full_batch(loss_fn) and cfg.head == "linear" else "adam"


def train_heads(x: np.ndarray, target: np.ndarray, loss_fn: LossFn, cfg: ProbeConfig, seed: int,
                desc: str = "train heads", on_epoch: Callable[[int, int, Heads], None] | None = None,
                solver: str | None = None) -> TrainResult:
    """Fit one head per ``cfg.weight_decay`` value on features ``x`` (N, D) to soft targets ``target`` (N, K).

    ``solver``: lbfgs or adam (default: :func:`resolve_solver`). Adam: the data order comes from a
    generator seeded with ``seed`` (the same batches for every head); a non-finite loss stops training
    with an error naming the stage (``desc``) and step, or, with ``cfg.skip_nonfinite``, skips that
    head's update and counts it. ``on_epoch(epoch, step, heads)``, if given (adam only), is called after
    each epoch (epoch counts from 1, ``step`` is the steps so far) with the heads in their current
    state; it must not modify them. A requested stop (first Ctrl-C under the CLI) takes effect after
    the current step or iteration.
    """
    solver = solver or resolve_solver(cfg, loss_fn, minibatch=on_epoch is not None)
    if solver == "lbfgs" and on_epoch is not None:
        raise ValueError("train_heads: on_epoch needs the adam solver (L-BFGS has no epochs)")
    wds = [float(v) for v in cfg.weight_decay]
    if not wds or any(not math.isfinite(v) or v < 0 for v in wds):
        raise W2SError(f"config field 'probe.weight_decay': {cfg.weight_decay!r}; give one or more numbers >= 0")
    if solver == "lbfgs" and 0.0 in wds:
        raise cfg.zero_decay_error()
    torch.manual_seed(seed)
    xt = torch.from_numpy(np.array(x, dtype=np.float32))  # (N, D), a private copy
    yt = torch.from_numpy(np.array(target, dtype=np.float32))  # (N, K)
    n, dim = xt.shape
    heads = Heads(len(wds), dim, yt.shape[1], cfg.head, cfg.hidden).init_(seed)
    if cfg.standardize and n:
        heads.mean.copy_(xt.mean(0))
        heads.std.copy_(xt.std(0).clamp_min(1e-6) if n > 1 else torch.ones(dim))
    lam = torch.tensor(wds)
    with one_thread():
        z = heads.standardize(xt)  # (N, D)
        if solver == "lbfgs":
            return _fit_lbfgs(heads, z, yt, loss_fn, lam, cfg, desc)
        return _fit_adam(heads, z, yt, loss_fn, lam, cfg, seed, desc, on_epoch)


def _penalty(heads: Heads, params: dict[str, torch.Tensor], lam: torch.Tensor) -> torch.Tensor:
    """(λ_c / 2) · Σ ‖W_c‖² per head (A,)."""
    return 0.5 * lam * sum(params[k].pow(2).flatten(1).sum(1) for k in heads.penalised)


class _HeadLosses:
    """The loss of each head on its own (B, K) logits: (A, B, K) -> (A,), as ``loss_fn`` computes it for
    one head. A loss that declares ``heads_batched`` takes (A, B, K) itself and returns (A,) (one call
    for every head: xent, logconf); otherwise the call is vectorised over the heads
    (``torch.func.vmap``) when the loss allows it, else (or if vmap fails once) a loop of one call per
    head."""

    def __init__(self, loss_fn: LossFn):
        self.loss_fn = loss_fn
        self.vmap_ok = True
        self.batched = bool(getattr(loss_fn, "heads_batched", False))

    def __call__(self, logits: torch.Tensor, target: torch.Tensor, step: int, total: int) -> torch.Tensor:
        if self.batched:
            out = self.loss_fn(logits, target, step, total)
            if out.shape != logits.shape[:1]:
                raise ValueError(f"a heads_batched loss returned shape {tuple(out.shape)} for logits "
                                 f"{tuple(logits.shape)}; expected ({len(logits)},)")
            return out
        if len(logits) > 1 and self.vmap_ok:
            import warnings

            from torch.func import vmap

            try:
                with warnings.catch_warnings():  # e.g. "no batching rule for quantile": it still runs
                    warnings.simplefilter("ignore", UserWarning)
                    return vmap(lambda lg: self.loss_fn(lg, target, step, total))(logits)
            except Exception:  # a loss vmap cannot run (data-dependent Python, .item(), ...)
                self.vmap_ok = False
        return torch.stack([self.loss_fn(lg, target, step, total) for lg in logits])


def _fit_lbfgs(heads: Heads, z: torch.Tensor, y: torch.Tensor, loss_fn: LossFn, lam: torch.Tensor, cfg: ProbeConfig,
               desc: str) -> TrainResult:
    from ..log import progress
    from ..safety import check_interrupt
    from .lbfgs import minimize

    it = [0]
    head_losses = _HeadLosses(loss_fn)

    def losses_of(logits: torch.Tensor) -> torch.Tensor:  # (A, N, K) -> (A,)
        return head_losses(logits, y, it[0], cfg.max_iter)

    build = _linear_objective if heads.kind == "linear" else _autograd_objective
    fun, theta0, params_of = build(heads, z, losses_of, lam)
    with progress(total=cfg.max_iter, desc=desc, unit="it") as bar:
        def on_iter(i: int) -> None:
            it[0] = i + 1
            bar.update(1)
            check_interrupt(f"stage {desc} at iteration {i + 1}")

        res = minimize(fun, theta0, max_iter=cfg.max_iter, tol_grad=cfg.tol, on_iter=on_iter)
    bad = [c for c in range(len(lam)) if not math.isfinite(res.history[c][0])]
    if bad and not cfg.skip_nonfinite:
        raise W2SError(f"stage {desc}: loss is {res.history[bad[0]][0]} at the start of full-batch training "
                       f"(head with weight decay {float(lam[bad[0]])}); check the labels and features, or "
                       "set probe.skip_nonfinite=true to drop such heads")
    if len(bad) == len(lam):
        raise W2SError(f"stage {desc}: every head's loss is non-finite at the start of full-batch training; "
                       "check the labels and features (try --set embed.dtype=fp32)")
    with torch.no_grad():
        for k, v in params_of(res.theta).items():
            getattr(heads, k).copy_(v)
    usable = [c not in bad for c in range(len(lam))]
    if bad:
        log.warning("stage %s: %d of %d heads had a non-finite loss and were dropped", desc, len(bad), len(lam))
    return TrainResult(heads.eval(), [float(v) for v in cfg.weight_decay], "lbfgs", res.history,
                       max(res.iterations, default=0), [0] * len(lam), res.iterations, res.converged, usable)


def _autograd_objective(heads: Heads, z: torch.Tensor, losses_of, lam: torch.Tensor):
    """(fun, θ₀ (C, P), θ -> parameters) of J over all of the heads' parameters, flattened, by autograd."""
    names = [k for k, _ in heads.named_parameters()]
    shapes = [p.shape[1:] for p in heads.parameters()]
    sizes = [math.prod(s) for s in shapes]

    def params_of(theta: torch.Tensor) -> dict[str, torch.Tensor]:
        parts = torch.split(theta, sizes, dim=1)
        return {k: t.reshape(len(theta), *s) for k, t, s in zip(names, parts, shapes)}

    def fun(theta: torch.Tensor, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """J of heads ``idx`` at ``theta`` (A, P) and its gradient (A, P)."""
        theta = theta.detach().requires_grad_()
        p = params_of(theta)
        obj = losses_of(heads.logits(z, p)) + _penalty(heads, p, lam[idx])
        (g,) = torch.autograd.grad(obj.sum(), theta)
        return obj.detach(), g

    return fun, torch.cat([p.detach().flatten(1) for p in heads.parameters()], dim=1), params_of


def _linear_objective(heads: Heads, z: torch.Tensor, losses_of, lam: torch.Tensor):
    """(fun, θ₀, θ -> parameters) of J for linear heads, in K − 1 columns per head, preconditioned.

    A full-batch loss is a function of softmax(logits), which adding a constant to every logit of an
    example leaves alone: its gradient's columns sum to 0 (Σ_k ∂L/∂z_k = 0), so from W = 0 every
    iterate, and the optimum, lies in {W : W·1 = 0}. There W = U Bᵀ with B (K, K−1) an orthonormal
    basis of {v : Σv = 0}, and ‖W‖ = ‖U‖: the same problem over U (D, K−1), half the matmul for K = 2.

    Preconditioning (a change of variables, so the optimum is the same): at W = 0 the softmax loss's
    Hessian in U is (G / K) ⊗ I with G = zᵀz / N (the features' second moment; bias block I / K), so
    head c solves for V with U = M_c V, M_c = (G / K + λ_c I)^(−1/2) (one eigendecomposition of G for
    every head), and for β with b = √K · β. Its Hessian at the start is then the identity, and
    L-BFGS needs a few tens of iterations where the raw problem, with correlated features, needs
    hundreds; ``probe.tol`` applies to the gradient in (V, β).

    The matmuls (logits = z U Bᵀ + b, ∂J/∂U = zᵀ (∂L/∂logits) B + λU) stream the transposed
    features (D, N) through numpy's BLAS, several times faster than torch's for these skinny products
    on the CPUs measured; autograd runs through the loss only.
    """
    C, D, K = heads.n_heads, heads.dim, heads.num_classes
    R = K - 1
    basis = torch.linalg.qr(torch.eye(K)[:, :R] - 1.0 / K).Q  # (K, R), orthonormal, columns sum to 0
    zt = np.ascontiguousarray(z.numpy().T)  # (D, N)
    n = max(len(z), 1)
    zt64 = zt.astype(np.float64)
    gram = torch.from_numpy(zt64 @ zt64.T) / n  # (D, D), float64: small real directions stay above rounding
    evals, evecs = torch.linalg.eigh(gram)  # G = Q diag(e) Qᵀ
    evals = evals.clamp_min(0.0) / K
    # M_c = Q diag(scale_c) Qᵀ (C, D). Directions the features do not span (N < D, constant or
    # collinear features: e at float64 rounding, ≤ 1e-13·max measured) get scale 0: the loss's gradient
    # there is 0, so with λ > 0 the optimum has U = 0 there, and a large scale would only amplify
    # rounding into the weights. Real directions can be small (1e-6·max on standardised mpnet features,
    # less on raw ones): the cut sits far below them.
    null = evals <= 1e-11 * float(evals.max().clamp_min(1e-300))
    scale = (evals[None, :] + lam.double()[:, None]).rsqrt().masked_fill(null[None, :], 0.0).float()
    q = evecs.float().numpy()
    root_k = math.sqrt(K)

    def to_u(v: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:  # (A, D, R) -> M_c v_c, same shape
        A = len(v)
        w = q.T @ v.permute(1, 0, 2).reshape(D, A * R).numpy()  # (D, A·R): two matmuls for all heads
        w = torch.from_numpy(w).view(D, A, R) * scale[idx].T[:, :, None]
        return torch.from_numpy(q @ w.reshape(D, A * R).numpy()).view(D, A, R).permute(1, 0, 2)

    def params_of(theta: torch.Tensor) -> dict[str, torch.Tensor]:
        v = theta[:, : D * R].reshape(len(theta), D, R)
        return {"weight": to_u(v, torch.arange(len(theta))) @ basis.T, "bias": root_k * theta[:, D * R :]}

    def fun(theta: torch.Tensor, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        A = len(theta)
        u, b = to_u(theta[:, : D * R].reshape(A, D, R), idx), root_k * theta[:, D * R :]
        zu = torch.from_numpy(u.permute(0, 2, 1).reshape(A * R, D).numpy() @ zt).view(A, R, -1).transpose(1, 2)
        logits = (zu @ basis.T + b[:, None]).detach().requires_grad_()  # (A, N, K)
        losses = losses_of(logits)  # (A,)
        (dz,) = torch.autograd.grad(losses.sum(), logits, allow_unused=True)
        dz = torch.zeros_like(logits) if dz is None else dz
        du = np.ascontiguousarray((dz @ basis).permute(1, 0, 2).reshape(-1, A * R).numpy())  # (N, A·R)
        la = lam[idx]
        gu = torch.from_numpy(zt @ du).view(D, A, R).permute(1, 0, 2) + la[:, None, None] * u  # ∂J/∂U
        obj = losses.detach() + 0.5 * la * u.pow(2).sum((1, 2))
        return obj, torch.cat([to_u(gu, idx).reshape(A, -1), root_k * dz.sum(1)], dim=1)  # chain rule: Mᵀ = M

    return fun, torch.zeros(C, D * R + K), params_of  # linear heads start at 0


def _fit_adam(heads: Heads, z: torch.Tensor, y: torch.Tensor, loss_fn: LossFn, lam: torch.Tensor, cfg: ProbeConfig,
              seed: int, desc: str, on_epoch: Callable[[int, int, Heads], None] | None) -> TrainResult:
    """Adam (β = 0.9, 0.999, ε = 1e-8) on minibatches, the L2 term λ_c·W added to the gradient; each head
    keeps its own update count, so a skipped (non-finite) step advances neither its moments nor its
    learning-rate schedule, as when it trains alone."""
    from ..log import progress
    from ..safety import check_interrupt

    g = torch.Generator().manual_seed(seed)
    n, C = len(z), len(lam)
    bs = max(1, min(cfg.batch_size, n))
    per_epoch = math.ceil(n / bs)
    total = per_epoch * cfg.epochs
    if cfg.schedule not in ("cosine", "constant"):
        raise W2SError(f"config field 'probe.schedule': {cfg.schedule!r}; use cosine or constant")

    def factor(s: float) -> float:  # the learning-rate multiplier after s updates
        return 0.5 * (1 + math.cos(math.pi * min(s, total) / total)) if cfg.schedule == "cosine" else 1.0

    names = [k for k, _ in heads.named_parameters()]
    params = [p for _, p in heads.named_parameters()]
    decay = [lam.view((C,) + (1,) * (p.dim() - 1)) if k in heads.penalised else None for k, p in zip(names, params)]
    m = [torch.zeros_like(p) for p in params]
    v = [torch.zeros_like(p) for p in params]
    head_losses = _HeadLosses(loss_fn)
    updates = [0] * C  # per head
    skipped = [0] * C
    losses: list[list[float]] = [[] for _ in range(C)]
    step = 0
    with progress(total=total, desc=desc, unit="step") as bar:
        for _ in range(cfg.epochs):
            perm = torch.randperm(n, generator=g)
            run = torch.zeros(C, dtype=torch.float64)
            good = torch.zeros(C, dtype=torch.float64)
            for b in range(per_epoch):
                idx = perm[b * bs : (b + 1) * bs]
                loss = head_losses(heads.logits(z[idx]), y[idx], step, total)  # (C,)
                ok = torch.isfinite(loss.detach())
                all_ok = bool(ok.all())
                if not all_ok:
                    c = int((~ok).nonzero()[0])
                    if not cfg.skip_nonfinite:
                        raise W2SError(
                            f"stage {desc}: loss is {float(loss[c].detach())} at step {step} of {total} "
                            f"(epoch {step // per_epoch}, batch {b}, head with weight decay {float(lam[c])}); "
                            "lower probe.lr, check the labels and features, or set probe.skip_nonfinite=true "
                            "to skip such batches")
                if not bool(ok.any()):  # nothing to update: every head skips this step
                    skipped = [k + 1 for k in skipped]
                    step += 1
                    check_interrupt(f"stage {desc} at step {step}")
                    continue
                grads = torch.autograd.grad(loss.sum() if all_ok else torch.where(ok, loss, 0.0).sum(), params)
                with torch.no_grad():
                    for gr, p, d in zip(grads, params, decay):
                        if d is not None:
                            gr.addcmul_(p, d)  # + λ_c W_c
                    if all_ok and len(set(updates)) == 1:  # every head at the same update: scalar steps
                        t = updates[0] + 1
                        size = cfg.lr * factor(updates[0]) / (1 - 0.9 ** t)
                        root = math.sqrt(1 - 0.999 ** t)
                        torch._foreach_lerp_(m, list(grads), 0.1)
                        torch._foreach_mul_(v, 0.999)
                        torch._foreach_addcmul_(v, list(grads), list(grads), 0.001)
                        denom = torch._foreach_add(torch._foreach_div(torch._foreach_sqrt(v), root), 1e-8)
                        torch._foreach_addcdiv_(params, m, denom, -size)
                    else:
                        _masked_adam(params, list(grads), m, v, ok, updates, cfg.lr, factor)
                    if all_ok:
                        updates = [u + 1 for u in updates]
                        run += loss.detach().double()
                        good += 1
                    else:
                        for c in ok.nonzero().squeeze(1).tolist():
                            updates[c] += 1
                        for c in (~ok).nonzero().squeeze(1).tolist():
                            skipped[c] += 1
                        run += torch.where(ok, loss.detach(), 0.0).double()
                        good += ok.double()
                step += 1
                check_interrupt(f"stage {desc} at step {step}")
            bar.update(per_epoch)
            for c in range(C):
                losses[c].append(float(run[c] / good[c]) if good[c] > 0 else float("nan"))
            if on_epoch is not None:
                on_epoch(len(losses[0]), step, heads)
    usable = [s < total or total == 0 for s in skipped]
    if not any(usable):
        raise W2SError(f"stage {desc}: every one of the {total} steps had a non-finite loss; "
                       "check the labels and features (try --set embed.dtype=fp32) or lower probe.lr")
    if any(skipped):
        log.warning("stage %s: skipped %d of %d steps with a non-finite loss", desc, max(skipped), total)
    return TrainResult(heads.eval(), [float(v) for v in cfg.weight_decay], "adam", losses, step, skipped, usable=usable)


def _masked_adam(params: list[torch.Tensor], grads: list[torch.Tensor], m: list[torch.Tensor], v: list[torch.Tensor],
                 ok: torch.Tensor, updates: list[int], lr: float, factor: Callable[[float], float]) -> None:
    """One Adam step for the heads where ``ok`` (C,), each at its own update count; the others keep
    their weights and moments."""
    t = torch.tensor(updates, dtype=torch.float32) + 1
    size = torch.tensor([lr * factor(u) for u in updates]) / (1 - 0.9 ** t)  # (C,)
    root = (1 - 0.999 ** t).sqrt()
    for p, gr, mi, vi in zip(params, grads, m, v):
        shape = (len(ok),) + (1,) * (p.dim() - 1)
        keep = ok.view(shape)
        mi.copy_(torch.where(keep, 0.9 * mi + 0.1 * gr, mi))
        vi.copy_(torch.where(keep, 0.999 * vi + 0.001 * gr * gr, vi))
        upd = size.view(shape) * mi / (vi.sqrt() / root.view(shape) + 1e-8)
        p.sub_(torch.where(keep, upd, 0.0))


@torch.inference_mode()
def predict(head: Head, x: np.ndarray, batch_size: int = 4096) -> np.ndarray:
    """Class probabilities (N, K) float32."""
    xt = torch.from_numpy(np.asarray(x, dtype=np.float32))
    out = [torch.softmax(head(xt[i : i + batch_size]), -1) for i in range(0, len(xt), batch_size)]
    return torch.cat(out).numpy() if out else np.zeros((0, head.net(torch.zeros(1, xt.shape[1])).shape[1]), np.float32)


@torch.inference_mode()
def predict_heads(heads: Heads, x: np.ndarray, batch_size: int = 4096) -> np.ndarray:
    """Class probabilities of every head (C, N, K) float32."""
    xt = torch.from_numpy(np.asarray(x, dtype=np.float32))
    if not len(xt):
        return np.zeros((heads.n_heads, 0, heads.num_classes), np.float32)
    with one_thread():
        out = [torch.softmax(heads(xt[i : i + batch_size]), -1) for i in range(0, len(xt), batch_size)]
    return torch.cat(out, dim=1).numpy()


def train_info(res: TrainResult, c: int) -> dict:
    """The train.json entries of head ``c`` of ``res``: solver, loss curve, steps or iterations, skipped steps."""
    info = {"solver": res.solver, "losses": res.losses[c], "skipped_steps": res.skipped[c]}
    if res.solver == "lbfgs":
        info.update(steps=res.iterations[c], converged=res.converged[c])
    else:
        info["steps"] = res.steps
    return info


@dataclass
class Fit:
    """A stage's trained grid and the head it keeps."""

    head: Head
    result: TrainResult
    chosen: int
    info: dict
    """train.json entries: :func:`train_info` of the kept head and the ``grid`` record."""


def fit_probe(x: np.ndarray, target: np.ndarray, loss_fn: LossFn, cfg: ProbeConfig, seed: int,
              x_val: np.ndarray | None = None, ref=None, desc: str = "train heads") -> Fit:
    """Train the grid of heads (:func:`train_heads`) and keep the one ``cfg.select`` prefers on val.

    ``x_val`` (n_val, D) are the val features, ``ref`` a :class:`~w2sgen.train.select.Reference`
    (the val labels the heads are scored against); both may be None with a single weight decay.
    """
    from .select import choose, grid_record, grid_scores

    res = train_heads(x, target, loss_fn, cfg, seed, desc=desc)
    scores = None
    if ref is not None and x_val is not None and len(x_val):
        if np.shape(ref.probs) != (len(x_val), res.heads.num_classes):
            raise ValueError(f"fit_probe: reference of shape {np.shape(ref.probs)} for {len(x_val)} val examples")
        scores = grid_scores(predict_heads(res.heads, x_val), ref.probs, cfg.select)
    if len(res.weight_decays) > 1 and scores is None:
        if ref is None:
            raise ValueError(f"stage {desc}: a grid of {len(res.weight_decays)} heads needs a val reference")
        raise W2SError(f"stage {desc}: probe.weight_decay has {len(res.weight_decays)} values but the val split is "
                       "empty; give splits.n_val > 0 or a single probe.weight_decay")
    chosen = choose(scores or [float("nan")] * len(res.weight_decays), res.weight_decays, cfg.select, res.usable)
    info = dict(train_info(res, chosen), grid=grid_record(res.weight_decays, cfg.select, ref, scores, chosen))
    return Fit(res.head(chosen), res, chosen, info)
