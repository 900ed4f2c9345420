"""Skip messages: every missing argument, the forward's signature, the example tried, the fix."""
import pytest

from pytest_nncheck.discovery import CannotBuild, Layer, build_example
from tests.discovery import zoo


def cannot_build(cls):
    with pytest.raises(CannotBuild) as raised:
        build_example(Layer("tests.discovery.zoo", cls.__name__, cls), {})
    return raised.value


def test_every_missing_constructor_argument_and_the_forward_signature_are_listed():
    error = cannot_build(zoo.NeedsVocabulary)
    assert error.missing == ("vocabulary_file", "tokenizer")
    assert str(error) == (
        "cannot infer an example for tests.discovery.zoo.NeedsVocabulary: its constructor needs "
        "vocabulary_file, tokenizer (no default, and not a size, head count or other argument "
        "nncheck fills in); forward(x, mask=None); register one: @pytest_nncheck.example(lambda: "
        "(NeedsVocabulary(vocabulary_file=..., tokenizer=...), torch.randn(..., "
        "dtype=torch.float64, requires_grad=True))) on the class, or return "
        "{\"tests.discovery.zoo.NeedsVocabulary\": factory} from pytest_nncheck_examples(config) "
        "in conftest.py")


def test_a_required_keyword_only_forward_argument_is_named():
    error = cannot_build(zoo.NeedsCondition)
    assert error.missing == ("condition",)
    assert "its forward needs keyword-only condition; forward(x, *, condition);" in str(error)
    assert ("@pytest_nncheck.example(lambda: (NeedsCondition(...), torch.randn(..., "
            "dtype=torch.float64, requires_grad=True)), forward_kwargs={'condition': ...})"
            ) in str(error)


def test_graph_arguments_are_suggested_by_their_role():
    error = cannot_build(zoo.GraphNeedsEdgeAttributes)
    assert ("lambda: (GraphNeedsEdgeAttributes(...), torch.randn(..., dtype=torch.float64, "
            "requires_grad=True), torch.randint(0, num_nodes, (2, num_edges)), "
            "torch.randint(0, num_relations, (num_edges,)), torch.randn(..., dtype=torch.float64, "
            "requires_grad=True))") in str(error)


def test_a_function_is_suggested_as_its_class_with_one_input_per_argument():
    error = cannot_build(zoo.RaisingFunction)
    assert "forward(x, y)" in str(error)
    assert ("@pytest_nncheck.example(lambda: (RaisingFunction, torch.randn(..., "
            "dtype=torch.float64, requires_grad=True), torch.randn(..., dtype=torch.float64, "
            "requires_grad=True)))") in str(error)
    assert "RaisingFunction()" not in str(error)
    assert error.tried[0] == "RaisingFunction on x (2, 16), y (2, 16)"
    assert error.last_error == "RuntimeError: no"


def test_the_message_is_one_line():
    assert "\n" not in str(cannot_build(zoo.AlwaysRaises))
