"""Which names mean a hyperparameter, shared by the NN3xx rules."""
from __future__ import annotations

import re
from typing import Optional

# Strengths that live on a log scale: learning rates and regularization (NN302).
_SCALE = re.compile(r"^(lr|learning_rate|\w*_lr|lr_\w*|weight_decay|wd|reg|\w*_reg|reg_\w*|l1|l2|"
                    r"lambda_?|lam|alpha|regularization|reg_strength|decay)$")
# Every optimisation or regularization hyperparameter a grid search might range over (NN301).
_ANY = re.compile(r"^(momentum|beta\d?|betas|dropout\w*|\w*_dropout|drop_rate|p_drop|"
                  r"gamma|eps|epsilon|batch_size|warmup\w*|label_smoothing|grad_clip\w*|"
                  r"max_norm|temperature)$")


def _bare(name: Optional[str]) -> str:
    if not name:
        return ""
    return name.strip("'\"").rsplit(".", 1)[-1].lower()


def is_scale_hyperparameter(name: Optional[str]) -> bool:
    """Learning rate, weight decay, regularization strength: sampled on a log scale."""
    return bool(_SCALE.match(_bare(name)))


def is_hyperparameter(name: Optional[str]) -> bool:
    """Any optimisation or regularization hyperparameter."""
    bare = _bare(name)
    return bool(_SCALE.match(bare) or _ANY.match(bare))
