"""Hostile and unusual inputs: preprocessing and the served endpoints give a clear message or a valid result,
within bounded time and memory, and the server keeps serving afterwards."""
import os
import time
import warnings

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from PIL import Image

from explorer.inputs.preprocess import (
    BLANK_MESSAGE,
    MAX_PIXELS,
    UNREADABLE_MESSAGE,
    Preprocessed,
    preprocess,
)

from . import hostile_inputs
from .conftest import SHIPPED

TIME_LIMIT_S = 2.0
PEAK_LIMIT_MB = 300  # extra peak resident memory allowed for one hostile input


def vm_kb(field: str, pid: str = "self") -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def reset_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # resets VmHWM (peak RSS) to the current RSS
        return True
    except OSError:
        return False


def check_result(r, expect: str = "any"):
    assert isinstance(r, Preprocessed)
    if r.image is None:
        assert isinstance(r.message, str) and len(r.message) > 20, r
        assert expect in ("any", "message"), f"expected a result, got the message {r.message!r}"
    else:
        assert expect in ("any", "result"), "expected a message, got a result"
        assert r.image.shape == (1, 28, 28) and r.image.dtype == torch.float32
        assert torch.isfinite(r.image).all() and r.image.min() >= 0 and r.image.max() <= 1
        assert r.image.max() == pytest.approx(1.0, abs=1e-3)


def timed(fn, *args, **kwargs):
    t = time.perf_counter()
    out = fn(*args, **kwargs)
    dt = time.perf_counter() - t
    assert dt < TIME_LIMIT_S, f"took {dt:.2f} s"
    return out


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    return hostile_inputs.write_all(tmp_path_factory.mktemp("hostile"))


# --------------------------------------------------------------------------- preprocessing


@pytest.mark.parametrize("name", sorted(hostile_inputs.hostile_files()))
def test_hostile_file_preprocess(hostile, name):
    path, expect = hostile[name]
    have_peak = reset_peak()
    base = vm_kb("VmRSS")
    for arg in (str(path), path):
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)  # must be refused before PIL warns
            r = timed(preprocess, arg)
        check_result(r, expect)
    if have_peak:
        assert (vm_kb("VmHWM") - base) / 1024 < PEAK_LIMIT_MB
    if "declar" in name or "bomb" in name or "10000" in name:
        assert "too large" in r.message and f"{MAX_PIXELS // 1_000_000} megapixels" in r.message
    if name in ("empty.png", "not_an_image.png", "truncated.png", "random_bytes.png", "html.png"):
        assert r.message == UNREADABLE_MESSAGE


@pytest.mark.parametrize("mode", hostile_inputs.ALL_MODES)
def test_every_pil_mode_in_memory(mode):
    im = hostile_inputs.in_mode(hostile_inputs.digit_image(), mode)
    assert im.mode == mode
    r = timed(preprocess, im)
    check_result(r, "result")
    ref = preprocess(hostile_inputs.digit_image()).image
    # the same digit whatever the mode (lossy colour spaces allowed a little slack)
    assert float((r.image - ref).abs().mean()) < 0.05, mode


def test_in_memory_pil_too_large_is_refused_without_decoding():
    im = Image.new("L", (6000, 6000))  # 36 MP > MAX_PIXELS
    r = timed(preprocess, im)
    assert r.image is None and "6000x6000" in r.message


def test_animated_gif_uses_first_frame(hostile):
    with Image.open(hostile["animated.gif"][0]) as im:
        assert getattr(im, "n_frames", 1) > 1
    r = preprocess(str(hostile["animated.gif"][0]))
    first = preprocess(hostile_inputs.digit_image(seed=0)).image
    check_result(r, "result")
    assert float((r.image - first).abs().mean()) < 0.05


@pytest.mark.parametrize(
    "array",
    [
        np.zeros((0, 0)), np.zeros((0, 5, 3)), np.zeros((5, 0)), np.zeros((1, 1)), np.ones((1, 1)),
        np.full((28, 28), np.nan), np.full((28, 28), np.inf), np.full((28, 28), -np.inf),
        np.zeros((2, 2, 2, 2, 2)), np.zeros(7), np.array(3.0), np.full((40, 40, 4), np.nan, np.float32),
    ],
    ids=["0x0", "0x5x3", "5x0", "1x1-zero", "1x1-one", "nan", "inf", "-inf", "5d", "1d", "scalar", "rgba-nan"],
)
def test_degenerate_arrays(array):
    r = timed(preprocess, array)
    check_result(r, "message")
    assert r.message == BLANK_MESSAGE


def test_nan_inf_around_a_digit():
    a = np.asarray(hostile_inputs.digit_image(), np.float64) / 255.0
    a[:5] = np.nan
    a[-5:] = np.inf
    a[:, :3] = -np.inf
    check_result(timed(preprocess, a), "result")


def test_huge_array_is_bounded():
    a = np.zeros((10000, 10000), np.uint8)  # already in memory: reduced by striding, never copied whole to float
    a[2000:8000, 4800:5200] = 255
    reset_peak()
    base = vm_kb("VmRSS")
    r = timed(preprocess, a)
    check_result(r, "result")
    assert (vm_kb("VmHWM") - base) / 1024 < PEAK_LIMIT_MB


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    hnp.arrays(
        dtype=st.sampled_from([np.uint8, np.uint16, np.int32, np.float32, np.float64, np.bool_]),
        shape=st.one_of(
            hnp.array_shapes(min_dims=2, max_dims=2, min_side=0, max_side=64),
            st.tuples(st.integers(0, 48), st.integers(0, 48), st.sampled_from([1, 2, 3, 4])),
        ),
    )
)
def test_random_arrays_never_raise(a):
    check_result(timed(preprocess, a), "any")


@settings(max_examples=60, deadline=None)
@given(st.binary(min_size=0, max_size=2048), st.sampled_from([b"", b"\x89PNG\r\n\x1a\n", b"GIF89a", b"\xff\xd8\xff"]))
def test_random_bytes_never_raise(data, magic):
    r = timed(_as_file, magic + data)
    check_result(r, "any")


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 40000), st.integers(1, 40000))
def test_declared_sizes(width, height):
    """A header declaring any size: refused with a message above MAX_PIXELS, never decoded whole."""
    r = timed(_as_file, hostile_inputs.png_declaring(width, height))
    check_result(r, "any")
    if width * height > MAX_PIXELS:
        assert "too large" in r.message


def _as_file(data: bytes):
    import tempfile

    f = tempfile.NamedTemporaryFile(suffix=".png", delete=False)
    f.write(data)
    f.close()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return preprocess(f.name)
    finally:
        os.unlink(f.name)


def test_dicts_and_empty_arrays():
    for value in ({}, {"composite": None}, np.zeros((0, 0)), np.full((336, 336, 4), 255, np.uint8)):
        check_result(timed(preprocess, value), "message")


# --------------------------------------------------------------------------- through the server


@pytest.fixture(scope="module")
def demo_client():
    """(demo, client): the shipped app served in this process, and a gradio_client on it."""
    if not SHIPPED.exists():
        pytest.skip(f"no trained checkpoint at {SHIPPED}: run `python -m capsnet.train` first")
    from explorer.app import LAUNCH_OPTIONS, build_demo

    from gradio_client import Client

    from explorer.serving import served as serving

    demo = build_demo(SHIPPED)
    with serving(demo, max_file_size=LAUNCH_OPTIONS["max_file_size"]) as url:
        yield demo, Client(url, verbose=False, download_files=False)


def test_predict_barrage_then_normal_predict(demo_client, hostile):
    """Every hostile file through /predict: a JSON answer with a clear error or a digit, < 2 s each."""
    from gradio_client import handle_file

    _, client = demo_client
    base = vm_kb("VmRSS")
    for name, (path, expect) in sorted(hostile.items()):
        res = timed(client.predict, handle_file(str(path)), api_name="/predict")
        assert isinstance(res, dict), name
        if res["digit"] is None:
            assert isinstance(res["error"], str) and len(res["error"]) > 20, (name, res)
            assert expect in ("any", "message"), (name, res)
        else:
            assert res["error"] is None and 0 <= res["digit"] <= 9 and len(res["lengths"]) == 10, name
            assert expect in ("any", "result"), (name, res)
        if "bomb" in name or "declar" in name or "10000" in name:
            assert "too large" in res["error"], (name, res)
    assert (vm_kb("VmRSS") - base) / 1024 < PEAK_LIMIT_MB
    ok = client.predict(handle_file(str(hostile["digit.jpg"][0])), api_name="/predict")
    assert ok["error"] is None and isinstance(ok["digit"], int)


def test_ui_upload_event_shows_the_message(demo_client, hostile):
    """The Upload tab's event (what the browser triggers): its prompt output carries the message (checked
    in-process: gradio_client drops the values of updates); the /analyse_upload API answers with the message."""
    import json
    import urllib.request

    from gradio_client import handle_file
    from gradio_client.exceptions import AppError

    demo, client = demo_client
    info = json.load(urllib.request.urlopen(client.src.rstrip("/") + "/gradio_api/info?all_endpoints=true"))
    params = info["named_endpoints"]["/analyse_upload"]["parameters"]
    upload = next(f for f in demo.fns.values() if f.api_name == "analyse_upload").inputs[0]
    fn = next(f for f in demo.fns.values() if f.api_visibility == "private" and f.inputs and f.inputs[0] is upload)
    for name in ("not_an_image.png", "bomb_50000x50000.png", "truncated.png", "empty.png", "huge_10000x10000.png"):
        path = str(hostile[name][0])
        expected = "too large" if ("bomb" in name or "huge" in name) else "could not be read"
        args = [handle_file(path)] + [p.get("parameter_default") for p in params[1:]]
        with pytest.raises(AppError, match=expected):  # the API caller gets the reason, not empty outputs
            timed(client.predict, *args, api_name="/analyse_upload")
        value = timed(upload.preprocess, upload.data_model(path=path, orig_name=name))
        out = fn.fn(value, *[getattr(c, "value", None) for c in fn.inputs[1:]])
        text = json.dumps(out, default=str)
        assert "Nothing to show" in text, (name, text[:300])
        assert expected in text, (name, text[:300])


def test_oversized_upload_is_refused(demo_client, tmp_path):
    """A file over max_file_size (10 MB): gradio_client refuses it with a message (it reads the limit from the
    server's config), and the server's upload route answers 413 to a client that sends it anyway."""
    import urllib.error
    import urllib.request

    from gradio_client import handle_file

    from explorer.inputs.upload import MAX_FILE_SIZE

    _, client = demo_client
    limit = int(MAX_FILE_SIZE.rstrip("mb")) * 1024 * 1024
    big = tmp_path / "big.png"
    png = hostile_inputs.encode(hostile_inputs.digit_image(), "PNG")
    big.write_bytes(png + os.urandom(limit + 1024))  # a PNG with 10 MB of trailing junk
    with pytest.raises(ValueError, match=r"exceeds the maximum file size of 10485760 bytes"):
        client.predict(handle_file(str(big)), api_name="/predict")
    # bypassing the client's check: the server refuses the upload itself
    boundary = "capsnetboundary"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"big.png\"\r\n"
            "Content-Type: image/png\r\n\r\n").encode() + big.read_bytes() + f"\r\n--{boundary}--\r\n".encode()
    req = urllib.request.Request(client.src.rstrip("/") + "/gradio_api/upload", data=body, method="POST",
                                 headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(req, timeout=60)
    assert e.value.code == 413 and b"maximum allowed size" in e.value.read()
    ok = client.predict(handle_file(str(_digit_png(tmp_path))), api_name="/predict")
    assert ok["error"] is None


def _digit_png(folder):
    p = folder / "ok.png"
    hostile_inputs.digit_image().save(p)
    return p
