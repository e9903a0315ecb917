"""``bootstrap``: a ladder weak → m1 → … → strong (Burns et al. 2023, §4.3.1).

Each intermediate rung learns from the rung below it with out-of-fold training (it never labels the
examples it trained on); the strong student then learns from the last rung with the composed loss
(``bootstrap+logconf`` is the paper's bootstrapping with the confidence loss).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import W2SError
from ..metrics import accuracy
from .base import Method


@dataclass
class BootstrapConfig:
    models: list[str] = field(default_factory=lambda: ["smollm2-135m"])
    """The intermediate rungs between the weak and the strong model, smallest first (short names, hub
    ids or directories). The default fits the packaged CPU ladder minilm-l6 → smollm2-135m → mpnet-base;
    [] is plain weak-to-strong."""
    folds: int = 5
    """K of the K-fold out-of-fold labelling at each rung (every rung trains K models)."""
    rung_loss: str = "xent"
    """The loss method the intermediate rungs train with (its settings from the run's method settings);
    the strong student uses the composed loss."""

    def __post_init__(self) -> None:
        if isinstance(self.models, str) or not all(isinstance(m, str) and m for m in self.models):
            raise W2SError(f"method 'bootstrap': models must be a list of model names, got {self.models!r}")
        if isinstance(self.folds, bool) or not isinstance(self.folds, int) or self.folds < 2:
            raise W2SError(f"method 'bootstrap': folds must be an integer >= 2, got {self.folds!r}")
        from . import METHODS

        if self.rung_loss not in METHODS or METHODS.get(self.rung_loss).kind != "loss":
            losses = sorted(n for n in METHODS.names() if METHODS.get(n).kind == "loss")
            raise W2SError(f"method 'bootstrap': rung_loss must name a loss method ({', '.join(losses)}), "
                           f"got {self.rung_loss!r}")


def ladder(weak: str, models: list[str], strong: str) -> list[str]:
    """The rungs in training order: [weak, m1, …, mk, strong] (weak and strong are the run's models)."""
    return [weak, *models, strong]


def _key(cfg: BootstrapConfig, env: Any) -> dict[str, Any]:
    """The rungs' models and the settings of the rungs' loss (read from the run's method settings)."""
    return {"rungs": [env.model_key(m) for m in cfg.models], "rung_loss": env.config(f"method_args.{cfg.rung_loss}")}


def _supervise(cfg: BootstrapConfig, ctx: Any):
    from ..train.select import Reference
    from . import METHODS

    lm = METHODS.get(cfg.rung_loss)
    base_cfg = lm.config(ctx.cfg.method_args.get(lm.name))
    rows = ctx.rows("transfer")
    probs = {s: ctx.weak_probs(s) for s in ("transfer", "val", "test")}  # rung 0: the weak floor
    names = ladder(ctx.weak.model.name if ctx.weak is not None else "given", cfg.models, ctx.strong.model.name)
    rungs: list[dict[str, Any]] = [{"rung": 0, "model": names[0], "source": "floor",
                                    "transfer": probs["transfer"], "test": probs["test"]}]
    for i, model in enumerate(cfg.models, start=1):
        side = ctx.side(model)
        lcfg = lm.prepare(base_cfg, probs["transfer"])  # resolved from this rung's own labels (e.g. window's radius)
        loss_fn = lm.make_loss(lcfg)
        oof, ev = ctx.oof_eval("bootstrap", side, rows, probs["transfer"], loss_fn, cfg.folds,
                               inputs={"rung_loss": lm.name, "rung_loss_settings": lm.settings(lcfg)},
                               ref=Reference(probs["val"], f"rung {i - 1} labels"))  # the supervising rung's
        probs = {"transfer": oof, **ev}  # transfer: out-of-fold; val/test: mean of the fold models
        # the rung's predictions (arrays.npz); the protocol scores them against ground truth
        rungs.append({"rung": i, "model": model, "source": f"{cfg.folds}-fold out-of-fold",
                      "transfer": oof, "test": ev["test"]})
    info = {"ladder": rungs, "ladder_models": names}
    return ctx.probs_stage("bootstrap", probs, info)


def _analyze(cfg: BootstrapConfig, student: Any, truth: dict[str, np.ndarray], ctx: Any) -> dict[str, Any]:
    """Each rung's accuracy on transfer (its out-of-fold labels) and on test."""
    a = student.arrays
    out = []
    for r in student.info.get("ladder", []):
        i = r["rung"]
        out.append({"rung": i, "model": r["model"],
                    "transfer_acc": accuracy(truth["transfer"], a[f"ladder/{i}/transfer"]),
                    "test_acc": accuracy(truth["test"], a[f"ladder/{i}/test"])})
    return {"ladder": out}


METHOD = Method(
    name="bootstrap",
    description="Bootstrapping ladder: weak → intermediate models (out-of-fold labels) → strong student.",
    config_cls=BootstrapConfig,
    kind="labels",
    supervise_fn=_supervise,
    key_fn=_key,
    analyze_fn=_analyze,
)
