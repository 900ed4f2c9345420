"""Probes: the coordinates and directions along which a tensor's gradient is compared.

A sample of coordinates localises a bug ("fc1.weight[3, 2] is wrong"); a few signed random
directions compare the whole gradient at once (v . grad against a directional central difference),
so a single wrong entry anywhere, or a dense bug, is caught even when no sampled coordinate hits it.
Every checked tensor gets its own probes, so every tensor is covered.

A direction moves every entry, so one entry sitting on a kink makes every full direction cross it.
A direction that crossed a kink is replaced by one on half the support (and without coordinates
already seen on a kink), so replacements step away from the kinks instead of hitting them again.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterator, Optional

import torch

# Defaults chosen from benchmarks/probe_defaults.py (100 trials per bug): 2 signed directions catch
# a single entry off by 10% in a 20x20 weight 100/100 times and in a 100x100 weight 95-97/100, and
# every dense bug; coordinates alone catch 0-2/100 single-entry bugs in those weights but name the
# entry at fault and stand in for directions that cross kinks. 8 coordinates or 4 directions cost
# 20-45% more time per check for at most a few more catches.
DEFAULT_COORDS = 4
DEFAULT_DIRECTIONS = 2

_PERMUTE_UP_TO = 4096


@dataclass
class Probe:
    """One perturbation of one tensor: a coordinate (``index``) or a direction (``direction``)."""

    label: str
    index: Optional[tuple] = None
    direction: Optional[torch.Tensor] = None
    flat: Optional[int] = None

    def analytic(self, gradient: torch.Tensor) -> float:
        """The derivative along this probe predicted by the backward pass."""
        if self.index is not None:
            return float(gradient[self.index])
        return float((gradient * self.direction).sum())

    def save(self, tensor: torch.Tensor) -> Any:
        """What ``restore`` needs to put ``tensor`` back exactly (one entry, or the whole tensor)."""
        if self.index is not None:
            return tensor[self.index].item()
        return tensor.detach().clone()

    def place(self, tensor: torch.Tensor, saved: Any, step: float) -> None:
        """Set ``tensor`` to its saved value moved by ``step`` along the probe, in place."""
        if self.index is not None:
            tensor[self.index] = saved + step
        else:
            torch.add(saved, self.direction, alpha=step, out=tensor.data)

    def restore(self, tensor: torch.Tensor, saved: Any) -> None:
        if self.index is not None:
            tensor[self.index] = saved
        else:
            tensor.copy_(saved)


def _unravel(flat: int, shape: tuple) -> tuple:
    """Row-major multi-index of a flat position (torch.unravel_index imports sympy on first use)."""
    index = []
    for size in reversed(shape):
        flat, position = divmod(flat, size)
        index.append(position)
    return tuple(reversed(index))


def _format_index(index: tuple) -> str:
    return "[" + ", ".join(str(i) for i in index) + "]"


class ProbeSampler:
    """Draws probes for one tensor; replacements come from the same stream, never repeating."""

    def __init__(self, name: str, tensor: torch.Tensor, coords: int, directions: int,
                 generator: torch.Generator) -> None:
        self.name = name
        self.shape = tuple(tensor.shape)
        self.numel = tensor.numel()
        self.coords = min(coords, self.numel)
        # When every entry is probed on its own, a direction (a combination of them) adds nothing.
        self.directions = directions if self.coords < self.numel else 0
        self._generator = generator
        # A full permutation for small tensors; for large ones, draws that skip repeats (a
        # permutation of a 100 000-entry weight costs more than the probes themselves).
        self._order = (torch.randperm(self.numel, generator=generator).tolist()
                       if self.numel <= _PERMUTE_UP_TO else None)
        self._drawn: set = set()
        self._next_coordinate = 0
        self._next_direction = 0
        self._dtype = tensor.dtype
        self._device = tensor.device
        self._support = self.numel
        self._on_kinks: set = set()

    @property
    def requested(self) -> int:
        return self.coords + self.directions

    def coordinate(self) -> Optional[Probe]:
        """The next unsampled coordinate, or None when all were used."""
        if self._next_coordinate >= self.numel:
            return None
        if self._order is not None:
            flat = self._order[self._next_coordinate]
        else:
            flat = int(torch.randint(self.numel, (1,), generator=self._generator))
            while flat in self._drawn:
                flat = int(torch.randint(self.numel, (1,), generator=self._generator))
            self._drawn.add(flat)
        self._next_coordinate += 1
        index = _unravel(flat, self.shape)
        return Probe(self.name + _format_index(index) if index else self.name, index=index,
                     flat=flat)

    def direction(self) -> Probe:
        """A fresh random direction with entries of +1 or -1 on the current support (else 0)."""
        signs = torch.randint(0, 2, (self.numel,), generator=self._generator, dtype=torch.int8)
        vector = signs.to(self._dtype) * 2 - 1
        if self._support < self.numel or self._on_kinks:
            allowed = [i for i in torch.randperm(self.numel, generator=self._generator).tolist()
                       if i not in self._on_kinks][:self._support]
            mask = torch.zeros(self.numel, dtype=self._dtype)
            mask[allowed] = 1
            vector = vector * mask
        self._next_direction += 1
        return Probe(f"{self.name} direction {self._next_direction}",
                     direction=vector.reshape(self.shape).to(self._device))

    def initial(self) -> Iterator[Probe]:
        for _ in range(self.coords):
            probe = self.coordinate()
            if probe is not None:
                yield probe
        for _ in range(self.directions):
            yield self.direction()

    def replacement(self, crossed: Probe) -> Optional[Probe]:
        """Another probe of the same kind as one that crossed a kink."""
        if crossed.index is not None:
            self._on_kinks.add(crossed.flat)
            return self.coordinate()
        self._support = max(1, self._support // 2)
        if len(self._on_kinks) >= self.numel:
            return None
        return self.direction()
