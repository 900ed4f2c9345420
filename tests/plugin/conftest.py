# pytester's in-process runs drop modules first imported inside them; torch's C extension cannot be
# imported twice in one process, so it is imported here, before any inline run.
import torch  # noqa: F401

import pytest_nncheck.discovery  # noqa: F401
import pytest_nncheck.gradients.check  # noqa: F401
import pytest_nncheck.summary  # noqa: F401
