import pytest
import torch


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """The health runs are tiny: on a busy 2-core machine, torch's thread pool costs more than it
    gives (the zoo took 47 s with two threads, 28 s with one, under the same load)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
