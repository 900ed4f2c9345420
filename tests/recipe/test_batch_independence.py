import pytest
import torch
from torch import nn

from pytest_nncheck import NNCheckError, assert_batch_independence, check_batch_independence
from tests.recipe import zoo
from tests.state import assert_unchanged, snapshot


class Centred(nn.Module):
    """x - x.mean(0), optionally with the mean detached (a leak gradients cannot see)."""

    def __init__(self, detach: bool = False) -> None:
        super().__init__()
        self.detach = detach
        self.net = zoo.mlp()

    def forward(self, x):
        mean = x.mean(dim=0)
        return self.net(x - (mean.detach() if self.detach else mean))


def test_independent_model_passes():
    x, _ = zoo.tabular()
    report = assert_batch_independence(zoo.mlp(nn.LayerNorm), x)
    assert report.passed and report.problems == []
    assert "16 samples, backward and forward form" in report.render()
    assert str(report) == report.render() and report.to_dict()["passed"] is True


def test_a_reduction_over_the_batch_leaks_every_pair():
    x, _ = zoo.tabular()
    report = check_batch_independence(Centred(), x)
    assert not report.passed
    assert len(report.problems) == 16 * 15
    assert {p.code for p in report.problems} == {"batch-leak"}
    assert report.problems[0].where == "output 0 <- sample 1" and report.problems[0].value > 0
    assert "a reduction over the batch axis" in report.summary
    with pytest.raises(AssertionError, match="batch independence FAILED"):
        assert_batch_independence(Centred(), x)


def test_a_detached_leak_is_seen_by_the_forward_form_alone():
    x, _ = zoo.tabular()
    report = check_batch_independence(Centred(detach=True), x)
    assert not report.passed
    assert {p.message.split("seen by the ")[1] for p in report.problems} == {"forward form)"}


def test_a_view_that_mixes_samples_names_the_pairs():
    x, _ = zoo.sequences()
    report = check_batch_independence(zoo.SequenceFirstGRUFedByView(), x)
    assert not report.passed and "a reshape that mixes the batch" in report.summary
    assert "output 1 <- sample 0" in [p.where for p in report.problems]
    assert check_batch_independence(zoo.SequenceFirstGRU(), x).passed


def test_batchnorm_runs_in_eval_mode_and_says_so():
    x, _ = zoo.tabular()
    model = zoo.mlp(nn.BatchNorm1d).train()
    before = snapshot([model, x])
    report = check_batch_independence(model, x)
    assert report.passed, report.render()
    assert "BatchNorm layers ran in eval mode (1)" in report.render()
    assert_unchanged(before, snapshot([model, x]))


def test_dropout_runs_under_a_fixed_seed():
    x, _ = zoo.tabular()
    assert check_batch_independence(zoo.mlp(dropout=0.5).train(), x).passed


class TokenMixer(nn.Module):
    def __init__(self, leak: bool) -> None:
        super().__init__()
        self.leak = leak
        self.embed = nn.Embedding(zoo.VOCAB, 8)
        self.head = nn.Linear(8, zoo.VOCAB)

    def forward(self, tokens):
        h = self.embed(tokens)
        return self.head(h - h.mean(dim=0) if self.leak else h)


def test_token_inputs_are_differentiated_through_their_embeddings():
    x, _ = zoo.tokens()
    assert not x.is_floating_point()
    report = check_batch_independence(TokenMixer(leak=True), x)
    assert not report.passed
    assert "seen by the backward and forward form" in report.problems[0].message
    clean = check_batch_independence(TokenMixer(leak=False), x)
    assert clean.passed and "backward and forward form" in clean.summary


class Counter(nn.Module):
    """Carries state between calls: two forwards of the same inputs differ."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(zoo.FEATURES, 2)
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        return self.linear(x) + self.calls


def test_a_forward_that_is_not_repeatable_skips_the_forward_form():
    x, _ = zoo.tabular()
    report = check_batch_independence(Counter(), x)
    assert report.passed and "forward form skipped" in report.render()
    assert "backward form" in report.summary


class Transposed(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(zoo.FEATURES, 3)

    def forward(self, x):
        return self.linear(x).t()


def test_outputs_indexed_on_another_axis_need_output_dim():
    x, _ = zoo.tabular()
    with pytest.raises(NNCheckError, match=r"no floating output has 16 samples along dim 0 .*"
                                           r"\(3, 16\).*pass output_dim="):
        check_batch_independence(Transposed(), x)
    assert check_batch_independence(Transposed(), x, output_dim=1).passed


def test_sequence_first_inputs_take_dim():
    x, _ = zoo.sequences()
    rnn = nn.GRU(zoo.CHANNELS, 4)
    report = check_batch_independence(nn.Sequential(rnn), x.transpose(0, 1), dim=1)
    assert report.passed and "4 samples" in report.summary


def test_large_batches_are_sampled():
    torch.manual_seed(0)
    x = torch.randn(40, zoo.FEATURES)
    report = check_batch_independence(Centred(), x)
    assert not report.passed and report.figures["samples"] == 40
    assert len({p.where.split(" <- ")[0] for p in report.problems}) == 40


def test_bad_inputs_are_one_line():
    x, _ = zoo.tabular()
    with pytest.raises(NNCheckError, match=r"the batch is empty: input\[0\] has shape \(0, 8\)"):
        check_batch_independence(zoo.mlp(), x[:0])
    with pytest.raises(NNCheckError, match="inputs need a tensor with a dim 0"):
        check_batch_independence(zoo.mlp(), [3.0])
    with pytest.raises(NNCheckError, match="model is the class"):
        check_batch_independence(nn.Linear, x)


def test_callers_model_rng_and_settings_are_unchanged():
    x, _ = zoo.tokens()
    model = zoo.TokenTransformer().train()
    before = snapshot([model, x])
    check_batch_independence(model, x)
    assert_unchanged(before, snapshot([model, x]))
