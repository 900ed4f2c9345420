"""Every expected initial loss against a brute-force evaluation of the loss at the uninformed output."""
import functools
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from pytest_nncheck.sanity.losses import describe_loss, expected_at_init, loss_floor

g = torch.Generator().manual_seed(0)
N, C = 6, 5
LABELS = torch.randint(0, C, (N,), generator=g)
IGNORED = LABELS.clone()
IGNORED[:2] = -100
WEIGHTS = torch.rand(C, generator=g, dtype=torch.float64) + 0.5
SOFT = torch.softmax(torch.randn(N, C, generator=g, dtype=torch.float64), dim=1)
MULTI = torch.randint(0, 2, (N, C), generator=g).double()
SIGNS = MULTI * 2 - 1
REGRESSION = torch.randn(N, 3, generator=g, dtype=torch.float64) * 2
COUNTS = torch.poisson(torch.rand(N, 3, generator=g, dtype=torch.float64) * 4)
LABELS_4D = torch.randint(0, C, (2, 3, 4), generator=g)


def logits(shape=(N, C)):
    return torch.zeros(shape, dtype=torch.float64)


def probabilities(shape=(N, C)):
    return torch.full(shape, 0.5, dtype=torch.float64)


def log_uniform(shape=(N, C)):
    return torch.full(shape, -math.log(shape[1]), dtype=torch.float64)


CASES = [
    ("CE", nn.CrossEntropyLoss(), logits, LABELS),
    ("CE sum", nn.CrossEntropyLoss(reduction="sum"), logits, LABELS),
    ("CE ignore_index", nn.CrossEntropyLoss(), logits, IGNORED),
    ("CE weights", nn.CrossEntropyLoss(weight=WEIGHTS), logits, LABELS),
    ("CE weights sum", nn.CrossEntropyLoss(weight=WEIGHTS, reduction="sum"), logits, LABELS),
    ("CE soft targets", nn.CrossEntropyLoss(), logits, SOFT),
    ("CE soft weighted", nn.CrossEntropyLoss(weight=WEIGHTS), logits, SOFT),
    ("CE soft smoothed", nn.CrossEntropyLoss(label_smoothing=0.2), logits, SOFT),
    ("CE 4-D", nn.CrossEntropyLoss(), lambda: logits((2, C, 3, 4)), LABELS_4D),
    ("CE smoothing", nn.CrossEntropyLoss(label_smoothing=0.1), logits, LABELS),
    ("CE weights+smoothing", nn.CrossEntropyLoss(weight=WEIGHTS, label_smoothing=0.3), logits, LABELS),
    ("CE weights+smoothing+ignore", nn.CrossEntropyLoss(weight=WEIGHTS, label_smoothing=0.3),
     logits, IGNORED),
    ("CE smoothing sum", nn.CrossEntropyLoss(label_smoothing=0.3, reduction="sum"), logits, IGNORED),
    ("F.cross_entropy", F.cross_entropy, logits, LABELS),
    ("partial cross_entropy", functools.partial(F.cross_entropy, label_smoothing=0.2, weight=WEIGHTS),
     logits, LABELS),
    ("NLL", nn.NLLLoss(), log_uniform, LABELS),
    ("NLL weights ignore", nn.NLLLoss(weight=WEIGHTS), log_uniform, IGNORED),
    ("F.nll_loss", F.nll_loss, log_uniform, LABELS),
    ("BCEWithLogits", nn.BCEWithLogitsLoss(), logits, MULTI),
    ("BCEWithLogits pos_weight", nn.BCEWithLogitsLoss(pos_weight=WEIGHTS), logits, MULTI),
    ("BCEWithLogits weight sum", nn.BCEWithLogitsLoss(weight=WEIGHTS, reduction="sum"), logits, MULTI),
    ("BCEWithLogits soft", nn.BCEWithLogitsLoss(pos_weight=WEIGHTS), logits, SOFT),
    ("BCE", nn.BCELoss(), probabilities, MULTI),
    ("F.binary_cross_entropy", F.binary_cross_entropy, probabilities, SOFT),
    ("MultiLabelSoftMargin", nn.MultiLabelSoftMarginLoss(), logits, MULTI),
    ("MultiLabelSoftMargin weight", nn.MultiLabelSoftMarginLoss(weight=WEIGHTS), logits, MULTI),
    ("SoftMargin", nn.SoftMarginLoss(), logits, SIGNS),
    ("MultiMargin", nn.MultiMarginLoss(), logits, LABELS),
    ("MultiMargin p=2 margin=2", nn.MultiMarginLoss(p=2, margin=2.0), logits, LABELS),
    ("MultiMargin weight sum", nn.MultiMarginLoss(weight=WEIGHTS, reduction="sum"), logits, LABELS),
    ("MSE", nn.MSELoss(), lambda: torch.zeros(N, 3, dtype=torch.float64), REGRESSION),
    ("MSE sum", nn.MSELoss(reduction="sum"), lambda: torch.zeros(N, 3, dtype=torch.float64), REGRESSION),
    ("L1", nn.L1Loss(), lambda: torch.zeros(N, 3, dtype=torch.float64), REGRESSION),
    ("SmoothL1", nn.SmoothL1Loss(beta=0.5), lambda: torch.zeros(N, 3, dtype=torch.float64), REGRESSION),
    ("Huber", nn.HuberLoss(delta=0.7), lambda: torch.zeros(N, 3, dtype=torch.float64), REGRESSION),
    ("KLDiv batchmean", nn.KLDivLoss(reduction="batchmean"), log_uniform, SOFT),
    ("KLDiv mean", nn.KLDivLoss(), log_uniform, SOFT),
    ("KLDiv log_target", nn.KLDivLoss(reduction="batchmean", log_target=True), log_uniform, SOFT.log()),
    ("PoissonNLL", nn.PoissonNLLLoss(), lambda: torch.zeros(N, 3, dtype=torch.float64), COUNTS),
    ("PoissonNLL full", nn.PoissonNLLLoss(full=True), lambda: torch.zeros(N, 3, dtype=torch.float64), COUNTS),
]


@pytest.mark.parametrize("name, loss_fn, uninformed, targets", CASES, ids=[c[0] for c in CASES])
def test_expected_initial_loss_matches_brute_force(name, loss_fn, uninformed, targets):
    spec = describe_loss(loss_fn)
    assert spec is not None
    outputs = uninformed()
    brute_force = float(loss_fn(outputs, targets))
    assert expected_at_init(spec, outputs, targets) == pytest.approx(brute_force, rel=1e-9, abs=1e-12)


def test_cross_entropy_is_ln_c_and_weights_with_smoothing_are_not():
    spec = describe_loss(nn.CrossEntropyLoss(weight=WEIGHTS))
    assert expected_at_init(spec, logits(), LABELS) == pytest.approx(math.log(C))
    smoothed = describe_loss(nn.CrossEntropyLoss(weight=WEIGHTS, label_smoothing=0.3))
    assert expected_at_init(smoothed, logits(), LABELS) != pytest.approx(math.log(C), rel=1e-3)


def test_multi_margin_is_divided_by_the_number_of_classes():
    spec = describe_loss(nn.MultiMarginLoss())
    assert expected_at_init(spec, torch.zeros(4, 10, dtype=torch.float64), torch.arange(4)) == pytest.approx(0.9)


def test_unknown_loss_is_not_described():
    assert describe_loss(lambda out, y: (out - y).abs().max()) is None
    assert describe_loss(nn.TripletMarginLoss()) is None


@pytest.mark.parametrize("loss_fn, targets, floor", [
    (nn.CrossEntropyLoss(), LABELS, 0.0),
    (nn.MSELoss(), REGRESSION, 0.0),
    (nn.BCEWithLogitsLoss(), MULTI, 0.0),
])
def test_floor_is_zero_for_hard_targets(loss_fn, targets, floor):
    spec = describe_loss(loss_fn)
    assert loss_floor(spec, logits(), targets) == floor


def test_label_smoothing_floor_is_reachable_and_not_beatable():
    loss_fn = nn.CrossEntropyLoss(label_smoothing=0.1)
    floor = loss_floor(describe_loss(loss_fn), logits(), LABELS)
    best = torch.full((N, C), math.log(0.1 / C), dtype=torch.float64)
    best[torch.arange(N), LABELS] = math.log(1 - 0.1 + 0.1 / C)
    assert float(loss_fn(best, LABELS)) == pytest.approx(floor, rel=1e-9)
    assert float(loss_fn(torch.randn(N, C, generator=g, dtype=torch.float64) * 5, LABELS)) > floor
