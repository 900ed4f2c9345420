"""Which names mean a hyperparameter, shared by the NN3xx rules."""
from __future__ import annotations

import re
from typing import Optional

# Strengths that live on a log scale: learning rates and regularization (NN302).
_SCALE = re.compile(r"^(lr|learning_rate|\w*_lr|lr_\w*|weight_decay|wd|reg|\w*_reg|reg_\w*|l1|l2|"
                    r"lambda_?|lam|alpha|regularization|reg_strength|decay)$")
# Unambiguous optimisation and regularization hyperparameters (NN301 needs one of these).
_STRONG = re.compile(r"^(lr|learning_rate|\w*_lr|lr_\w*|weight_decay|wd|reg|\w*_reg|reg_\w*|l1|l2|"
                     r"regularization|reg_strength|momentum|dropout\w*|\w*_dropout|drop_rate|"
                     r"p_drop|label_smoothing|warmup\w*|grad_clip\w*)$")
# Names that are hyperparameters next to a strong one, and often something else on their own
# (GEMM's alpha and beta, Adam's betas, a norm's eps).
_WEAK = re.compile(r"^(alpha|beta\d?|betas|gamma|eps|epsilon|lambda_?|lam|decay|batch_size|"
                   r"max_norm|temperature)$")


def _bare(name: Optional[str]) -> str:
    if not name:
        return ""
    return name.strip("'\"").rsplit(".", 1)[-1].lower()


def is_scale_hyperparameter(name: Optional[str]) -> bool:
    """Learning rate, weight decay, regularization strength: sampled on a log scale."""
    return bool(_SCALE.match(_bare(name)))


def is_hyperparameter(name: Optional[str]) -> bool:
    """Any optimisation or regularization hyperparameter, unambiguous or not."""
    bare = _bare(name)
    return bool(_STRONG.match(bare) or _WEAK.match(bare))


def is_unambiguous_hyperparameter(name: Optional[str]) -> bool:
    """A name that means an optimisation or regularization hyperparameter wherever it appears."""
    return bool(_STRONG.match(_bare(name)))
