"""SIGTERM (systemd, Docker, Spaces) and SIGINT (Ctrl-C) stop `python -m explorer` within 10 s, with requests in
flight, and leave no upload or temporary file: neither in GRADIO_TEMP_DIR nor in the app's own temporary folder."""
import signal
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from explorer.serving import free_port

from . import hostile_inputs
from .conftest import SHIPPED
from .raw_http import Api, Server, file_ref, png, stroke_rgba

STOP_LIMIT_S = 10.0


def use_every_kind_of_file(server: Server, api: Api) -> None:
    """Uploads, output images, the gallery's kept thumbnails and the app's own perturbation PNG all exist."""
    digit = api.upload(png(hostile_inputs.digit_image()))
    assert api.call("predict", [file_ref(digit)])[0] == "complete"
    assert api.call("analyse_upload", [file_ref(digit)])[0] == "complete"
    deps = {d["api_name"]: d for d in api.config()["dependencies"]}
    session = "stop-test"  # the page's protocol: the analysis lives in this session's state
    api.join(deps["analyse_upload"]["id"], [file_ref(digit), 0], session)
    draw = deps["views_perturbations"]
    data = [None] * len(draw["inputs"])
    data[1] = 7  # the digit capsule
    assert api.join(draw["id"], data, session)["success"]
    assert list(server.tmpdir.glob("capsnet-explorer-*/*.png")), "the perturbation grid was not written"
    assert list(server.cache.rglob("*.png"))


@pytest.mark.skipif(not SHIPPED.exists(), reason="needs the shipped checkpoint")
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_stop_signal_exits_quickly_and_leaves_no_file(tmp_path, sig):
    server = Server(tmp_path, free_port())
    try:
        api = Api(server.url)
        use_every_kind_of_file(server, api)
        big = api.upload(stroke_rgba(5000))
        with ThreadPoolExecutor(6) as ex:  # requests still running (and waiting) when the signal comes
            busy = [ex.submit(api.post, "analyse_upload", [file_ref(big)]) for _ in range(6)]
            [f.result() for f in busy]
            time.sleep(0.3)
            elapsed, code = server.stop(sig, timeout=30)
    finally:
        if server.proc.poll() is None:
            server.stop(signal.SIGKILL)
    log = server.log.read_text()
    assert elapsed < STOP_LIMIT_S, f"took {elapsed:.1f} s\n{log[-2000:]}"
    assert code == 0, log[-2000:]
    assert server.files_left() == [], server.files_left()[:5]
    assert not list(server.tmpdir.glob("capsnet-explorer-*")), "the app's temporary folder is still there"
