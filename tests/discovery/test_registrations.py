"""Registered examples with check options, explicit examples that are wrong, skip and exclude."""
import pytest
import torch
from torch import nn

import pytest_nncheck
from pytest_nncheck import NNCheckError
from pytest_nncheck.discovery import Example, Layer, build_example, example, excluded, skip
from tests.discovery import zoo
from tests.state import assert_unchanged, snapshot


def layer_of(cls, module="mylayers"):
    return Layer(module, cls.__name__, cls)


class Masked(nn.Module):
    """A forward whose keyword argument changes the output."""

    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(torch.linspace(0.5, 1.5, 4, dtype=torch.float64))

    def forward(self, x, *, scale=1.0):
        return torch.tanh(x * self.weight) * scale


def test_example_carries_check_options_and_forward_kwargs():
    @example(lambda: (Masked(), torch.randn(2, 4, dtype=torch.float64, requires_grad=True)),
             eps=1e-5, coords=2, directions=1, kinks="count", forward_kwargs={"scale": 3.0})
    class Registered(Masked):
        pass

    built = build_example(layer_of(Registered), {})
    assert built.explicit
    assert built.options == {"eps": 1e-5, "coords": 2, "directions": 1, "kinks": "count",
                             "forward_kwargs": {"scale": 3.0}}
    assert built.gradient_options == {"eps": 1e-5, "coords": 2, "directions": 1, "kinks": "count"}
    assert built.description == "Masked on (2, 4)"
    x = built.inputs[0]
    assert torch.allclose(built.function()(x), 3 * built.fn(x))
    report = built.check()
    assert report.passed and report.eps == 1e-5
    assert [e.probes for e in report.entries] == [3, 3]  # coords=2 + directions=1 per tensor


def test_forward_kwargs_leave_the_users_module_untouched():
    module = Masked()
    x = torch.randn(2, 4, dtype=torch.float64, requires_grad=True)
    before = snapshot([module, x])
    built = Example(module, (x,), {"forward_kwargs": {"scale": 2.0}})
    built.check()
    assert "forward" not in vars(module)
    assert_unchanged(before, snapshot([module, x]))


def test_forward_kwargs_cannot_go_to_a_function():
    built = Example(zoo.ScaledSwish, (torch.randn(3, requires_grad=True),),
                    {"forward_kwargs": {"beta": 2.0}})
    with pytest.raises(NNCheckError, match="ScaledSwish.apply, which takes positional arguments"):
        built.function()


def test_options_without_a_factory_go_with_the_inferred_example():
    @example(dtype=torch.float32, directions=3)
    class Float32Block(zoo.StemBlock):
        pass

    built = build_example(layer_of(Float32Block), {})
    assert not built.explicit
    assert built.options == {"dtype": torch.float32, "directions": 3}
    assert built.fn.proj.weight.dtype == built.inputs[0].dtype == torch.float32


@pytest.mark.parametrize("options, message", [
    ({"epsilon": 1e-4}, "unknown option 'epsilon' in the example for mylayers.Bad; the options "
                        "are dtype, eps, coords, directions, kinks and forward_kwargs"),
    ({"forward_kwargs": ["mask"]}, "forward_kwargs in the example for mylayers.Bad must be a dict"),
    ({"dtype": "float32"}, "dtype in the example for mylayers.Bad must be a torch.dtype"),
])
def test_options_are_validated_when_the_example_is_built(options, message):
    @example(lambda: (Masked(), torch.randn(2, 4)), **options)
    class Bad(Masked):
        pass

    with pytest.raises(NNCheckError) as raised:
        build_example(layer_of(Bad), {})
    assert str(raised.value).startswith(message)
    assert "\n" not in str(raised.value)


def test_a_hook_factory_may_return_an_example_with_options():
    registered = {"mylayers.NeedsVocabulary": lambda: Example(
        zoo.NeedsVocabulary("v.txt", "t"), (torch.randn(3, requires_grad=True),),
        {"coords": 1}, explicit=False)}
    built = build_example(layer_of(zoo.NeedsVocabulary), registered)
    assert built.explicit  # registered by the user, whatever the factory said
    assert built.options == {"coords": 1}
    assert built.description == "NeedsVocabulary on (3,)"


def test_a_hook_factory_combines_with_decorator_options():
    @example(coords=1)
    class Tokens(zoo.NeedsVocabulary):
        pass

    registered = {Tokens: lambda: (Tokens("v.txt", "t"), torch.randn(3, requires_grad=True))}
    built = build_example(layer_of(Tokens), registered)
    assert built.explicit and built.options == {"coords": 1}


@pytest.mark.parametrize("factory, message", [
    (lambda: 1 / 0, "the example registered for mylayers.Masked raised ZeroDivisionError: "
                    "division by zero; fix its factory"),
    (lambda: Masked(), "the example registered for mylayers.Masked must return (layer, *inputs) "
                       "or a pytest_nncheck.Example, got Masked"),
    (lambda: (Masked(), torch.randn(0, 4, requires_grad=True)),
     "the example registered for mylayers.Masked has an empty input: input[0] has shape (0, 4)"),
    (lambda: (Masked(), [torch.randn(2, 4), {"mask": torch.ones(2, 0)}]),
     "the example registered for mylayers.Masked has an empty input: input[0][1]['mask'] has "
     "shape (2, 0)"),
])
def test_an_explicit_example_that_cannot_run_is_an_error_not_a_skip(factory, message):
    with pytest.raises(NNCheckError) as raised:
        build_example(layer_of(Masked), {Masked: factory})
    assert str(raised.value).startswith(message)


def test_a_hook_value_that_is_not_a_factory_is_an_error():
    with pytest.raises(NNCheckError, match="pytest_nncheck_examples gave tuple for "
                                           "mylayers.Masked; give a factory"):
        build_example(layer_of(Masked), {Masked: (Masked(), torch.randn(2, 4))})


def test_a_registration_is_not_inherited():
    @example(lambda: (Masked(), torch.randn(2, 4, requires_grad=True)))
    class Parent(Masked):
        pass

    class Child(Parent):
        def __init__(self, features):
            super().__init__()
            self.extra = nn.Linear(features, 4)

        def forward(self, x):
            return super().forward(self.extra(x))

    built = build_example(layer_of(Child), {})
    assert not built.explicit and type(built.fn) is Child


def test_example_applied_without_a_factory_says_how_to_write_it():
    with pytest.raises(NNCheckError,
                       match=r"write @pytest_nncheck.example\(lambda: \(Masked\(\.\.\.\)"):
        example(Masked)


def test_example_unpacks_as_the_call_and_whether_it_is_explicit():
    x = torch.randn(3)
    call, explicit = Example(zoo.SquaredReLU(), (x,), explicit=False)
    assert isinstance(call[0], zoo.SquaredReLU) and call[1] is x and explicit is False


def test_skip_and_exclude_patterns():
    @skip("straight-through estimator: the backward is the identity by design")
    class StraightThrough(nn.Module):
        def forward(self, x):
            return x.round()

    class Reversal(StraightThrough):  # a subclass is not skipped by its parent's decorator
        pass

    assert excluded(layer_of(StraightThrough)) == ("straight-through estimator: the backward is "
                                                   "the identity by design")
    assert excluded(layer_of(Reversal)) is None
    assert excluded(layer_of(Reversal), ["mylayers.Rev*"]) == \
        "excluded by nncheck_exclude pattern 'mylayers.Rev*'"
    assert excluded(layer_of(Reversal), ["Reversal"]) == \
        "excluded by nncheck_exclude pattern 'Reversal'"
    assert excluded(layer_of(Reversal), ["other.*", "reversal", "Rev"]) is None


@pytest.mark.parametrize("reason", ["", "   ", None])
def test_skip_needs_a_reason(reason):
    with pytest.raises(NNCheckError, match="needs a reason"):
        skip(reason)


def test_public_names():
    assert pytest_nncheck.skip is skip and pytest_nncheck.example is example
    assert pytest_nncheck.Example is Example
    assert pytest_nncheck.build_example is build_example
