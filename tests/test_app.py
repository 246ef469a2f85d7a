"""The `predict` endpoint through gradio_client against a launched app (real checkpoint, real MNIST digits)."""
import numpy as np
import pytest
from PIL import Image

from explorer.serving import served

from .conftest import SHIPPED


@pytest.fixture(scope="module")
def app_url():
    if not SHIPPED.exists():
        pytest.skip(f"no trained checkpoint at {SHIPPED}: run `python -m capsnet.train` first")
    from explorer.app import build_demo

    with served(build_demo(SHIPPED)) as url:
        yield url


@pytest.fixture(scope="module")
def client(app_url):
    from gradio_client import Client

    return Client(app_url, verbose=False)


def save(tmp_path, name, array, mode=None):
    path = tmp_path / name
    Image.fromarray(array, mode=mode).save(path)
    return str(path)


def test_predict_mnist_digits(client, mnist_test, tmp_path):
    from gradio_client import handle_file

    right = 0
    for i in range(3):
        img = mnist_test.images[i].numpy()
        label = int(mnist_test.labels[i])
        # upscaled, as a user would upload it
        big = np.kron(img, np.ones((4, 4), np.uint8))
        res = client.predict(handle_file(save(tmp_path, f"d{i}.png", big)), api_name="/predict")
        assert res["error"] is None
        assert isinstance(res["digit"], int) and 0 <= res["digit"] <= 9
        assert len(res["lengths"]) == 10 and all(0.0 <= v <= 1.0 for v in res["lengths"])
        assert len(res["pose"]) == 16
        right += res["digit"] == label
    assert right >= 2


def test_predict_blank_returns_error_json(client, tmp_path):
    from gradio_client import handle_file

    res = client.predict(handle_file(save(tmp_path, "blank.png", np.full((64, 64), 255, np.uint8))), api_name="/predict")
    assert res["digit"] is None and isinstance(res["error"], str) and res["error"]


def test_predict_rgba_and_inverted(client, mnist_test, tmp_path):
    from gradio_client import handle_file

    img = mnist_test.images[1].numpy()  # a 2
    label = int(mnist_test.labels[1])
    big = np.kron(img, np.ones((3, 3), np.uint8))
    # dark digit on a white background, as a JPEG-like RGB photo of paper
    inverted = np.stack([255 - big] * 3, -1)
    res = client.predict(handle_file(save(tmp_path, "inv.png", inverted)), api_name="/predict")
    assert res["error"] is None and res["digit"] == label
    # black strokes on a transparent background (alpha carries the digit)
    rgba = np.zeros(big.shape + (4,), np.uint8)
    rgba[..., 3] = big
    res = client.predict(handle_file(save(tmp_path, "rgba.png", rgba)), api_name="/predict")
    assert res["error"] is None and res["digit"] == label


def test_api_lists_only_the_public_endpoints(client):
    info = client.view_api(print_info=False, return_format="dict")
    assert sorted(info["named_endpoints"]) == ["/attack", "/predict", "/routing", "/transform_response"]
    assert not info["unnamed_endpoints"]


def test_routing_endpoint(client, mnist_test, tmp_path):
    from gradio_client import handle_file

    img = np.kron(mnist_test.images[0].numpy(), np.ones((4, 4), np.uint8))
    path = handle_file(save(tmp_path, "r.png", img))
    res = client.predict(path, None, True, api_name="/routing")
    assert res["error"] is None and res["digit_class"] == res["digit"] == int(mnist_test.labels[0])
    assert res["routing_iterations"] == 3 and len(res["iterations"]) == 3 and len(res["lengths"]) == 10
    first, last = res["iterations"][0], res["iterations"][-1]
    assert np.allclose(list(first["quantiles"].values()), 0.1, atol=1e-4)  # routing starts uniform
    grid = np.asarray(res["couplings"])
    assert grid.shape == (32, 6, 6) and grid.std() > 0 and last["mean_entropy"] < first["mean_entropy"]
    assert np.asarray(res["primary_lengths"]).shape == (32, 6, 6)
    assert len(last["top_capsules"]) == 5 and {"index", "type", "row", "col", "coupling", "length"} <= set(last["top_capsules"][0])
    other = client.predict(path, 3, api_name="/routing")  # grids left out: summary only
    assert other["digit_class"] == 3 and other["digit"] == res["digit"] and "couplings" not in other
    # signed vote contributions add up to the pre-squash length, which squash maps to the capsule's length
    for r in (res, other):
        k, norms = r["digit_class"], np.asarray(r["pre_squash_norms"])
        contributions = np.asarray(r["contributions"])
        assert contributions.shape == (32, 6, 6) and (contributions < 0).any() and (contributions > 0).any()
        assert contributions.sum() == pytest.approx(norms[k], abs=2e-3)
        assert np.allclose(np.asarray(r["lengths"]), norms**2 / (1 + norms**2), atol=1e-5)
        uniform = np.asarray(r["uniform_routing_lengths"])
        assert uniform.shape == (10,) and ((uniform >= 0) & (uniform < 1)).all() and not np.allclose(uniform, r["lengths"])
    bad = client.predict(path, 12, api_name="/routing")
    assert bad["error"] and bad["digit"] is None
    blank = client.predict(handle_file(save(tmp_path, "blank.png", np.zeros((40, 40), np.uint8))), None, api_name="/routing")
    assert blank["digit"] is None and blank["error"]


def test_transform_response_identity_equals_predict(client, mnist_test, tmp_path):
    from gradio_client import handle_file

    for i in (0, 7):
        path = handle_file(save(tmp_path, f"t{i}.png", np.kron(mnist_test.images[i].numpy(), np.ones((3, 3), np.uint8))))
        pred = client.predict(path, api_name="/predict")
        for name, values in [("rotation", None), ("scale", [0.8, 1.0, 1.2]), ("shift_x", [-4, 0, 4]),
                             ("shift_y", [0]), ("thickness", [-1, -0.5, 0, 0.5, 1])]:  # fmt: skip
            res = client.predict(path, name, values, api_name="/transform_response")
            assert res["error"] is None and res["digit_class"] == pred["digit"], (name, res["error"])
            n = len(res["values"])
            assert n == (19 if values is None else len(values))
            assert np.asarray(res["lengths"]).shape == (n, 10) and np.asarray(res["poses"]).shape == (n, 16)
            ident = res["values"].index(1.0 if name == "scale" else 0.0)
            assert np.abs(np.subtract(res["lengths"][ident], pred["lengths"])).max() <= 1e-5
            assert np.abs(np.subtract(res["poses"][ident], pred["pose"])).max() <= 1e-5
    bad = client.predict(path, "skew", None, api_name="/transform_response")
    assert bad["digit_class"] is None and "unknown transform" in bad["error"].lower()
    bad = client.predict(path, "rotation", [1e9], api_name="/transform_response")
    assert bad["digit_class"] is None and "[-180, 180]" in bad["error"]


def test_attack_endpoint(client, mnist_test, tmp_path):
    """The answer's fields, the CapsNet pushed to the target within epsilon, the CNN's attack beside it (when the
    shipped CNN baseline is there), and one sentence for each refusal."""
    from gradio_client import handle_file

    from capsnet.baseline import default_cnn_checkpoint

    path = handle_file(save(tmp_path, "a.png", np.kron(mnist_test.images[0].numpy(), np.ones((3, 3), np.uint8))))
    res = client.predict(path, 3, 0.3, 20, api_name="/attack")
    assert res["error"] is None and res["prediction_before"] == int(mnist_test.labels[0])
    x, adv = np.asarray(res["input"]), np.asarray(res["adversarial"])
    assert x.shape == adv.shape == (28, 28) and np.abs(adv - x).max() <= 0.3 + 1e-4
    assert res["linf"] == pytest.approx(np.abs(adv - x).max(), abs=1e-3)
    assert res["prediction_after"] == 3 and np.argmax(res["lengths_after"]) == 3 and len(res["lengths_before"]) == 10
    assert res["flagged"] in (True, False) and 0 <= res["reconstruction_percentile"] <= 100
    if default_cnn_checkpoint().exists():
        cnn = res["cnn"]
        assert np.abs(np.asarray(cnn["adversarial"]) - x).max() <= 0.3 + 1e-4 and sum(cnn["probabilities_after"]) == pytest.approx(1, abs=1e-3)
        assert cnn["prediction_before"] == res["prediction_before"] and cnn["flagged"] in (True, False)
    for args, words in [((3, 0.5, 10), "epsilon"), ((12, 0.1, 10), "target"), ((3, 0.1, 500), "steps"),
                        ((3, 0.1, 2.5), "steps")]:  # fmt: skip
        bad = client.predict(path, *args, api_name="/attack")
        assert bad["adversarial"] is None and words in bad["error"].lower() and "\n" not in bad["error"], bad
    blank = client.predict(handle_file(save(tmp_path, "b.png", np.zeros((40, 40), np.uint8))), 3, 0.1, 5, api_name="/attack")
    assert blank["adversarial"] is None and blank["error"]
