import sys

import pytest
import torch
from torch import nn

from pytest_nncheck import NNCheckError, RegisteredReference, reference, registered_reference
from tests.reference.fused_layers import (CausalAttention, FusedRMSNorm, FusedSwiGLU,
                                          RMSNormReference, RMSNormWithInputDtypeAccumulation,
                                          causal_attention_reference, rmsnorm_inputs)


def test_the_decorator_records_the_reference_and_its_options_on_the_class():
    registered = registered_reference(FusedSwiGLU)
    assert isinstance(registered, RegisteredReference)
    assert registered.options == {"parameters": {"w13": "gate_up", "w2": "down"}}
    assert registered_reference(CausalAttention).reference is causal_attention_reference
    assert registered_reference(FusedSwiGLU()) is registered  # an instance finds its class's


def test_variants_inherit_the_registration_and_unregistered_layers_have_none():
    assert registered_reference(RMSNormWithInputDtypeAccumulation) is \
        registered_reference(FusedRMSNorm)
    assert registered_reference(nn.Linear) is None
    assert registered_reference(torch.exp) is None


def test_check_uses_the_registered_options_and_the_runs_overrides():
    @reference(RMSNormReference, k=1000.0)
    class Loose(RMSNormWithInputDtypeAccumulation):
        pass

    torch.manual_seed(0)
    layer, inputs = Loose(), rmsnorm_inputs(0)
    registered = registered_reference(Loose)
    assert registered.check(layer, *inputs, dtype=torch.bfloat16).passed
    strict = registered.check(layer, *inputs, dtype=torch.bfloat16, k=2.0)
    assert strict.failed and strict.k == 2.0


def test_the_module_path_does_not_hide_the_decorator():
    import pytest_nncheck.against_reference.check  # noqa: F401 - imported before the name is read
    assert callable(pytest_nncheck.reference) and pytest_nncheck.reference is reference
    assert "pytest_nncheck.reference" not in sys.modules


@pytest.mark.parametrize("call, message", [
    (lambda: reference(RMSNormReference, dtype=torch.bfloat16),
     "@reference got dtype; it takes parameters, k, floor"),
    (lambda: reference(3), "@reference needs a module class or instance"),
    (lambda: reference(RMSNormReference)(int), "decorates an nn.Module or autograd.Function"),
])
def test_registration_mistakes_fail_where_they_are_made(call, message):
    with pytest.raises(NNCheckError, match=message):
        call()
