import os
from pathlib import Path

import pytest

from explorer.serving import server_environment

# The test environment, set once: pytest imports this file before any test module, and every server the tests
# start (in this process or as `python -m explorer`, which inherits it) runs without telemetry, as served.
server_environment()

REPO = Path(__file__).resolve().parent.parent
MNIST_DIR = Path(os.environ.get("CAPSNET_TEST_MNIST", REPO.parent / "shared" / "data" / "mnist"))
SHIPPED = REPO / "checkpoints" / "capsnet.safetensors"


@pytest.fixture(scope="session")
def mnist_dir() -> Path:
    if not (MNIST_DIR / "t10k-images-idx3-ubyte.gz").exists():
        pytest.fail(f"MNIST copy not found at {MNIST_DIR} (set CAPSNET_TEST_MNIST)")
    return MNIST_DIR


@pytest.fixture(scope="session")
def mnist_test(mnist_dir):
    from capsnet.data import load_mnist

    return load_mnist(mnist_dir, train=False)


@pytest.fixture(scope="session")
def model():
    """The shipped checkpoint when there is one, else a seeded untrained CapsNet (tests must hold for both)."""
    import torch

    from capsnet import CapsNet, load_pretrained

    if SHIPPED.exists():
        return load_pretrained(SHIPPED)
    torch.manual_seed(0)
    return CapsNet().eval()
