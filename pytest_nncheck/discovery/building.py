"""Building the example a layer is checked on: the user's registration, else inference.

An explicit example is the user's own code: a factory that raises, returns something else than
``(layer, *inputs)`` or an ``Example``, carries an unknown option or an empty input tensor is an
NNCheckError (a failure, never a skip). Only an *inferred* example that cannot be built is a skip
(CannotBuild, with what was tried).
"""
from __future__ import annotations

from dataclasses import replace
from typing import Any, Mapping, Optional

from ..errors import NNCheckError
from ..gradients.seeded import preserved_rng_state, reseed
from .examples import (Example, describe_callable, describe_inputs, tensors_by_path,
                       validated_options)
from .inference import error_line, infer_example
from .layers import Layer
from .registrations import Registration, registration_for


def _explicit(layer: Layer, registration: Registration) -> Example:
    try:
        built = registration.factory()
    except Exception as error:  # the user's factory may raise anything
        raise NNCheckError(f"the example registered for {layer.qualified} raised "
                           f"{error_line(error)}; fix its factory") from error
    if isinstance(built, Example):
        example = replace(built, options={**registration.options, **built.options}, explicit=True)
    elif isinstance(built, tuple) and built:
        example = Example(built[0], tuple(built[1:]), dict(registration.options), explicit=True)
    else:
        raise NNCheckError(f"the example registered for {layer.qualified} must return (layer, "
                           f"*inputs) or a pytest_nncheck.Example, got {type(built).__name__}")
    validated_options(example.options, layer.qualified)
    for position, value in enumerate(example.inputs):
        for path, tensor in tensors_by_path(value, f"input[{position}]"):
            if tensor.numel() == 0:
                raise NNCheckError(f"the example registered for {layer.qualified} has an empty "
                                   f"input: {path} has shape {tuple(tensor.shape)}; give every "
                                   f"input tensor at least one element")
    if not example.description:
        example.description = (f"{describe_callable(example.fn)} on "
                               f"{describe_inputs(example.inputs)}")
    return example


def build_example(layer: Layer, registered: Optional[Mapping[Any, Any]] = None, *,
                  seed: Optional[int] = None) -> Example:
    """The example to check ``layer`` on: its registered factory's, else an inferred one.

    ``registered`` is the ``pytest_nncheck_examples(config)`` mapping. Raises CannotBuild when
    inference finds no candidate that runs (a skip) and NNCheckError when the user's registration
    is at fault (a failure). With ``seed`` the example is built from that seed; either way the
    caller's random states are restored.
    """
    registration = registration_for(layer, registered or {})
    with preserved_rng_state():
        if seed is not None:
            reseed(seed)
        if registration is not None and registration.factory is not None:
            return _explicit(layer, registration)
        options = {} if registration is None else registration.options
        return infer_example(layer, validated_options(options, layer.qualified))
