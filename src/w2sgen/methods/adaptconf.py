"""``adaptconf``: AdaptConf (Guo et al. 2024, "Vision Superalignment")."""

from dataclasses import dataclass

from ..errors import W2SError
from .base import Method


@dataclass
class AdaptconfConfig:
    temperature: float = 0.5
    """T in β = exp(c_s/T) / (exp(c_s/T) + exp(c_w/T)) (the authors' "superalignment_threshold")."""

    def __post_init__(self) -> None:
        if not self.temperature > 0:
            raise W2SError(f"method 'adaptconf': temperature must be > 0, got {self.temperature!r}")


def _make(cfg: AdaptconfConfig):
    from ..train.losses import adaptconf

    return lambda logits, weak, step, total, window=None: adaptconf(logits, weak, cfg.temperature)


METHOD = Method(
    name="adaptconf",
    description="AdaptConf: per-example mix of CE to the weak label and to the student's own argmax, "
                "weighted by their relative cross-entropies.",
    config_cls=AdaptconfConfig,
    make_loss=_make,
)
