"""Hugging Face Spaces hosting, tried the way Spaces builds a Space: the README's front matter is the Space config,
requirements.txt must resolve on its Python, `python -m explorer.deploy` uploads an explicit file set, and that
file set alone runs as `python app.py` with the Spaces variables and answers /predict behind a proxy header."""
from __future__ import annotations

import glob
import http.server
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import tomllib
from contextlib import contextmanager
from importlib.metadata import version as installed_version
from pathlib import Path
from typing import Iterator

import httpx
import pytest
import yaml
from packaging.specifiers import SpecifierSet

from explorer import deploy
from explorer.serving import free_port

from .conftest import REPO
from .raw_http import Api, file_ref, stroke_rgba

SPACE_ID = "user/capsnet-explorer"
OUTSIDE = ("tests/", "benchmarks/", "docs/", "data/", "runs/")
START_TIMEOUT_S = 180


def front_matter() -> dict:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    assert text.startswith("---\n"), "README.md must open with the Space's YAML front matter"
    return yaml.safe_load(text.split("---\n", 2)[1])


def pins() -> dict[str, str]:
    """requirements.txt's `name==version` lines."""
    lines = (REPO / "requirements.txt").read_text().splitlines()
    return dict(line.split("==", 1) for line in lines if "==" in line and not line.startswith("#"))


def interpreter(version: str) -> str | None:
    """A Python `version` ("3.11"): this one if it is, else pyenv's newest patch release, else python3.X on PATH."""
    if f"{sys.version_info.major}.{sys.version_info.minor}" == version:
        return sys.executable
    root = os.environ.get("PYENV_ROOT", os.path.expanduser("~/.pyenv"))
    found = glob.glob(f"{root}/versions/{version}.*/bin/python")
    found = [p for p in found if p.split("/")[-3].replace(".", "").isdigit()]  # not 3.11.7-debug or a venv
    if found:
        return max(found, key=lambda p: [int(n) for n in p.split("/")[-3].split(".")])
    on_path = shutil.which(f"python{version}")
    if on_path and subprocess.run([on_path, "-c", "pass"], capture_output=True).returncode == 0:  # not a dead shim
        return on_path
    return None


def pip_dry_run(python: str, tmp: Path) -> subprocess.CompletedProcess:
    return subprocess.run([python, "-m", "pip", "install", "--dry-run", "--ignore-installed", "--quiet",
                           "--report", str(tmp / "r.json"), "-r", str(REPO / "requirements.txt")],
                          capture_output=True, text=True, timeout=600)  # fmt: skip


# --- the front matter ---------------------------------------------------------------------------------------------


def test_front_matter_matches_the_pins():
    fm, pyproject = front_matter(), tomllib.loads((REPO / "pyproject.toml").read_text())
    assert fm["sdk"] == "gradio" and (REPO / fm["app_file"]).is_file()
    assert str(fm["sdk_version"]) == pins()["gradio"], "sdk_version must be requirements.txt's gradio pin"
    assert f"gradio=={fm['sdk_version']}" in pyproject["project"]["dependencies"]
    assert installed_version("gradio") == str(fm["sdk_version"]), "the tests run another gradio than the Space would"


def test_python_version_is_quoted_and_agrees_with_requires_python():
    fm, pyproject = front_matter(), tomllib.loads((REPO / "pyproject.toml").read_text())
    # Unquoted, YAML reads 3.10 as the float 3.1: the Space would get another Python than the one written.
    assert isinstance(fm.get("python_version"), str), "python_version must be a quoted string"
    requires = SpecifierSet(pyproject["project"]["requires-python"])
    assert requires.contains(fm["python_version"] + ".0"), f"{fm['python_version']} is outside {requires}"
    assert not requires.contains("3.10.0"), "numpy 2.4 needs Python >= 3.11: requires-python must say so"


def test_the_server_runs_on_the_c_event_loop_and_http_parser():
    """uvloop and httptools (requirements.txt, pyproject) are what Gradio's uvicorn picks: an event reports its loop."""
    import asyncio

    import gradio as gr

    from explorer.serving import served

    async def loop_kind(_):
        return type(asyncio.get_running_loop()).__module__

    with gr.Blocks() as demo:
        text = gr.Textbox()
        text.submit(loop_kind, text, text, api_name="loop")
    demo.queue()
    with served(demo) as url:
        assert Api(url, timeout=30).call("loop", [""]) == ("complete", ["uvloop"])
        assert demo.server.config.http_protocol_class.__name__ == "HttpToolsProtocol"
    assert {"uvloop", "httptools"} <= set(pins())


def test_requirements_resolve_on_the_spaces_python(tmp_path):
    """A real resolve (pip --dry-run against the registry) with the front matter's Python: the Space's build step."""
    version = front_matter()["python_version"]
    python = interpreter(version)
    if python is None:
        pytest.skip(f"no Python {version} here (sys.executable, pyenv or python{version} on PATH)")
    t0 = time.time()
    r = pip_dry_run(python, tmp_path)
    print(f"pip --dry-run on Python {version}: {time.time() - t0:.0f} s")
    assert r.returncode == 0, r.stderr[-3000:]
    resolved = {i["metadata"]["name"].lower(): i["metadata"]["version"] for i in
                json.loads((tmp_path / "r.json").read_text())["install"]}  # fmt: skip
    for name, version_pinned in pins().items():
        assert resolved.get(name.lower()) == version_pinned, f"{name}: resolved {resolved.get(name.lower())}"


def test_requirements_do_not_resolve_on_python_310(tmp_path):
    """Spaces' default Python is 3.10: without python_version the build stops there (numpy 2.4 needs 3.11)."""
    python = interpreter("3.10")
    if python is None:
        pytest.skip("no Python 3.10 here (pyenv or python3.10 on PATH)")
    r = pip_dry_run(python, tmp_path)
    assert r.returncode != 0 and "Requires-Python >=3.11" in r.stderr, r.stderr[-3000:]


# --- the deploy file set ------------------------------------------------------------------------------------------


def copy_files(files: list[str], dest: Path, src: Path = REPO) -> Path:
    for f in files:
        (dest / f).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src / f, dest / f)
    return dest


def test_deploy_files_are_what_the_space_runs():
    files = deploy.deploy_files(REPO)
    needed = ["app.py", "README.md", "requirements.txt", "checkpoints/capsnet.safetensors", "checkpoints/capsnet.json",
              "capsnet/model.py", "explorer/app.py"]  # fmt: skip
    sources = [*(REPO / "explorer" / "static").iterdir(), *REPO.glob("capsnet/**/*.py"), *REPO.glob("explorer/**/*.py")]
    needed += [p.relative_to(REPO).as_posix() for p in sources if p.is_file() and "__pycache__" not in p.parts]
    assert not set(needed) - set(files)
    outside = [f for f in files if f.startswith(OUTSIDE) and f not in deploy.README_IMAGES]
    assert not outside and not [f for f in files if "__pycache__" in f or f.endswith((".pyc", ".tmp"))]
    shown = re.findall(r"!\[[^\]]*\]\(([^)\s]+)\)", (REPO / "README.md").read_text(encoding="utf-8"))
    assert shown and set(shown) <= set(files), "every picture the README (the Space's page) shows is uploaded"
    assert not [f for f in files if f.endswith(".resume.safetensors")]


def test_deploy_files_leave_out_everything_else(tmp_path):
    """Scratch files of every kind beside a copy of the set: none of them is selected."""
    root = copy_files(deploy.deploy_files(REPO), tmp_path / "repo")
    scratch = ["tests/test_x.py", "benchmarks/load.py", "docs/figures/a.png", "data/mnist/t10k.gz", "runs/log.json",
               "capsnet/__pycache__/model.cpython-311.pyc", "explorer/views/stale.pyc", "explorer/x.tmp",
               "checkpoints/capsnet.resume.safetensors", "checkpoints/.capsnet.safetensors.tmp", ".git/config",
               ".gradio/certificate.pem", "pyproject.toml", "notes.txt", "explorer/static/.DS_Store"]  # fmt: skip
    for f in scratch:
        (root / f).parent.mkdir(parents=True, exist_ok=True)
        (root / f).write_text("scratch")
    assert deploy.deploy_files(root) == deploy.deploy_files(REPO)


def test_upload_sends_exactly_the_deploy_files(tmp_path, monkeypatch, capsys):
    """deploy.upload against a stub Hub: create_repo's arguments, and the files that huggingface_hub's own
    upload_folder selection (`_prepare_upload_folder_additions`, the step before hashing) picks from them."""
    from huggingface_hub import HfApi
    from huggingface_hub.utils._paths import DEFAULT_IGNORE_PATTERNS

    root = copy_files(deploy.deploy_files(REPO), tmp_path / "repo")
    (root / "runs").mkdir()
    (root / "runs" / "log.json").write_text("{}")
    calls = {}

    def upload_folder(self, *, folder_path, allow_patterns, ignore_patterns, **kw):
        calls["upload_folder"] = kw
        ignore = ignore_patterns + DEFAULT_IGNORE_PATTERNS  # as upload_folder adds them
        ops = self._prepare_upload_folder_additions(folder_path, "", allow_patterns=allow_patterns,
                                                    ignore_patterns=ignore)  # fmt: skip
        calls["files"] = sorted(op.path_in_repo for op in ops)

    monkeypatch.setattr(HfApi, "create_repo", lambda self, repo_id, **kw: calls.update(create_repo=(repo_id, kw)))
    monkeypatch.setattr(HfApi, "upload_folder", upload_folder)
    monkeypatch.setattr(HfApi, "_validate_yaml", lambda self, *a, **kw: None)  # asks the Hub
    files = deploy.deploy_files(root)
    deploy.upload(SPACE_ID, root, files, token="hf_stub", private=False)
    repo_id, kw = calls["create_repo"]
    assert repo_id == SPACE_ID and kw["repo_type"] == "space" and kw["space_sdk"] == "gradio" and kw["exist_ok"]
    assert calls["upload_folder"]["repo_id"] == SPACE_ID and calls["upload_folder"]["repo_type"] == "space"
    assert calls["upload_folder"]["delete_patterns"] == deploy.DEPLOY_PATTERNS  # a module renamed since goes too
    assert calls["files"] == files
    assert f"Uploading {len(files)} files" in capsys.readouterr().out


# --- python -m explorer.deploy: answers -----------------------------------------------------------------------------


def deploy_cli(tmp: Path, *args: str, cwd: Path = REPO, **env: str) -> subprocess.CompletedProcess:
    """`python -m explorer.deploy` with no token anywhere (an empty HF_HOME in `tmp`) and the Hub at an address
    nobody answers, unless `env` says otherwise."""
    full = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGING_FACE")) and k != "PYTHONPATH"}
    full.update({"HF_HOME": str(tmp / "hf-home"), "HF_ENDPOINT": f"http://127.0.0.1:{free_port()}", **env})
    return subprocess.run([sys.executable, "-m", "explorer.deploy", *args], cwd=cwd, env=full, capture_output=True,
                          text=True, timeout=120)  # fmt: skip


def one_sentence(r: subprocess.CompletedProcess, *words: str) -> None:
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and r.stderr.strip().endswith("."), r.stderr
    for w in words:
        assert w in r.stderr, r.stderr


def test_dry_run_lists_the_files_and_contacts_nothing(tmp_path):
    r = deploy_cli(tmp_path, SPACE_ID, "--dry-run", HF_HUB_OFFLINE="1")
    assert r.returncode == 0 and not r.stderr, r.stderr
    listed = [line.split()[-1] for line in r.stdout.splitlines()[:-1]]
    assert listed == deploy.deploy_files(REPO)
    assert r.stdout.splitlines()[-1].startswith(f"{len(listed)} files, ") and "nothing was uploaded" in r.stdout


@pytest.mark.parametrize("space_id", ["not a valid id", "a/b/c", "user/-bad-", "user/" + "x" * 97, ""])
def test_invalid_space_id(tmp_path, space_id):
    one_sentence(deploy_cli(tmp_path, space_id, "--dry-run"), "is not a Space id")


def test_unquoted_words_get_argparse_usage_not_a_traceback(tmp_path):
    r = deploy_cli(tmp_path, "not", "a", "valid", "id", "--dry-run")
    assert r.returncode == 2 and "Traceback" not in r.stderr and "unrecognized arguments" in r.stderr, r.stderr


def test_no_token_says_how_to_log_in(tmp_path):
    one_sentence(deploy_cli(tmp_path, SPACE_ID), "hf auth login", "HF_TOKEN")


def test_hub_unreachable(tmp_path):
    one_sentence(deploy_cli(tmp_path, SPACE_ID, HF_TOKEN="hf_stub"), "Could not reach the Hub")


@contextmanager
def stub_hub(status: int) -> Iterator[str]:
    """A local server answering every request with `status` and a JSON error, as the Hub does."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def answer(self):
            self.rfile.read(int(self.headers.get("content-length") or 0))
            body = json.dumps({"error": "Invalid credentials in Authorization header"}).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = do_PUT = do_HEAD = answer

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("status", [401, 403, 500])
def test_hub_refusal_is_one_sentence_with_the_status(tmp_path, status):
    with stub_hub(status) as url:
        one_sentence(deploy_cli(tmp_path, SPACE_ID, HF_TOKEN="hf_stub", HF_ENDPOINT=url), f"HTTP {status}", SPACE_ID)


def test_missing_checkpoint(tmp_path):
    root = copy_files([f for f in deploy.deploy_files(REPO) if f != "checkpoints/capsnet.safetensors"],
                      tmp_path / "repo")
    r = deploy_cli(tmp_path, SPACE_ID, "--dry-run", cwd=root)  # `-m` runs the copy's explorer.deploy: cwd comes first
    one_sentence(r, str(root / "checkpoints" / "capsnet.safetensors"), "is missing", "python -m capsnet.train")


# --- the deploy file set runs as a Space --------------------------------------------------------------------------


def space_env(tmp: Path, port: int) -> dict[str, str]:
    """What a Space's container sets (but 127.0.0.1, not 0.0.0.0), with nothing pointing at this repository."""
    keep = {k: v for k, v in os.environ.items()
            if not k.startswith(("GRADIO_", "CAPSNET_", "PYTHON", "HF_", "SPACE", "VIRTUAL_ENV"))}  # fmt: skip
    (tmp / "tmp").mkdir(exist_ok=True)
    return {**keep, "SYSTEM": "spaces", "SPACE_ID": SPACE_ID, "GRADIO_SERVER_NAME": "127.0.0.1",
            "GRADIO_SERVER_PORT": str(port), "GRADIO_ANALYTICS_ENABLED": "False", "TMPDIR": str(tmp / "tmp"),
            "GRADIO_TEMP_DIR": str(tmp / "gradio"), "HF_HOME": str(tmp / "hf-home")}  # fmt: skip


@contextmanager
def space_running(python: str, folder: Path, tmp: Path) -> Iterator[str]:
    """`python app.py` in `folder` as Spaces runs it; yields its URL; stops it with SIGINT (killed if it hangs)."""
    port = free_port()
    env = space_env(tmp, port)
    # `-c` puts the cwd first on sys.path, as `python app.py` puts app.py's folder: the imports must stay inside it.
    code = "import capsnet, explorer; print(capsnet.__file__); print(explorer.__file__)"
    where = subprocess.run([python, "-c", code], cwd=folder, env=env, capture_output=True, text=True, timeout=120)
    assert where.returncode == 0, where.stderr
    assert all(Path(p).is_relative_to(folder) for p in where.stdout.split()), f"imports from outside: {where.stdout}"
    log = tmp / "space.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([python, "app.py"], cwd=folder, env=env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    try:
        t0 = time.time()
        while True:
            assert proc.poll() is None, f"app.py exited ({proc.returncode}):\n{log.read_text()[-3000:]}"
            try:
                if httpx.get(url + "config", timeout=5).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.time() - t0 < START_TIMEOUT_S, f"no answer in {START_TIMEOUT_S} s:\n{log.read_text()[-3000:]}"
            time.sleep(0.5)
        print(f"app.py answered after {time.time() - t0:.1f} s")
        yield url
        proc.send_signal(signal.SIGINT)
        assert proc.wait(60) == 0, log.read_text()[-3000:]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(30)


def predict_drawn_one(url: str) -> None:
    """A drawn "1" through the Spaces proxy's header: uploaded, then /predict by name, as a client of the Space."""
    api = Api(url)
    api.http.headers["X-Forwarded-For"] = "8.8.8.8"
    assert api.config()["space_id"] == SPACE_ID, "Gradio did not see SYSTEM=spaces"
    event, data = api.call("predict", [file_ref(api.upload(stroke_rgba(336), "one.png"))])
    assert event == "complete", data
    assert data[0]["error"] is None and data[0]["digit"] == 1, data


def test_deploy_files_run_as_a_space(tmp_path):
    folder = copy_files(deploy.deploy_files(REPO), tmp_path / "space")
    with space_running(sys.executable, folder, tmp_path) as url:
        predict_drawn_one(url)


def du(*paths: str | Path) -> int:
    """Bytes on disk under `paths` (`du -scb`: hard links counted once)."""
    out = subprocess.run(["du", "-scb", *map(str, paths)], capture_output=True, text=True, check=True).stdout
    return int(out.splitlines()[-1].split()[0])


@pytest.mark.slow
def test_space_smoke_run_in_a_clean_venv(tmp_path):
    """The Space's build and start: a clean venv of the front matter's Python, requirements.txt, then
    gradio[oauth]==sdk_version as the Spaces builder adds it, then the deploy file set reading a drawn digit."""
    fm = front_matter()
    python = interpreter(fm["python_version"])
    if python is None:
        pytest.skip(f"no Python {fm['python_version']} here to build the Space's venv with")
    folder = copy_files(deploy.deploy_files(REPO), tmp_path / "space")
    venv = tmp_path / "venv"
    try:
        t0 = time.time()
        subprocess.run([python, "-m", "venv", str(venv)], check=True, timeout=300)
        pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet"]
        for args in (["-r", "requirements.txt"], [f"gradio[oauth]=={fm['sdk_version']}"]):
            r = subprocess.run(pip + args, cwd=folder, capture_output=True, text=True, timeout=1200)
            assert r.returncode == 0, r.stderr[-3000:]
        build_s = time.time() - t0
        site = next(venv.glob("lib/python*/site-packages"))
        torch_part = [p for pat in ("torch*", "functorch", "nvidia*", "triton*", "cuda*") for p in site.glob(pat)]
        print(f"Space build: {build_s:.0f} s; venv {du(venv) / 1e9:.2f} GB, "
              f"of which torch + CUDA (torch*, functorch, nvidia*, triton*, cuda*) {du(*torch_part) / 1e9:.2f} GB")
        with space_running(str(venv / "bin" / "python"), folder, tmp_path) as url:
            predict_drawn_one(url)
    finally:
        shutil.rmtree(venv, ignore_errors=True)  # GBs: do not leave them to pytest's kept temp folders
