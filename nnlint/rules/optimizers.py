"""Recognising optimizers and learning-rate schedulers by qualified name (NN201, NN202)."""
from __future__ import annotations

import re
from typing import Optional

_OTHER_OPTIMIZERS = {"transformers.AdamW", "transformers.optimization.AdamW",
                     "transformers.Adafactor", "timm.optim.create_optimizer_v2"}
# transformers' get_linear_schedule_with_warmup, get_cosine_schedule, get_scheduler; timm's
# create_scheduler / create_scheduler_v2.
_SCHEDULE_FACTORY = re.compile(r"(^|\.)(get_\w+_schedule(_with_warmup)?|get_scheduler|"
                               r"create_scheduler(_v\d+)?)$")


def is_optimizer(qualified: Optional[str]) -> bool:
    """``torch.optim.SGD``, ``torch.optim.adam.Adam``, a few well-known ones from other libraries."""
    if not qualified:
        return False
    if qualified in _OTHER_OPTIMIZERS:
        return True
    parts = qualified.split(".")
    return (len(parts) >= 3 and parts[0] == "torch" and parts[1] == "optim"
            and "lr_scheduler" not in parts and parts[-1][:1].isupper()
            and parts[-1] not in ("Optimizer",))


def is_scheduler(qualified: Optional[str]) -> bool:
    """torch's lr_scheduler classes, ``get_*_schedule*`` factories, and ``*Scheduler`` classes."""
    if not qualified:
        return False
    last = qualified.rsplit(".", 1)[-1]
    return ("lr_scheduler" in qualified.split(".") and last[:1].isupper()
            or bool(_SCHEDULE_FACTORY.search(qualified))
            or last.endswith(("Scheduler", "LR")) and last[:1].isupper())
