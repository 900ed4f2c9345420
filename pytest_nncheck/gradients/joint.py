"""Joint probes: one signed random direction over every checked tensor at once.

Per-tensor probes cost two forwards per probe per tensor, so checking a whole model grows with its
number of tensors. A joint direction tests every tensor in two forwards. Each tensor's part is
weighted by the inverse of its gradient's norm (within a clamped range, so no tensor is moved far
out of the linear regime): every tensor then contributes a comparable share of v . grad, and a
wrong tensor moves the total visibly whatever the sizes of the others.

A joint probe only decides where to look. It is judged at a sensitive threshold; a disagreement is
localised by group testing (halving the set of tensors, then the entries of the culprit: about
log2(tensors) + log2(entries) steps of two forwards), and the verdict is given on the coordinate
found, at the usual threshold. A passing check costs a constant number of forwards. A tensor
found wrong is left out of the later directions and gets one more coordinate instead (two
disagreeing entries with one ratio name a constant factor); an entry found that agrees at the
usual threshold ends the narrowing, since the joint discrepancy was below what it resolves.
"""
from __future__ import annotations

import statistics
from typing import Callable, Collection, Dict, List, Optional, Sequence

import torch

from .judge import Judge, ProbeResult, Tolerance
from .localise import narrow
from .probes import Part, Probe, entry_scale, format_index, unravel

# Joint probes decide where to look, not what is wrong, so they may be far more sensitive than the
# failure threshold (1e-4): a correct float64 model gives joint relative errors of 1e-10..1e-8
# (benchmarks/scaling.py, transformers of 1-16 layers and a ResNet-like CNN), and a single entry
# off by 1% in a 128x128 weight of an 8-layer transformer moves v . grad by ~1e-5 of its size.
JOINT_THRESHOLD = 1e-6

# Two joint directions: a single wrong entry shifts every direction by the same amount (only its
# sign is random), so more directions help only against dense bugs cancelling out by chance.
JOINT_DIRECTIONS = 2

# A tensor's weight stays within this factor of the median one: a tiny gradient norm must not
# turn a 1e-6 step into a large one for that tensor.
WEIGHT_RANGE = 100.0

# After a culprit is found, the rest of the direction is judged again, for a second wrong tensor.
MAX_CULPRITS = 3

# With fewer eligible tensors than this, per-tensor probes are used. benchmarks/scaling.py, MLPs of
# 3..17 tensors, one entry off in a random tensor, 100 trials: joint probes pass a correct model in
# 6 forwards where per-tensor probes take 38..206, and catch 99..100 bugs of 1% where per-tensor
# probes catch 86..92 (10%: 100 against 99..100); a failure costs 10 forwards more at 3 tensors and
# fewer from 5 on. The real-code corpus gives the same verdicts with the switch at 3 as at 8.
JOINT_FROM = 3


def joint_probes(positions: Sequence[int], tensors: Sequence[torch.Tensor],
                 gradients: Sequence[torch.Tensor], count: int,
                 generator: torch.Generator) -> List[Probe]:
    """``count`` weighted signed directions over the tensors at ``positions``."""
    scales = [entry_scale(tensors[p].numel()) for p in positions]
    shares = [scale * float(gradients[p].norm()) for scale, p in zip(scales, positions)]
    reference = statistics.median(shares)
    weights = [scale * min(max(reference / share, 1 / WEIGHT_RANGE), WEIGHT_RANGE)
               for scale, share in zip(scales, shares)]
    probes = []
    for number in range(1, count + 1):
        parts = []
        for position, weight in zip(positions, weights):
            tensor = tensors[position]
            signs = torch.randint(0, 2, (tensor.numel(),), generator=generator, dtype=torch.int8)
            direction = ((signs.to(tensor.dtype) * 2 - 1) * weight).reshape(tensor.shape)
            parts.append(Part(position, direction=direction.to(tensor.device)))
        probes.append(Probe(f"joint direction {number} ({len(positions)} tensors)", parts, "joint"))
    return probes


def check_jointly(judge: Judge, positions: Sequence[int], names: Sequence[str],
                  tolerance: Tolerance, generator: torch.Generator,
                  count: int = JOINT_DIRECTIONS,
                  lowered: Optional[Callable[[], Collection[int]]] = None,
                  ) -> Optional[Dict[int, List[ProbeResult]]]:
    """Per tensor position: the joint results it took part in and any coordinate localised to it.

    ``lowered`` names the tensors that compute in a lower precision (asked only once a joint
    probe disagrees): if any of ``positions`` is among them, None is returned at once, before any
    narrowing, so that the caller probes them on their own.
    """
    joint = Tolerance(tolerance.step, JOINT_THRESHOLD, tolerance.noise_floor, tolerance.resolvable)
    found: Dict[int, List[ProbeResult]] = {position: [] for position in positions}
    wrong: List[int] = []  # tensors with a confirmed wrong entry: later directions leave them out
    for whole in joint_probes(positions, judge.subject.tensors, judge.gradients, count, generator):
        current = _without(whole, wrong, names)
        if current is None:
            continue
        result, at_joint = judge.judge(current, joint), True
        if result.status == "disagree" and lowered is not None \
                and set(lowered()) & set(positions):
            return None
        culprits = 0
        while result.status == "disagree" and culprits < MAX_CULPRITS:
            located, _ = narrow(judge, result, joint, names, final_tolerance=tolerance)
            if located is None:
                break
            culprits += 1
            culprit = located.probe.parts[0].tensor
            found[culprit].append(located)
            if located.status == "disagree":
                wrong.append(culprit)
            current = _without(current, [culprit], names)
            if current is None:
                break
            # After an entry that agrees at the failure threshold, the joint discrepancy is finer
            # than a tensor's own check resolves (an iterative solver's backward is exact to
            # ~1e-5, qpth's): the rest is judged at that threshold rather than narrowed again.
            at_joint = located.status == "disagree"
            result = judge.judge(current, joint if at_joint else tolerance)
        if current is None:
            continue
        if result.status == "disagree" and at_joint:
            result = judge.judge(current, tolerance)  # the verdict is given at the usual threshold
        for part in current.parts:
            found[part.tensor].append(result)
    for culprit in wrong:
        second = _second_entry(judge, culprit, found[culprit], names)
        if second is not None:  # what tells a constant factor from one wrong entry
            found[culprit].append(judge.judge(second, tolerance, confirm=False))
    return found


def _without(probe: Probe, left_out: Sequence[int], names: Sequence[str]) -> Optional[Probe]:
    """``probe`` without the parts on ``left_out`` tensors (None when nothing remains)."""
    parts = [part for part in probe.parts if part.tensor not in left_out]
    if len(parts) == len(probe.parts):
        return probe
    if not parts:
        return None
    dropped = ", ".join(names[p] for p in left_out if p in probe.tensors)
    joiner = ", " if " without " in probe.label else " without "
    return Probe(f"{probe.label}{joiner}{dropped}", parts, "joint")


def _second_entry(judge: Judge, position: int, results: List[ProbeResult],
                  names: Sequence[str]) -> Optional[Probe]:
    """The culprit's entry of largest analytic gradient other than the one already located."""
    gradient = judge.gradients[position]
    taken = set()
    for part in (part for r in results for part in r.probe.parts if part.tensor == position):
        if part.index is not None:
            taken.add(tuple(part.index))
        elif part.support() == 1:  # a direction narrowed down to one entry
            taken.add(unravel(int(part.direction.reshape(-1).nonzero()[0]), tuple(gradient.shape)))
    for flat in gradient.abs().reshape(-1).argsort(descending=True)[:len(taken) + 1].tolist():
        index = unravel(flat, tuple(gradient.shape))
        if index not in taken:
            return Probe(names[position] + format_index(index), [Part(position, index=index)],
                         "coordinate")
    return None
