"""The plugin's settings: read once from the command line and the ini file, validated at start-up.

A CI gate must never pass silently, so an option that cannot work (``nncheck_device = gpu``, CUDA
asked for on a runner without it, ``nncheck_seed = zero``) is a usage error when pytest starts,
once, not a skip or an error per item later.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, List, Optional

DEVICE = re.compile(r"^(auto|cpu|cuda(:\d+)?)$")
DTYPES = ("float64", "float32", "bfloat16", "float16")


class SettingsError(ValueError):
    """An option that cannot work; the plugin turns it into a pytest usage error (exit 4)."""


@dataclass(frozen=True)
class Settings:
    """Every nncheck option, validated."""

    seed: int
    device: str
    modules: List[str]
    report: Optional[str]
    html: Optional[str]
    exclude: List[str] = field(default_factory=list)
    dtypes: List[str] = field(default_factory=list)  # empty: each layer's own dtype


def _value(config: Any, name: str) -> Any:
    option = config.getoption(f"--nncheck-{name}")
    return option if option is not None else config.getini(f"nncheck_{name}")


def _names(value: Any) -> List[str]:
    if isinstance(value, str):
        value = value.replace(",", " ").split()
    return [item for item in value if item]


def read_settings(config: Any, check_device: bool = True) -> Settings:
    """The validated settings; raises SettingsError naming the option and the fix."""
    seed_text = str(_value(config, "seed")).strip()
    try:
        seed = int(seed_text)
    except ValueError:
        raise SettingsError(f"nncheck_seed must be an integer, got {seed_text!r}; e.g. "
                            f"nncheck_seed = 0") from None
    device = str(_value(config, "device")).strip()
    if not DEVICE.match(device):
        raise SettingsError(f"nncheck_device must be auto, cpu, cuda or cuda:N, got {device!r}")
    if check_device and device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            raise SettingsError(f"nncheck_device = {device} but CUDA is not available on this "
                                f"machine; use auto (CUDA when present, else the CPU) or cpu")
        index = int(device.split(":")[1]) if ":" in device else 0
        if index >= torch.cuda.device_count():
            raise SettingsError(f"nncheck_device = {device} but this machine has "
                                f"{torch.cuda.device_count()} CUDA device(s)")
    dtypes = _names(config.getini("nncheck_dtypes"))
    unknown = [name for name in dtypes if name not in DTYPES]
    if unknown:
        raise SettingsError(f"nncheck_dtypes has {', '.join(map(repr, unknown))}; use "
                            f"{', '.join(DTYPES)}")
    modules = _names(config.getoption("--nncheck-modules") or config.getini("nncheck_modules"))
    return Settings(seed=seed, device=device, modules=modules,
                    report=_value(config, "report") or None,
                    html=_value(config, "html") or None,
                    exclude=_names(config.getini("nncheck_exclude")), dtypes=dtypes)
