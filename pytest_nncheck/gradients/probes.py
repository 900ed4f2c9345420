"""Probes: the coordinates and directions along which gradients are compared.

A coordinate localises a bug ("fc1.weight[3, 2] is wrong"); a signed random direction compares the
whole gradient at once (v . grad against a directional central difference), so a single wrong
entry anywhere, or a dense bug, is caught even when no sampled coordinate hits it. A probe may span
several tensors (a joint direction over a whole model), and any probe can be split in two halves of
its support, which is how a disagreement is narrowed down to a tensor and an entry.

Coordinates are drawn where the analytic gradient is nonzero: a probe that compares 0 with 0 is no
evidence. Directions cover every entry, so a gradient that is zero where it should not be is
still seen.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, List, Optional, Sequence

import torch

# Defaults chosen from benchmarks/probe_defaults.py (100 trials per bug): 2 signed directions catch
# a single entry off by 10% in a 20x20 weight 100/100 times and in a 100x100 weight 95-97/100, and
# every dense bug; coordinates alone catch 0-2/100 single-entry bugs in those weights but name the
# entry at fault. 8 coordinates or 4 directions cost 20-45% more time per check for at most a few
# more catches.
DEFAULT_COORDS = 4
DEFAULT_DIRECTIONS = 2

Projection = Callable[[torch.Tensor], torch.Tensor]

# A direction's entries are +-1 up to this many entries and shrink as 1/sqrt(n) beyond, so that
# the perturbation's norm stays that of 256 unit entries: a step of 1e-6 along +-1 on all 32768
# entries of a transformer's feed-forward weight moves each pre-activation by ~1e-5, enough to
# flip ReLUs and to push a correct layer's central difference to 1e-4 of error; shrunk, it stays
# near 1e-8 (benchmarks/scaling.py). The comparison v . grad against the numeric derivative is
# unchanged by the scale.
DIRECTION_SUPPORT = 256


def entry_scale(numel: int) -> float:
    """The magnitude of a random direction's entries on a tensor of ``numel`` entries."""
    return min(1.0, math.sqrt(DIRECTION_SUPPORT / numel)) if numel else 1.0


@dataclass
class Part:
    """The perturbation of one tensor: a coordinate (``index``) or a direction."""

    tensor: int  # position in the subject's checked tensors
    index: Optional[tuple] = None
    direction: Optional[torch.Tensor] = None

    def analytic(self, gradient: torch.Tensor) -> float:
        if self.index is not None:
            return float(gradient[self.index])
        return float((gradient * self.direction).sum())

    def magnitude(self, gradient: torch.Tensor) -> float:
        """The size of this part's derivative terms: |g_i|, or the norm of v * g."""
        if self.index is not None:
            return abs(float(gradient[self.index]))
        return float((gradient * self.direction).norm())

    def save(self, tensor: torch.Tensor) -> Any:
        if self.index is not None:
            return tensor[self.index].item()
        return tensor.detach().clone()

    def place(self, tensor: torch.Tensor, saved: Any, step: float) -> None:
        if self.index is not None:
            tensor[self.index] = saved + step
        else:
            torch.add(saved, self.direction, alpha=step, out=tensor.data)

    def restore(self, tensor: torch.Tensor, saved: Any) -> None:
        if self.index is not None:
            tensor[self.index] = saved
        else:
            tensor.copy_(saved)

    def support(self) -> int:
        return 1 if self.index is not None else int(torch.count_nonzero(self.direction))


@dataclass
class Probe:
    """One perturbation, over one or several tensors, and the label the report shows."""

    label: str
    parts: List[Part]
    kind: str  # "coordinate", "direction" or "joint"
    # A projected probe stays on a constraint set only as a whole: its halves would leave it.
    splittable: bool = True

    @property
    def tensors(self) -> List[int]:
        return [part.tensor for part in self.parts]

    def analytic(self, gradients: Sequence[torch.Tensor]) -> float:
        """The derivative along this probe predicted by the backward pass."""
        return sum(part.analytic(gradients[part.tensor]) for part in self.parts)

    def scale(self, gradients: Sequence[torch.Tensor], largest: Sequence[float]) -> float:
        """The gradient scale the relative floor is taken from.

        For a coordinate, the tensor's largest analytic entry (a zero entry next to large ones is
        judged against them); for a direction, the norm of its terms v_i * g_i.
        """
        if self.kind == "coordinate":
            return largest[self.parts[0].tensor]
        return math.sqrt(sum(part.magnitude(gradients[part.tensor]) ** 2 for part in self.parts))

    def reach(self) -> float:
        """The largest entry of the perturbation: 1 for a coordinate."""
        return max(1.0 if part.index is not None else float(part.direction.abs().max())
                   for part in self.parts)

    def place(self, tensors: Sequence[torch.Tensor], step: float) -> List[Any]:
        """Move every part by ``step`` along the probe; returns what ``restore`` needs."""
        saved = [part.save(tensors[part.tensor]) for part in self.parts]
        for part, value in zip(self.parts, saved):
            part.place(tensors[part.tensor], value, step)
        return saved

    def move(self, tensors: Sequence[torch.Tensor], saved: List[Any], step: float) -> None:
        for part, value in zip(self.parts, saved):
            part.place(tensors[part.tensor], value, step)

    def restore(self, tensors: Sequence[torch.Tensor], saved: List[Any]) -> None:
        for part, value in zip(self.parts, saved):
            part.restore(tensors[part.tensor], value)

    def halves(self, names: Sequence[str]) -> Optional[List["Probe"]]:
        """Two probes on the halves of this one's support, or None for a single coordinate.

        Several tensors split by tensor; one tensor's direction splits its nonzero entries.
        """
        if not self.splittable:
            return None
        if len(self.parts) > 1:
            middle = len(self.parts) // 2
            return [self._sub(self.parts[:middle], names), self._sub(self.parts[middle:], names)]
        part = self.parts[0]
        if part.index is not None:
            return None
        flat = part.direction.reshape(-1)
        support = flat.nonzero().flatten()
        if len(support) <= 1:
            return None
        middle = len(support) // 2
        result = []
        for chosen in (support[:middle], support[middle:]):
            # Each half keeps the parent's coefficients, so that the halves' derivatives add up
            # to the parent's (narrowing follows the discrepancy by that sum); a half on a single
            # entry is labelled as that entry.
            vector = torch.zeros_like(flat)
            vector[chosen] = flat[chosen]
            label = (names[part.tensor] + format_index(unravel(int(chosen[0]),
                                                               tuple(part.direction.shape)))
                     if len(chosen) == 1 else f"{names[part.tensor]} ({len(chosen)} entries)")
            result.append(Probe(label, [Part(part.tensor,
                                             direction=vector.reshape(part.direction.shape))],
                                "direction"))
        return result

    def _sub(self, parts: List[Part], names: Sequence[str]) -> "Probe":
        if len(parts) == 1:
            return Probe(f"{names[parts[0].tensor]} (part of {self.label})", parts, "direction")
        return Probe(f"{len(parts)} tensors of {self.label}", parts, "joint")


def unravel(flat: int, shape: tuple) -> tuple:
    """Row-major multi-index of a flat position (torch.unravel_index imports sympy on first use)."""
    index = []
    for size in reversed(shape):
        flat, position = divmod(flat, size)
        index.append(position)
    return tuple(reversed(index))


def format_index(index: tuple) -> str:
    return "[" + ", ".join(str(i) for i in index) + "]" if index else ""


def _distinct(generator: torch.Generator, population: int, count: int) -> List[int]:
    """``count`` distinct positions in range(population), without permuting a large population."""
    if population <= 4 * count or population <= 4096:
        return torch.randperm(population, generator=generator)[:count].tolist()
    chosen: List[int] = []
    seen = set()
    while len(chosen) < count:
        position = int(torch.randint(population, (1,), generator=generator))
        if position not in seen:
            seen.add(position)
            chosen.append(position)
    return chosen


class ProbeSampler:
    """Draws the coordinates and directions of one tensor.

    ``projection`` keeps every probe on a constraint set (symmetric matrices, balanced
    marginals): coordinates and directions are projected onto its tangent space, so they all
    become directions.
    """

    def __init__(self, position: int, name: str, tensor: torch.Tensor, gradient: torch.Tensor,
                 coords: int, directions: int, generator: torch.Generator, resolvable: float,
                 projection: Optional[Projection] = None) -> None:
        self.position = position
        self.name = name
        self.shape = tuple(tensor.shape)
        self.numel = tensor.numel()
        self.coords = min(coords, self.numel)
        # When every entry is probed on its own, a direction (a combination of them) adds nothing.
        self.directions = directions if (self.coords < self.numel or projection) else 0
        self._gradient = gradient
        self._generator = generator
        self._resolvable = resolvable
        self._projection = projection
        self._dtype = tensor.dtype
        self._device = tensor.device

    def _coordinates(self) -> List[int]:
        """Flat positions: the entry of largest analytic gradient (the best signal over round-off,
        which matters most in single precision), then random ones where it is resolvably nonzero,
        then any."""
        if self.coords == self.numel:
            return list(range(self.numel))
        magnitudes = self._gradient.abs().reshape(-1)
        chosen = [int(magnitudes.argmax())]
        resolvable = magnitudes > self._resolvable
        resolvable[chosen[0]] = False
        nonzero = resolvable.nonzero().flatten()
        picks = _distinct(self._generator, len(nonzero), min(len(nonzero), self.coords - 1))
        chosen += [int(nonzero[p]) for p in picks]
        taken = set(chosen)
        for position in _distinct(self._generator, self.numel, min(self.numel, 2 * self.coords)):
            if len(chosen) >= self.coords:
                break
            if position not in taken:
                chosen.append(position)
                taken.add(position)
        return chosen[:self.coords]

    def _direction(self, count: int) -> Probe:
        signs = torch.randint(0, 2, (self.numel,), generator=self._generator, dtype=torch.int8)
        vector = ((signs.to(self._dtype) * 2 - 1) * entry_scale(self.numel)).reshape(
            self.shape).to(self._device)
        return self._probe(f"{self.name} direction {count}", vector)

    def _probe(self, label: str, vector: torch.Tensor) -> Probe:
        if self._projection is not None:
            vector = self._projection(vector).to(self._dtype)
            label += " (projected)"
        return Probe(label, [Part(self.position, direction=vector)], "direction",
                     splittable=self._projection is None)

    def probes(self) -> List[Probe]:
        result = []
        for flat in self._coordinates():
            index = unravel(flat, self.shape)
            if self._projection is None:
                result.append(Probe(self.name + format_index(index),
                                    [Part(self.position, index=index)], "coordinate"))
            else:
                unit = torch.zeros(self.shape, dtype=self._dtype, device=self._device)
                unit[index] = 1.0
                result.append(self._probe(f"{self.name} along {format_index(index)}", unit))
        result += [self._direction(count + 1) for count in range(self.directions)]
        return result
