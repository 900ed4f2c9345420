"""Finding a repository's custom layers and building the examples they are checked on.

``pytest --nncheck`` checks every ``nn.Module`` and ``autograd.Function`` subclass defined in the
configured modules and packages. An example comes from the user (``@example``, the
``pytest_nncheck_examples`` hook) or is inferred from a table of candidates, the first that runs
winning; ``@skip`` and ``nncheck_exclude`` declare layers not to check.
"""
from .building import build_example
from .examples import Example
from .inference import CannotBuild, forward_problem
from .layers import Layer, find_layers
from .registrations import example, excluded, skip

__all__ = ["CannotBuild", "Example", "Layer", "build_example", "example", "excluded",
           "find_layers", "forward_problem", "skip"]
