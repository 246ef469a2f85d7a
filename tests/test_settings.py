"""Settings and process state: the CAPSNET_* variables are parsed in one place (capsnet.settings) and nothing is
read or written at import; the MNIST download exists only with `--allow-download`; the prune cache is explicit."""
import os
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from capsnet import CapsNet
from capsnet.checkpoint import DEFAULT_CHECKPOINT, default_checkpoint
from capsnet.data import GZ_FILES, default_data_dir, resolve_root
from capsnet.settings import Settings, SettingsError, settings
from explorer.session import Pruner, _prune, cache_policy, configure_torch
from explorer.tabs import examples as examples_tab

from .conftest import REPO

VARIABLES = ("CAPSNET_DATA", "CAPSNET_CACHE", "CAPSNET_CHECKPOINT", "CAPSNET_CACHE_MAX_AGE", "CAPSNET_TORCH_THREADS")


@pytest.fixture
def clean_env(monkeypatch):
    """No CAPSNET_* variable set, whatever the machine running the tests has."""
    for name in VARIABLES:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def run_python(code: str, **env) -> subprocess.CompletedProcess:
    full = {k: v for k, v in os.environ.items() if not k.startswith(("CAPSNET_", "GRADIO_ANALYTICS"))}
    full.update(PYTHONPATH=str(REPO), **env)
    return subprocess.run([sys.executable, "-c", code], cwd=REPO, env=full, capture_output=True, text=True,
                          timeout=300)  # fmt: skip


# ---------------------------------------------------------------- parsing


def test_defaults_are_none():
    assert settings({}) == Settings()
    assert settings({name: "" for name in VARIABLES}) == Settings()  # empty counts as unset
    assert Settings().cache_max_age_s is None and Settings().torch_threads is None


def test_each_variable():
    s = settings({"CAPSNET_DATA": "mnist", "CAPSNET_CACHE": "/c", "CAPSNET_CHECKPOINT": "w.safetensors",
                  "CAPSNET_CACHE_MAX_AGE": " 60 ", "CAPSNET_TORCH_THREADS": "3"})  # fmt: skip
    assert (s.data_dir, s.cache_dir, s.checkpoint) == ("mnist", Path("/c"), Path("w.safetensors"))
    assert (s.cache_max_age_s, s.torch_threads) == (60, 3)
    assert settings({"CAPSNET_CACHE_MAX_AGE": "-5"}).cache_max_age_s == -5  # clamped by cache_policy, as before


@pytest.mark.parametrize("name,value", [("CAPSNET_CACHE_MAX_AGE", "1.5"), ("CAPSNET_CACHE_MAX_AGE", "an hour"),
                                        ("CAPSNET_TORCH_THREADS", "0"), ("CAPSNET_TORCH_THREADS", "-2"),
                                        ("CAPSNET_TORCH_THREADS", "four")])  # fmt: skip
def test_bad_values_are_one_sentence(name, value):
    s = settings({name: value})  # reading never fails: a bad number stops only the code that uses it
    with pytest.raises(SettingsError) as e:
        getattr(s, {"CAPSNET_CACHE_MAX_AGE": "cache_max_age_s", "CAPSNET_TORCH_THREADS": "torch_threads"}[name])
    message = str(e.value)
    assert message.startswith(f"{name}={value!r} is not a whole number") and message.endswith("or unset it.")
    assert "\n" not in message


def test_settings_read_at_each_call(clean_env, tmp_path):
    """Not cached, not frozen at import: a variable changed in the process counts at the next call."""
    assert default_checkpoint() == DEFAULT_CHECKPOINT and default_data_dir() == "data"
    clean_env.setenv("CAPSNET_CHECKPOINT", str(tmp_path / "w.safetensors"))
    clean_env.setenv("CAPSNET_DATA", str(tmp_path))
    assert default_checkpoint() == tmp_path / "w.safetensors"
    from capsnet.data import DEFAULT_DATA_DIR  # what the CLIs' --data-dir default reads

    assert default_data_dir() == DEFAULT_DATA_DIR == str(tmp_path)


def test_cache_dir_stages_mnist_roots(clean_env, tmp_path):
    gz = tmp_path / "gz"
    gz.mkdir()
    for name in GZ_FILES:
        (gz / name).write_bytes(b"")
    clean_env.setenv("CAPSNET_CACHE", str(tmp_path / "cache"))
    root = resolve_root(gz)
    assert root.parent == tmp_path / "cache" and (root / "MNIST" / "raw" / GZ_FILES[0]).is_symlink()


def test_cache_policy_and_torch_threads(clean_env):
    assert cache_policy() == (3600, 3600)
    for value, age in (("60", 60), ("0", 1), ("-3", 1)):
        clean_env.setenv("CAPSNET_CACHE_MAX_AGE", value)
        assert cache_policy() == (age, age)
    before = torch.get_num_threads()
    try:
        clean_env.setenv("CAPSNET_TORCH_THREADS", "1")
        assert configure_torch() == 1 == torch.get_num_threads()
        assert configure_torch(2) == 2  # an explicit count wins
    finally:
        torch.set_num_threads(before)


def test_nothing_read_or_written_at_import():
    """Bad numbers break no import (not even capsnet.train's, which takes its --data-dir default from
    $CAPSNET_DATA when it is imported), and importing the app sets no environment variable."""
    code = ("import os; before = dict(os.environ)\n"
            "import capsnet.data, capsnet.checkpoint, capsnet.train, explorer.session, explorer.app, explorer.serving\n"
            "print(sorted(set(os.environ.items()) ^ set(before.items())))")  # fmt: skip
    r = run_python(code, CAPSNET_TORCH_THREADS="many", CAPSNET_CACHE_MAX_AGE="soon")
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.strip() == "[]"


def test_bad_value_stops_the_server_with_one_sentence(clean_env, tmp_path):
    from explorer.__main__ import main

    clean_env.chdir(tmp_path)
    clean_env.setenv("CAPSNET_TORCH_THREADS", "many")
    with pytest.raises(SystemExit) as e:
        main([])
    assert e.value.code == ("python -m explorer: CAPSNET_TORCH_THREADS='many' is not a whole number of at least 1: "
                            "set it to the number of torch threads per request (e.g. 2) or unset it.")


# ---------------------------------------------------------------- the MNIST download: only with --allow-download


def _demo(allow_download: bool):
    from explorer.app import build_demo

    torch.manual_seed(0)
    return build_demo(model=CapsNet().eval(), tabs=(), data_dir=None, load_example=False,
                      allow_download=allow_download)  # fmt: skip


def _elem_ids(demo) -> dict:
    return {c["props"].get("elem_id"): c["props"] for c in demo.get_config_file()["components"]}


def test_no_download_without_the_flag():
    demo = _demo(False)
    ids = _elem_ids(demo)
    assert "download-mnist" not in ids
    assert examples_tab.GET_MNIST in ids["mnist-status"]["value"] and "--allow-download" in examples_tab.GET_MNIST
    assert "do_download" not in {f.api_name for f in demo.fns.values()}


def test_download_button_with_the_flag():
    demo = _demo(True)
    ids = _elem_ids(demo)
    assert ids["download-mnist"]["visible"] is True
    assert examples_tab.GET_MNIST not in ids["mnist-status"]["value"]
    (fn,) = [f for f in demo.fns.values() if f.api_name == "do_download"]
    assert fn.api_visibility == "private" and fn.concurrency_limit == 1


def test_allow_download_flag():
    from explorer.__main__ import parse_args

    assert parse_args([]).allow_download is False and parse_args(["--allow-download"]).allow_download is True
    assert "allow_download" not in (REPO / "app.py").read_text()  # a Space never downloads on a visitor's click


def test_download_rebinds_the_shared_mnist(mnist_dir):
    ui = SimpleNamespace(data_dir=mnist_dir, mnist=None)  # an offline "download": the .gz files are already there
    assert examples_tab.download_mnist(ui) is None
    assert ui.data_dir == Path(mnist_dir) and ui.mnist.unavailable_reason() is None


# ---------------------------------------------------------------- the prune cache


def test_pruner_keeps_its_scan_times(tmp_path):
    old = time.time() - 1000

    def stale(name: str) -> Path:
        p = tmp_path / name
        p.write_bytes(b"x")
        os.utime(p, (old, old))
        return p

    pruner = Pruner(every_s=30.0)
    first = stale("a.png")
    pruner(tmp_path, max_age_s=120.0)
    assert not first.exists() and tmp_path in pruner.last_scan
    second = stale("b.png")
    pruner(tmp_path, max_age_s=120.0)  # scanned less than every_s ago: nothing to do
    assert second.exists()
    Pruner(every_s=30.0)(tmp_path, max_age_s=120.0)  # another pruner has its own times
    assert not second.exists()
    assert isinstance(_prune, Pruner) and _prune.last_scan is not pruner.last_scan
