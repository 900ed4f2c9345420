import pytest
import torch
from torch import nn

from pytest_nncheck import assert_parameters_update, check_parameters_update
from tests.recipe import zoo
from tests.state import assert_unchanged, snapshot


def _check(model, **options):
    x, y = zoo.tabular()
    return check_parameters_update(model, x, y, nn.CrossEntropyLoss(), **options)


def _codes(report):
    return {(p.code, p.where) for p in report.problems}


def test_a_correct_model_passes():
    x, y = zoo.tabular()
    report = assert_parameters_update(zoo.Backbone(), x, y, nn.CrossEntropyLoss())
    assert report.passed and "all 6 trainable parameters" in report.summary


def test_a_zero_initialised_head_passes_after_a_second_step():
    report = _check(zoo.ZeroInitialisedHead())
    assert report.passed and report.figures["steps"] == 2


def test_an_optimizer_over_part_of_the_model_names_the_rest():
    model = zoo.Backbone()
    report = _check(model, optimizer=torch.optim.Adam(model.head.parameters()))
    assert _codes(report) == {("parameter-not-in-optimizer", f"encoder.{i}.{kind}")
                              for i in (0, 2) for kind in ("weight", "bias")}
    with pytest.raises(AssertionError, match="parameter-not-in-optimizer"):
        assert_parameters_update(model, *zoo.tabular(), nn.CrossEntropyLoss(),
                                 optimizer=torch.optim.Adam(model.head.parameters()))


def test_an_optimizer_of_another_instance_is_named():
    report = _check(zoo.Backbone(), optimizer=torch.optim.Adam(zoo.Backbone().parameters()))
    assert _codes(report) == {("optimizer-foreign-parameters", "optimizer")}


class Tower(nn.Module):
    """A deep stack, most of it frozen by accident: 1,562 of 1,610 in the real case."""

    def __init__(self) -> None:
        super().__init__()
        self.backbone = nn.Sequential(*[nn.Linear(zoo.FEATURES, zoo.FEATURES) for _ in range(30)])
        self.neck = nn.Linear(zoo.FEATURES, zoo.FEATURES)
        self.head = zoo.calm(nn.Linear(zoo.FEATURES, zoo.CLASSES))

    def forward(self, x):
        return self.head(self.neck(self.backbone(x)))


def test_many_frozen_parameters_are_counted_and_grouped():
    model = Tower()
    for p in list(model.backbone.parameters()) + [model.neck.weight]:
        p.requires_grad_(False)
    report = _check(model)
    frozen = [p for p in report.problems if p.code == "parameter-frozen"]
    assert len(frozen) == 61
    assert "64 parameter tensors, 3 trainable; 61 parameter-frozen" in report.summary
    assert "frozen by module: backbone (60), neck (1)" in report.summary
    assert "parameter-frozen: 55 more" in report.render()
    assert _check(model, ignore=["backbone", "neck.weight"]).passed


def test_unregistered_parameters_are_named():
    layers = _check(zoo.LayersInPlainList())
    assert ("parameter-unregistered", "layers[0]") in _codes(layers)
    assert "use nn.ModuleList" in layers.render()
    built = _check(zoo.LayerBuiltInForward())
    assert _codes(built) == {("parameter-unregistered", "Linear built in forward")}
    scale = _check(zoo.ScaleNotAParameter())
    assert _codes(scale) == {("parameter-unregistered", "scale")}
    assert "wrap it in nn.Parameter" in scale.render()


SHARED = nn.Linear(zoo.HIDDEN, zoo.CLASSES)


class UsesAGlobal(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.encoder = nn.Linear(zoo.FEATURES, zoo.HIDDEN)

    def forward(self, x):
        return SHARED(torch.relu(self.encoder(x)))


class RegistersLate(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.encoder = nn.Linear(zoo.FEATURES, zoo.CLASSES)

    def forward(self, x):
        if not hasattr(self, "scale"):
            self.scale = nn.Parameter(torch.ones(zoo.CLASSES))
        return self.encoder(x) * self.scale


def test_modules_used_but_not_owned_and_parameters_registered_in_forward():
    shared = _check(UsesAGlobal())
    assert [p.message for p in shared.problems][0].startswith("Linear is used in the forward but is "
                                                              "not a submodule")
    late = _check(RegistersLate())
    assert ("parameter-unregistered", "scale") in _codes(late)
    assert "after the optimizer was built" in late.render()


def test_no_gradient_zero_gradient_and_no_update_are_told_apart():
    assert _codes(_check(zoo.DetachedEncoder())) == {("parameter-no-gradient", "encoder.weight"),
                                                     ("parameter-no-gradient", "encoder.bias")}
    dead = zoo.Backbone()
    with torch.no_grad():
        dead.encoder[0].bias.fill_(-100.0)
    assert ("parameter-zero-gradient", "encoder.0.weight") in _codes(_check(dead))
    model = zoo.Backbone()
    groups = [{"params": model.encoder.parameters(), "lr": 0.0}, {"params": model.head.parameters()}]
    still = _check(model, optimizer=torch.optim.SGD(groups, lr=0.1))
    assert {code for code, _ in _codes(still)} == {"parameter-not-updated"}
    assert len(still.problems) == 4


def test_callers_model_optimizer_and_state_are_unchanged():
    x, y = zoo.tabular()
    model = zoo.mlp(nn.BatchNorm1d, dropout=0.2).train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    before = snapshot([model, x, y])
    check_parameters_update(model, x, y, nn.CrossEntropyLoss(), optimizer=optimizer)
    assert_unchanged(before, snapshot([model, x, y]))
    assert optimizer.state_dict()["state"] == {}
