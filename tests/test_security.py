"""Security evidence: weights are never unpickled, the app binds to 127.0.0.1 with no share link unless asked,
and uploads live only in Gradio's temporary cache, which is cleaned."""
import json
import os
import pickle
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

import pytest

from capsnet.checkpoint import CheckpointError, load_pretrained, load_tensors
from explorer.serving import free_port

from .conftest import REPO, SHIPPED


class Evil:
    """Unpickling this calls Path.touch(marker): proof of code execution if it ever happens."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def evil_files(folder: Path, marker: Path) -> list[Path]:
    import torch

    files = []
    p = folder / "pickle.safetensors"
    with open(p, "wb") as f:
        pickle.dump({"W": Evil(marker)}, f)
    files.append(p)
    p = folder / "torch_save.safetensors"  # zip-format torch.save, as a .pt would be
    torch.save({"W": Evil(marker), "conv1.weight": torch.zeros(3)}, p)
    files.append(p)
    p = folder / "legacy_torch_save.safetensors"
    torch.save({"W": Evil(marker)}, p, _use_new_zipfile_serialization=False)
    files.append(p)
    return files


def test_evil_pickle_is_live(tmp_path):
    """Sanity check of the payload, in a separate process: plain pickle.load does run it."""
    marker = tmp_path / "proof"
    (path,) = evil_files(tmp_path, marker)[:1]
    subprocess.run([sys.executable, "-c", f"import pickle; pickle.load(open({str(path)!r}, 'rb'))"], check=True,
                   cwd=REPO, env=dict(os.environ, PYTHONPATH=str(REPO)), capture_output=True)
    assert marker.exists()


def test_checkpoint_loader_never_unpickles(tmp_path):
    marker = tmp_path / "pwned"
    for path in evil_files(tmp_path, marker):
        with pytest.raises(CheckpointError, match="corrupt or truncated"):
            load_pretrained(path)
        with pytest.raises(CheckpointError, match="corrupt or truncated"):
            load_tensors(path)
        from explorer.session import load_model

        model, error = load_model(path)
        assert model is None and "corrupt or truncated" in error
        assert not marker.exists(), f"{path.name} was unpickled"


def test_no_pickle_loading_in_the_code():
    """No torch.load / pickle.load / weights_only=False anywhere in the package or the app."""
    pattern = re.compile(r"torch\.load\(|pickle\.loads?\(|weights_only\s*=\s*False|dill\.|joblib\.load")
    hits = []
    for folder in ("capsnet", "explorer"):
        for py in (REPO / folder).rglob("*.py"):
            for i, line in enumerate(py.read_text().splitlines(), 1):
                if pattern.search(line):
                    hits.append(f"{py.relative_to(REPO)}:{i}: {line.strip()}")
    assert hits == []


# --------------------------------------------------------------------------- binding and share


def test_default_launch_kwargs_bind_localhost_without_share():
    from explorer.__main__ import launch_kwargs, parse_args

    kw = launch_kwargs(parse_args([]))
    assert "server_name" not in kw and not kw.get("share")  # Gradio's default: 127.0.0.1, no share link
    assert launch_kwargs(parse_args(["--host", "0.0.0.0"]))["server_name"] == "0.0.0.0"  # only when told
    assert launch_kwargs(parse_args(["--share"]))["share"] is True
    assert kw["max_file_size"]


def listening_addresses(port: int) -> list[str]:
    """Local addresses LISTENing on `port` (IPv4 and IPv6), from /proc/net/tcp*."""
    out = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            addr, port_hex = fields[1].split(":")
            if int(port_hex, 16) == port and fields[3] == "0A":  # 0A = LISTEN
                if len(addr) == 8:
                    out.append(socket.inet_ntop(socket.AF_INET, bytes.fromhex(addr)[::-1]))
                else:
                    b = bytes.fromhex(addr)
                    out.append(socket.inet_ntop(socket.AF_INET6, b"".join(b[i:i + 4][::-1] for i in range(0, 16, 4))))
    return out


class Served:
    """`python -m explorer` as a subprocess (no --host), stopped with SIGINT."""

    def __init__(self, tmp: Path, env: dict | None = None, args=()):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        full = {k: v for k, v in os.environ.items() if not k.startswith("GRADIO_SERVER") and k != "GRADIO_SHARE"}
        full.update(PYTHONPATH=str(REPO), **(env or {}))
        self.log = tmp / "server.log"
        self._f = open(self.log, "wb")
        self.proc = subprocess.Popen([sys.executable, "-m", "explorer", "--port", str(self.port), *args],
                                     cwd=tmp, env=full, stdout=self._f, stderr=subprocess.STDOUT)
        t0 = time.time()
        while time.time() - t0 < 120:
            assert self.proc.poll() is None, self.log.read_text()[-3000:]
            try:
                urllib.request.urlopen(self.url + "config", timeout=2).close()
                return
            except OSError:
                time.sleep(0.2)
        raise TimeoutError(self.log.read_text()[-3000:])

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self._f.close()
        return self.log.read_text()


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """The real CLI with a private GRADIO_TEMP_DIR and a 2 s cache age, run from an empty working directory."""
    tmp = tmp_path_factory.mktemp("served")
    cache = tmp / "gradio-cache"
    s = Served(tmp, env={"GRADIO_TEMP_DIR": str(cache), "CAPSNET_CACHE_MAX_AGE": "2"})
    s.cache, s.cwd = cache, tmp
    yield s
    s.stop()


def test_cli_binds_to_loopback_only_and_no_share(served):
    addrs = listening_addresses(served.port)
    assert addrs, "nothing listens on the port"
    assert set(addrs) <= {"127.0.0.1", "::1"}, addrs
    log = served.log.read_text()
    assert "gradio.live" not in log and "public URL" not in log.lower()


def marked_png(path: Path, marker: str) -> Path:
    from PIL import PngImagePlugin

    from .hostile_inputs import digit_image

    info = PngImagePlugin.PngInfo()
    info.add_text("marker", marker)
    digit_image().save(path, pnginfo=info)
    return path


def files_containing(root: Path, needle: bytes, since: float, skip=()) -> list[Path]:
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d not in skip and not d.startswith(".git")]
        for name in filenames:
            p = Path(dirpath) / name
            try:
                st = p.stat()
                if st.st_mtime >= since and st.st_size < 5_000_000 and needle in p.read_bytes():
                    found.append(p)
            except OSError:
                pass
    return found


def test_uploads_stay_in_the_gradio_cache_and_are_cleaned(served, tmp_path):
    if not SHIPPED.exists():
        pytest.skip(f"no trained checkpoint at {SHIPPED}: run `python -m capsnet.train` first")
    from gradio_client import Client, handle_file

    since = time.time() - 1
    marker = f"capsnet-upload-{uuid.uuid4().hex}"
    src_dir = Path(tempfile.mkdtemp(prefix="capsnet-sec-src-"))
    src = marked_png(src_dir / "mine.png", marker)
    client = Client(served.url, verbose=False, download_files=False)
    # what the app keeps on purpose (static values such as the example gallery's thumbnails)
    baseline = {p for p in served.cache.rglob("*") if p.is_file()}
    res = client.predict(handle_file(str(src)), api_name="/predict")
    assert res["error"] is None
    info = json.load(urllib.request.urlopen(served.url + "gradio_api/info?all_endpoints=true"))
    params = info["named_endpoints"]["/analyse_upload"]["parameters"]
    client.predict(handle_file(str(src)), *[p.get("parameter_default") for p in params[1:]], api_name="/analyse_upload")

    needle = marker.encode()
    in_cache = files_containing(served.cache, needle, since)
    assert in_cache, "the upload should be in GRADIO_TEMP_DIR while fresh"
    # nowhere else: not in the repo, not in the server's working directory, not elsewhere in the temp dir
    assert files_containing(REPO, needle, since, skip={"checkpoints", "runs", "__pycache__", ".hypothesis"}) == []
    assert files_containing(served.cwd, needle, since, skip={"gradio-cache"}) == []
    tmp_root = Path(tempfile.gettempdir())
    elsewhere = [p for p in files_containing(tmp_root, needle, since)
                 if served.cache not in p.parents and src_dir not in p.parents]
    assert elsewhere == []
    # the configured cleanup (CAPSNET_CACHE_MAX_AGE=2 -> delete_cache=(2, 2)) removes them
    deadline = time.time() + 15
    while time.time() < deadline and any(p.exists() for p in in_cache):
        time.sleep(0.5)
    assert not any(p.exists() for p in in_cache), "uploads were not removed by delete_cache"
    # and the output images made for these requests age out the same way
    time.sleep(5)
    left = [p for p in served.cache.rglob("*") if p.is_file() and p not in baseline]
    assert left == [], left[:5]
