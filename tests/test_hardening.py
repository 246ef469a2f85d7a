"""A hostile client on the raw HTTP API (httpx, no gradio_client) against a launched `python -m explorer`:
memory per request, one-sentence refusals, class inputs, private events, body limits, sketches, fair queueing."""
import io
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from PIL import Image

from explorer.limits import QUEUE_PER_CLIENT
from explorer.serving import free_port

from . import hostile_inputs
from .conftest import SHIPPED
from .raw_http import Api, Server, blank_1bit, file_ref, peak_mb, png, sketch, stroke_rgba

PEAK_LIMIT_MB = 300  # extra peak RSS of the server for any single request
TIME_LIMIT_S = 5.0
MAX_MESSAGE = 300  # characters of a refusal

pytestmark = pytest.mark.skipif(not SHIPPED.exists(), reason="needs the shipped checkpoint (predictions are compared)")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    s = Server(tmp_path_factory.mktemp("hardening"), free_port(), args=("--allow-download",))  # do_download exists
    yield s
    s.stop()


@pytest.fixture(scope="module")
def api(server):
    return Api(server.url)


@pytest.fixture(scope="module")
def refs(api):
    """Uploaded files: hostile (12000x12000 1-bit, 18 KB) and the largest allowed (5000x5000 = 25 MP)."""
    return {
        "huge": api.upload(blank_1bit(12000, 12000)),
        "max_stroke": api.upload(stroke_rgba(5000)),
        "canvas": api.upload(stroke_rgba(336)),
        "digit": api.upload(png(hostile_inputs.digit_image())),
    }


def refusal(outcome) -> str | None:
    """The sentence of a refused call, or None if the call was not refused."""
    event, data = outcome
    if event == "error" or event.startswith("http 4"):
        return data.get("error") if isinstance(data, dict) else None
    if event == "complete" and isinstance(data, list) and len(data) == 1 and isinstance(data[0], dict):
        if data[0].get("digit") is None and data[0].get("error"):  # /predict and /routing answer in their JSON
            return data[0]["error"]
    return None


def assert_sentence(message, *, contains: str = ""):
    assert isinstance(message, str) and 10 < len(message) <= MAX_MESSAGE, message
    assert message.rstrip().endswith((".", ")")), message
    assert contains.lower() in message.lower(), (contains, message)


# name: (endpoint, data from refs, words of the expected sentence)
HOSTILE = {
    "sketch 12000x12000 (a 1-bit PNG of 18 KB)": ("analyse_sketch", lambda r: [sketch(blank_1bit(12000, 12000))],
                                                  "on a side"),
    "sketch 1025x1025": ("analyse_sketch", lambda r: [sketch(blank_1bit(1025, 1025))], "on a side"),
    "sketch as a JPEG": ("analyse_sketch", lambda r: [sketch(jpeg(), "jpeg")], "starts"),
    "sketch of 100 KB of zeros": ("analyse_sketch", lambda r: [sketch(b"\0" * 100_000)], "not an image"),
    "sketch of 200,022 characters": ("analyse_sketch", lambda r: ["data:image/png;base64," + "A" * 200_000],
                                     "at most"),
    "sketch of 2,000,022 characters": ("analyse_sketch", lambda r: ["data:image/png;base64," + "A" * 2_000_000],
                                       "larger than"),
    "sketch as the old sketchpad's dict": ("analyse_sketch", lambda r: [{"composite": None, "layers": [None] * 40000,
                                                                         "background": None}], "got dict"),
    "sketch as a number": ("analyse_sketch", lambda r: [7], "got int"),
    "sketch not base64": ("analyse_sketch", lambda r: ["data:image/png;base64,<script>alert(1)</script>"],
                          "not base64"),
    "predict 12000x12000": ("predict", lambda r: [file_ref(r["huge"])], "too large"),
    "routing 12000x12000": ("routing", lambda r: [file_ref(r["huge"]), 7, True], "too large"),
    "analyse_upload 12000x12000": ("analyse_upload", lambda r: [file_ref(r["huge"])], "too large"),
    "predict a URL": ("predict", lambda r: [file_ref("http://127.0.0.1:9/x.png")], "upload"),
    "predict /etc/passwd": ("predict", lambda r: [file_ref("/etc/passwd")], "upload"),
    "predict 'hello'": ("predict", lambda r: ["hello"], "uploaded file"),
    "predict {'path': 123}": ("predict", lambda r: [{"path": 123}], "uploaded file"),
    "predict without input": ("predict", lambda r: [], "input"),
    "pose 'x' * 100000 as a slider": ("pose", lambda r: [7, "x" * 100_000] + [0.0] * 15, "number"),
}


@pytest.mark.parametrize("case", list(HOSTILE))
def test_hostile_request_is_refused_in_one_sentence_within_bounded_memory(server, api, refs, case):
    name, data, words = HOSTILE[case]
    t0 = time.time()
    peak, outcome = peak_mb(server.pid, lambda: api.call(name, data(refs)))
    elapsed = time.time() - t0
    assert_sentence(refusal(outcome), contains=words)
    assert "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx" not in str(outcome)  # at most a short prefix echoed
    assert peak < PEAK_LIMIT_MB, f"{case}: peak +{peak:.0f} MB"
    assert elapsed < TIME_LIMIT_S, f"{case}: {elapsed:.1f} s"


def test_a_refusal_speaks_the_visitors_language(server, refs):
    """The page's upload event refuses the 12000x12000 image in the browser's language (its Accept-Language)."""
    zh = Api(server.url, headers={"Accept-Language": "zh-CN,zh;q=0.9,en;q=0.8"})
    message = refusal(zh.call("analyse_upload", [file_ref(refs["huge"])]))
    assert message is not None and message.startswith("这张图像太大（12000×12000 像素）；上限是 "), message
    assert refusal(Api(server.url).call("analyse_upload", [file_ref(refs["huge"])])).startswith(
        "That image is too large (12000x12000 pixels)")


@pytest.mark.parametrize("name", ["analyse_sketch", "predict", "routing", "analyse_upload"])
def test_largest_allowed_image_is_analysed_within_bounded_memory(server, api, refs, name):
    ref = refs["max_stroke"]  # 5000x5000 RGBA with a "1" drawn on it (a sketch: 1024x1024, its largest)
    data = {"analyse_sketch": [sketch(stroke_rgba(1024))], "predict": [file_ref(ref)],
            "routing": [file_ref(ref), None, False],
            "analyse_upload": [file_ref(ref)]}[name]  # fmt: skip
    peak, (event, out) = peak_mb(server.pid, lambda: api.call(name, data))
    assert event == "complete", out
    digit = out[0]["digit"] if name in ("predict", "routing") else out[2]
    assert digit == 1, out
    assert peak < PEAK_LIMIT_MB, f"{name}: peak +{peak:.0f} MB"


def test_every_endpoint_answers_refused_inputs_with_a_sentence(api, refs):
    """Every named endpoint (documented or not): each parameter replaced by a wrong value, and no inputs at all."""
    strict = {"Image", "Html", "Radio", "Number", "Slider"}  # inputs that must refuse a wrong type (Html: the canvas)
    wrong = ["hello", {"path": 123}, 123, "x" * 100_000]
    endpoints = api.info()["named_endpoints"]
    assert {"/predict", "/routing", "/analyse_upload", "/analyse_sketch", "/pose"} <= set(endpoints)
    for path, ep in endpoints.items():
        params = ep["parameters"]
        good = [p.get("parameter_default") for p in params]
        assert_sentence(refusal(api.call(path[1:], [])) or f"{path} accepted no inputs", contains="input")
        for i, p in enumerate(params):
            for value in wrong:
                if value == 123 and p["component"] in ("Number", "Slider", "Radio"):
                    continue  # a number is right there
                outcome = api.call(path[1:], good[:i] + [value] + good[i + 1:])
                message = refusal(outcome)
                assert outcome[1] != {"error": None}, (path, p["label"], value)
                if p["component"] in strict:
                    assert message is not None, (path, p["component"], str(value)[:20], outcome)
                if message is not None:
                    assert_sentence(message)
                    assert "x" * 50 not in message


def test_class_inputs_accept_7_and_the_string_7(api, refs):
    digit = file_ref(refs["digit"])
    assert api.call("routing", [digit, "7", False]) == api.call("routing", [digit, 7, False])
    assert api.call("routing", [digit, 7, False])[0] == "complete"
    sliders = [0.1] * 16
    assert api.call("pose", ["7", *sliders]) == api.call("pose", [7, *sliders])
    assert api.call("views_pose", ["7"])[0] == api.call("views_pose", [7])[0] == "complete"


def test_private_events_are_not_callable_by_name(server, api):
    deps = api.config()["dependencies"]
    private = [d["api_name"] for d in deps if d.get("api_visibility") == "private" and d.get("api_name")]
    assert "do_download" in private and "on_select" in private and "reselect" in private
    for name in private:
        event, data = api.call(name, [])
        assert event.startswith("http 4"), (name, event, data)
        assert_sentence(data["error"], contains="no API endpoint")
    assert not (server.tmp / "no-mnist").exists() and not (server.tmp / "data").exists()  # nothing downloaded
    for name in ("predict", "routing", "analyse_upload", "analyse_sketch", "pose", "views_pose"):
        assert api.post(name, []).status_code == 200  # the others still are


def test_request_bodies_are_capped_and_errors_do_not_echo(api):
    r = api.http.post("/gradio_api/call/predict", json={"data": ["x" * 400_000]})
    assert r.status_code == 413 and len(r.text) < 500
    assert_sentence(r.json()["error"], contains="bytes")
    chunks = (b"x" * 10_000 for _ in range(100))  # no Content-Length: counted while streaming
    r = api.http.post("/gradio_api/call/predict", content=chunks, headers={"content-type": "application/json"})
    assert r.status_code == 413
    r = api.http.post("/gradio_api/call/predict", json={"data": "y" * 200_000})  # FastAPI used to quote it all
    assert r.status_code == 422 and len(r.text) < 1000 and "yyyyyyyyyy" not in r.text
    assert_sentence(r.json()["error"], contains="data")
    r = api.http.post("/gradio_api/call/" + "z" * 2000, json={"data": []})
    assert r.status_code == 404 and len(r.text) < 500
    files = [("files", (f"f{i}.png", b"\0" * 8_000_000, "image/png")) for i in range(3)]
    r = api.http.post("/gradio_api/upload", files=files)
    assert r.status_code == 413 and "error" in r.json()


def jpeg() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (336, 336), "white").save(buf, "JPEG")
    return buf.getvalue()


FLOOD = QUEUE_PER_CLIENT + 40


def test_one_client_flooding_one_endpoint_does_not_lock_out_another(server, api, refs):
    """More concurrent 1-megapixel sketch analyses from 127.0.0.2 than one client may have waiting are queued or
    refused; then a /predict from 127.0.0.1 is still answered (it used to get 503 "Queue is full").
    tests/test_fair_queue.py times the other visitor's answer while the flood is still waiting."""
    flooder = Api(server.url, local_address="127.0.0.2")
    data = [sketch(stroke_rgba(1024))]
    with ThreadPoolExecutor(FLOOD) as ex:
        flood = [ex.submit(flooder.post, "analyse_sketch", data) for _ in range(FLOOD)]
        statuses = [f.result().status_code for f in flood]  # all joined (or refused) before the other client asks
    r = api.post("predict", [file_ref(refs["canvas"])])
    assert r.status_code == 200, r.text
    event, out = api.result("predict", r.json()["event_id"])
    assert event == "complete" and out[0]["digit"] == 1, out
    refused = [f.result() for f in flood if f.result().status_code != 200]
    assert QUEUE_PER_CLIENT <= statuses.count(200) < FLOOD and refused, statuses  # served in part and capped
    assert all(x.status_code == 503 and "Too many requests" in x.json()["error"] for x in refused)
    for f in flood:  # the accepted flood requests finish normally
        if f.result().status_code == 200:
            assert flooder.result("analyse_sketch", f.result().json()["event_id"])[0] == "complete"


def test_the_server_still_serves_after_all_this(api, refs):
    event, out = api.call("predict", [file_ref(refs["digit"])])
    assert event == "complete" and out[0]["error"] is None
    with pytest.raises(httpx.HTTPStatusError):  # uploads over 10 MB: still Gradio's own 413
        api.upload(b"\0" * 11_000_000)
