import pytest
import torch

# One torch thread: the suite's tensors are small, and on a loaded 2-core machine a second thread that waits for a
# busy core stalls the first (test_pretrained.py took 244 s beside another torch process, 1.2 s alone).
torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
    yield


def pytest_collection_modifyitems(config, items):
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU")
    for item in items:
        if "cuda" in item.keywords:
            item.add_marker(skip)
