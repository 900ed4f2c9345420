"""The trend of a loss curve: is it still falling, and would it reach its target in time?

Read on the distance to the loss's floor over the last part of the curve. The rate is taken as
exponential (a constant fraction of the distance per step), which is what full-batch training
shows once it is going; for curves that slow down (logistic regression under SGD falls like 1/t)
the projection is optimistic and is simply re-read every window.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

# The trend is read over this fraction of the steps taken so far, and at least MIN_WINDOW steps.
TREND_FRACTION = 0.2
MIN_WINDOW = 10
# Still falling: the distance to the floor shrank by at least this fraction over the window.
# benchmarks/recipe.py (overfit table, 20 seeds): correct classifiers at 100% accuracy that had
# not reached the target shrank it by 14-34% over the last window; a detached encoder's plateau by
# 0.9-3.4%.
STILL_FALLING = 0.05


@dataclass
class Trend:
    """The loss at the start and end of the window, as distances to the floor."""

    start: float
    end: float
    window: int
    floor: float
    target: float

    @property
    def falling(self) -> bool:
        return self.end < (1 - STILL_FALLING) * self.start

    @property
    def steps_to_target(self) -> float:
        """Steps still needed at the window's rate of decrease (inf when it is not decreasing)."""
        goal = self.target - self.floor
        if self.end <= goal:
            return 0.0
        if not self.falling or goal <= 0:
            return math.inf
        rate = math.log(self.start / self.end) / self.window
        return math.log(self.end / goal) / rate

    def reaches_target(self, remaining: int) -> bool:
        return self.steps_to_target <= remaining

    def describe(self) -> str:
        return (f"{self.start + self.floor:.3g} -> {self.end + self.floor:.3g} over the last "
                f"{self.window} steps")

    def explain_stop(self, remaining: int) -> str:
        if not self.falling:
            change = 1 - self.end / self.start if self.start > 0 else 0.0
            return (f"stopped: the loss stopped falling ({self.describe()}, {change:.1%} closer "
                    f"to its floor)")
        return (f"stopped: at its rate ({self.describe()}) the loss needs about "
                f"{self.steps_to_target:.0f} more steps to reach the target, more than the "
                f"{max(remaining, 0)} left (raise max_steps or the learning rate)")


def loss_trend(losses: Sequence[float], floor: float, target: float) -> Trend:
    """The trend over the last window; each end is the mean of a fifth of the window (noise)."""
    if len(losses) < 2:
        distance = max(losses[-1] - floor, 1e-12)
        return Trend(start=distance, end=distance, window=1, floor=floor, target=target)
    window = min(max(MIN_WINDOW, int(TREND_FRACTION * len(losses))), len(losses) - 1)
    edge = max(1, window // 5)
    first = losses[-window - 1:-window - 1 + edge]
    last = losses[-edge:]
    start = max(sum(first) / len(first) - floor, 1e-12)
    end = max(sum(last) / len(last) - floor, 1e-12)
    return Trend(start=start, end=end, window=max(window - edge, 1), floor=floor, target=target)
