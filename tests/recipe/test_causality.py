import pytest
import torch
from torch import nn

from pytest_nncheck import NNCheckError, assert_causality, check_causality
from tests.recipe import zoo
from tests.state import assert_unchanged, snapshot


def test_a_correct_mask_passes():
    x, _ = zoo.sequences()
    report = assert_causality(zoo.MaskedAttention(zoo.future), x)
    assert report.passed and "8 positions" in report.summary
    assert report.to_dict()["check"] == "causality"


def test_an_off_by_one_mask_names_the_first_leaking_position():
    x, _ = zoo.sequences()
    report = check_causality(zoo.MaskedAttention(zoo.future_but_next), x)
    assert not report.passed
    assert report.figures["first_leaking_position"] == 0 and report.figures["lookahead"] == 1
    assert report.summary.startswith("the output at position 0 already depends on position 1")
    assert "off by one" in report.summary
    assert [p.where for p in report.problems] == [f"position {t} <- position {t + 1}"
                                                  for t in range(7)]
    with pytest.raises(AssertionError, match="causality FAILED"):
        assert_causality(zoo.MaskedAttention(zoo.future_but_next), x)


def test_an_inverted_mask_shows_the_whole_future():
    x, _ = zoo.sequences()
    report = check_causality(zoo.MaskedAttention(zoo.past), x)
    assert "the whole future is visible" in report.summary
    assert len(report.problems) == 8 * 7 // 2


@pytest.mark.parametrize("padding, trim, ahead", [((1, 1), slice(None), 1), ((2, 2), slice(2, None), 2)])
def test_convolutions_padded_on_both_sides_look_ahead(padding, trim, ahead):
    x, _ = zoo.sequences()
    report = check_causality(zoo.PaddedConv(padding, trim), x)
    assert not report.passed and report.figures["lookahead"] == ahead
    assert check_causality(zoo.PaddedConv((2, 0), slice(None)), x).passed


class LateLeak(nn.Module):
    """Causal up to position 4; from position 5 on each output also sees the last position."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(zoo.CHANNELS, 3)

    def forward(self, x):
        h = self.linear(x).cumsum(dim=1)
        late = torch.zeros_like(h)
        late[:, 5:] = h[:, -1:]
        return h + late


def test_the_first_leaking_position_is_where_the_leak_starts():
    x, _ = zoo.sequences()
    report = check_causality(LateLeak(), x)
    assert report.figures["first_leaking_position"] == 5
    assert report.summary.startswith("the output at position 5 already depends on position 6")
    assert [p.where for p in report.problems] == ["position 5 <- position 6", "position 5 <- position 7",
                                                  "position 6 <- position 7"]


def test_token_models_with_and_without_the_mask():
    x, _ = zoo.tokens()
    assert check_causality(zoo.TokenTransformer(causal=True), x).passed
    leaky = check_causality(zoo.TokenTransformer(causal=False), x)
    assert not leaky.passed and "backward and forward form" in leaky.problems[0].message


def test_long_sequences_are_sampled():
    torch.manual_seed(0)
    x = torch.randn(2, 40, zoo.CHANNELS)
    report = check_causality(zoo.MaskedAttention(zoo.future_but_next), x)
    assert not report.passed and report.figures["positions"] == 40
    assert check_causality(zoo.MaskedAttention(zoo.future), x).passed


def test_an_output_without_the_sequence_axis_is_one_line():
    x, _ = zoo.sequences()
    with pytest.raises(NNCheckError, match="no floating output has 8 positions along dim 1"):
        check_causality(zoo.PooledAfterView(), x)


def test_callers_model_and_state_are_unchanged():
    x, _ = zoo.sequences()
    model = zoo.MaskedAttention(zoo.future)
    before = snapshot([model, x])
    check_causality(model, x)
    assert_unchanged(before, snapshot([model, x]))
