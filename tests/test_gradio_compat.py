"""explorer/gradio_compat.py against the installed Gradio: the version check, and for each function a test on a real
gr.Blocks served in this process that fails when the Gradio behaviour it relies on changes."""
from __future__ import annotations

import asyncio
import json
import re
import tempfile
import threading
import time
from pathlib import Path
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace

import gradio as gr
import httpx
import numpy as np
import plotly.graph_objects as go
import pytest
from gradio import processing_utils
from PIL import Image

from explorer import gradio_compat as compat
from explorer.serving import served

from .conftest import REPO
from .raw_http import Api, file_ref, png



def wait_for(condition, timeout: float = 10.0) -> None:
    t0 = time.monotonic()
    while not condition():
        assert time.monotonic() - t0 < timeout, "timed out"
        time.sleep(0.02)


def event_named(demo: gr.Blocks, name: str):
    return next(fn for fn in compat.event_functions(demo) if fn.api_name == name)


def build(seen: dict, gate: threading.Event) -> SimpleNamespace:
    lock = threading.Lock()
    with gr.Blocks() as demo:
        text, out, button = gr.Textbox(label="text"), gr.Textbox(), gr.Button()
        image = gr.Image(type="pil")
        number, total = gr.Number(), gr.Number()

        def hold(x):
            gate.wait(30)
            seen["order"].append(x)
            return x

        def count(x):
            with lock:
                seen["running"] += 1
                seen["peak"] = max(seen["peak"], seen["running"])
            time.sleep(0.3)
            with lock:
                seen["running"] -= 1
            return x

        def payload(evt: gr.EventData):
            return json.dumps(compat.event_payload(evt))

        text.submit(hold, text, out, api_name="hold", concurrency_limit=1)
        text.blur(lambda x: x, text, out, api_name="echo")
        text.focus(lambda: gr.update(label="relabelled"), None, text, api_name="relabel")
        text.input(count, text, out, api_name="count")
        button.click(payload, None, out, api_name="payload")
        image.upload(lambda im: im, image, image, api_name="flip")
        number.submit(lambda x: x, number, total, api_name="number")
    demo.queue(default_concurrency_limit=4)
    return SimpleNamespace(demo=demo, text=text, button=button, number=number)


def recorders(app: SimpleNamespace) -> None:
    """Wrap the queue and the input step with recorders, through the seam."""
    demo, seen = app.demo, app.seen

    def make_push(original):
        async def push(body, request, username):
            fn = compat.body_fn(demo, body)
            seen["push"].append((compat.fn_name(fn) if fn is not None else None, compat.called_by_name(body)))
            return await original(body, request, username)

        return push

    def make_preprocess(original):
        async def preprocess_data(block_fn, inputs, state, explicit_call=False):
            name = compat.fn_name(block_fn)
            seen["preprocess"].append((name, list(inputs), [compat.session_component(b, state) for b in block_fn.inputs]))
            seen["request"].append(compat.current_request())
            inputs = [inputs[0] + "!"] if name == "echo" else inputs
            return await original(block_fn, inputs, state, explicit_call)

        return preprocess_data

    compat.wrap_queue_push(demo, make_push)
    assert compat.wrap_preprocess(demo, make_preprocess)
    assert compat.keep_event_request(demo)
    number_preprocess = app.number.preprocess
    compat.replace_preprocess(app.number, lambda payload: 2 * number_preprocess(payload))
    compat.cap_default_concurrency(event_named(demo, "count"), 1)
    compat.cap_default_concurrency(event_named(demo, "hold"), 5)  # set explicitly: stays 1


@pytest.fixture(scope="module")
def app():
    gate = threading.Event()
    seen = {"order": [], "push": [], "preprocess": [], "request": [], "running": 0, "peak": 0}
    app = build(seen, gate)
    app.seen, app.gate = seen, gate
    recorders(app)
    app.index = {fn.api_name: i for i, fn in app.demo.fns.items()}
    with served(app.demo) as url:
        app.url, app.api = url, Api(url, timeout=30)
        try:
            yield app
        finally:
            gate.set()


# --------------------------------------------------------------------------- the version


def test_the_installed_gradio_is_the_release_the_seam_was_written_for():
    compat.check_gradio_version()
    compat.check_gradio_version(gr.__version__)
    for near in ("6.31.0.post1", "6.31.0rc1", "6.31"):
        compat.check_gradio_version(near)


def test_the_pins_are_the_release_the_seam_was_written_for():
    pins = [re.search(r"gradio==([\w.]+)", (REPO / f).read_text()).group(1) for f in ("pyproject.toml", "requirements.txt")]
    assert pins == [compat.GRADIO_VERSION] * 2


@pytest.mark.parametrize("installed", ["6.32.0", "6.31.1", "7.0.0", "5.31.0", "unknown"])
def test_another_gradio_release_is_refused_in_one_sentence(installed):
    with pytest.raises(RuntimeError) as e:
        compat.check_gradio_version(installed)
    text = str(e.value)
    assert text.startswith(f"explorer.gradio_compat was written for Gradio 6.31.0 and Gradio {installed} is installed: ")
    assert text.endswith(".") and ". " not in text and "\n" not in text


# --------------------------------------------------------------------------- the queue


def test_wrap_queue_push_sees_every_queued_event_and_how_it_came(app):
    app.seen["push"].clear()
    assert app.api.call("echo", ["a"])[0] == "complete"  # /call/<name>
    app.api.join(app.index["echo"], ["b"], "push-session")  # the page's /queue/join
    assert app.seen["push"] == [("echo", True), ("echo", False)]


def test_fn_name_is_the_api_name_or_the_index_the_page_sends(app):
    for index, fn in app.demo.fns.items():
        assert fn._id == index
        assert compat.fn_name(fn) == (fn.api_name if isinstance(fn.api_name, str) else str(index))
    assert compat.fn_name(event_named(app.demo, "hold")) == "hold"


def test_waiting_events_their_requests_and_the_group_gradio_serves_from(app):
    demo, api = app.demo, Api(app.url, timeout=30, headers={"x-visitor": "v1"})
    app.gate.clear()
    app.seen["order"].clear()
    try:
        first = api.post("hold", ["a"]).json()["event_id"]
        wait_for(lambda: compat.queued_event(demo, first) is not None and not compat.waiting_events(demo))  # running
        later = [api.post("hold", [x]).json()["event_id"] for x in "bc"]
        wait_for(lambda: len(compat.waiting_events(demo)) == 2)
        waiting = [compat.queued_event(demo, e) for e in later]
        assert compat.waiting_events(demo) == waiting
        for ev in waiting:
            request = compat.event_request(ev)
            assert request.headers["x-visitor"] == "v1" and request.client.host == "127.0.0.1"
        group = compat.event_group(demo, event_named(demo, "hold").concurrency_id)
        assert group == waiting and compat.event_group(demo, "no such group") is None
        group.reverse()  # in place, as fair_order does: Gradio now serves "c" before "b"
    finally:
        app.gate.set()
    assert [api.result("hold", e)[0] for e in [first, *later]] == ["complete"] * 3
    assert app.seen["order"] == ["a", "c", "b"]
    wait_for(lambda: all(compat.queued_event(demo, e) is None for e in [first, *later]))


def test_cap_default_concurrency_holds_when_set_before_launch(app):
    with ThreadPoolExecutor(3) as ex:
        results = list(ex.map(lambda x: app.api.call("count", [x]), "abc"))
    assert [r[0] for r in results] == ["complete"] * 3
    assert app.seen["peak"] == 1  # the default limit (4) would have run all three at once
    assert event_named(app.demo, "hold").concurrency_limit == 1


# --------------------------------------------------------------------------- inputs


def test_wrap_preprocess_gets_every_events_raw_inputs_first(app):
    app.seen["preprocess"].clear()
    assert app.api.call("echo", ["hi"]) == ("complete", ["hi!"])
    assert app.seen["preprocess"] == [("echo", ["hi"], [app.text])]


def test_keep_event_request_makes_the_request_known_while_inputs_are_preprocessed(app):
    app.seen["request"].clear()
    visitor = Api(app.url, timeout=30, headers={"Accept-Language": "zh-CN,zh;q=0.9"})
    assert visitor.call("echo", ["hi"]) == ("complete", ["hi!"])
    (request,) = app.seen["request"]
    assert request is not None and request.headers.get("accept-language") == "zh-CN,zh;q=0.9"
    assert compat.current_request() is None  # outside an event
    assert compat.keep_event_request(app.demo) is False  # wrapped once


def test_replace_preprocess_is_what_gradio_runs_for_that_component(app):
    assert app.api.call("number", [21]) == ("complete", [42])


def test_session_component_is_the_session_copy_gradio_preprocesses_with(app):
    app.api.join(app.index["relabel"], [], "relabelled-session")
    app.api.join(app.index["echo"], ["x"], "relabelled-session")
    app.api.join(app.index["echo"], ["y"], "other-session")
    used = {inputs[0]: blocks[0] for name, inputs, blocks in app.seen["preprocess"] if name == "echo"}
    assert used["x"] is not app.text and isinstance(used["x"], gr.Textbox) and used["x"].label == "relabelled"
    assert used["y"] is app.text and app.text.label == "text"


def test_fetched_urls_are_the_paths_gradio_would_download(tmp_path):
    local = tmp_path / "a.png"
    local.write_bytes(png(Image.new("L", (4, 4))))
    value = {"refs": [file_ref("https://example.com/a.png"), file_ref(str(local))],
             "plain": {"path": "http://example.com/b.png"}, "nested": [[file_ref("http://example.com/c.png")]]}
    block, moved = gr.File(), []

    async def move(path):  # Gradio's download (or copy) into its cache, recorded instead
        moved.append(path)
        return path

    block.async_move_resource_to_block_cache = move
    asyncio.run(processing_utils.async_move_files_to_cache(value, block, check_in_upload_folder=True))
    urls = [p for p in moved if p.startswith("http")]
    assert compat.fetched_urls(value) == urls == ["https://example.com/a.png", "http://example.com/c.png"]


def test_event_payload_is_the_data_a_page_script_sends(app):
    sent = {"pose": [0.25, -0.5], "cls": 3}
    msg = app.api.join(app.index["payload"], [], "payload-session", event_data=sent, trigger_id=app.button._id)
    assert json.loads(msg["output"]["data"][0]) == sent
    msg = app.api.join(app.index["payload"], [], "payload-session")
    assert json.loads(msg["output"]["data"][0]) == {}
    assert compat.event_payload(gr.EventData(None, {"cls": 1})) == {"cls": 1}


def test_plot_value_is_what_gradio_sends_for_the_figure():
    fig = go.Figure(go.Scatter(x=[1, 2], y=[3, 4]))
    value = compat.plot_value(fig)
    assert gr.Plot().postprocess(value) is value
    assert gr.Plot().postprocess(fig).model_dump() == value.model_dump()


# --------------------------------------------------------------------------- launching and stopping


def test_cached_files_lists_uploads_and_outputs(app):
    path = app.api.upload(png(Image.new("L", (8, 8), 128)))
    assert path in compat.cached_files(app.demo)
    event, out = app.api.call("flip", [file_ref(path)])
    assert event == "complete" and out[0]["path"] in compat.cached_files(app.demo)


def test_wrapping_twice_wraps_once(app):
    def never(original):
        raise AssertionError("wrapped twice")

    compat.wrap_queue_push(app.demo, never)
    assert compat.wrap_preprocess(app.demo, never) is False


def test_set_queue_poll_is_how_long_an_idle_queue_waits_to_start_an_event():
    with gr.Blocks() as demo:
        text = gr.Textbox()
        text.submit(lambda x: x, text, text, api_name="echo")
    demo.queue()

    def latency() -> float:
        t0 = time.monotonic()
        assert api.call("echo", ["a"]) == ("complete", ["a"])
        return time.monotonic() - t0

    with served(demo) as url:
        api = Api(url, timeout=30)
        compat.set_queue_poll(demo, 2.0)
        latency()  # the loop may be in a shorter sleep still; from here on it sleeps 2 s whenever it is idle
        assert latency() > 1.0
        compat.set_queue_poll(demo, 0.005)
        latency()  # ends the last 2 s sleep
        assert latency() < 1.0


def test_absent_matplotlib_is_refused_at_once_where_gradio_imports_it():
    import importlib.util
    import sys

    from gradio.utils import MatplotlibBackendMananger

    if importlib.util.find_spec("matplotlib") is not None and sys.modules.get("matplotlib", 0) is not None:
        pytest.skip("matplotlib is installed: nothing to mark")
    compat.skip_absent_matplotlib()
    assert sys.modules["matplotlib"] is None and importlib.util.find_spec("matplotlib") is None
    with pytest.raises(ImportError):
        import matplotlib  # noqa: F401
    with MatplotlibBackendMananger():  # what Gradio runs around every event: still fine without matplotlib
        pass
    import inspect

    assert "import matplotlib" in inspect.getsource(MatplotlibBackendMananger)  # the import the mark answers


def test_stop_server_now_ends_a_busy_server_within_seconds():
    gate = threading.Event()
    with gr.Blocks() as demo:
        text = gr.Textbox()
        text.submit(lambda x: gate.wait(60) and x, text, text, api_name="hold")
    demo.queue()
    try:
        with served(demo) as url, ThreadPoolExecutor(1) as ex:
            api = Api(url, timeout=30)
            event_id = api.post("hold", ["a"]).json()["event_id"]
            ex.submit(api.result, "hold", event_id)  # an open stream, and the event running
            time.sleep(0.5)
            t0 = time.monotonic()
            compat.stop_server_now(demo)
            demo.server.close()  # what Gradio's launch loop does on the KeyboardInterrupt that follows
            assert time.monotonic() - t0 < 3
            with pytest.raises(httpx.ConnectError):
                httpx.get(url + "config", timeout=2)
    finally:
        gate.set()


def test_output_images_are_written_once_and_renamed_into_place(tmp_path):
    """gr.Image's postprocess goes through the replaced save_pil_to_cache: the same image returned twice keeps its
    file untouched (Gradio's own rewrote it in place, truncating it under a reader), and a new one arrives whole."""
    compat.write_images_atomically()
    image = gr.Image(format="png")
    arr = (np.arange(28 * 28).reshape(28, 28) % 255).astype(np.uint8)
    with tempfile.TemporaryDirectory(dir=tmp_path) as cache:
        image.GRADIO_CACHE = cache
        first = image.postprocess(arr).path
        before = Path(first).stat()
        time.sleep(0.05)
        second = image.postprocess(arr).path
        after = Path(second).stat()
        assert first == second and (before.st_ino, before.st_mtime_ns) == (after.st_ino, after.st_mtime_ns)
        assert np.array_equal(np.asarray(Image.open(first)), arr)
        assert not list(Path(cache).rglob("*.part"))
