import os
from pathlib import Path

import pytest

from explorer.inputs.examples import gz_folder
from explorer.serving import server_environment

# The test environment, set once: pytest imports this file before any test module, and every server the tests
# start (in this process or as `python -m explorer`, which inherits it) runs without telemetry, as served.
server_environment()

REPO = Path(__file__).resolve().parent.parent
SHARED_MNIST = REPO.parent / "shared" / "data" / "mnist"
SHIPPED = REPO / "checkpoints" / "capsnet.safetensors"


def _download(root: Path) -> None:
    """What `python -m capsnet.train` does with a missing MNIST: torchvision downloads it into root/MNIST/raw."""
    from capsnet.data import load_mnist

    load_mnist(root, train=False, download=True)


def find_mnist(environ=os.environ, shared: Path = SHARED_MNIST, data_dir: Path | None = None, download=_download) -> Path:
    """A folder holding the four MNIST .gz files, looked for as the trainer does, in this order:
    1. $CAPSNET_TEST_MNIST when set (the folder, or a torchvision root holding MNIST/raw);
    2. ../shared/data/mnist beside the clone;
    3. the trainer's default, ./data of the clone ($CAPSNET_DATA when set), in torchvision's layout,
       downloaded there when missing.
    Raises capsnet.data.MNISTUnavailable whose message is one sentence saying how to provide MNIST."""
    from capsnet.data import MNISTUnavailable, default_data_dir

    if data_dir is None:
        data_dir = REPO / default_data_dir()  # relative: the clone's ./data, wherever pytest runs from
    how = (f"set CAPSNET_TEST_MNIST to a folder holding the four MNIST .gz files, put them in {shared}, or run "
           f"`python -m capsnet.train` once with internet access so that torchvision downloads them into {data_dir}")
    if environ.get("CAPSNET_TEST_MNIST"):
        given = Path(environ["CAPSNET_TEST_MNIST"])
        if (found := gz_folder(given)) is None:
            raise MNISTUnavailable(f"CAPSNET_TEST_MNIST={given} holds no MNIST .gz files: {how}.")
        return found
    for folder in (shared, data_dir):
        if (found := gz_folder(folder)) is not None:
            return found
    try:
        download(data_dir)
    except (MNISTUnavailable, OSError) as e:
        cause = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise MNISTUnavailable(f"MNIST not found and its download into {data_dir} failed ({cause}): {how}.") from None
    if (found := gz_folder(data_dir)) is None:
        raise MNISTUnavailable(f"MNIST was downloaded into {data_dir} but its four .gz files are not there: {how}.")
    return found


_MNIST: list = []  # [the folder, or the MNISTUnavailable raised], once asked for


def mnist_folder() -> Path:
    """find_mnist() once per test run, on first use (never while tests are collected), for every test that needs
    MNIST; a failure is remembered too, so a missing copy is looked for (and downloaded) once."""
    from capsnet.data import MNISTUnavailable

    if not _MNIST:
        try:
            _MNIST.append(find_mnist())
        except MNISTUnavailable as e:
            _MNIST.append(e)
    if isinstance(_MNIST[0], MNISTUnavailable):
        raise MNISTUnavailable(str(_MNIST[0]))
    return _MNIST[0]


@pytest.fixture
def shipped_copy(tmp_path) -> Path:
    """A copy of the shipped weights and their model card in tmp_path, for tools that write beside the weights."""
    import shutil

    if not SHIPPED.exists():
        pytest.skip("no shipped checkpoint")
    weights = tmp_path / "capsnet.safetensors"
    shutil.copy(SHIPPED, weights)
    shutil.copy(SHIPPED.with_suffix(".json"), weights.with_suffix(".json"))
    return weights


@pytest.fixture(scope="session")
def mnist_dir() -> Path:
    """The folder holding the four MNIST .gz files (mnist_folder()); the test fails, never skips, without one."""
    from capsnet.data import MNISTUnavailable

    try:
        return mnist_folder()
    except MNISTUnavailable as e:
        pytest.fail(str(e), pytrace=False)


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


# ---------------------------------------------------------------- browser tests (tests/browser_helpers.py)


@pytest.fixture(scope="module")
def explorer_url():
    """The shipped app served as `python -m explorer` serves it, with the MNIST test digits when MNIST is found;
    one per test module."""
    from capsnet.data import MNISTUnavailable

    from .browser_helpers import serve_explorer

    try:
        data_dir = mnist_folder()
    except MNISTUnavailable:
        data_dir = None  # the Examples tab then offers no MNIST digits, and the tests check them only when offered
    with serve_explorer(data_dir) as url:
        yield url


@pytest.fixture(scope="module")
def browser():
    """Headless chromium through Playwright (browser_helpers.chromium), one per test module."""
    from .browser_helpers import chromium

    with chromium() as b:
        yield b


@pytest.fixture
def page(explorer_url, browser):
    """A fresh 1400x1100 tab on the explorer, closed after the test."""
    from .browser_helpers import open_page

    pg = open_page(browser, explorer_url)
    try:
        yield pg
    finally:
        pg.close()
