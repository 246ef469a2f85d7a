"""Tests find MNIST as the trainer does: $CAPSNET_TEST_MNIST, else ../shared/data/mnist, else the trainer's ./data
(torchvision's layout), downloaded there when missing; when nothing works, one sentence says how to provide it."""
import pytest
from torchvision.datasets import MNIST

from capsnet.data import GZ_FILES, MNISTUnavailable

from .conftest import REPO, find_mnist, mnist_folder


def gz_copy(folder, mnist_dir):
    """`folder` holding the four .gz files (links to the real ones); returns it."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in GZ_FILES:
        (folder / name).symlink_to(mnist_dir / name)
    return folder


def never_download(root):
    raise AssertionError(f"a download into {root} was attempted")


@pytest.fixture
def places(tmp_path, mnist_dir):
    """Three copies: one for the variable, the shared one, and ./data in torchvision's layout."""
    return (gz_copy(tmp_path / "env", mnist_dir), gz_copy(tmp_path / "shared", mnist_dir),
            gz_copy(tmp_path / "data" / "MNIST" / "raw", mnist_dir).parent.parent)


def test_the_variable_comes_first(places):
    env, shared, data = places
    assert find_mnist({"CAPSNET_TEST_MNIST": str(env)}, shared, data, never_download) == env


def test_the_variable_may_name_a_torchvision_root(places):
    env, shared, data = places
    assert find_mnist({"CAPSNET_TEST_MNIST": str(data)}, shared, data, never_download) == data / "MNIST" / "raw"


def test_a_wrong_variable_says_so_rather_than_looking_elsewhere(tmp_path, places):
    env, shared, data = places
    with pytest.raises(MNISTUnavailable, match="CAPSNET_TEST_MNIST=.* holds no MNIST .gz files"):
        find_mnist({"CAPSNET_TEST_MNIST": str(tmp_path / "nowhere")}, shared, data, never_download)


def test_then_the_shared_copy(places):
    env, shared, data = places
    assert find_mnist({}, shared, data, never_download) == shared


def test_then_the_trainers_data_folder(tmp_path, places):
    env, shared, data = places
    assert find_mnist({}, tmp_path / "no-shared", data, never_download) == data / "MNIST" / "raw"


def test_a_data_folder_of_plain_gz_files_counts_too(tmp_path, places):
    env, shared, data = places
    assert find_mnist({}, tmp_path / "no-shared", shared, never_download) == shared


def test_missing_everywhere_it_is_downloaded_into_the_data_folder(tmp_path, mnist_dir):
    asked = []

    def download(root):  # stands in for torchvision's download, which puts the .gz files in root/MNIST/raw
        asked.append(root)
        gz_copy(root / "MNIST" / "raw", mnist_dir)

    data = tmp_path / "data"
    assert find_mnist({}, tmp_path / "no-shared", data, download) == data / "MNIST" / "raw"
    assert asked == [data]


def test_a_failed_download_says_in_one_sentence_how_to_provide_mnist(tmp_path, monkeypatch):
    """The real download path (capsnet.data.load_mnist through torchvision), with its mirrors pointed at a closed
    local port: nothing is fetched, and the error is one sentence naming the three ways."""
    monkeypatch.setattr(MNIST, "mirrors", ["http://127.0.0.1:9/"])
    data = tmp_path / "data"
    with pytest.raises(MNISTUnavailable) as caught:
        find_mnist({}, tmp_path / "no-shared", data)
    message = str(caught.value)
    assert message.startswith(f"MNIST not found and its download into {data} failed")
    assert "\n" not in message and message.endswith(".") and message.count(". ") == 0, message
    for way in ("set CAPSNET_TEST_MNIST", str(tmp_path / "no-shared"), "python -m capsnet.train"):
        assert way in message
    assert not list(data.rglob("*.gz"))


def test_by_default_the_data_folder_is_the_clones(tmp_path, monkeypatch):
    def offline(root):
        raise OSError("offline")

    monkeypatch.delenv("CAPSNET_DATA", raising=False)
    with pytest.raises(MNISTUnavailable, match=f"into {REPO / 'data'} failed") as caught:
        find_mnist({}, tmp_path / "no-shared", download=offline)
    assert "(offline)" in str(caught.value)


def test_the_fixture_is_the_one_lookup_of_the_run(mnist_dir):
    assert mnist_folder() is mnist_dir
    assert {p.name for p in mnist_dir.iterdir()} >= set(GZ_FILES)
