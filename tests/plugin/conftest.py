# pytester's in-process runs drop modules first imported inside them; torch's C extension cannot be
# imported twice in one process, and torch registers operator libraries once, so everything those
# runs reach is imported here, before any inline run: nncheck's modules, and torch._dynamo, which
# the first optimizer built in a process imports (Optimizer.add_param_group).
import pytest
import torch

import pytest_nncheck.against_reference.registry  # noqa: F401
import pytest_nncheck.discovery  # noqa: F401
import pytest_nncheck.gradients.check  # noqa: F401
import pytest_nncheck.health.html  # noqa: F401
import pytest_nncheck.health.training  # noqa: F401
import pytest_nncheck.recipe.models  # noqa: F401
import pytest_nncheck.summary  # noqa: F401

torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)


@pytest.fixture
def project(pytester):
    """A project whose nncheck_modules lists mylayers (tests/plugin/test_plugin.py's LAYERS)."""
    from tests.plugin.test_plugin import CONFIG, LAYERS
    pytester.makepyfile(mylayers=LAYERS)
    pytester.makeini(CONFIG)
    pytester.syspathinsert()
    return pytester
