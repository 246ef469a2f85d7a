"""The decoder file the browser runs, as the app serves it, and the Pose tab's plain helpers (labels, payloads)."""
import json
import struct
import urllib.error
import urllib.request

import numpy as np
import pytest
import torch

from capsnet import CapsNet
from capsnet.export import decoder_bytes, export_decoder, read_decoder_file
from explorer.views import pose as pose_views

from .conftest import SHIPPED


def decode_from_file(tensors: dict, pose: np.ndarray, cls: int) -> np.ndarray:
    """The browser's computation in numpy: masked input -> relu -> relu -> sigmoid, weights stored (in, out)."""
    t = {k: v.double().numpy() for k, v in tensors.items()}
    x = np.zeros(t["w1"].shape[0])
    x[cls * 16:(cls + 1) * 16] = pose
    h1 = np.maximum(0, x @ t["w1"] + t["b1"])
    h2 = np.maximum(0, h1 @ t["w2"] + t["b2"])
    return 1 / (1 + np.exp(-(h2 @ t["w3"] + t["b3"])))


def test_exported_file_reproduces_the_decoder(model, tmp_path):
    path = export_decoder(model, tmp_path)
    tensors, meta = read_decoder_file(path)
    assert meta["format"] == "capsnet-decoder/1" and meta["digit_dim"] == "16"
    assert {k: tuple(v.shape) for k, v in tensors.items()} == {
        "w1": (160, 512), "b1": (512,), "w2": (512, 1024), "b2": (1024,), "w3": (1024, 784), "b3": (784,)}
    assert all(v.dtype == torch.float32 for v in tensors.values())
    rng = np.random.default_rng(0)
    for cls in (0, 3, 9):
        pose = rng.uniform(-0.6, 0.6, 16)
        poses = torch.zeros(1, 10, 16)
        poses[0, cls] = torch.tensor(pose, dtype=torch.float32)
        with torch.inference_mode():
            ref = model.decode(poses, cls)[0, 0].flatten().double().numpy()
        got = decode_from_file(tensors, pose.astype(np.float32).astype(np.float64), cls)
        assert np.abs(got - ref).max() < 1e-5
        assert np.abs(np.round(255 * got) - np.round(255 * ref)).max() <= 1


def test_file_layout_is_what_the_browser_parses(model, tmp_path):
    data = export_decoder(model, tmp_path).read_bytes()
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + n])
    assert (8 + n) % 4 == 0  # Float32Array views need 4-byte alignment
    for name, info in header.items():
        if name != "__metadata__":
            assert info["dtype"] == "F32" and info["data_offsets"][0] % 4 == 0


def test_file_name_follows_the_weights(model, tmp_path):
    first = export_decoder(model, tmp_path)
    assert export_decoder(model, tmp_path) == first  # same weights: same file, written once
    assert first.name.startswith("decoder-") and first.suffix == ".safetensors"
    torch.manual_seed(1)
    retrained = CapsNet().eval()
    other = export_decoder(retrained, tmp_path)
    assert other != first and other.read_bytes() == decoder_bytes(retrained)


def test_app_serves_the_weights_it_exported():
    from explorer.app import LAUNCH_OPTIONS, build_demo, explorer_ui
    from explorer.serving import served

    if not SHIPPED.exists():
        pytest.skip("no shipped checkpoint")
    demo = build_demo(SHIPPED, load_example=False)
    recon = next(b for b in demo.blocks.values() if getattr(b, "elem_id", None) == "reconstruction")
    path = recon.props["weights_path"]
    assert path and recon.props["weights_error"] == ""
    with served(demo, **LAUNCH_OPTIONS) as url:
        with urllib.request.urlopen(f"{url}gradio_api/file={path}", timeout=30) as r:
            body = r.read()
        assert body == decoder_bytes(explorer_ui(demo).model)
        with pytest.raises(urllib.error.HTTPError):  # its folder is not opened wider than the one file
            urllib.request.urlopen(f"{url}gradio_api/file={SHIPPED}", timeout=30)


CARD = {"dimension_labels": [[{"label": "wider", "effect": "width", "sign": 1, "strength": 1.25, "explained": 0.7}] * 16] * 10}


def test_slider_labels_come_from_the_card():
    assert pose_views.slider_labels(CARD, 4)[3] == "dim 3 · wider (+1.2 px)"
    assert pose_views.slider_labels(None, 4)[3] == "dim 3"
    assert pose_views.slider_labels({"dimension_labels": [[]]}, 4)[0] == "dim 0"  # malformed: plain names
    assert pose_views.dimension_labels({"dimension_labels": "x"}) is None
    assert len(pose_views.all_slider_labels(CARD)) == 10


def test_data_deltas_step_through_each_dimensions_spread():
    assert pose_views.data_deltas(CARD, 3) is None  # no pose statistics: the grid keeps the paper's ±0.25
    rows = [{**CARD["dimension_labels"][0][0], "pose": {"std": 0.01 * (d + 1)}} for d in range(16)]
    deltas = pose_views.data_deltas({"dimension_labels": [rows] * 10}, 3)
    assert deltas.shape == (16, 11) and deltas[4, 0] == pytest.approx(-0.1) and deltas[4, -1] == pytest.approx(0.1)
    assert deltas[4, 5] == 0.0  # the middle column: the unedited pose


def test_slider_infos_show_where_the_data_lies():
    assert pose_views.slider_infos(CARD, 4) == [""] * 16  # a card without pose statistics
    card = {"dimension_labels": [[{**CARD["dimension_labels"][0][0], "pose": {"p5": -0.052, "p50": 0.011, "p95": 0.084}}]
                                 * 16] * 10}  # fmt: skip
    assert pose_views.slider_infos(card, 2)[5] == "data 5–95%: -0.05 … +0.08, median +0.01"
    from capsnet.checkpoint import load_model_card

    from .conftest import SHIPPED

    shipped = load_model_card(SHIPPED)
    if shipped is not None:
        assert all(info.startswith("data 5–95%") for info in pose_views.slider_infos(shipped, 7))


def test_browser_values_are_checked():
    assert pose_views.clean_pose([0.1] * 16) == [0.1] * 16
    assert pose_views.clean_pose([5.0] + [0.0] * 15)[0] == 1.0
    for bad in (None, [0.1] * 15, ["x"] * 16, [float("nan")] * 16, 3):
        assert pose_views.clean_pose(bad) is None
    assert pose_views.clean_class(3) == 3 and pose_views.clean_class("7") == 7
    for bad in (None, -1, 10, 2.5, "a"):
        assert pose_views.clean_class(bad) is None


def test_payload_is_the_server_decode():
    img = np.linspace(0, 1, 784).reshape(28, 28)
    p = pose_views.reconstruction_payload(img, [0.5] * 16, 3)
    assert p["cls"] == 3 and p["pose"] == [0.5] * 16 and p["src"].startswith("data:image/png;base64,")
    import base64
    import io

    from PIL import Image

    back = np.asarray(Image.open(io.BytesIO(base64.b64decode(p["src"].split(",", 1)[1]))))
    assert back.shape == (28, 28) and back[0, 0] == 0 and back[-1, -1] == 255
    assert np.array_equal(back, np.floor(img * 255 + 0.5).astype(np.uint8))


def test_labelled_grid_adds_a_text_column():
    grid = np.full((16 * 56 + 15 * 2, 11 * 56 + 10 * 2), 64, np.uint8)
    out = pose_views.labelled_grid(grid, pose_views.slider_labels(CARD, 0))
    assert out.shape[0] == grid.shape[0] and out.shape[1] > grid.shape[1] + 50
    assert np.array_equal(out[:, -grid.shape[1]:], grid)
    column = out[:, : out.shape[1] - grid.shape[1]]
    assert (column < 128).any()  # text was drawn
    assert (column[:56] < 128).any() and (column[-56:] < 128).any()  # on the first and last rows
