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
# (GEMM's alpha and beta, Adam's betas, a norm's eps, a layer's width).
_WEAK = re.compile(r"^(alpha|beta\d?|betas|gamma|eps|epsilon|lambda_?|lam|decay|batch_size|"
                   r"max_norm|temperature|hidden(_size|_dim|_units)?|hidden_sizes?|hs|"
                   r"num_hidden|weight_scale|init_scale|ws|std)$")
# Lists of values to search over: learning_rates, regularization_strengths, hidden_sizes.
_PLURAL = re.compile(r"(s|es|_list|_grid|_values|_range|_sheet)$")


def _bare(name: Optional[str]) -> str:
    if not name:
        return ""
    return name.strip("'\"").rsplit(".", 1)[-1].lower()


# Parts of a name that make it a strength on a log scale: lambda_l2, l2_penalty, reg_weight.
_SCALE_PARTS = {"lr", "reg", "l1", "l2", "lambda", "lam", "wd", "penalty", "regularization",
                "regularizer", "regularisation"}


def is_scale_hyperparameter(name: Optional[str]) -> bool:
    """Learning rate, weight decay, regularization strength: sampled on a log scale."""
    bare = _bare(name)
    return bool(_SCALE.match(bare)) or bool(_SCALE_PARTS & set(bare.split("_"))) \
        or "learning_rate" in bare or "weight_decay" in bare


def is_hyperparameter(name: Optional[str]) -> bool:
    """Any optimisation or regularization hyperparameter, unambiguous or not."""
    bare = _bare(name)
    return bool(_STRONG.match(bare) or _WEAK.match(bare))


def searched_hyperparameter(name: Optional[str]) -> Optional[str]:
    """The hyperparameter a list of values is named after (``learning_rates`` -> ``learning_rate``,
    ``LR_SHEET`` -> ``lr``), else None."""
    bare = _bare(name)
    for singular in (_PLURAL.sub("", bare), bare[:-1] if bare.endswith("s") else bare):
        if singular and (is_hyperparameter(singular) or singular in ("regularization_strength",
                                                                      "learning_rate")):
            return singular
    return None


def is_unambiguous_hyperparameter(name: Optional[str]) -> bool:
    """A name that means an optimisation or regularization hyperparameter wherever it appears."""
    return bool(_STRONG.match(_bare(name)))
