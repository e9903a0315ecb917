"""xent for generation tasks: SFT of the strong model on the weak model's answers.

The objective is the default one, the cross-entropy of the answer tokens (``lm.answer_xent``):
(1/|A|) Σ_{t ∈ A} −log p_θ(y_t | prompt, y_<t), with y the weak model's answer and A its tokens and
the stop token.
"""

from __future__ import annotations

from dataclasses import dataclass

from . import GenMethod


@dataclass
class XentConfig:
    """Plain SFT on the weak answers (no settings)."""


METHOD = GenMethod(
    name="xent", kind="loss", config_cls=XentConfig,
    description="SFT of the strong model on the weak model's answers (loss on answer tokens)",
)
